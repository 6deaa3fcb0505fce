"""Rich versus lazy learning: connectivity rank and task alignment (Liu et al. 2024)."""

from .connectivity import (
    RichLazyResult,
    TwoLayerTanhNet,
    low_rank_weight,
    train_rich_lazy,
    truncated_rank_weight,
)
from .recurrent import (
    RecurrentRichLazyResult,
    ReluRNN,
    perceptual_decision_trials,
    train_recurrent_rich_lazy,
)

__all__ = [
    "RecurrentRichLazyResult",
    "ReluRNN",
    "RichLazyResult",
    "TwoLayerTanhNet",
    "low_rank_weight",
    "perceptual_decision_trials",
    "train_recurrent_rich_lazy",
    "train_rich_lazy",
    "truncated_rank_weight",
]
