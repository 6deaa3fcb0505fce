"""Feature visualization: an activation-maximization engine and multifaceted feature
visualization (Nguyen, Yosinski & Clune 2016).

* :mod:`.params`: pixel and Fourier (``1/f``-scaled, color-decorrelated) image
  parameterizations, startable from a given image.
* :mod:`.transforms`: seeded jitter / scale / rotate robustness transforms.
* :mod:`.regularizers`: total variation, L2 decay, blur and the paper's center bias.
* :mod:`.maximize`: objectives (unit, channel, class logit; combinable) and
  :func:`maximize_activation`, whose layer hooks are always removed.
* :mod:`.facets`: facet discovery (features of top-activating inputs, PCA + t-SNE + k-means)
  and facet-initialized visualization.
"""

from .facets import FacetClustering, Facets, discover_facets, top_activating, visualize_facets
from .maximize import (
    ActivationMaximization,
    Objective,
    channel,
    class_logit,
    maximize_activation,
    objective_values,
    unit,
)
from .params import (
    IMAGENET_COLOR_CORRELATION,
    FourierImage,
    ImageParam,
    PixelImage,
    color_correlation_sqrt,
    image_param,
    spectrum_scale,
)
from .regularizers import (
    L2,
    Blur,
    CenterBias,
    Regularizer,
    TotalVariation,
    blur_penalty,
    center_mask,
    gaussian_blur,
    gaussian_kernel1d,
    l2_penalty,
    total_variation,
)
from .transforms import Compose, Jitter, RandomRotate, RandomScale, Transform, standard_transforms

__all__ = [
    "IMAGENET_COLOR_CORRELATION",
    "L2",
    "ActivationMaximization",
    "Blur",
    "CenterBias",
    "Compose",
    "FacetClustering",
    "Facets",
    "FourierImage",
    "ImageParam",
    "Jitter",
    "Objective",
    "PixelImage",
    "RandomRotate",
    "RandomScale",
    "Regularizer",
    "TotalVariation",
    "Transform",
    "blur_penalty",
    "center_mask",
    "channel",
    "class_logit",
    "color_correlation_sqrt",
    "discover_facets",
    "gaussian_blur",
    "gaussian_kernel1d",
    "image_param",
    "l2_penalty",
    "maximize_activation",
    "objective_values",
    "spectrum_scale",
    "standard_transforms",
    "top_activating",
    "total_variation",
    "unit",
    "visualize_facets",
]
