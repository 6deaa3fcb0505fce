"""Rich versus lazy learning: connectivity rank and task alignment (Liu et al. 2024)."""

from .connectivity import RichLazyResult, TwoLayerTanhNet, low_rank_weight, train_rich_lazy

__all__ = ["RichLazyResult", "TwoLayerTanhNet", "low_rank_weight", "train_rich_lazy"]
