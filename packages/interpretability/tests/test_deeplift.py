import pytest
import torch
from torch import nn

from neuronkit.interpretability import deeplift, deeplift_shap


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class _TwoLayer(nn.Module):
    """``f(x) = W2 act(W1 x)``: the Rescale rule in closed form."""

    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(6, 4, generator=_gen(0), dtype=torch.float64))
        self.w2 = nn.Parameter(torch.randn(3, 6, generator=_gen(1), dtype=torch.float64))
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x @ self.w1.T) @ self.w2.T


@pytest.mark.parametrize("act", [nn.ReLU(), nn.ReLU(inplace=True), nn.Tanh(), nn.Softplus()])
def test_rescale_rule_in_closed_form(act) -> None:
    model = _TwoLayer(act)
    x = torch.randn(5, 4, generator=_gen(2), dtype=torch.float64)
    base = torch.randn(4, generator=_gen(3), dtype=torch.float64)
    target = torch.tensor([0, 1, 2, 0, 1])
    w1, w2 = model.w1.detach(), model.w2.detach()
    z, z0 = x @ w1.T, base @ w1.T
    f = {nn.ReLU: torch.relu, nn.Tanh: torch.tanh, nn.Softplus: nn.functional.softplus}[type(act)]
    multiplier = (f(z) - f(z0)) / (z - z0)  # [B, 6]
    expected = ((multiplier * w2[target]) @ w1) * (x - base)
    ours, delta = deeplift(model, x, target, baselines=base, return_convergence_delta=True)
    torch.testing.assert_close(ours, expected, rtol=1e-12, atol=1e-12)
    assert delta.abs().max() < 1e-12
    # not the gradient times the difference, which misses f(x) - f(x')
    plain = ((torch.autograd.functional.jacobian(f, z[0]).diagonal() * w2[0]) @ w1) * (x[0] - base)
    assert not torch.allclose(ours[0], plain)


def test_a_linear_model_gives_weight_times_difference() -> None:
    model = nn.Linear(5, 3).double()
    x = torch.randn(4, 5, generator=_gen(4), dtype=torch.float64)
    ours = deeplift(model, x, 2, baselines=0.5)
    torch.testing.assert_close(ours, model.weight.detach()[2] * (x - 0.5), rtol=0, atol=1e-15)


class _PoolAfterTanh(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.act, self.pool = nn.Tanh(), nn.MaxPool1d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(x[:, None, :]))[:, 0, :].sum(1)


def test_max_pool_rule_by_hand() -> None:
    """Windows (0, 1) and (2, 3); the input's maxima sit at 0 and 2, the reference's at 1 and 3.
    The output difference of each window, split at the larger maximum, goes to each argmax."""
    x = torch.tensor([[0.5, -1.0, 2.0, 0.3]], dtype=torch.float64)
    base = torch.tensor([[-0.2, 0.7, 0.1, 1.0]], dtype=torch.float64)
    t, t0 = torch.tanh(x[0]), torch.tanh(base[0])
    # window 1: the reference's max is larger, so its argmax (1) takes max(x) - max(x');
    # window 2: the input's max is larger, so its argmax (2) takes it
    expected = torch.tensor([[0.0, t[0] - t0[1], t[2] - t0[3], 0.0]], dtype=torch.float64)
    ours, delta = deeplift(_PoolAfterTanh(), x, baselines=base, return_convergence_delta=True)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-15)
    assert abs(float(delta)) < 1e-15


class _Cnn(nn.Module):
    """ReLUs before max pools (overlapping ones too), in place, and one ReLU module used twice."""

    def __init__(self) -> None:
        super().__init__()
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(5)
        self.c1 = nn.Conv2d(2, 6, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.p1 = nn.MaxPool2d(3, 1)
        self.c2 = nn.Conv2d(6, 6, 3, padding=1)
        self.p2 = nn.MaxPool2d(2)
        self.fc = nn.Linear(6 * 3 * 3, 4)
        torch.random.set_rng_state(gen_state)
        self.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.p1(self.relu(self.c1(x)))
        x = self.p2(self.relu(self.c2(x)))
        return self.fc(x.flatten(1))


@pytest.mark.parametrize("kind", ["zero", "shared", "per_example"])
def test_attributions_sum_to_the_output_difference(kind) -> None:
    model = _Cnn()
    x = torch.randn(3, 2, 8, 8, generator=_gen(6), dtype=torch.float64)
    base = {
        "zero": None,
        "shared": torch.randn(2, 8, 8, generator=_gen(7), dtype=torch.float64),
        "per_example": torch.randn(3, 2, 8, 8, generator=_gen(7), dtype=torch.float64),
    }[kind]
    target = torch.tensor([3, 0, 1])
    ours, delta = deeplift(model, x, target, baselines=base, return_convergence_delta=True)
    ref = torch.zeros_like(x) if base is None else base.expand_as(x)
    with torch.no_grad():
        difference = (model(x) - model(ref)).gather(1, target[:, None])[:, 0]
    torch.testing.assert_close(ours.sum((1, 2, 3)), difference, rtol=0, atol=1e-12)
    torch.testing.assert_close(delta, ours.sum((1, 2, 3)) - difference, rtol=0, atol=1e-15)
    assert ours.abs().max() > 1e-3


def test_a_shared_baseline_equals_its_copy_per_example() -> None:
    """The reference runs on one example when the baseline is shared; nothing changes."""
    model = _Cnn()
    x = torch.randn(4, 2, 8, 8, generator=_gen(8), dtype=torch.float64)
    base = torch.randn(1, 2, 8, 8, generator=_gen(9), dtype=torch.float64)
    torch.testing.assert_close(
        deeplift(model, x, 1, baselines=base),
        deeplift(model, x, 1, baselines=base.expand(4, -1, -1, -1).clone()),
        rtol=0,
        atol=1e-15,
    )


def test_unchanged_inputs_get_nothing_and_the_fallback_keeps_completeness() -> None:
    """Where ``x = x'`` a nonlinearity's input difference is 0 and it passes its derivative."""
    model = _Cnn()
    base = torch.randn(1, 2, 8, 8, generator=_gen(10), dtype=torch.float64)
    x = base.clone()
    x[0, 1, 4, 4] += 0.7  # one pixel changed: most units see no difference
    ours, delta = deeplift(model, x, 2, baselines=base, return_convergence_delta=True)
    assert (ours.flatten()[ours.flatten() != 0].numel()) == 1
    assert ours[0, 1, 4, 4] != 0
    assert abs(float(delta)) < 1e-12
    torch.testing.assert_close(deeplift(model, base, 2, baselines=base), torch.zeros_like(base))


def test_unchanged_inputs_in_float16_where_eps_rounds_to_0() -> None:
    """The default ``eps`` (1e-10) is 0 in float16: an input difference of exactly 0 still
    passes the derivative (max pools included), not 0 / 0 (a spurious non-finite error)."""
    model = _Cnn()
    base = torch.randn(1, 2, 8, 8, generator=_gen(10), dtype=torch.float64)
    x = base.clone()
    x[0, 1, 4, 4] += 0.75
    expected = deeplift(model, x, 2, baselines=base)
    ours = deeplift(model.half(), x.half(), 2, baselines=base.half())
    torch.testing.assert_close(ours.double(), expected, rtol=0.02, atol=1e-3)
    unchanged = deeplift(model, base.half(), 2, baselines=base.half())
    assert torch.equal(unchanged, torch.zeros(base.shape, dtype=torch.float16))


def test_below_eps_every_rule_passes_the_gradient() -> None:
    """With every input difference below ``eps`` no rule applies: gradient x difference."""
    from neuronkit.interpretability import saliency

    model = _Cnn()
    x = torch.randn(2, 2, 8, 8, generator=_gen(14), dtype=torch.float64)
    base = torch.randn(2, 8, 8, generator=_gen(15), dtype=torch.float64)
    expected = saliency(model, x, 1, abs=False) * (x - base)
    torch.testing.assert_close(deeplift(model, x, 1, baselines=base, eps=1e9), expected)
    assert not torch.allclose(deeplift(model, x, 1, baselines=base), expected)


def test_deeplift_shap_averages_deeplift_over_the_baselines() -> None:
    model = _Cnn()
    x = torch.randn(2, 2, 8, 8, generator=_gen(11), dtype=torch.float64)
    refs = torch.randn(3, 2, 8, 8, generator=_gen(12), dtype=torch.float64)
    target = torch.tensor([1, 3])
    ours, delta = deeplift_shap(model, x, refs, target, return_convergence_delta=True)
    each = [deeplift(model, x, target, baselines=r) for r in refs]
    torch.testing.assert_close(ours, torch.stack(each).mean(0), rtol=1e-12, atol=1e-14)
    assert delta.shape == (6,)
    assert delta.abs().max() < 1e-12


def test_model_inputs_and_hooks_are_left_as_they_were() -> None:
    model = _Cnn().train()
    x = torch.randn(2, 2, 8, 8, generator=_gen(13), dtype=torch.float64)
    before = x.clone()
    deeplift(model, x, 0)
    assert model.training
    assert torch.equal(x, before)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    with pytest.raises(ValueError, match="target must be in"):
        deeplift(model, x, 9)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


class _DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.act = nn.Tanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(x)
        if bool((x > 0).all()):
            y = self.act(y)
        return y.sum(1)


def test_a_different_path_on_the_inputs_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="Tanh module ran more often on the inputs"):
        deeplift(_DataDependent(), torch.ones(1, 3))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"eps": 0.0}, ValueError, "eps"),
        ({"baselines": torch.zeros(3)}, ValueError, r"baselines must be a scalar or have shape"),
        ({"baselines": torch.zeros(4, dtype=torch.long)}, TypeError, "baselines must be a float"),
        ({"baselines": "zero"}, TypeError, "baselines"),
        ({"return_convergence_delta": 1}, TypeError, "return_convergence_delta"),
    ],
)
def test_bad_arguments(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        deeplift(nn.Linear(4, 2), torch.zeros(2, 4), 0, **kwargs)


def test_bad_models_and_baseline_samples() -> None:
    x = torch.zeros(2, 4)
    with pytest.raises(TypeError, match="model must be"):
        deeplift(lambda v: v, x)
    with pytest.raises(TypeError, match="inputs must be a floating-point"):
        deeplift(nn.Linear(4, 2), torch.zeros(2, 4, dtype=torch.long), 0)
    with pytest.raises(ValueError, match=r"baselines must be \[K, 4\] with K >= 1"):
        deeplift_shap(nn.Linear(4, 2), x, torch.zeros(4), 0)
    with pytest.raises(ValueError, match=r"baselines must be \[K, 4\] with K >= 1"):
        deeplift_shap(nn.Linear(4, 2), x, torch.zeros(0, 4), 0)


@pytest.mark.parametrize(
    "act",
    [
        nn.GELU(),
        nn.SiLU(),
        nn.Mish(),
        nn.SELU(),
        nn.CELU(0.7),
        nn.Hardtanh(-0.5, 0.5, inplace=True),
        nn.ReLU6(),
        nn.Hardswish(),
        nn.Hardsigmoid(),
        nn.LogSigmoid(),
        nn.Softsign(),
        nn.Tanhshrink(),
        nn.Softshrink(0.3),
        nn.Hardshrink(0.3),
        nn.PReLU(6, 0.1),
    ],
    ids=lambda m: type(m).__name__,
)
def test_every_elementwise_activation_follows_the_rescale_rule(act) -> None:
    """Beyond Captum's six: summation-to-delta holds, which the plain gradient through these
    activations (Captum's treatment) would break."""
    model = _TwoLayer(act.double())
    x = torch.randn(5, 4, generator=_gen(20), dtype=torch.float64) * 2
    base = torch.randn(4, generator=_gen(21), dtype=torch.float64)
    _, delta = deeplift(model, x, [0, 1, 2, 0, 1], baselines=base, return_convergence_delta=True)
    assert delta.abs().max() < 1e-12


def _pooled_cnn() -> nn.Module:
    torch.manual_seed(5)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(6 * 4 * 4, 3),
    ).double()


@pytest.mark.parametrize("layer_input", [False, True])
@pytest.mark.parametrize("layer", ["0", "1", "2", "4", "6"])
def test_layer_deeplift_sums_to_the_output_difference(layer, layer_input) -> None:
    """At any layer, also at a rule module's input (its rule still applies there) and output."""
    from neuronkit.interpretability import layer_deeplift

    model = _pooled_cnn()
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    base = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    target = torch.tensor([0, 1, 2])
    got = layer_deeplift(model, x, layer, target, baselines=base, layer_input=layer_input)
    with torch.no_grad():
        difference = (model(x) - model(base))[torch.arange(3), target]
    torch.testing.assert_close(got.flatten(1).sum(1), difference, rtol=1e-9, atol=1e-12)


def test_layer_deeplift_at_the_first_layers_input_is_deeplift() -> None:
    from neuronkit.interpretability import layer_deeplift

    model = _pooled_cnn()
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    at_input = layer_deeplift(model, x, "0", 1, baselines=0.2, layer_input=True)
    torch.testing.assert_close(at_input, deeplift(model, x, 1, baselines=0.2))
    with pytest.raises(ValueError, match="layer"):
        layer_deeplift(model, x, "9", 1)


def test_layer_deeplift_shap_averages_layer_deeplift_over_the_baselines() -> None:
    from neuronkit.interpretability import layer_deeplift, layer_deeplift_shap

    model = _pooled_cnn()
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    refs = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    got = layer_deeplift_shap(model, x, "3", refs, 2)
    each = [layer_deeplift(model, x, "3", 2, baselines=refs[j]) for j in range(4)]
    torch.testing.assert_close(got, torch.stack(each).mean(0))
