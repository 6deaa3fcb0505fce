"""Tests of information-plane tracking (Shwartz-Ziv & Tishby 2017) and the KDE estimator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuronkit.common import new_figure
from neuronkit.interpretability import information
from neuronkit.interpretability.data.twelve_bit import twelve_bit_task
from neuronkit.interpretability.dynamics import (
    EnsembleMLP,
    binned_information,
    compression,
    dpi_violation,
    log_epoch_grid,
    plot_information_plane,
    track_information_plane,
)
from neuronkit.interpretability.information import (
    bin_activations,
    entropy,
    joint_codes,
    kde_information,
    mutual_information,
)


def _reference_binned(t: np.ndarray, y: np.ndarray, n_bins: int, lo: float, hi: float):
    codes = joint_codes(bin_activations(t, n_bins, value_range=(lo, hi)))
    return float(entropy(codes)[0]), mutual_information(codes, y)


@pytest.mark.parametrize("units", [1, 3, 10, 15])
def test_binned_information_matches_row_codes(units: int) -> None:
    rng = np.random.default_rng(units)
    t = np.tanh(2 * rng.normal(size=(500, units)))
    y = rng.integers(0, 3, 500)
    got = binned_information(t, y, n_bins=30)
    np.testing.assert_allclose(got, _reference_binned(t, y, 30, -1.0, 1.0), atol=1e-12)
    assert 0.0 <= got[1] <= min(got[0], float(entropy(y)[0])) + 1e-12


def test_binned_information_extremes() -> None:
    task = twelve_bit_task()
    y = task.y.numpy()
    h_y = float(entropy(y)[0])
    # a one-to-one layer: I(X;T) = log2(4096), I(T;Y) = H(Y)
    ixt, ity = binned_information(task.x * 1.0 - 0.5, y, n_bins=2, value_range=(-0.5, 0.5))
    assert ixt == pytest.approx(12.0)
    assert ity == pytest.approx(h_y)
    # a constant layer carries nothing
    assert binned_information(np.zeros((4096, 3)), y) == (0.0, 0.0)
    with pytest.raises(ValueError, match="y must"):
        binned_information(np.zeros((10, 2)), np.zeros(9, dtype=int))


def test_binned_information_names_t() -> None:
    with pytest.raises(TypeError, match=r"^t must"):
        binned_information("x", np.zeros(2, dtype=int))
    with pytest.raises(ValueError, match=r"^t must be finite"):
        binned_information(np.array([[np.nan], [0.0]]), np.zeros(2, dtype=int))


def _kde_reference(h: np.ndarray, y: np.ndarray, var: float) -> tuple[float, float]:
    def bound(a: np.ndarray) -> float:
        n = len(a)
        total = 0.0
        for i in range(n):
            k = [np.exp(-np.sum((a[i] - a[j]) ** 2) / (2 * var)) for j in range(n)]
            total += np.log(np.mean(k))
        return -total / n

    h_t = bound(h)
    h_ty = sum((y == c).mean() * bound(h[y == c]) for c in np.unique(y))
    return h_t / np.log(2), (h_t - h_ty) / np.log(2)


@pytest.mark.parametrize("block_elements", [None, 1, 33])
def test_kde_information_matches_brute_force(monkeypatch, block_elements: int | None) -> None:
    if block_elements is not None:  # distances in blocks of a few rows (many blocks)
        monkeypatch.setattr(information, "_KDE_BLOCK_ELEMENTS", block_elements)
    rng = np.random.default_rng(0)
    h = rng.normal(size=(40, 3))
    y = rng.integers(0, 2, 40)
    got = kde_information(h, y, noise_variance=0.3)
    np.testing.assert_allclose(got, _kde_reference(h, y, 0.3), rtol=1e-10)


def test_kde_information_limits() -> None:
    y = np.repeat([0, 1], 32)
    far = np.arange(64, dtype=float)[:, None] * 100.0  # distinct, far apart points
    ixt, ity = kde_information(far, y, noise_variance=0.1)
    assert ixt == pytest.approx(6.0, abs=1e-6)
    assert ity == pytest.approx(1.0, abs=1e-6)
    ixt, ity = kde_information(np.ones((64, 2)), y)
    assert ixt == pytest.approx(0.0, abs=1e-12)
    assert ity == pytest.approx(0.0, abs=1e-12)
    # more noise, less information
    h = np.random.default_rng(1).normal(size=(64, 2))
    assert kde_information(h, y, noise_variance=1.0)[0] < kde_information(h, y)[0]


def test_kde_information_bad_inputs() -> None:
    h = np.zeros((10, 2))
    with pytest.raises(ValueError, match="noise_variance"):
        kde_information(h, np.zeros(10, dtype=int), noise_variance=0.0)
    with pytest.raises(ValueError, match="y must have"):
        kde_information(h, np.zeros(9, dtype=int))
    with pytest.raises(ValueError, match="t must be finite"):
        kde_information(np.full((10, 2), np.nan), np.zeros(10, dtype=int))
    with pytest.raises(TypeError, match="y must hold integer"):
        kde_information(h, np.full(10, 0.5))


def test_log_epoch_grid() -> None:
    grid = log_epoch_grid(1000, 20)
    assert grid[0] == 0
    assert grid[-1] == 1000
    assert np.all(np.diff(grid) > 0)
    assert len(grid) <= 21
    with pytest.raises(ValueError, match="n_points"):
        log_epoch_grid(10, 1)


def test_compression_and_dpi_violation() -> None:
    ixt = np.array([[5.0, 3.0], [6.0, 4.0], [5.5, 2.0]])
    np.testing.assert_allclose(compression(ixt), [0.5, 2.0])
    assert dpi_violation(ixt) == 0.0
    assert dpi_violation(np.array([[1.0, 1.25, 0.5]])) == pytest.approx(0.25)
    assert dpi_violation([1.0, 1.25, 0.5]) == pytest.approx(0.25)  # one epoch's [L]
    with pytest.raises(ValueError, match="finite"):
        compression(np.array([[np.nan]]))
    with pytest.raises(ValueError, match=r"ixt must be a non-empty \[E, L\]"):
        compression(np.array([1.0, 3.0, 2.0]))  # ambiguous: one layer or one epoch


def test_ensemble_init_is_the_authors_truncated_normal() -> None:
    # idnns/networks/model.py: truncated_normal_initializer(stddev=1/sqrt(fan_in)), zero biases
    model = EnsembleMLP(300, (12, 10, 7), seed=0)
    for w, fan_in in zip(model.weights, (12, 10), strict=True):
        z = w.detach() * fan_in**0.5
        assert float(z.abs().max()) <= 2.0
        assert abs(float(z.std()) - 0.8796) < 0.02  # std of N(0, 1) truncated to [-2, 2]
    for b in model.biases:
        assert float(b.detach().abs().max()) == 0.0


def test_ensemble_models_are_independent() -> None:
    model = EnsembleMLP(3, (4, 5, 2), "tanh", seed=1)
    x = torch.randn(7, 4, generator=torch.Generator().manual_seed(0))
    outs = model.layers(x)
    assert [tuple(o.shape) for o in outs] == [(3, 7, 5), (3, 7, 2)]
    w0, w1 = model.weights
    b0, b1 = model.biases
    ref = torch.tanh(x @ w0[2].T + b0[2].T) @ w1[2].T + b1[2].T
    torch.testing.assert_close(outs[-1][2], ref)
    # the loss of model 0 gives no gradient to models 1 and 2
    model(x)[0].sum().backward()
    assert model.weights[0].grad[0].abs().sum() > 0
    assert model.weights[0].grad[1:].abs().sum() == 0
    with pytest.raises(ValueError, match="x must be"):
        model.layers(torch.zeros(7, 3))
    with pytest.raises(ValueError, match="activation"):
        EnsembleMLP(2, (4, 2), "sigmoid")  # type: ignore[arg-type]


def test_track_information_plane_small_run() -> None:
    task = twelve_bit_task()
    train, _ = task.split(0.8, seed=0)
    x_before = task.x.clone()
    kwargs = dict(n_runs=2, epochs=3, n_records=2, lr=1e-2, kde_samples=32, seed=0)
    plane = track_information_plane(task.x, task.y, train, **kwargs)
    n_e = len(plane.epochs)
    assert plane.epochs[0] == 0
    assert plane.epochs[-1] == 3
    for est in ("binning", "kde"):
        assert plane.ixt[est].shape == plane.ity[est].shape == (2, n_e, 6)
        assert np.all(plane.ity[est] <= plane.h_y + 1e-9)
        assert np.all(plane.ity[est] >= 0)
    assert np.all(plane.ixt["binning"] <= 12 + 1e-9)
    assert np.all(plane.ixt["kde"] <= np.log2(32) + 1e-9)
    assert plane.train_accuracy.shape == (2, n_e)
    torch.testing.assert_close(task.x, x_before)
    again = track_information_plane(task.x, task.y, train, **kwargs)
    np.testing.assert_array_equal(again.ixt["binning"], plane.ixt["binning"])
    relu = track_information_plane(task.x, task.y, train, activation="relu", **kwargs)
    assert np.all(relu.ixt["binning"] <= 12 + 1e-9)
    ixt, ity = plane.mean("kde")
    assert ixt.shape == ity.shape == (n_e, 6)


def test_track_information_plane_bad_inputs() -> None:
    task = twelve_bit_task()
    with pytest.raises(ValueError, match="y must be int64"):
        track_information_plane(task.x, task.y.float(), [0, 1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="train_idx"):
        track_information_plane(task.x, task.y, [5000])
    mask = np.zeros(task.x.shape[0], dtype=bool)
    mask[:200] = True
    with pytest.raises(TypeError, match="train_idx must hold integer indices"):
        track_information_plane(task.x, task.y, mask)
    with pytest.raises(ValueError, match="activation"):
        track_information_plane(task.x, task.y, [0], activation="gelu")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"torch\.Tensors"):
        track_information_plane(task.x.numpy(), task.y, [0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"n_records must be >= 2, got 1"):
        track_information_plane(task.x, task.y, [0], n_records=1)
    with pytest.raises(ValueError, match=r"hidden\[1\] must be >= 1, got 0"):
        track_information_plane(task.x, task.y, [0], hidden=(3, 0))


def test_plot_information_plane() -> None:
    fig, ax = new_figure()
    import matplotlib.pyplot as plt

    ixt = np.array([[3.0, 2.0], [4.0, 2.5], [3.5, 1.5]])
    ity = np.array([[0.1, 0.0], [0.5, 0.4], [0.9, 0.9]])
    artist = plot_information_plane(ax, ixt, ity, [0, 10, 100], layer_names=["a", "b"])
    assert artist is not None
    assert len(ax.lines) == 2
    with pytest.raises(ValueError, match="layer_names"):
        plot_information_plane(ax, ixt, ity, [0, 10, 100], layer_names=["a"])
    with pytest.raises(ValueError, match="epochs"):
        plot_information_plane(ax, ixt, ity, [0, 10])
    for bad in (np.nan, np.inf):  # the log colour scale failed (inf: only when saved)
        with pytest.raises(ValueError, match="epochs must be finite"):
            plot_information_plane(ax, ixt, ity, [0, 10, bad])
    with pytest.raises(TypeError, match="layer_names must be a sequence"):
        plot_information_plane(ax, ixt, ity, [0, 10, 100], layer_names="ab")
    plt.close(fig)


def test_binned_information_of_a_saturated_layer_is_its_sign_pattern() -> None:
    rng = np.random.default_rng(0)
    t = rng.uniform(-1, 1, size=(20, 3))
    y = np.arange(20) % 2
    # far beyond value_range: every value in an edge bin, as the sign of t
    assert binned_information(t * 1e30, y) == binned_information(np.sign(t), y)
    assert binned_information(t * 1e30, y)[0] > 0


def test_track_information_plane_runs_in_the_inputs_dtype() -> None:
    task = twelve_bit_task()
    train, _ = task.split(0.8, seed=0)
    kwargs = dict(n_runs=1, epochs=3, n_records=2, lr=1e-2, kde_samples=32, seed=0)
    ref = track_information_plane(task.x, task.y, train, **kwargs)
    for dtype in (torch.float64, torch.bfloat16):  # float64 ensemble; bf16 (exact 0/1) in f32
        plane = track_information_plane(task.x.to(dtype), task.y, train, **kwargs)
        for key in ("binning", "kde"):
            np.testing.assert_allclose(plane.ixt[key], ref.ixt[key], atol=1e-4)
            np.testing.assert_allclose(plane.ity[key], ref.ity[key], atol=1e-4)


def test_ensemble_mlp_names_a_dtype_mismatch() -> None:
    model = EnsembleMLP(2, (3, 4, 2))
    with pytest.raises(TypeError, match=r"x must have the model's parameter dtype torch\.float32"):
        model(torch.zeros(5, 3, dtype=torch.float64))
    assert model.double()(torch.zeros(5, 3, dtype=torch.float64)).dtype == torch.float64


def test_track_information_plane_under_no_grad_and_on_inputs_that_require_grad() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 4, generator=gen)
    y = (x[:, 0] > 0).long()
    kwargs = dict(hidden=(3,), n_runs=1, epochs=2, n_records=2, batch_size=8, seed=0)
    plane = track_information_plane(x, y, np.arange(12), **kwargs)
    with torch.no_grad():
        quiet = track_information_plane(x, y, np.arange(12), **kwargs)
    np.testing.assert_array_equal(quiet.ixt["kde"], plane.ixt["kde"])
    xg = x.clone().requires_grad_(True)
    attached = track_information_plane(xg, y, np.arange(12), **kwargs)
    assert xg.grad is None
    np.testing.assert_array_equal(attached.ixt["kde"], plane.ixt["kde"])
    with (
        torch.inference_mode(),
        pytest.raises(RuntimeError, match="track_information_plane needs autograd"),
    ):
        track_information_plane(x, y, np.arange(12), **kwargs)
