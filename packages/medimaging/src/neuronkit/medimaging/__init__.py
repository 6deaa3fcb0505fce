"""neuronkit.medimaging: medical image analysis: instance metrics, physics-informed planning, MRI
reconstruction and super-resolution.

Scaffold only: the methods have not arrived yet (see docs/papers.md).
"""

from importlib.metadata import version as _version

__version__ = _version("neuronkit-medimaging")

__all__ = ["__version__"]
