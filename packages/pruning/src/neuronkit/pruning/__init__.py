"""neuronkit.pruning: structured pruning of any architecture, lottery tickets, supermasks, dynamic
and LLM pruning.

Scaffold only: the methods have not arrived yet (see docs/papers.md).
"""

from importlib.metadata import version as _version

__version__ = _version("neuronkit-pruning")

__all__ = ["__version__"]
