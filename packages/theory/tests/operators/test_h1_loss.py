"""The MgNO authors' relative H1 loss and ``fit_operator(loss=...)``."""

import math

import numpy as np
import pytest
import torch

from neuronkit.theory.operators import MgNO, evaluate_operator, fit_operator, relative_l2
from neuronkit.theory.operators.training import relative_h1_loss


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(h) / h, np.arange(w) / w, indexing="ij")


def _smooth_field(h: int, w: int, shift: float) -> np.ndarray:
    """A smooth periodic field: a few low modes plus a periodised Gaussian bump."""
    x, y = _grid(h, w)
    bump = sum(
        np.exp(-(((x - 0.4 + i) ** 2) + (y - 0.6 + j) ** 2) / 0.02)
        for i in (-1, 0, 1)
        for j in (-1, 0, 1)
    )
    return (
        1.0
        + shift
        + np.sin(2 * np.pi * x + shift)
        + 0.5 * np.cos(2 * np.pi * (2 * x - 3 * y))
        + 0.3 * bump
    )


def _h1_norm_by_definition(u: np.ndarray, a: float, cutoff: int | None) -> float:
    """``sqrt(sum_{c,p,q} (1 + a^2 (kx^2 + ky^2)) |U_c[p, q]|^2)`` with the DFT written out as a
    double sum ``U[p, q] = sum_{m,n} u[m, n] exp(-2 pi i (p m / H + q n / W))`` (unnormalised)
    and the integer wavenumber of bin ``p`` being ``p`` below ``H / 2`` and ``p - H`` from it
    (magnitudes >= cutoff count as 0), scaled by ``1 / sqrt(H W)`` (cancels in the ratio)."""
    _, h, w = u.shape

    def wavenumber(p: int, n: int) -> int:
        k = p if 2 * p < n else p - n
        return 0 if cutoff is not None and abs(k) >= cutoff else k

    m = np.arange(h)[:, None]
    n = np.arange(w)[None, :]
    total = 0.0
    for c in range(u.shape[0]):
        for p in range(h):
            for q in range(w):
                phase = np.exp(-2j * np.pi * (p * m / h + q * n / w))
                coeff = (u[c] * phase).sum()
                weight = 1 + a**2 * (wavenumber(p, h) ** 2 + wavenumber(q, w) ** 2)
                total += weight * abs(coeff) ** 2
    return math.sqrt(total / (h * w))


@pytest.mark.parametrize(
    ("shape", "a", "cutoff"),
    [((2, 1, 12, 12), 1.0, 20), ((1, 2, 9, 14), 0.7, 4), ((1, 1, 10, 7), 1.0, None)],
)
def test_h1_loss_matches_its_definition_on_a_smooth_field(shape, a, cutoff) -> None:
    b, c, h, w = shape
    target = np.stack(
        [np.stack([_smooth_field(h, w, 0.3 * i + 0.1 * j) for j in range(c)]) for i in range(b)]
    )
    pred = target + np.stack(
        [np.stack([0.1 * _smooth_field(h, w, 1.0 + i - j) for j in range(c)]) for i in range(b)]
    )
    expected = [
        _h1_norm_by_definition(pred[i] - target[i], a, cutoff)
        / _h1_norm_by_definition(target[i], a, cutoff)
        for i in range(b)
    ]
    got = relative_h1_loss(
        torch.from_numpy(pred), torch.from_numpy(target), a=a, cutoff=cutoff, reduction="none"
    )
    assert got.shape == (b,)
    assert got.tolist() == pytest.approx(expected, rel=1e-10)
    mean = relative_h1_loss(torch.from_numpy(pred), torch.from_numpy(target), a=a, cutoff=cutoff)
    assert float(mean) == pytest.approx(float(np.mean(expected)), rel=1e-10)
    total = relative_h1_loss(
        torch.from_numpy(pred), torch.from_numpy(target), a=a, cutoff=cutoff, reduction="sum"
    )
    assert float(total) == pytest.approx(float(np.sum(expected)), rel=1e-10)


def _mode(h: int, w: int, kx: int, ky: int) -> torch.Tensor:
    x, y = _grid(h, w)
    return torch.from_numpy(np.cos(2 * np.pi * (kx * x + ky * y)))[None, None]


def test_single_modes_are_weighted_by_one_plus_squared_wavenumber() -> None:
    # For pure cosines (same L2 norm) the ratio of H1 norms is sqrt((1 + |k_err|^2) / (1 +
    # |k_target|^2)), times the relative L2 size of the error.
    target = _mode(32, 32, 1, 0)
    err = 0.1 * _mode(32, 32, 3, 2)
    assert float(relative_l2(target + err, target)) == pytest.approx(0.1)
    assert float(relative_h1_loss(target + err, target)) == pytest.approx(
        0.1 * math.sqrt((1 + 9 + 4) / (1 + 1)), rel=1e-12
    )
    assert float(relative_h1_loss(target + err, target, a=0.5)) == pytest.approx(
        0.1 * math.sqrt((1 + 0.25 * 13) / (1 + 0.25)), rel=1e-12
    )
    assert float(relative_h1_loss(target + err, target, a=0.0)) == pytest.approx(0.1)


def test_wavenumbers_from_the_cutoff_count_as_zero() -> None:
    # The authors' truncation: |k| >= 20 along an axis is weighted as k = 0 there (not dropped).
    target = _mode(48, 48, 1, 0)
    err = 0.1 * _mode(48, 48, 21, 2)
    truncated = 0.1 * math.sqrt((1 + 0 + 4) / 2)
    full = 0.1 * math.sqrt((1 + 441 + 4) / 2)
    assert float(relative_h1_loss(target + err, target)) == pytest.approx(truncated, rel=1e-12)
    assert float(relative_h1_loss(target + err, target, cutoff=None)) == pytest.approx(
        full, rel=1e-12
    )
    assert float(relative_h1_loss(target + err, target, cutoff=22)) == pytest.approx(
        full, rel=1e-12
    )


def test_high_frequency_errors_cost_more_than_low_frequency_ones() -> None:
    gen = torch.Generator().manual_seed(0)
    target = torch.randn(3, 1, 24, 24, generator=gen, dtype=torch.float64) + 2.0
    low = _mode(24, 24, 1, 1)
    high = _mode(24, 24, 7, 5)
    scale = 0.05 * target.flatten(1).norm(dim=1) / low.flatten(1).norm(dim=1)
    low_err = scale[:, None, None, None] * low
    high_err = scale[:, None, None, None] * high
    l2_low = relative_l2(target + low_err, target, reduction="none")
    l2_high = relative_l2(target + high_err, target, reduction="none")
    assert torch.allclose(l2_low, l2_high, rtol=1e-12)  # same relative L2 size (0.05)
    assert torch.allclose(l2_low, torch.full((3,), 0.05, dtype=torch.float64), rtol=1e-12)
    h1_low = relative_h1_loss(target + low_err, target, reduction="none")
    h1_high = relative_h1_loss(target + high_err, target, reduction="none")
    assert bool((h1_high > 3 * h1_low).all())


def test_zero_error_gives_zero_and_the_loss_is_scale_invariant() -> None:
    gen = torch.Generator().manual_seed(1)
    target = torch.randn(4, 2, 8, 11, generator=gen)
    assert float(relative_h1_loss(target.clone(), target)) == 0.0
    assert relative_h1_loss(target, target, reduction="none").tolist() == [0.0] * 4
    pred = target + 0.1 * torch.randn(4, 2, 8, 11, generator=gen)
    assert float(relative_h1_loss(3 * pred, 3 * target)) == pytest.approx(
        float(relative_h1_loss(pred, target)), rel=1e-5
    )


def test_the_gradient_at_zero_error_is_finite() -> None:
    target = torch.randn(2, 1, 5, 6, generator=torch.Generator().manual_seed(3))
    pred = target.clone().requires_grad_()
    relative_h1_loss(pred, target).backward()
    assert pred.grad is not None
    assert bool(torch.isfinite(pred.grad).all())


def test_h1_loss_is_differentiable_in_pred() -> None:
    gen = torch.Generator().manual_seed(2)
    target = torch.randn(2, 1, 6, 6, generator=gen, dtype=torch.float64)
    pred = (
        target + 0.3 * torch.randn(2, 1, 6, 6, generator=gen, dtype=torch.float64)
    ).requires_grad_()
    assert torch.autograd.gradcheck(lambda p: relative_h1_loss(p, target), (pred,))


@pytest.mark.parametrize(
    ("pred", "target", "kwargs", "error", "match"),
    [
        ([[1.0]], torch.ones(1, 1, 2, 2), {}, TypeError, "pred must be Tensor"),
        (torch.ones(1, 1, 2, 2), None, {}, TypeError, "target must be Tensor"),
        (torch.ones(1, 4, 4), torch.ones(1, 4, 4), {}, ValueError, r"pred must have 4 dim"),
        (torch.ones(1, 1, 4, 4), torch.ones(1, 4, 4), {}, ValueError, r"target must have 4 dim"),
        (
            torch.ones(1, 1, 4, 4),
            torch.ones(1, 1, 4, 5),
            {},
            ValueError,
            "pred must have the shape",
        ),
        (torch.ones(1, 1, 2, 2, dtype=torch.long), torch.ones(1, 1, 2, 2), {}, TypeError, "pred"),
        (
            torch.ones(1, 1, 2, 2),
            torch.ones(1, 1, 2, 2, dtype=torch.complex64),
            {},
            TypeError,
            "target",
        ),
        (torch.ones(0, 1, 2, 2), torch.ones(0, 1, 2, 2), {}, ValueError, "pred must be non-empty"),
        (torch.full((1, 1, 2, 2), math.nan), torch.ones(1, 1, 2, 2), {}, ValueError, "pred"),
        (torch.ones(1, 1, 2, 2), torch.full((1, 1, 2, 2), math.inf), {}, ValueError, "target"),
        (
            torch.ones(2, 1, 2, 2),
            torch.zeros(2, 1, 2, 2),
            {},
            ValueError,
            "target must have a nonzero",
        ),
        (torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2), {"a": -1.0}, ValueError, "a must be >= 0"),
        (torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2), {"a": "1"}, TypeError, "a must be"),
        (torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2), {"cutoff": 0}, ValueError, "cutoff"),
        (torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2), {"cutoff": 2.5}, TypeError, "cutoff"),
        (torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2), {"cutoff": True}, TypeError, "cutoff"),
        (
            torch.ones(1, 1, 2, 2),
            torch.ones(1, 1, 2, 2),
            {"reduction": "max"},
            ValueError,
            "reduction",
        ),
    ],
)
def test_h1_loss_rejects_bad_input_naming_the_argument(pred, target, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        relative_h1_loss(pred, target, **kwargs)


def _smoothing_problem() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(32, 1, 7, 7, generator=gen)
    y = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1)
    return x, y


def test_fit_operator_with_the_h1_loss_trains_and_reports_relative_l2() -> None:
    x, y = _smoothing_problem()
    model = MgNO(1, 1, width=4, num_layers=1, levels=2, seed=0)
    before = float(evaluate_operator(model, x, y).mean())
    fit = fit_operator(
        model, x, y, epochs=12, batch_size=8, lr=1e-2, test=(x[:8], y[:8]), seed=0, loss="h1"
    )
    assert len(fit.train_loss) == len(fit.test_error) == 12
    assert fit.train_loss[-1] < 0.5 * fit.train_loss[0]
    assert float(evaluate_operator(model, x, y).mean()) < 0.5 * before
    # the test error is the relative L2 error, not the H1 loss
    assert fit.test_error[-1] == pytest.approx(float(evaluate_operator(model, x[:8], y[:8]).mean()))
    with torch.no_grad():
        h1 = float(relative_h1_loss(model(x[:8]), y[:8]))
    assert fit.test_error[-1] != pytest.approx(h1, rel=1e-3)


def test_fit_operator_l2_is_bit_identical_to_the_default() -> None:
    x, y = _smoothing_problem()
    runs = []
    for kwargs in ({}, {"loss": "l2"}):
        model = MgNO(1, 1, width=4, num_layers=1, levels=2, seed=0)
        fit = fit_operator(
            model, x, y, epochs=3, batch_size=8, lr=1e-2, test=(x[:8], y[:8]), seed=0, **kwargs
        )
        runs.append((fit, model.state_dict()))
    (fit_a, state_a), (fit_b, state_b) = runs
    assert fit_a.train_loss == fit_b.train_loss
    assert fit_a.test_error == fit_b.test_error
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


@pytest.mark.parametrize(
    ("loss", "error"), [("H1", ValueError), ("mse", ValueError), (None, ValueError)]
)
def test_fit_operator_rejects_an_unknown_loss(loss, error) -> None:
    x, y = _smoothing_problem()
    model = MgNO(1, 1, width=4, num_layers=1, levels=2, seed=0)
    with pytest.raises(error, match="loss must be one of"):
        fit_operator(model, x, y, epochs=1, loss=loss)


@pytest.mark.parametrize("loss", [relative_l2, relative_h1_loss])
@pytest.mark.parametrize("scale", [1e-30, 1e20, 1e30])
def test_relative_losses_are_scale_invariant_in_float32(loss, scale: float) -> None:
    """The squares in the norms of a float32 target of 1e20 overflow (NaN ratio) and those of
    1e-30 underflow (taken for a zero target): the ratio must not depend on the scale."""
    gen = torch.Generator().manual_seed(0)
    target = torch.randn(2, 1, 8, 8, generator=gen)
    pred = target + 0.5 * torch.randn(2, 1, 8, 8, generator=gen)
    ref = loss(pred, target, reduction="none")
    got = loss(pred * scale, target * scale, reduction="none")
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=0.0)
