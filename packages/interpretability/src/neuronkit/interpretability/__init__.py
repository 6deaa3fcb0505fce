"""neuronkit.interpretability: interpretability: feature visualization, attribution, RSA, codebook
features, information plane.

Scaffold only: the methods have not arrived yet (see docs/papers.md).
"""

from importlib.metadata import version as _version

__version__ = _version("neuronkit-interpretability")

__all__ = ["__version__"]
