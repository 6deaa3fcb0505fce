import pytest
import torch
from torch import nn

from neuronkit.interpretability import feature_ablation, occlusion


class _Linear(nn.Module):
    """``f(x) = <w, x>`` per example: ablating a group drops the output by its share."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.w = nn.Parameter(torch.randn(shape, generator=gen, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(1)


@pytest.fixture
def batch():
    return torch.randn(4, 2, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def test_each_entry_alone_gives_weight_times_input_minus_baseline(batch):
    model = _Linear((2, 3))
    w = model.w.detach()
    torch.testing.assert_close(feature_ablation(model, batch), w * batch, rtol=0, atol=1e-12)
    torch.testing.assert_close(
        feature_ablation(model, batch, baselines=0.5), w * (batch - 0.5), rtol=0, atol=1e-12
    )
    image = torch.randn(2, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    torch.testing.assert_close(
        feature_ablation(model, batch, baselines=image), w * (batch - image), rtol=0, atol=1e-12
    )


def test_a_group_is_credited_with_its_whole_drop(batch):
    model = _Linear((2, 3))
    mask = torch.tensor([[0, 0, 1], [2, 2, 1]])  # the same grouping for every example
    share = model.w.detach() * batch
    groups = [share[:, mask == g].sum(1) for g in range(3)]  # [B] per group
    want = torch.stack(groups, 1).gather(1, mask.view(1, -1).expand(4, -1)).view_as(batch)
    for form in (mask, mask[None]):
        got = feature_ablation(model, batch, feature_mask=form)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_per_example_masks_and_unused_indices(batch):
    model = _Linear((2, 3))
    gen = torch.Generator().manual_seed(3)
    mask = torch.randint(2, 6, (4, 2, 3), generator=gen)  # indices 0 and 1 unused
    share = model.w.detach() * batch
    want = torch.empty_like(batch)
    for b in range(4):
        for g in mask[b].unique():
            want[b][mask[b] == g] = share[b][mask[b] == g].sum()
    for batch_size in (1, 5, 1000):
        got = feature_ablation(model, batch, feature_mask=mask, batch_size=batch_size)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_blocks_equal_occlusion_with_non_overlapping_windows():
    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(48, 3))
    x = torch.randn(2, 2, 4, 4)
    blocks = (torch.arange(4)[:, None] // 2 * 2 + torch.arange(4)[None, :] // 2).view(1, 1, 4, 4)
    got = feature_ablation(model, x, 1, feature_mask=blocks * 1)  # one block: both channels
    want = occlusion(model, x, (2, 2, 2), 1, strides=(2, 2, 2))
    torch.testing.assert_close(got, want)


def test_inputs_and_modes_are_left_alone(batch):
    model = _Linear((2, 3)).train()
    before = batch.clone()
    out = feature_ablation(model, batch)
    assert torch.equal(batch, before)
    assert model.training
    assert out.dtype == torch.float64
    assert not out.requires_grad


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"feature_mask": torch.zeros(2, 3)}, TypeError, "feature_mask must hold integer"),
        ({"feature_mask": torch.zeros(2, 3, dtype=torch.bool)}, TypeError, "integer"),
        ({"feature_mask": [[0, 1, 2]]}, TypeError, "feature_mask must be an integer tensor"),
        ({"feature_mask": torch.zeros(3, 2, dtype=torch.long)}, ValueError, "must broadcast"),
        ({"feature_mask": torch.zeros(5, 2, 3, dtype=torch.long)}, ValueError, "must broadcast"),
        ({"feature_mask": -torch.ones(2, 3, dtype=torch.long)}, ValueError, "indices >= 0"),
        ({"baselines": torch.zeros(4, 3)}, ValueError, "baselines must broadcast"),
        ({"baselines": "zero"}, TypeError, "baselines"),
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
    ],
)
def test_bad_arguments(batch, kwargs, error, match):
    with pytest.raises(error, match=match):
        feature_ablation(_Linear((2, 3)), batch, **kwargs)


def test_bad_inputs_and_targets(batch):
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 3).double())
    with pytest.raises(ValueError, match="at least one non-batch dimension"):
        feature_ablation(model, torch.randn(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="target must be in"):
        feature_ablation(model, batch, 3)
    with pytest.raises(ValueError, match="target must be given"):
        feature_ablation(model, batch)
    with pytest.raises(ValueError, match="inputs must be finite"):
        feature_ablation(model, torch.full_like(batch, float("inf")), 0)


def test_progress_bar_over_the_forward_passes(batch, capsys):
    model = _Linear((2, 3))
    feature_ablation(model, batch, batch_size=8, show_progress=True)  # 2 features per forward
    err = capsys.readouterr().err
    assert "feature ablation" in err
    assert "0/3" in err  # 6 features, 2 per forward: 3 passes
    feature_ablation(model, batch, show_progress=False)
    assert capsys.readouterr().err == ""
    with pytest.raises(TypeError, match="show_progress must be bool"):
        feature_ablation(model, batch, show_progress=1)
