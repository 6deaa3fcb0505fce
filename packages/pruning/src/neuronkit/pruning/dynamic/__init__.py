"""Dynamic (input-dependent) pruning.

- :mod:`.ftwt`: Fire Together Wire Together (Elkerdawy et al., CVPR 2022): per-layer mask
  predictors trained on heatmap-mass targets, decoupled from the task loss, with a FLOPs
  estimate before training and measured per-sample FLOPs.
"""

from .ftwt import (
    CRITERIA,
    GATINGS,
    DynamicCNN,
    FlopsEstimate,
    FTWTConfig,
    FTWTOutput,
    GatedConv,
    MaskPredictor,
    binarize_ste,
    estimate_flops,
    heatmap_mass,
    l1_filter_masks,
    mask_loss,
    mass_targets,
    select_ratio,
    static_keep_counts,
    train_ftwt,
)

__all__ = [
    "CRITERIA",
    "GATINGS",
    "DynamicCNN",
    "FTWTConfig",
    "FTWTOutput",
    "FlopsEstimate",
    "GatedConv",
    "MaskPredictor",
    "binarize_ste",
    "estimate_flops",
    "heatmap_mass",
    "l1_filter_masks",
    "mask_loss",
    "mass_targets",
    "select_ratio",
    "static_keep_counts",
    "train_ftwt",
]
