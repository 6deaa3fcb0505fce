"""Fusion of parallel feature streams for robustness (contextual fusion: object + scene)."""

from .contextual import (
    LateFusionClassifier,
    RobustnessCurves,
    StreamClassifier,
    StreamCNN,
    crop_box,
    gaussian_blur,
    robustness_curves,
    stream_penalty,
    train_head,
)

__all__ = [
    "LateFusionClassifier",
    "RobustnessCurves",
    "StreamCNN",
    "StreamClassifier",
    "crop_box",
    "gaussian_blur",
    "robustness_curves",
    "stream_penalty",
    "train_head",
]
