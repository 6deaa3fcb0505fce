"""Lesioning a layer's units: closed forms on a linear readout, channel groups, residual
connections (the layers before run again), permutation, bad input (Captum agreement:
test_attribution_captum.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neuronkit.interpretability import layer_feature_ablation, layer_feature_permutation


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _net() -> nn.Module:
    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    torch.random.set_rng_state(state)
    return model


X = torch.randn(4, 6, generator=_gen(1), dtype=torch.float64)
T = torch.tensor([0, 1, 2, 0])


def test_units_read_linearly_lose_weight_times_their_change() -> None:
    model = _net()
    with torch.no_grad():
        acts = model[:2](X)
    w = model[2].weight.detach()[T]
    torch.testing.assert_close(layer_feature_ablation(model, X, "1", T), w * acts)
    base = torch.randn(8, generator=_gen(2), dtype=torch.float64)
    got = layer_feature_ablation(model, X, "1", T, layer_baselines=base, batch_size=5)
    torch.testing.assert_close(got, w * (acts - base))
    # the layer's input: the Tanh's input units, through the nonlinearity
    pre = layer_feature_ablation(model, X, "1", T, layer_input=True)
    with torch.no_grad():
        z = model[0](X)
        full = model(X)[torch.arange(4), T]
        for j in range(8):
            lesioned = z.clone()
            lesioned[:, j] = 0
            want = full - model[2](torch.tanh(lesioned))[torch.arange(4), T]
            torch.testing.assert_close(pre[:, j], want)


def test_a_group_is_lesioned_together() -> None:
    model = _net()
    mask = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    got = layer_feature_ablation(model, X, "1", T, layer_mask=mask)
    singles = layer_feature_ablation(model, X, "1", T)
    torch.testing.assert_close(got[:, 0], singles[:, :4].sum(1))  # a linear readout adds up
    assert torch.equal(got[:, 0], got[:, 3])


class _Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner, self.out = nn.Linear(5, 5).double(), nn.Linear(5, 2).double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(x + self.inner(x))


def test_a_residual_connection_keeps_the_inputs_path() -> None:
    torch.manual_seed(1)
    model, x = _Residual(), torch.randn(3, 5, generator=_gen(3), dtype=torch.float64)
    got = layer_feature_ablation(model, x, "inner", 1)
    with torch.no_grad():
        acts = model.inner(x)
    torch.testing.assert_close(got, model.out.weight.detach()[1] * acts)


def test_permuted_units_take_another_examples_values() -> None:
    """Two examples: the only permutation swaps them."""
    model = _net()
    x = X[:2]
    with torch.no_grad():
        acts = model[:2](x)
    got = layer_feature_permutation(model, x, "1", [0, 2], seed=0)
    w = model[2].weight.detach()[[0, 2]]
    torch.testing.assert_close(got, w * (acts - acts.flip(0)))


def test_bad_input_is_named() -> None:
    model = _net()
    with pytest.raises(ValueError, match="layer"):
        layer_feature_ablation(model, X, "7", T)
    with pytest.raises(ValueError, match="at least 2 examples"):
        layer_feature_permutation(model, X[:1], "1", 0)

    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(6, 6).double()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lin(self.lin(x))

    with pytest.raises(ValueError, match="more than once"):
        layer_feature_ablation(Twice(), X, "lin", 0)


def test_errors_name_the_layer_arguments() -> None:
    """The input method runs on the layer's value: its errors name the layer method's
    arguments, and non-finite activations are the inputs' (their own shape) or the layer's."""
    model = _net()
    for method in (layer_feature_ablation, layer_feature_permutation):
        with pytest.raises(ValueError, match=r"layer_mask must broadcast to the layer's value"):
            method(model, X, "1", T, layer_mask=torch.zeros(3, dtype=torch.long))
        with pytest.raises(TypeError, match="layer_mask must hold integer feature indices"):
            method(model, X, "1", T, layer_mask=torch.zeros(8))
        nan = X.clone()
        nan[0, 0] = float("nan")
        with pytest.raises(ValueError, match=r"inputs must be finite.*shape \(4, 6\)"):
            method(model, nan, "1", T)
        broken = _net()
        with torch.no_grad():
            broken[0].bias[0] = float("nan")
        with pytest.raises(ValueError, match="the layer's value holds NaN or infinity"):
            method(broken, X, "1", T)
    with pytest.raises(ValueError, match="layer_baselines must be finite"):
        layer_feature_ablation(model, X, "1", T, layer_baselines=float("nan"))
    with pytest.raises(ValueError, match="layer_baselines must broadcast"):
        layer_feature_ablation(model, X, "1", T, layer_baselines=torch.zeros(3, dtype=X.dtype))


class _Shift(nn.Module):
    def __init__(self, inplace: bool) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.add_(1.0) if self.inplace else x + 1.0


def test_an_in_place_layer_after_the_lesion_changes_nothing() -> None:
    def net(inplace: bool) -> nn.Module:
        torch.manual_seed(2)
        layers = [nn.Linear(6, 8), _Shift(inplace), nn.Tanh(), nn.Linear(8, 3)]
        return nn.Sequential(*layers).double()

    plain = layer_feature_ablation(net(False), X, "0", T)
    torch.testing.assert_close(layer_feature_ablation(net(True), X, "0", T), plain)


class _CountingTanh(nn.Tanh):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows.append(x.shape[0])
        return super().forward(x)


def test_the_lesioned_layer_skips_its_work_and_keeps_its_forward() -> None:
    model = _net()
    model[1] = _CountingTanh()
    layer_feature_ablation(model, X, "1", T, batch_size=8)
    assert model[1].rows == [4]  # the recording pass: the lesioned passes return activations
    assert "forward" not in vars(model[1])
    own = model[1].forward  # a bound method kept as an instance attribute
    model[1].forward = own
    layer_feature_ablation(model, X, "1", T)
    assert vars(model[1])["forward"] is own


class _TimeMajor(nn.Module):
    """A layer whose value is time-major ``[3, B, 4]`` (as spiking layers), read linearly."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.lin, self.steps, self.read = nn.Linear(6, 4), nn.Identity(), nn.Linear(4, 2)
        self.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lin(x)
        return self.read(self.steps(torch.stack((h, 2 * h, 3 * h))).sum(0))


def test_a_time_major_layer_is_lesioned_unit_by_unit_at_every_step() -> None:
    model = _TimeMajor()
    got = layer_feature_ablation(model, X, "steps", 1, batch_dim=1, layer_mask=torch.arange(4))
    assert got.shape == (3, 4, 4)  # the layer's own layout [T, B, U]
    with torch.no_grad():
        h = model.lin(X)
    want = 6 * model.read.weight.detach()[1] * h  # the unit's sum over the steps, read by w
    for step in range(3):
        torch.testing.assert_close(got[step], want)
    single = layer_feature_ablation(model, X, "steps", 1, batch_dim=1)  # each (step, unit)
    torch.testing.assert_close(single.sum(0), want)
    with pytest.raises(ValueError, match="on axis 0"):
        layer_feature_ablation(model, X, "steps", 1)
