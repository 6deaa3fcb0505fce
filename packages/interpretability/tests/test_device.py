"""Attribution, activation recording, attacks, feature visualization and codebooks on every
available device: results stay on the model's device and equal the CPU's where the method is
deterministic."""

import pytest
import torch
from torch import nn

from neuronkit.common.testing import devices
from neuronkit.interpretability import (
    insert_codebooks,
    integrated_gradients,
    layer_activations,
    maximize_activation,
    pgd_attack,
    saliency,
    smoothgrad,
)
from neuronkit.interpretability.visualization import (
    CenterBias,
    TotalVariation,
    class_logit,
    standard_transforms,
)


@pytest.fixture(autouse=True)
def _full_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    """CPU and CUDA results are compared: no TF32 in CUDA convolutions."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)
    ).eval()


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.rand(5, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    return x, torch.arange(5) % 3


@pytest.mark.parametrize("device", devices())
def test_attributions_on_device_equal_the_cpu(device: str) -> None:
    model, (x, y) = _cnn(), _batch()
    on_device = _cnn().to(device)
    xd, yd = x.to(device), y.to(device)
    for method in (saliency, integrated_gradients):
        ref, out = method(model, x, y), method(on_device, xd, yd)
        assert out.device.type == device
        assert out.shape == x.shape
        torch.testing.assert_close(out.cpu(), ref, rtol=1e-4, atol=1e-5)
    first = smoothgrad(on_device, xd, yd, n_samples=4, stdev=0.1, seed=3)
    again = smoothgrad(on_device, xd, yd, n_samples=4, stdev=0.1, seed=3)
    assert first.device.type == device
    assert torch.equal(first, again)


@pytest.mark.parametrize("device", devices())
def test_layer_activations_and_attack_on_device(device: str) -> None:
    model, (x, y) = _cnn(), _batch()
    on_device = _cnn().to(device)
    ref = layer_activations(model, x, ["1", "3"])
    acts = layer_activations(on_device, x.to(device), ["1", "3"], batch_size=2)
    for name in ("1", "3"):
        torch.testing.assert_close(acts[name].cpu(), ref[name], rtol=1e-5, atol=1e-6)
    adv = pgd_attack(on_device, x.to(device), y.to(device), eps=0.05, n_steps=3, clamp=(0, 1))
    assert adv.device.type == device
    assert float((adv - x.to(device)).abs().max()) <= 0.05 + 1e-6


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("param", ["pixel", "fourier"])
def test_feature_visualization_on_device(device: str, param: str) -> None:
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 10 * 10, 2))
    res = maximize_activation(
        model.to(device),
        class_logit(0),
        param=param,
        shape=(2, 3, 12, 12),
        transforms=standard_transforms(),
        regularizers=[TotalVariation(0.01), CenterBias(phases=2)],
        steps=20,
        lr=0.1,
        seed=0,
    )
    assert res.image.device.type == device
    assert res.image.shape == (2, 3, 12, 12)
    assert bool((res.activation > res.initial_activation).all())


class _Net(nn.Module):
    def __init__(self, d: int = 8) -> None:
        super().__init__()
        self.emb = nn.Embedding(5, d)
        self.mlp = nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Linear(16, d))
        self.head = nn.Linear(d, 5)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.emb(ids)
        return self.head(h + self.mlp(h))


@pytest.mark.parametrize("device", devices())
def test_codebooks_train_and_force_on_device(device: str) -> None:
    torch.manual_seed(0)
    cbm = insert_codebooks(_Net().to(device), ["mlp"], num_codes=8, groups=2).to(device)
    ids = torch.randint(0, 5, (3, 6), generator=torch.Generator().manual_seed(0)).to(device)
    cbm.initialize_codebooks(ids)
    logits = cbm(ids)
    loss = nn.functional.cross_entropy(logits.reshape(-1, 5), ids.reshape(-1))
    (loss + cbm.codebook_loss()).backward()
    layer = cbm.codebooks["mlp"]
    assert logits.device.type == device
    assert layer.codebook.grad is not None
    assert layer.counts.device.type == device
    assert int(layer.counts.sum()) > 0
    with torch.no_grad(), cbm.force_codes({"mlp": [[3], [5]]}, positions=[2]):
        forced = cbm(ids)
    assert forced.device.type == device
    assert layer.last_codes is not None
    assert torch.equal(layer.last_codes[:, 2].cpu(), torch.tensor([[[3], [5]]] * 3))
