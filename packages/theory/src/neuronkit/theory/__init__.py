"""neuronkit.theory: small exact experiments and tools from learning theory.

Implemented (see the package README for the status of the other entries):

* sparse distributed representations and active dendrites (Ahmad & Hawkins): exact false-match
  and union probabilities, Monte Carlo simulators (:mod:`neuronkit.theory.sdr`);
* multitasking Hebbian networks learning diluted patterns in parallel (Agliari et al.)
  (:mod:`neuronkit.theory.hebbian`);
* neural-collapse metrics NC1-NC4, simplex ETFs and the vicinity model (Tirer et al.)
  (:mod:`neuronkit.theory.measures`, :mod:`neuronkit.theory.collapse`);
* grokking with corrupted labels: modular arithmetic data, the quadratic MLP, Fourier IPR,
  IPR pruning (Doshi et al.) (:mod:`neuronkit.theory.data`, :mod:`neuronkit.theory.grokking`);
* rich and lazy learning: effective rank, empirical NTK (torch.func), kernel alignment,
  rank-controlled connectivity (Liu et al.) (:mod:`neuronkit.theory.lazy_rich`) and the
  lazy-to-rich grokking model (Kumar et al.) (:mod:`neuronkit.theory.grokking`);
* local complexity of ReLU networks (Humayun et al.) (:mod:`neuronkit.theory.complexity`);
* deep and infinite-depth NTK recursions and their classifiers (Radhakrishnan et al.)
  (:mod:`neuronkit.theory.ntk`);
* quadratic neurons and ReLinear (Fan et al.) (:mod:`neuronkit.theory.quadratic`);
* KAN layers with several activation spaces and S-KAN (:mod:`neuronkit.theory.kan`);
* bandlimited random-weight networks (:mod:`neuronkit.theory.bandlimited`);
* simplicity bias on LMS data (Shah et al.) (:mod:`neuronkit.theory.simplicity`);
* RNNs with trainable per-neuron timescales and single- / multi-head curricula on N-parity and
  N-DMS (Khajehabdollahi et al.) (:mod:`neuronkit.theory.timescales`);
* inverted-bottleneck MLPs, compute accounting and power-law fits (Bachmann et al.)
  (:mod:`neuronkit.theory.scaling`);
* neural processes and martingale posterior neural processes (Lee et al.)
  (:mod:`neuronkit.theory.processes`);
* MgNO multigrid neural operators, a U-Net baseline and a Darcy finite-difference solver (He et
  al.) (:mod:`neuronkit.theory.operators`, :mod:`neuronkit.theory.data`);
* open dynamical systems, wiring diagrams and SGD training as nested systems (Spivak & Hosgood)
  (:mod:`neuronkit.theory.dynamical`).
"""

from importlib.metadata import version as _version

from neuronkit.common.lazy import lazy_exports

__version__ = _version("neuronkit-theory")
# The public names are listed in __init__.pyi; each submodule is imported on first use.
__getattr__, __dir__, __all__ = lazy_exports(__name__, __file__)
