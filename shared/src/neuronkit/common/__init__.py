"""neuronkit.common: the thin shared layer of neuronkit.

Reproduction registry and CLI, run context and results, seeding, device selection, argument
validation, correct predictions, module modes, atomic writes, safe weight IO and the
estimators' parameter protocol. Importing it never imports torch.
"""

from importlib.metadata import version as _version

from .device import module_placement, select_device
from .estimator import EstimatorParams
from .io import atomic_path, atomic_write_bytes, atomic_write_json, atomic_write_text
from .metrics import correct_predictions
from .modes import detached_input, eager_twin, eval_mode, function_for_mode, grad_enabled
from .plotting import axes_or_new, new_figure
from .progress import progress, progress_write
from .registry import GROUP, RegistryError, ReproductionInfo, discover, load, reproduce
from .reproduction import Check, CheckResult, Result, RunContext, reproduction, run_reproduction
from .seeding import (
    forked_manual_seed,
    seed_everything,
    torch_generator,
    torch_rng_seeded,
    torch_rngs_forked,
)
from .validation import (
    as_float_array,
    check_adam_dtype,
    check_choice,
    check_class_labels,
    check_finite,
    check_floating,
    check_interval,
    check_ndim,
    check_number,
    check_probability,
    check_seed,
    check_shape,
    check_type,
    floating_dtype,
    host_array,
    input_dtype_error,
    integer_dtype,
    named_input_dtypes,
    parameter_dtype,
    plain_tensor,
    under_torch_func,
    values_hidden,
)
from .weights import load_weights, save_weights

__version__ = _version("neuronkit-common")

__all__ = [
    "GROUP",
    "Check",
    "CheckResult",
    "EstimatorParams",
    "RegistryError",
    "ReproductionInfo",
    "Result",
    "RunContext",
    "__version__",
    "as_float_array",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "axes_or_new",
    "check_adam_dtype",
    "check_choice",
    "check_class_labels",
    "check_finite",
    "check_floating",
    "check_interval",
    "check_ndim",
    "check_number",
    "check_probability",
    "check_seed",
    "check_shape",
    "check_type",
    "correct_predictions",
    "detached_input",
    "discover",
    "eager_twin",
    "eval_mode",
    "floating_dtype",
    "forked_manual_seed",
    "function_for_mode",
    "grad_enabled",
    "host_array",
    "input_dtype_error",
    "integer_dtype",
    "load",
    "load_weights",
    "module_placement",
    "named_input_dtypes",
    "new_figure",
    "parameter_dtype",
    "plain_tensor",
    "progress",
    "progress_write",
    "reproduce",
    "reproduction",
    "run_reproduction",
    "save_weights",
    "seed_everything",
    "select_device",
    "torch_generator",
    "torch_rng_seeded",
    "torch_rngs_forked",
    "under_torch_func",
    "values_hidden",
]
