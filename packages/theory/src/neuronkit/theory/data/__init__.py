"""Dataset generators: modular arithmetic with corrupted labels, LMS (linear + multi-slab) data,
radial shells and function-fitting tasks."""

from .functions import FUNCTION_TASKS, FunctionTask, function_task
from .lms import LMSDataset, lms_data
from .modular import ModularDataset, modular_arithmetic, one_hot_pairs
from .radial import RadialDataset, radial_shells

__all__ = [
    "FUNCTION_TASKS",
    "FunctionTask",
    "LMSDataset",
    "ModularDataset",
    "RadialDataset",
    "function_task",
    "lms_data",
    "modular_arithmetic",
    "one_hot_pairs",
    "radial_shells",
]
