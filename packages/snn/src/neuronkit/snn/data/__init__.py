"""Datasets that ship with the package's dependencies or are generated (nothing is downloaded),
and a loader for the SHD/SSC HDF5 files a user has (extra ``hdf5``)."""

from .digits import Digits, load_digits
from .events import EventDigits, event_frames, load_event_digits
from .shd import SHD_UNITS, SpikeFrames, load_shd
from .spike_timing import SpikeTiming, spike_timing_dataset, timing_patterns

__all__ = [
    "SHD_UNITS",
    "Digits",
    "EventDigits",
    "SpikeFrames",
    "SpikeTiming",
    "event_frames",
    "load_digits",
    "load_event_digits",
    "load_shd",
    "spike_timing_dataset",
    "timing_patterns",
]
