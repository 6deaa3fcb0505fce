"""Attribution methods: closed forms, invariants (hypothesis), batching, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from neuronkit.interpretability import (
    input_x_gradient,
    integrated_gradients,
    integration_nodes,
    loss_gradient,
    random_attribution,
    saliency,
    smoothgrad,
)


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))


def _linear() -> nn.Linear:
    torch.manual_seed(1)
    return nn.Linear(4, 3)


def test_saliency_of_a_linear_model_is_the_weight_row() -> None:
    lin = _linear()
    x = torch.randn(6, 4)
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    grads = saliency(lin, x, target, abs=False)
    torch.testing.assert_close(grads, lin.weight[target].detach())
    torch.testing.assert_close(saliency(lin, x, target), lin.weight[target].detach().abs())


def test_input_x_gradient_of_a_linear_model() -> None:
    lin = _linear()
    x = torch.randn(3, 4)
    torch.testing.assert_close(input_x_gradient(lin, x, 2), x * lin.weight[2].detach())


def test_integrated_gradients_of_a_linear_model_is_exact() -> None:
    lin = _linear()
    x = torch.randn(3, 4)
    base = torch.randn(4)
    ig = integrated_gradients(lin, x, 1, baselines=base, n_steps=7)
    torch.testing.assert_close(ig, (x - base) * lin.weight[1].detach())


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_middle", "riemann_left"])
def test_integration_nodes_integrate_polynomials(method) -> None:
    alphas, weights = integration_nodes(method, 40)
    assert alphas.min() >= 0
    assert alphas.max() <= 1
    assert np.isclose(weights.sum(), 1.0)
    assert np.isclose(np.dot(weights, alphas**2), 1 / 3, atol=2e-2)


def test_trapezoid_weights_follow_captum() -> None:
    """Captum's trapezoid uses n points on [0, 1] but weights 1/n (ends 1/(2n)): they sum to
    1 - 1/n. We keep that convention to stay numerically equal to Captum."""
    alphas, weights = integration_nodes("riemann_trapezoid", 10)
    np.testing.assert_allclose(alphas, np.linspace(0, 1, 10), atol=1e-7)
    assert np.isclose(weights.sum(), 0.9)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), target=st.integers(0, 2), scale=st.floats(0.1, 2.0))
def test_integrated_gradients_completeness(seed, target, scale) -> None:
    """sum_i IG_i(x) = f(x) - f(baseline) up to the quadrature error."""
    model = _mlp(seed % 7)
    gen = torch.Generator().manual_seed(seed)
    x = scale * torch.randn(4, 5, generator=gen, dtype=torch.float64)
    base = 0.1 * torch.randn(4, 5, generator=gen, dtype=torch.float64)
    model = model.double()
    attr, delta = integrated_gradients(
        model, x, target, baselines=base, n_steps=64, return_convergence_delta=True
    )
    with torch.no_grad():
        diff = model(x)[:, target] - model(base)[:, target]
    torch.testing.assert_close(attr.sum(1), diff, atol=1e-6, rtol=1e-6)
    assert delta.abs().max() < 1e-6


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_batched_attributions_equal_per_example(seed) -> None:
    model = _mlp(3)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(5, 5, generator=gen)
    target = torch.randint(0, 3, (5,), generator=gen)
    batched = integrated_gradients(model, x, target, n_steps=16)
    single = torch.cat(
        [integrated_gradients(model, x[i : i + 1], int(target[i]), n_steps=16) for i in range(5)]
    )
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        saliency(model, x, target),
        torch.cat([saliency(model, x[i : i + 1], int(target[i])) for i in range(5)]),
    )


@pytest.mark.parametrize("internal_batch_size", [1, 5, 12, 1000])
def test_internal_batching_does_not_change_the_result(internal_batch_size) -> None:
    model = _mlp()
    x = torch.randn(5, 5)
    full = integrated_gradients(model, x, 0, n_steps=10)
    chunked = integrated_gradients(model, x, 0, n_steps=10, internal_batch_size=internal_batch_size)
    torch.testing.assert_close(full, chunked, atol=1e-6, rtol=1e-5)


def test_baseline_shapes_and_scalars() -> None:
    model = _mlp()
    x = torch.randn(3, 5)
    a = integrated_gradients(model, x, 1, baselines=0.5, n_steps=8)
    b = integrated_gradients(model, x, 1, baselines=torch.full((5,), 0.5), n_steps=8)
    c = integrated_gradients(model, x, 1, baselines=torch.full((3, 5), 0.5), n_steps=8)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)


def test_scalar_output_models_need_no_target() -> None:
    model = nn.Sequential(nn.Linear(5, 1))
    x = torch.randn(4, 5)
    torch.testing.assert_close(
        saliency(model, x, abs=False), model[0].weight.detach().expand(4, -1)
    )
    flat = nn.Sequential(model[0], nn.Flatten(0))
    torch.testing.assert_close(saliency(flat, x), saliency(model, x))


def test_smoothgrad_is_seeded_and_zero_noise_is_the_method() -> None:
    model = _mlp()
    x = torch.randn(3, 5)
    a = smoothgrad(model, x, 1, n_samples=4, stdev=0.5, seed=3)
    b = smoothgrad(model, x, 1, n_samples=4, stdev=0.5, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, smoothgrad(model, x, 1, n_samples=4, stdev=0.5, seed=4))
    torch.testing.assert_close(smoothgrad(model, x, 1, stdev=0.0, seed=0), saliency(model, x, 1))
    sq = smoothgrad(model, x, 1, stdev=0.0, kind="smoothgrad_sq", seed=0, abs=False)
    torch.testing.assert_close(sq, saliency(model, x, 1, abs=False) ** 2)
    var = smoothgrad(model, x, 1, stdev=0.0, kind="vargrad", seed=0)
    torch.testing.assert_close(var, torch.zeros_like(var), atol=1e-6, rtol=0)


def test_vargrad_of_low_precision_attributions_is_summed_in_float32() -> None:
    """Attributions 64 +- 1 in bfloat16 (both exact): the variance is 1. Summed in bfloat16,
    E[g^2] - E[g]^2 (about 4097 - 4096) cancels to rounding noise."""

    def alternating(model: nn.Module, x: torch.Tensor, target: object) -> torch.Tensor:
        sign = 1.0 - 2.0 * (torch.arange(x.shape[0]) % 2)  # copies alternate within each example
        return (64.0 + sign.reshape(-1, *[1] * (x.dim() - 1))).expand_as(x).to(torch.bfloat16)

    x = torch.zeros(3, 5)
    var = smoothgrad(
        _mlp(), x, 0, method=alternating, n_samples=8, stdev=0.1, kind="vargrad", seed=0
    )
    assert var.dtype == torch.bfloat16
    torch.testing.assert_close(var.float(), torch.ones(3, 5), atol=0, rtol=0)


def test_smoothgrad_with_a_callable_method() -> None:
    model = _mlp()
    x = torch.randn(2, 5)
    via_name = smoothgrad(model, x, 0, method="input_x_gradient", n_samples=3, stdev=0.1, seed=1)
    via_fn = smoothgrad(model, x, 0, method=input_x_gradient, n_samples=3, stdev=0.1, seed=1)
    torch.testing.assert_close(via_name, via_fn)


def test_loss_gradient_matches_autograd() -> None:
    model = _mlp()
    x = torch.randn(4, 5)
    y = torch.tensor([0, 2, 1, 1])
    xr = x.clone().requires_grad_(True)
    nn.functional.cross_entropy(model(xr), y, reduction="sum").backward()
    torch.testing.assert_close(loss_gradient(model, x, y), xr.grad)
    custom = loss_gradient(model, x, y, loss=lambda z, t: -z.gather(1, t[:, None]).squeeze(1))
    torch.testing.assert_close(custom, -saliency(model, x, y, abs=False))


def test_random_attribution_is_seeded_normal() -> None:
    x = torch.zeros(200, 50)
    a = random_attribution(x, seed=0)
    assert a.shape == x.shape
    torch.testing.assert_close(a, random_attribution(x, seed=0))
    assert abs(float(a.mean())) < 0.05
    assert abs(float(a.std()) - 1) < 0.05


def test_nothing_is_mutated_and_no_parameter_grads_appear() -> None:
    model = _mlp()
    model.eval()
    x = torch.randn(3, 5)
    x_copy = x.clone()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for fn in (saliency, input_x_gradient, integrated_gradients, smoothgrad):
        fn(model, x, 1)
    loss_gradient(model, x, torch.tensor([0, 1, 2]))
    torch.testing.assert_close(x, x_copy)
    assert not x.requires_grad
    assert all(p.grad is None for p in model.parameters())
    assert not model.training
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, state[k])


def test_works_under_no_grad() -> None:
    model = _mlp()
    x = torch.randn(2, 5)
    with torch.no_grad():
        a = integrated_gradients(model, x, 0, n_steps=5)
    torch.testing.assert_close(a, integrated_gradients(model, x, 0, n_steps=5))


BAD = [
    ({"model": 3}, TypeError, "model"),
    ({"inputs": [[1.0] * 5]}, TypeError, "inputs"),
    ({"inputs": torch.ones(2, 5, dtype=torch.long)}, TypeError, "floating"),
    ({"inputs": torch.zeros(0, 5)}, ValueError, "inputs"),
    ({"inputs": torch.full((2, 5), float("nan"))}, ValueError, "finite"),
    ({"target": 3}, ValueError, r"target must be in \[0, 3\)"),
    ({"target": -1}, ValueError, "target"),
    ({"target": [0, 1, 2]}, ValueError, "one index per example"),
    ({"target": torch.tensor([0.0, 1.0])}, TypeError, "integer"),
    ({"target": "a"}, TypeError, "target"),
    ({"target": None}, ValueError, "target must be given"),
]


@pytest.mark.parametrize("method", [saliency, input_x_gradient, integrated_gradients, smoothgrad])
@pytest.mark.parametrize(("override", "error", "match"), BAD)
def test_bad_inputs(method, override, error, match) -> None:
    args = {"model": _mlp(), "inputs": torch.randn(2, 5), "target": 0, **override}
    with pytest.raises(error, match=match):
        method(args["model"], args["inputs"], args["target"])


def test_bad_method_options() -> None:
    model, x = _mlp(), torch.randn(2, 5)
    with pytest.raises(ValueError, match="method"):
        integrated_gradients(model, x, 0, method="simpson")
    with pytest.raises(ValueError, match="n_steps"):
        integrated_gradients(model, x, 0, n_steps=0)
    with pytest.raises(ValueError, match="n_steps"):
        integrated_gradients(model, x, 0, n_steps=1, method="riemann_left")
    with pytest.raises(ValueError, match="baselines"):
        integrated_gradients(model, x, 0, baselines=torch.zeros(3))
    with pytest.raises(TypeError, match="baselines"):
        integrated_gradients(model, x, 0, baselines="zero")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="internal_batch_size"):
        integrated_gradients(model, x, 0, internal_batch_size=0)
    with pytest.raises(TypeError, match="abs"):
        saliency(model, x, 0, abs=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stdev"):
        smoothgrad(model, x, 0, stdev=-1.0)
    with pytest.raises(ValueError, match="kind"):
        smoothgrad(model, x, 0, kind="mean")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="method"):
        smoothgrad(model, x, 0, method="deeplift")
    with pytest.raises(ValueError, match="exclusive"):
        smoothgrad(model, x, 0, seed=1, generator=torch.Generator())
    with pytest.raises(ValueError, match="target must give the labels"):
        loss_gradient(model, x, None)
    with pytest.raises(ValueError, match="loss"):
        loss_gradient(model, x, 0, loss="mse")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="model output"):
        saliency(lambda z: z.sum(), x, 0)
    with pytest.raises(TypeError, match="inputs"):
        random_attribution(np.zeros((2, 2)))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# the fast paths (one-hot grad_outputs, one-reduction finite check) keep numbers and errors


def _reference_gradient(model, x, target) -> torch.Tensor:
    """d sum_i model(x)[i, target_i] / d x through a gather (the textbook route)."""
    leaf = x.detach().clone().requires_grad_(True)
    out = model(leaf)
    idx = torch.as_tensor(target).reshape(-1).expand(x.shape[0])
    (grad,) = torch.autograd.grad(out.gather(1, idx[:, None]).sum(), leaf)
    return grad


def test_target_forms_give_bitwise_the_gather_gradient() -> None:
    model = _mlp(5)
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    labels = [2, 0, 1, 2]
    reference = _reference_gradient(model, x, labels)
    forms = [
        labels,
        torch.tensor(labels),
        torch.tensor(labels, dtype=torch.int32),
        torch.tensor([[2], [0], [1], [2]]),
        torch.tensor([2, 9, 0, 9, 1, 9, 2, 9])[::2],  # non-contiguous
        [np.int64(v) for v in labels],
    ]
    for target in forms:
        assert torch.equal(saliency(model, x, target, abs=False), reference), target
    same = _reference_gradient(model, x, 1)
    for target in (1, np.int64(1), torch.tensor(1), torch.tensor([1, 1, 1, 1])):
        assert torch.equal(saliency(model, x, target, abs=False), same), target
    # integrated gradients and smoothgrad: an int target and its index tensor agree bitwise
    ig_int = integrated_gradients(model, x, 1, n_steps=6, return_convergence_delta=True)
    ig_tensor = integrated_gradients(
        model, x, torch.full((4,), 1), n_steps=6, return_convergence_delta=True
    )
    assert torch.equal(ig_int[0], ig_tensor[0])
    assert torch.equal(ig_int[1], ig_tensor[1])
    sg_int = smoothgrad(model, x, 1, n_samples=3, stdev=0.3, seed=2)
    sg_tensor = smoothgrad(model, x, torch.full((4,), 1), n_samples=3, stdev=0.3, seed=2)
    assert torch.equal(sg_int, sg_tensor)


def test_smoothgrad_of_saliency_equals_the_mean_of_noisy_saliencies() -> None:
    model = _mlp(2)
    x = torch.randn(3, 5)
    target = torch.tensor([0, 2, 1])
    noise = torch.randn((3 * 4, 5), generator=torch.Generator().manual_seed(7))
    noisy = x.repeat_interleave(4, 0) + 0.2 * noise
    expected = _reference_gradient(model, noisy, target.repeat_interleave(4)).abs()
    expected = expected.reshape(3, 4, 5).sum(1) / 4
    got = smoothgrad(model, x, target, n_samples=4, stdev=0.2, seed=7)
    torch.testing.assert_close(got, expected, atol=1e-7, rtol=1e-6)


def test_callable_smoothgrad_methods_still_get_an_index_tensor() -> None:
    seen = []

    def method(model, inputs, target):  # type: ignore[no-untyped-def]
        seen.append(target)
        return saliency(model, inputs, target)

    smoothgrad(_mlp(), torch.randn(2, 5), 1, method=method, n_samples=3, seed=0)
    assert isinstance(seen[0], torch.Tensor)
    assert seen[0].tolist() == [1] * 6


BAD_TENSOR_TARGETS = [
    (torch.tensor([0, 3]), "got 3"),
    (torch.tensor([-1, 0]), "got -1"),
    (torch.tensor([5, -2]), "got -2"),
    ([0, 7], "got 7"),
    (torch.tensor(3), "got 3"),
]


@pytest.mark.parametrize("method", [saliency, input_x_gradient, integrated_gradients, smoothgrad])
@pytest.mark.parametrize(("target", "got"), BAD_TENSOR_TARGETS)
def test_out_of_range_index_tensors_raise_value_errors(method, target, got) -> None:
    with pytest.raises(ValueError, match=r"target must be in \[0, 3\), " + got):
        method(_mlp(), torch.randn(2, 5), target)


@pytest.mark.parametrize(("target", "got"), BAD_TENSOR_TARGETS)
def test_out_of_range_targets_of_the_other_entries(target, got) -> None:
    model, x = _mlp(), torch.randn(2, 5)
    with pytest.raises(ValueError, match=r"target must be in \[0, 3\), " + got):
        loss_gradient(model, x, target)
    with pytest.raises(ValueError, match=r"target must be in \[0, 3\), " + got):
        smoothgrad(model, x, target, method="integrated_gradients", n_samples=2, seed=0)


def test_convergence_delta_checks_the_target_range() -> None:
    from neuronkit.interpretability.attribution import _forward_selected

    with pytest.raises(ValueError, match=r"target must be in \[0, 3\), got -1"):
        _forward_selected(_mlp(), torch.randn(2, 5), torch.tensor([0, -1]))


def test_a_model_error_is_not_mistaken_for_a_bad_target() -> None:
    def broken(z: torch.Tensor) -> torch.Tensor:  # one output column too few for target 2
        return _mlp()(z)[:, :2]

    with pytest.raises(ValueError, match=r"target must be in \[0, 2\), got 2"):
        saliency(broken, torch.randn(2, 5), torch.tensor([0, 2]))


@pytest.mark.parametrize(
    "bad",
    [
        [float("inf"), 0.0],
        [-float("inf"), 1.0],
        [float("inf"), -float("inf")],  # the sum is NaN
        [float("nan"), 1.0],
    ],
)
@pytest.mark.parametrize("method", [saliency, input_x_gradient, integrated_gradients, smoothgrad])
def test_non_finite_inputs_are_rejected(method, bad) -> None:
    x = torch.randn(2, 5)
    x[1, 1:3] = torch.tensor(bad)
    with pytest.raises(ValueError, match="inputs must be finite"):
        method(_mlp(), x, 0)
    with pytest.raises(ValueError, match="inputs must be finite"):
        random_attribution(x)
    base = torch.zeros(5)
    base[2] = bad[0]
    with pytest.raises(ValueError, match="baselines must be finite"):
        integrated_gradients(_mlp(), torch.randn(2, 5), 0, baselines=base)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("method", [saliency, input_x_gradient, integrated_gradients, smoothgrad])
def test_non_finite_inputs_the_model_never_reads_are_rejected(method, bad: float) -> None:
    # the inputs' finiteness is read with the result's: a NaN or infinity the model ignores
    # leaves the outputs and gradients finite (its gradient is 0) and must still be named
    head = nn.Linear(1, 3)
    x = torch.randn(2, 5)
    x[1, 3] = bad
    with pytest.raises(ValueError, match="inputs must be finite"):
        method(lambda z: head(z[:, :1]), x, 0)


def test_finite_inputs_whose_sum_overflows_are_accepted() -> None:
    lin = _linear()
    x = torch.full((3, 4), 3e38)  # finite, but the float32 sum is inf
    assert torch.isinf(x.sum())
    torch.testing.assert_close(saliency(lin, x, 1, abs=False), lin.weight[1].detach().expand(3, 4))
    assert random_attribution(x, seed=0).shape == x.shape
    half = torch.full((2, 4), 6e4, dtype=torch.float16)  # the float16 sum overflows too
    assert saliency(lin.half(), half, 0).shape == (2, 4)


def test_loss_gradient_reads_finiteness_off_the_sum_and_checks_an_overflow_exactly() -> None:
    lin = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    x = torch.randn(3, 4)
    # every gradient entry is 1e38 (finite); their float32 sum overflows
    grad = loss_gradient(lin, x, 0, loss=lambda logits, labels: logits[:, 0] * 1e38)
    assert torch.isinf(grad.sum())
    torch.testing.assert_close(grad, torch.full((3, 4), 1e38))
    with pytest.raises(ValueError, match="non-finite outputs, losses or gradients"):
        loss_gradient(lin, x, 0, loss=lambda logits, labels: logits[:, 0] * float("nan"))


def test_saliency_smoothgrad_and_loss_gradient_work_under_no_grad() -> None:
    model = _mlp()
    x = torch.randn(2, 5)
    expected = saliency(model, x, 1)
    with torch.no_grad():
        torch.testing.assert_close(saliency(model, x, 1), expected)
        torch.testing.assert_close(
            smoothgrad(model, x, 1, stdev=0.0, seed=0), expected, atol=1e-7, rtol=0
        )
        torch.testing.assert_close(loss_gradient(model, x, [1, 1]), loss_gradient(model, x, 1))
    assert torch.is_grad_enabled()


def _nan_model() -> nn.Module:
    lin = _linear()
    with torch.no_grad():
        lin.weight[0, 0] = float("nan")
    return lin


@pytest.mark.parametrize("method", [saliency, input_x_gradient, integrated_gradients, smoothgrad])
def test_non_finite_model_outputs_do_not_reach_the_attributions(method) -> None:
    with pytest.raises(ValueError, match="model produced non-finite"):
        method(_nan_model(), torch.rand(2, 4), 0)


def test_non_finite_losses_and_convergence_deltas_are_rejected() -> None:
    x = torch.rand(2, 4)
    with pytest.raises(ValueError, match="model produced non-finite"):
        loss_gradient(_linear(), x, [0, 1], loss=lambda a, b: a.sum(1) * float("nan"))
    with pytest.raises(ValueError, match="model produced non-finite"):
        loss_gradient(_nan_model(), x, [0, 1])
    with pytest.raises(ValueError, match="model produced non-finite"):
        smoothgrad(_nan_model(), x, 0, kind="vargrad", seed=0)


@pytest.mark.parametrize("method", [saliency, input_x_gradient, integrated_gradients, smoothgrad])
def test_inputs_of_another_dtype_than_the_model_are_named(method) -> None:
    with pytest.raises(TypeError, match=r"inputs must have the model's parameter dtype"):
        method(_linear(), torch.rand(2, 4, dtype=torch.float64), 0)
    with pytest.raises(TypeError, match=r"inputs must have the model's parameter dtype"):
        loss_gradient(_linear(), torch.rand(2, 4, dtype=torch.float64), [0, 1])


def test_a_model_output_detached_from_the_inputs_is_named() -> None:
    lin = _linear()
    x = torch.rand(2, 4)
    for model in (lambda z: lin(z).detach(), lambda z: torch.zeros(len(z), 3)):
        for method in (saliency, input_x_gradient, integrated_gradients, smoothgrad):
            with pytest.raises(ValueError, match="detached from its input"):
                method(model, x, 0)
        with pytest.raises(ValueError, match="detached from its input"):
            loss_gradient(model, x, [0, 1])
    with (
        torch.inference_mode(),
        pytest.raises(RuntimeError, match=r"outside torch\.inference_mode"),
    ):
        saliency(lin, x, 0)  # the model was blamed for the caller's inference mode
    with torch.no_grad():
        assert saliency(lin, x, 0).shape == x.shape


def test_smoothgrad_names_bad_method_options_and_shapes() -> None:
    lin, x = _linear(), torch.rand(2, 4)
    with pytest.raises(TypeError, match=r"method_kwargs: \['foo'\] are not options of method"):
        smoothgrad(lin, x, 0, foo=1)
    with pytest.raises(TypeError, match="method_kwargs"):
        smoothgrad(lin, x, 0, method="integrated_gradients", abs=False)
    assert smoothgrad(lin, x, 0, method="integrated_gradients", n_steps=4).shape == x.shape
    with pytest.raises(ValueError, match="method must return attributions shaped like"):
        smoothgrad(lin, x, 0, method=lambda m, i, t: i.sum(1))
    with pytest.raises(ValueError, match="method must return attributions shaped like"):
        smoothgrad(lin, x, 0, method=lambda m, i, t: [i])


def test_seeds_beyond_64_bits_are_named() -> None:
    x = torch.rand(2, 4)
    with pytest.raises(ValueError, match="seed must be <"):
        random_attribution(x, seed=2**70)
    with pytest.raises(ValueError, match="seed must be <"):
        smoothgrad(_linear(), x, 0, seed=2**64)
    assert random_attribution(x, seed=2**64 - 1).shape == x.shape


def test_loss_gradient_requires_per_example_losses() -> None:
    torch.manual_seed(0)
    model, x, y = nn.Linear(4, 3), torch.randn(8, 4), torch.randint(0, 3, (8,))
    with pytest.raises(ValueError, match=r"loss must return per-example losses of shape \[B\]"):
        loss_gradient(model, x, y, loss=lambda logits, t: nn.functional.cross_entropy(logits, t))

    def first_three(logits: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits, t, reduction="none")[:3]

    with pytest.raises(ValueError, match="per-example"):
        loss_gradient(model, x, y, loss=first_three)


def test_target_must_be_one_index_per_example() -> None:
    model, x = nn.Linear(4, 3), torch.randn(8, 4)
    with pytest.raises(ValueError, match=r"target must be \[B\]"):
        saliency(model, x, torch.zeros(2, 4, dtype=torch.long))
    column = torch.randint(0, 3, (8, 1))
    torch.testing.assert_close(saliency(model, x, column), saliency(model, x, column[:, 0]))


def test_inputs_and_targets_made_under_inference_mode_are_attributed() -> None:
    model = _mlp()
    x, target = torch.randn(3, 5), torch.tensor([0, 2, 1])
    with torch.inference_mode():
        xi, ti = x.clone(), target.clone()
    for method in (saliency, input_x_gradient, loss_gradient, integrated_gradients):
        torch.testing.assert_close(method(model, xi, ti), method(model, x, target))
    expected = smoothgrad(model, x, target, stdev=0.1, seed=0)
    torch.testing.assert_close(smoothgrad(model, xi, ti, stdev=0.1, seed=0), expected)


@pytest.mark.parametrize(
    "method", [saliency, input_x_gradient, loss_gradient, integrated_gradients, smoothgrad]
)
def test_inference_mode_is_named_with_the_method(method) -> None:
    x = torch.rand(2, 4)
    with (
        torch.inference_mode(),
        pytest.raises(RuntimeError, match=rf"{method.__name__} needs autograd: call it outside"),
    ):
        method(_linear(), x, [0, 1])


@pytest.mark.parametrize(
    "baseline", [np.float32(0.5), np.float64(0.5), np.array(0.5), torch.tensor(0.5)]
)
def test_integrated_gradients_takes_numpy_and_0d_scalar_baselines(baseline) -> None:
    lin, x = _linear(), torch.randn(3, 4)
    expected = integrated_gradients(lin, x, 1, baselines=0.5, n_steps=4)
    torch.testing.assert_close(
        integrated_gradients(lin, x, 1, baselines=baseline, n_steps=4), expected
    )


@pytest.mark.parametrize(
    ("dtype", "method", "n_steps"),
    [
        (torch.bfloat16, "gausslegendre", 300),
        (torch.bfloat16, "riemann_trapezoid", 50),
        (torch.float16, "riemann_trapezoid", 300),
    ],
)
def test_integrated_gradients_sums_half_steps_wide(
    dtype: torch.dtype, method: str, n_steps: int
) -> None:
    # a half running sum over one-step chunks drifted by several ulps (bfloat16, 300
    # Gauss-Legendre steps: 2.86 for 3); the float64 result rounded to the dtype is expected
    model = nn.Linear(8, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    x = torch.full((2, 8), 3.0)
    ref = integrated_gradients(
        model.double(), x.double(), target=0, n_steps=n_steps, method=method
    ).to(dtype)
    got = integrated_gradients(
        model.to(dtype), x.to(dtype), target=0, n_steps=n_steps, method=method,
        internal_batch_size=2,
    )  # fmt: skip
    assert got.dtype == dtype
    torch.testing.assert_close(got, ref, rtol=0.0, atol=0.0)
