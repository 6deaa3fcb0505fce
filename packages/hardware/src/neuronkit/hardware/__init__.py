"""neuronkit.hardware: neuromorphic hardware models: superconducting SFQ networks, resistive-memory
liquid state machines.

Scaffold only: the methods have not arrived yet (see docs/papers.md).
"""

from importlib.metadata import version as _version

__version__ = _version("neuronkit-hardware")

__all__ = ["__version__"]
