"""neuronkit.snn: spiking neural networks: neuron models, surrogate gradients, fast multi-step
engine, efficient training, NIR interop.

Scaffold only: the methods have not arrived yet (see docs/papers.md).
"""

from importlib.metadata import version as _version

__version__ = _version("neuronkit-snn")

__all__ = ["__version__"]
