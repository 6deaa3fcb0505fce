"""Dataset generators: modular arithmetic with corrupted labels, LMS (linear + multi-slab) data,
radial shells, function-fitting tasks, N-parity / N-DMS sequences, 1D Gaussian-process tasks and
2D Darcy (variable-coefficient Poisson) solutions from a finite-difference solver."""

from .functions import FUNCTION_TASKS, FunctionTask, function_task
from .gp import (
    GP_KERNELS,
    GPTasks,
    gp_kernel,
    gp_log_likelihood,
    gp_predictive,
    sample_gp_tasks,
    split_context_target,
)
from .lms import LMSDataset, lms_data
from .modular import ModularDataset, modular_arithmetic, one_hot_pairs
from .parity import (
    SequenceTask,
    binary_sequences,
    dms_labels,
    memory_task,
    n_dms,
    n_parity,
    parity_labels,
    task_length,
)
from .pde import (
    BOUNDARIES,
    DarcyDataset,
    darcy_coefficient,
    darcy_dataset,
    darcy_matrix,
    default_forcing,
    gaussian_random_field,
    grid_coordinates,
    solve_darcy,
)
from .radial import RadialDataset, radial_shells

__all__ = [
    "BOUNDARIES",
    "FUNCTION_TASKS",
    "GP_KERNELS",
    "DarcyDataset",
    "FunctionTask",
    "GPTasks",
    "LMSDataset",
    "ModularDataset",
    "RadialDataset",
    "SequenceTask",
    "binary_sequences",
    "darcy_coefficient",
    "darcy_dataset",
    "darcy_matrix",
    "default_forcing",
    "dms_labels",
    "function_task",
    "gaussian_random_field",
    "gp_kernel",
    "gp_log_likelihood",
    "gp_predictive",
    "grid_coordinates",
    "lms_data",
    "memory_task",
    "modular_arithmetic",
    "n_dms",
    "n_parity",
    "one_hot_pairs",
    "parity_labels",
    "radial_shells",
    "sample_gp_tasks",
    "solve_darcy",
    "split_context_target",
    "task_length",
]
