"""Natural-language descriptions of neurons: MILAN (Hernandez et al., ICLR 2022).

* :mod:`.exemplars`: top-k activating images and activation masks (0.99 quantile).
* :mod:`.captioner`: ``p(d | E)``: an exemplar-set encoder + attention-LSTM decoder trained
  here, the :class:`Captioner` plugin protocol and a Hugging Face adapter.
* :mod:`.prior`: ``p(d)``: an LSTM language model over descriptions, the
  :class:`LanguagePrior` protocol and a Hugging Face causal-LM adapter.
* :mod:`.decode`: description search maximising ``log p(d|E) - lambda log p(d)``.
"""

from .captioner import Captioner, ExemplarCaptioner, ExemplarEncoder, HFCaptioner, beam_search
from .decode import DEFAULT_LAMBDA, Description, describe, describe_units, pmi_scores
from .exemplars import Exemplars, activation_quantiles, compute_exemplars, upsampled_masks
from .prior import DescriptionLM, HFLanguagePrior, LanguagePrior
from .vocabulary import Vocabulary, tokenize

__all__ = [
    "DEFAULT_LAMBDA",
    "Captioner",
    "Description",
    "DescriptionLM",
    "ExemplarCaptioner",
    "ExemplarEncoder",
    "Exemplars",
    "HFCaptioner",
    "HFLanguagePrior",
    "LanguagePrior",
    "Vocabulary",
    "activation_quantiles",
    "beam_search",
    "compute_exemplars",
    "describe",
    "describe_units",
    "pmi_scores",
    "tokenize",
    "upsampled_masks",
]
