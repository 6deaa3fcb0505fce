"""neuronkit.theory: small exact experiments and tools from learning theory: rich/lazy, grokking,
NTK, neural collapse, KANs.

Scaffold only: the methods have not arrived yet (see docs/papers.md).
"""

from importlib.metadata import version as _version

__version__ = _version("neuronkit-theory")

__all__ = ["__version__"]
