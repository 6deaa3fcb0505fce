"""The interpretability.diffroar reproduction masks the synthetic y*e_j data without a leak.

Removed coordinates are set to 0 (the distribution's mean, the value of every uninformative
coordinate, and the paper's masking of the unmasked instance x^S). The training sample's mean is
off 0 by its label imbalance; filling with it marks which coordinates an attribution kept, and
gradient rankings depend on the label, so retrained models learned the label from the mask
pattern (full mode: standard top-1 and robust bottom-1 near 0.75 without ever keeping a signal).
"""

from __future__ import annotations

import torch
from torch import nn

from neuronkit.interpretability import train_classifier
from neuronkit.interpretability.data import SignalCoordinateData
from neuronkit.interpretability.reproductions.diffroar import SYNTHETIC_FILL, _synthetic_diffroar


def _imbalanced(n_pos: int, n_neg: int, dim: int) -> SignalCoordinateData:
    y = torch.cat([torch.ones(n_pos, dtype=torch.long), torch.zeros(n_neg, dtype=torch.long)])
    j = torch.arange(n_pos + n_neg) % dim
    x = torch.zeros(n_pos + n_neg, dim)
    x[torch.arange(len(y)), j] = (2 * y - 1).float()
    return SignalCoordinateData(x=x, y=y, signal=j)


def _label_attribution(data: SignalCoordinateData) -> torch.Tensor:
    """Ranks first a non-signal coordinate chosen by the label (never the signal itself)."""
    dim = data.x.shape[1]
    a = torch.rand(data.x.shape, generator=torch.Generator().manual_seed(0)) * 0.1
    a[torch.arange(len(data)), data.signal] = 0.0
    a[torch.arange(len(data)), (data.signal + 1 + data.y) % dim] = 1.0
    return a


def test_synthetic_diffroar_masks_with_zero_so_the_mask_pattern_carries_no_label() -> None:
    dim = 6
    train, test = _imbalanced(130, 70, dim), _imbalanced(60, 60, dim)
    assert float(train.x.mean()) != 0.0  # the sample mean the old protocol filled with
    seen: list[torch.Tensor] = []

    def trainer(x: torch.Tensor, y: torch.Tensor) -> nn.Module:
        seen.append(x)
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(dim, 32), nn.ReLU(), nn.Linear(32, 2))
        train_classifier(model, x, y, epochs=30, batch_size=50, lr=1e-2, seed=0)
        return model

    res = _synthetic_diffroar(
        train, test, _label_attribution(train), _label_attribution(test), 1, trainer
    )
    assert SYNTHETIC_FILL == 0.0
    # top-1 keeps a label-chosen zero coordinate, never the signal: nothing to learn from
    assert torch.equal(seen[0], torch.zeros_like(train.x))
    assert abs(res.top_accuracy - 0.5) < 1e-9  # balanced test set, constant inputs
