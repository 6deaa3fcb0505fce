"""neuronkit.neurodecoding: decoding and modelling brain data: sEEG/EEG/fMRI decoders, GLMs, GP-
VAEs, connectomes.

Scaffold only: the methods have not arrived yet (see docs/papers.md).
"""

from importlib.metadata import version as _version

__version__ = _version("neuronkit-neurodecoding")

__all__ = ["__version__"]
