"""Adversarial attacks on SNNs (Lun et al., CVPR 2025): the potential-dependent surrogate
gradient (PDSG) for models whose training surrogate is unknown, FGSM/PGD through surrogate
gradients, and the sparse dynamic attack (SDA) on binary event inputs."""

from .gradient import attack_success, fgsm, pgd, snn_logits
from .pdsg import PDSG, RunningChannelStd
from .sda import SDAResult, cw_margin, sda

__all__ = [
    "PDSG",
    "RunningChannelStd",
    "SDAResult",
    "attack_success",
    "cw_margin",
    "fgsm",
    "pgd",
    "sda",
    "snn_logits",
]
