"""Data generators and loaders (nothing is downloaded): digits-based BlockDigits, the synthetic
``y * e_j`` signal-coordinate task, and noisy simulated measurements of layer responses."""

from .block_digits import BlockDigits, block_digits, load_digits
from .responses import noisy_responses
from .synthetic import SignalCoordinateData, signal_coordinate_data

__all__ = [
    "BlockDigits",
    "SignalCoordinateData",
    "block_digits",
    "load_digits",
    "noisy_responses",
    "signal_coordinate_data",
]
