"""Neural processes and the Martingale Posterior Neural Process (Lee et al., ICLR 2023).

:mod:`.neural_process`: the conditional NP, the latent-variable NP, their encoder/decoder and
the mixture predictive (log-likelihood, CDF, quantiles, interval coverage); :mod:`.mpnp`: the
martingale posterior NP with its ISAB pseudo-context generator and loss.
"""

from .mpnp import (
    MartingalePosteriorNP,
    MultiheadAttentionBlock,
    PseudoContextGenerator,
    mpnp_losses,
)
from .neural_process import (
    ConditionalNeuralProcess,
    GaussianDecoder,
    NeuralProcess,
    ProcessPrediction,
    SetEncoder,
    TrainingLog,
    gaussian_log_prob,
    mixture_cdf,
    mixture_log_likelihood,
    mixture_quantile,
    predictive_coverage,
    train_process,
)

__all__ = [
    "ConditionalNeuralProcess",
    "GaussianDecoder",
    "MartingalePosteriorNP",
    "MultiheadAttentionBlock",
    "NeuralProcess",
    "ProcessPrediction",
    "PseudoContextGenerator",
    "SetEncoder",
    "TrainingLog",
    "gaussian_log_prob",
    "mixture_cdf",
    "mixture_log_likelihood",
    "mixture_quantile",
    "mpnp_losses",
    "predictive_coverage",
    "train_process",
]
