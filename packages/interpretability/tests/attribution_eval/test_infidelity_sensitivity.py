"""Infidelity and max-sensitivity (Yeh et al. 2019): closed forms on linear models, the
paper's SmoothGrad result, the perturbations' distributions, and bad input."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from torch import nn

from neuronkit.interpretability import (
    infidelity,
    input_x_gradient,
    integrated_gradients,
    saliency,
    sensitivity_max,
    smoothgrad,
)
from neuronkit.interpretability.attribution_eval.infidelity import _squares


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _cnn() -> nn.Module:
    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 5)
    ).double()
    torch.random.set_rng_state(state)
    return model


def _linear() -> nn.Module:
    state = torch.random.get_rng_state()
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 5)).double()
    torch.random.set_rng_state(state)
    return model


X = torch.randn(3, 3, 8, 8, generator=_gen(2), dtype=torch.float64)
T = torch.tensor([0, 1, 2])


@pytest.mark.parametrize("perturbation", ["gaussian", "noisy_baseline"])
def test_the_gradient_of_a_linear_model_has_no_infidelity(perturbation) -> None:
    model = _linear()
    grad = saliency(model, X, T, abs=False)
    exact = infidelity(model, X, grad, T, perturbation=perturbation, normalize=False, seed=0)
    assert float(exact.max()) < 1e-20
    wrong = infidelity(model, X, grad.flip(-1), T, perturbation=perturbation, seed=0)
    assert float(wrong.min()) > 1e-3


def test_square_removal_is_exact_for_gradient_times_input_of_a_linear_model() -> None:
    """A global explanation sums to the drop over any removed square (baseline 0)."""
    model = _linear()
    global_ = input_x_gradient(model, X, T)
    exact = infidelity(model, X, global_, T, perturbation="square", normalize=False, seed=0)
    assert float(exact.max()) < 1e-20
    local = infidelity(model, X, saliency(model, X, T, abs=False), T, perturbation="square")
    assert float(local.min()) > 1e-3


def test_normalize_compares_directions_not_scales() -> None:
    model = _cnn()
    grad = saliency(model, X, T, abs=False)
    kw = {"seed": 3, "n_samples": 30, "stdev": 0.1}
    one, three = (infidelity(model, X, s * grad, T, **kw) for s in (1.0, 3.0))
    torch.testing.assert_close(one, three)
    raw_one, raw_three = (infidelity(model, X, s * grad, T, normalize=False, **kw) for s in (1, 3))
    assert bool((raw_three > 4 * raw_one).all())
    assert bool((one <= raw_one + 1e-18).all())  # the optimal scale can only lower it


def test_the_written_out_definition() -> None:
    """mean over draws of (I . phi - (f(x) - f(x - I)))^2, with the draws of a callable."""
    model = _cnn()
    phi = torch.randn(X.shape, generator=_gen(4), dtype=torch.float64)
    shifts = torch.randn(3 * 4, 3, 8, 8, generator=_gen(5), dtype=torch.float64) * 0.1

    def perturb(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return shifts, rows - shifts

    got = infidelity(model, X, phi, T, perturbation=perturb, n_samples=4, normalize=False)
    with torch.no_grad():
        want = []
        for i in range(3):
            f = model(X[i : i + 1])[0, T[i]]
            terms = []
            for j in range(4):
                shift = shifts[4 * i + j]
                drop = f - model((X[i] - shift)[None])[0, T[i]]
                terms.append(float((shift * phi[i]).sum() - drop) ** 2)
            want.append(sum(terms) / 4)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))


def test_noisy_baseline_inputs_stay_in_bounds_and_seeds_repeat() -> None:
    seen: list[torch.Tensor] = []
    model = _linear()

    def recording(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.detach().clone())
        return model(x)

    grad = saliency(model, X, T, abs=False)
    a = infidelity(recording, X, grad, T, perturbation="noisy_baseline", bounds=(0.0, 1.0), seed=7)
    perturbed = torch.cat(seen[1:])  # the first call is f(x)
    assert float(perturbed.min()) == 0.0
    assert float(perturbed.max()) <= 1.0
    assert 0.3 < float((perturbed == 0).double().mean()) < 0.7  # N(0, 0.2) clamped at 0
    b = infidelity(model, X, grad, T, perturbation="noisy_baseline", bounds=(0.0, 1.0), seed=7)
    assert torch.equal(a, b)


def test_squares_are_drawn_uniformly_from_all_squares_up_to_max_side() -> None:
    masks = _squares((1, 6, 5), 20000, 3, _gen(0))
    assert masks.shape == (20000, 1, 6, 5)
    sides = masks.flatten(1).sum(1).sqrt()
    assert set(sides.tolist()) == {1.0, 2.0, 3.0}
    counts = torch.tensor([30, 20, 12], dtype=torch.float64)  # positions of sides 1, 2, 3
    freq = torch.stack([(sides == s).double().mean() for s in (1, 2, 3)])
    torch.testing.assert_close(freq, counts / counts.sum(), atol=0.015, rtol=0)
    rows = masks[:, 0].any(2).double()  # [n, H]: every square's rows are consecutive
    assert bool(((rows[:, 1:] - rows[:, :-1]).abs().sum(1) <= 2).all())
    corner = masks[:, 0].flatten(1).double().mean(0).view(6, 5)
    assert float(corner[0, 0]) < float(corner[2, 2])  # centres are covered more often


def test_a_linear_models_gradient_has_no_sensitivity() -> None:
    model = _linear()
    got = sensitivity_max(functools.partial(saliency, abs=False), model, X, T, seed=0)
    assert float(got.abs().max()) < 1e-12


def test_sensitivity_of_gradient_times_input_written_out() -> None:
    """phi(y) - phi(x) = w (y - x) for a linear model: a shift by r gives |r w| / |w x|."""
    model = _linear()
    r = 0.05
    for norm in (2.0, math.inf, 1.0):
        got = sensitivity_max(
            input_x_gradient, model, X, T, perturbation=lambda rows: rows + r, norm=norm
        )
        w = model[1].weight.detach()[T]  # [3, 192]
        phi = w * X.flatten(1)
        want = torch.linalg.vector_norm(r * w, ord=norm, dim=1)
        torch.testing.assert_close(got, want / torch.linalg.vector_norm(phi, ord=norm, dim=1))
        absolute = sensitivity_max(
            input_x_gradient,
            model,
            X,
            T,
            perturbation=lambda rows: rows + r,
            norm=norm,
            relative=False,
        )
        torch.testing.assert_close(absolute, want)


def test_the_largest_change_over_the_draws_counts() -> None:
    model = _linear()
    shifts = torch.tensor([0.01, 0.05, 0.02], dtype=torch.float64)  # per copy of an example

    def perturb(rows: torch.Tensor) -> torch.Tensor:
        return rows + shifts.repeat(3).view(-1, 1, 1, 1)

    got = sensitivity_max(input_x_gradient, model, X, T, perturbation=perturb, n_samples=3)
    largest = sensitivity_max(
        input_x_gradient, model, X, T, perturbation=lambda rows: rows + 0.05, n_samples=1
    )
    torch.testing.assert_close(got, largest)


def test_uniform_draws_stay_within_the_radius() -> None:
    model = _linear()
    got = sensitivity_max(
        input_x_gradient,
        model,
        X,
        T,
        radius=0.1,
        n_samples=50,
        norm=math.inf,
        relative=False,
        seed=1,
    )
    bound = 0.1 * model[1].weight.detach()[T].abs().amax(1)
    assert bool((got <= bound).all())
    assert bool((got > 0.8 * bound).all())


def test_smoothgrad_is_less_sensitive_than_the_gradient() -> None:
    """The paper's Theorem 4.2: smoothing the explanation lowers its max-sensitivity."""
    model = _cnn()
    kw = {"radius": 0.2, "n_samples": 20, "seed": 0}
    plain = sensitivity_max(functools.partial(saliency, abs=False), model, X, T, **kw)
    smooth = functools.partial(smoothgrad, n_samples=100, stdev=0.5, seed=3, abs=False)
    smoothed = sensitivity_max(smooth, model, X, T, **kw)
    assert bool((smoothed < 0.6 * plain).all())


def test_per_example_baselines_follow_their_examples() -> None:
    model = _cnn()
    base = torch.rand(X.shape, generator=_gen(6), dtype=torch.float64)
    got = sensitivity_max(
        integrated_gradients, model, X, T, baselines=base, n_steps=8, seed=2, batch_size=6
    )
    for i in range(3):  # one example at a time, its own baseline, the same draws
        one = sensitivity_max(
            integrated_gradients,
            model,
            X[i : i + 1],
            T[i : i + 1],
            baselines=base[i : i + 1],
            n_steps=8,
            perturbation=_draws_of_example(i, seed=2, batch=3, per_pass=2),
            batch_size=2,
        )
        torch.testing.assert_close(got[i : i + 1], one)


def _draws_of_example(i: int, *, seed: int, batch: int, per_pass: int):
    """The uniform draws ``sensitivity_max`` makes for example ``i`` of a batch."""
    gen = _gen(seed)

    def perturb(rows: torch.Tensor) -> torch.Tensor:
        draw = torch.rand((batch * per_pass, *rows.shape[1:]), generator=gen, dtype=rows.dtype)
        mine = draw.view(batch, per_pass, *rows.shape[1:])[i]
        return rows + mine.mul(2 * 0.02).sub(0.02)

    return perturb


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"attributions": torch.zeros(3, 3, 8, 7)}, ValueError, "attributions must have"),
        ({"perturbation": "uniform"}, ValueError, "perturbation"),
        ({"perturbation": "square", "max_side": 9}, ValueError, "max_side must be at most"),
        ({"n_samples": 0}, ValueError, "n_samples"),
        ({"stdev": -1.0}, ValueError, "stdev"),
        ({"bounds": (1.0, 0.0)}, ValueError, r"bounds\[1\]"),
        ({"bounds": (0.0, 0.5, 1.0)}, TypeError, r"bounds must be a \(low, high\) pair"),
        ({"bounds": 1.0}, TypeError, r"bounds must be a \(low, high\) pair"),
        ({"perturbation": lambda r: (r[:1], r)}, ValueError, "perturbation must return"),
    ],
)
def test_infidelity_bad_input(kwargs, error, match) -> None:
    args = {"attributions": torch.zeros_like(X), **kwargs}
    attributions = args.pop("attributions")
    with pytest.raises(error, match=match):
        infidelity(_linear(), X, attributions, T, **args)


def test_square_needs_two_trailing_dimensions() -> None:
    model = nn.Linear(4, 2)
    with pytest.raises(ValueError, match="perturbation 'square' needs inputs"):
        infidelity(model, torch.zeros(2, 4), torch.zeros(2, 4), 0, perturbation="square")


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (("saliency",), {}, TypeError, "method must be an attribution function"),
        ((lambda m, x, t: x[:, :1],), {}, ValueError, "method must return attributions"),
        ((saliency,), {"norm": 0.0}, ValueError, "norm"),
        ((saliency,), {"radius": -0.1}, ValueError, "radius"),
        ((saliency,), {"perturbation": lambda r: r[:1]}, ValueError, "perturbation must return"),
        ((saliency,), {"relative": 1}, TypeError, "relative"),
    ],
)
def test_sensitivity_bad_input(args, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        sensitivity_max(*args, _linear(), X, T, **kwargs)


@pytest.mark.parametrize("perturbation", ["gaussian", "noisy_baseline", "square"])
def test_seeded_calls_leave_the_global_generator(perturbation) -> None:
    model = _cnn()
    grads = saliency(model, X, T, abs=False)
    state = torch.get_rng_state()
    infidelity(model, X, grads, T, perturbation=perturbation, seed=0, n_samples=4)
    sensitivity_max(saliency, model, X, T, n_samples=3, seed=0)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize(
    ("scale", "dtype"),
    [
        (1e-25, torch.float32),
        (1e20, torch.float32),
        (1e-160, torch.float64),
        (1e160, torch.float64),
    ],
)
def test_normalized_infidelity_does_not_depend_on_the_attributions_scale(scale, dtype) -> None:
    """``beta a`` is scale-free: ``a . a`` underflowed (beta 0: the zero explanation's
    infidelity) or overflowed (beta 0 too) before."""
    model, x = _cnn().to(dtype), X.to(dtype)
    attributions = saliency(model, x, 0)
    kwargs = {"n_samples": 20, "seed": 0}
    expected = infidelity(model, x, attributions, 0, **kwargs)
    got = infidelity(model, x, attributions * scale, 0, **kwargs)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=0.0)
    zero = infidelity(model, x, torch.zeros_like(x), 0, **kwargs)
    assert (got < zero).all()  # the gradient explains better than nothing
