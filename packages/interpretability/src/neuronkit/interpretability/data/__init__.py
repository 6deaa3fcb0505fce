"""Data generators and loaders (nothing is downloaded): digits-based BlockDigits, the synthetic
``y * e_j`` signal-coordinate task, noisy simulated measurements of layer responses, the 12-bit
information-plane task, object-in-context images and simulated cell-type populations."""

from .block_digits import BlockDigits, block_digits, load_digits
from .cell_types import LNPopulation, on_off_population, orientation_population
from .object_context import ObjectContextData, object_context
from .responses import noisy_responses
from .synthetic import SignalCoordinateData, signal_coordinate_data
from .twelve_bit import TwelveBitTask, all_binary_inputs, icosahedron_vertices, twelve_bit_task

__all__ = [
    "BlockDigits",
    "LNPopulation",
    "ObjectContextData",
    "SignalCoordinateData",
    "TwelveBitTask",
    "all_binary_inputs",
    "block_digits",
    "icosahedron_vertices",
    "load_digits",
    "noisy_responses",
    "object_context",
    "on_off_population",
    "orientation_population",
    "signal_coordinate_data",
    "twelve_bit_task",
]
