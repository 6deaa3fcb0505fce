"""GP function tasks: kernels, exact sampling, the oracle predictive and the context split."""

import math

import numpy as np
import pytest
import torch

from neuronkit.theory.data.gp import (
    GP_KERNELS,
    GPTasks,
    gp_kernel,
    gp_log_likelihood,
    gp_predictive,
    sample_gp_tasks,
    split_context_target,
)


def test_kernels_closed_forms_and_psd() -> None:
    x = torch.tensor([[[0.0], [0.3], [1.0]]], dtype=torch.float64)
    r = 0.3 / 0.5
    expected = {
        "rbf": math.exp(-0.5 * r * r),
        "matern12": math.exp(-r),
        "matern32": (1 + math.sqrt(3) * r) * math.exp(-math.sqrt(3) * r),
        "matern52": (1 + math.sqrt(5) * r + 5 * r * r / 3) * math.exp(-math.sqrt(5) * r),
    }
    for kern in GP_KERNELS:
        k = gp_kernel(x, x, kernel=kern, length_scale=0.5, scale=2.0)
        assert k.shape == (1, 3, 3)
        assert torch.allclose(k, k.transpose(1, 2))
        assert torch.allclose(torch.diagonal(k[0]), torch.full((3,), 4.0, dtype=torch.float64))
        assert float(k[0, 0, 1]) == pytest.approx(4.0 * expected[kern], rel=1e-9)
        xs = torch.rand(2, 30, 1, generator=torch.Generator().manual_seed(0)) * 4 - 2
        eig = torch.linalg.eigvalsh(gp_kernel(xs, xs, kernel=kern, length_scale=0.3))
        assert float(eig.min()) > -1e-8


def test_per_task_hyperparameters() -> None:
    x = torch.zeros(2, 2, 1)
    x[:, 1] = 1.0
    k = gp_kernel(x, x, length_scale=torch.tensor([1.0, 0.5]), scale=torch.tensor([1.0, 3.0]))
    assert float(k[0, 0, 1]) == pytest.approx(math.exp(-0.5))
    assert float(k[1, 0, 1]) == pytest.approx(9.0 * math.exp(-2.0))


def test_sample_gp_tasks_shapes_ranges_and_seed() -> None:
    t = sample_gp_tasks(8, seed=3)
    assert isinstance(t, GPTasks)
    assert t.x.shape == t.y.shape == (8, t.num_points, 1)
    assert 3 <= t.num_context < 47
    assert t.num_points - t.num_context >= 3
    assert t.num_points <= 50
    assert t.xc.shape[1] == t.num_context
    assert t.xt.shape[1] == t.num_points - t.num_context
    assert float(t.x.min()) >= -2
    assert float(t.x.max()) <= 2
    assert bool(((t.length_scale >= 0.1) & (t.length_scale <= 0.6)).all())
    assert bool(((t.scale >= 0.1) & (t.scale <= 1.0)).all())
    t2 = sample_gp_tasks(8, seed=3)
    assert torch.equal(t.x, t2.x)
    assert torch.equal(t.y, t2.y)
    t3 = sample_gp_tasks(4, kernel="matern52", num_context=5, num_target=7, seed=1)
    assert t3.num_context == 5
    assert t3.num_points == 12
    assert t3.kernel == "matern52"


def test_samples_have_the_kernel_covariance() -> None:
    # fixed hyperparameters and inputs: the empirical covariance across tasks is k + noise^2 I
    t = sample_gp_tasks(
        6000,
        num_context=2,
        num_target=1,
        x_range=(0.0, 1.0),
        length_range=(0.5, 0.5),
        scale_range=(1.0, 1.0),
        noise=0.1,
        seed=0,
    )
    y = t.y[..., 0].double()
    x = t.x[..., 0].double()
    # E[y_0 y_1] = exp(-(x0-x1)^2 / (2 * 0.25)); fit by regressing products on the kernel
    prod = (y[:, 0] * y[:, 1]).numpy()
    kern = torch.exp(-0.5 * ((x[:, 0] - x[:, 1]) / 0.5) ** 2).numpy()
    slope = float(np.dot(prod, kern) / np.dot(kern, kern))
    assert slope == pytest.approx(1.0, abs=0.06)
    assert float((y**2).mean()) == pytest.approx(1.0 + 0.01, abs=0.05)


def test_gp_predictive_matches_direct_formula() -> None:
    t = sample_gp_tasks(3, num_context=6, num_target=4, noise=0.05, seed=2)
    mean, std = gp_predictive(t)
    for i in range(3):
        xc, yc, xt = t.xc[i : i + 1].double(), t.yc[i, :, 0].double(), t.xt[i : i + 1].double()
        kw = {"length_scale": float(t.length_scale[i]), "scale": float(t.scale[i])}
        kcc = gp_kernel(xc, xc, **kw)[0] + (0.05**2 + 1e-6) * torch.eye(6, dtype=torch.float64)
        ktc = gp_kernel(xt, xc, **kw)[0]
        ktt = gp_kernel(xt, xt, **kw)[0]
        m = ktc @ torch.linalg.solve(kcc, yc)
        v = torch.diagonal(ktt - ktc @ torch.linalg.solve(kcc, ktc.T)) + 0.05**2 + 1e-6
        assert torch.allclose(mean[i, :, 0], m, atol=1e-8)
        assert torch.allclose(std[i, :, 0], v.sqrt(), atol=1e-8)
    ll = gp_log_likelihood(t)
    assert ll.shape == (3, 4)
    ref = torch.distributions.Normal(mean, std).log_prob(t.yt.double())[..., 0]
    assert torch.allclose(ll, ref)


def test_split_context_target_is_a_permutation() -> None:
    x = torch.arange(24.0).view(2, 12, 1)
    y = -x.clone()
    before = x.clone()
    xc, yc, xt, yt = split_context_target(x, y, 5, seed=0)
    assert xc.shape == (2, 5, 1)
    assert xt.shape == (2, 7, 1)
    assert torch.equal(x, before)
    for i in range(2):
        merged = torch.cat([xc[i], xt[i]]).flatten().sort().values
        assert torch.equal(merged, x[i].flatten())
        assert torch.equal(torch.cat([yc[i], yt[i]]), -torch.cat([xc[i], xt[i]]))


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="kernel"):
        sample_gp_tasks(2, kernel="periodic")
    with pytest.raises(ValueError, match="batch_size"):
        sample_gp_tasks(0)
    with pytest.raises(ValueError, match="noise"):
        sample_gp_tasks(2, noise=-1.0)
    with pytest.raises(ValueError, match="x_range"):
        sample_gp_tasks(2, x_range=(1.0, 1.0))
    with pytest.raises(ValueError, match="length_range"):
        sample_gp_tasks(2, length_range=(0.0, 1.0))
    with pytest.raises(ValueError, match="max_points"):
        sample_gp_tasks(2, max_points=5)
    with pytest.raises(TypeError, match="x1"):
        gp_kernel([[0.0]], torch.zeros(1, 1, 1))
    with pytest.raises(ValueError, match="x2"):
        gp_kernel(torch.zeros(1, 2, 1), torch.zeros(2, 2, 1))
    with pytest.raises(ValueError, match="length_scale"):
        gp_kernel(torch.zeros(2, 2, 1), torch.zeros(2, 2, 1), length_scale=torch.ones(3))
    with pytest.raises(ValueError, match="num_context"):
        split_context_target(torch.zeros(1, 4, 1), torch.zeros(1, 4, 1), 4)
    with pytest.raises(ValueError, match="y"):
        split_context_target(torch.zeros(1, 4, 1), torch.zeros(1, 3, 1), 2)
    with pytest.raises(TypeError, match="tasks"):
        gp_predictive("tasks")
