"""Influence functions: the closed form of least squares, the paper's leave-one-out check on
regularized logistic regression, ranks and bad input (Captum agreement:
test_attribution_captum.py)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuronkit.interpretability import hessian_influence, hessian_self_influence


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _squared_error(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return (outputs[:, 0] - targets).square()


def test_least_squares_in_closed_form() -> None:
    """l = (w.x + b - y)^2: H = 2 sum [x 1][x 1]^T and grad l_i = 2 r_i [x_i 1]."""
    x = torch.randn(20, 3, generator=_gen(1), dtype=torch.float64)
    y = torch.randn(20, generator=_gen(2), dtype=torch.float64)
    xt = torch.randn(4, 3, generator=_gen(3), dtype=torch.float64)
    yt = torch.randn(4, generator=_gen(4), dtype=torch.float64)
    model = nn.Linear(3, 1).double()
    w, b = model.weight.detach()[0], model.bias.detach()
    rows, test_rows = F.pad(x, (0, 1), value=1.0), F.pad(xt, (0, 1), value=1.0)
    grads = 2 * (x @ w + b - y)[:, None] * rows
    test_grads = 2 * (xt @ w + b - yt)[:, None] * test_rows
    hessian = 2 * rows.T @ rows + 0.1 * torch.eye(4, dtype=torch.float64)
    expected = test_grads @ torch.linalg.solve(hessian, grads.T)
    got = hessian_influence(
        model, (x, y), (xt, yt), loss_fn=_squared_error, damping=0.1, batch_size=7
    )
    torch.testing.assert_close(got, expected)
    own = hessian_self_influence(model, (x, y), loss_fn=_squared_error, damping=0.1)
    torch.testing.assert_close(own, (grads @ torch.linalg.solve(hessian, grads.T)).diagonal())
    looped = hessian_influence(
        model, (x, y), (xt, yt), loss_fn=_squared_error, damping=0.1, vectorize=False
    )
    torch.testing.assert_close(looped, expected)


def _fit(x: torch.Tensor, y: torch.Tensor, l2: float, start: nn.Module) -> nn.Module:
    """Minimise the summed cross-entropy plus l2 / 2 |theta|^2 (strictly convex)."""
    model = copy.deepcopy(start)
    opt = torch.optim.LBFGS(
        model.parameters(),
        max_iter=500,
        tolerance_grad=1e-12,
        tolerance_change=1e-14,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        norm = sum(p.square().sum() for p in model.parameters())
        loss = F.cross_entropy(model(x), y, reduction="sum") + l2 / 2 * norm
        loss.backward()
        return loss

    opt.step(closure)
    return model


def test_removing_a_training_example_changes_the_test_loss_as_predicted() -> None:
    """The paper's Figure 2 check: on L2-regularised logistic regression, the predicted
    change of a test loss when one training example is left out matches retraining without
    it (the regulariser's Hessian is the damping)."""
    torch.manual_seed(0)
    x = torch.randn(60, 4, dtype=torch.float64)
    y = (x[:, 0] + 0.5 * torch.randn(60, dtype=torch.float64) > 0).long() + (x[:, 1] > 1).long()
    xt, yt = x[:1] + 0.3, y[:1]
    l2 = 1.0
    model = _fit(x, y, l2, nn.Linear(4, 3).double())
    predicted = hessian_influence(model, (x, y), (xt, yt), damping=l2)[0]
    with torch.no_grad():
        before = F.cross_entropy(model(xt), yt)
    chosen = [*predicted.abs().argsort(descending=True)[:6].tolist(), 30, 40]
    actual = []
    for i in chosen:
        keep = torch.arange(60) != i
        refit = _fit(x[keep], y[keep], l2, model)
        with torch.no_grad():
            actual.append(float(F.cross_entropy(refit(xt), yt) - before))
    pairs = torch.tensor([[float(predicted[i]) for i in chosen], actual], dtype=torch.float64)
    assert torch.corrcoef(pairs)[0, 1] > 0.99  # 0.9945 here; the paper's criterion
    assert torch.equal(pairs[0].sign(), pairs[1].sign())
    # and in magnitude (the paper's points lie on the diagonal): the least-squares slope of
    # the actual changes on the predicted ones (1.1 here; 0.06 with the Hessian left out)
    slope = float(pairs[0] @ pairs[1] / (pairs[0] @ pairs[0]))
    assert 0.8 < slope < 1.25


def _logistic(seed: int = 0) -> tuple[nn.Module, tuple, tuple]:
    """L2-regularised logistic regression at its minimum (convex: LiSSA converges)."""
    torch.manual_seed(seed)
    x = torch.randn(60, 4, dtype=torch.float64)
    y = (x[:, 0] + 0.5 * torch.randn(60, dtype=torch.float64) > 0).long() + (x[:, 1] > 1).long()
    return _fit(x, y, 1.0, nn.Linear(4, 3).double()), (x, y), (x[:5] + 0.3, y[:5])


def test_lissa_with_the_whole_data_per_step_is_the_exact_solve() -> None:
    """Minibatches of all 60 examples make the series deterministic: its terms shrink by
    ``1 - lambda / scale`` per step, so 400 steps reach the exact influence."""
    model, train, test = _logistic()
    exact = hessian_influence(model, train, test, damping=1.0)
    lissa = hessian_influence(
        model, train, test, damping=1.0, method="lissa", lissa_depth=400, lissa_batch_size=60
    )
    torch.testing.assert_close(lissa, exact, rtol=1e-6, atol=1e-8)
    looped = hessian_influence(
        model,
        train,
        test,
        damping=1.0,
        method="lissa",
        lissa_depth=400,
        lissa_batch_size=60,
        vectorize=False,
    )  # the Hessian-vector products one row at a time
    torch.testing.assert_close(looped, lissa, rtol=1e-10, atol=1e-12)
    own = hessian_self_influence(
        model, train, damping=1.0, method="lissa", lissa_depth=400, lissa_batch_size=60
    )
    torch.testing.assert_close(own, hessian_self_influence(model, train, damping=1.0))


def test_lissa_on_minibatches_approaches_the_exact_influence() -> None:
    """Stochastic Hessians of 10 of the 60 examples: the runs' error averages out (relative
    error 0.65 with one run, 0.16 with 8, 0.10 with 32: about 1 / sqrt(runs)); seeded."""
    model, train, test = _logistic()
    exact = hessian_influence(model, train, test, damping=1.0)
    errors = []
    for repeats in (1, 8):
        lissa = hessian_influence(
            model,
            train,
            test,
            damping=1.0,
            method="lissa",
            lissa_depth=300,
            lissa_batch_size=10,
            lissa_repeats=repeats,
        )
        errors.append(float((lissa - exact).norm() / exact.norm()))
    assert errors[1] < errors[0] / 2
    assert errors[1] < 0.25
    again = hessian_influence(
        model, train, test, damping=1.0, method="lissa", lissa_depth=300, lissa_batch_size=10
    )
    assert float((again - exact).norm() / exact.norm()) == errors[0]  # same seed, same draws


def test_lissa_refuses_a_scale_it_diverges_with() -> None:
    model, train, test = _logistic()
    with pytest.raises(ValueError, match="LiSSA diverged"):
        hessian_influence(
            model, train, test, damping=1.0, method="lissa", lissa_scale=0.01, lissa_depth=500
        )


def test_rank_keeps_the_largest_curvature_only() -> None:
    x = torch.randn(30, 5, generator=_gen(5), dtype=torch.float64)
    y = torch.randint(0, 3, (30,), generator=_gen(6))
    torch.manual_seed(7)
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    full = hessian_influence(model, (x, y), (x[:3], y[:3]), layers=["2"])
    low = hessian_influence(model, (x, y), (x[:3], y[:3]), layers=["2"], rank=2)
    assert not torch.allclose(full, low)
    # the diagonal of a low-rank inverse is below the full one's (fewer positive terms)
    assert (
        hessian_self_influence(model, (x, y), layers=["2"], rank=2)
        <= hessian_self_influence(model, (x, y), layers=["2"]) + 1e-9
    ).all()
    # another Hessian sample changes the scores; the model is left alone
    before = copy.deepcopy(model.state_dict())
    other = hessian_influence(
        model, (x, y), (x[:3], y[:3]), layers=["2"], hessian_data=(x[:20], y[:20])
    )
    assert not torch.allclose(full, other)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_arnoldi_finds_the_exact_top_eigenvectors() -> None:
    """With more Krylov steps than parameters, the Arnoldi restriction has the Hessian's own
    eigenvalues: the same scores as the exact inverse at the same rank."""
    x = torch.randn(30, 5, generator=_gen(10), dtype=torch.float64)
    y = torch.randint(0, 3, (30,), generator=_gen(11))
    torch.manual_seed(12)
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)).double()  # 39 params
    settings = {"damping": 1e-3, "tol": 1e-4, "rank": 6}
    exact = hessian_influence(model, (x, y), (x[:4], y[:4]), **settings)
    arnoldi = hessian_influence(
        model,
        (x, y),
        (x[:4], y[:4]),
        method="arnoldi",
        arnoldi_dim=60,
        arnoldi_tol=1e-10,
        **settings,
    )
    torch.testing.assert_close(arnoldi, exact, rtol=1e-8, atol=1e-12)
    # a short iteration approximates the largest curvature only: close, not equal
    short = hessian_influence(
        model, (x, y), (x[:4], y[:4]), method="arnoldi", arnoldi_dim=8, **settings
    )
    assert not torch.allclose(short, exact, rtol=1e-8, atol=1e-12)
    assert float((short - exact).norm() / exact.norm()) < 0.5


def test_arnoldi_runs_past_the_exact_limit() -> None:
    model = nn.Linear(200, 101)  # 20301 parameters: too many to form the Hessian
    data = (
        torch.randn(8, 200, generator=_gen(13)),
        torch.randint(0, 101, (8,), generator=_gen(14)),
    )
    own = hessian_self_influence(model, data, method="arnoldi", arnoldi_dim=12, rank=5)
    assert own.shape == (8,)
    assert (own > 0).all()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"damping": -1.0}, ValueError, "damping"),
        ({"tol": 1e9}, ValueError, "no eigenvalue above tol"),
        ({"rank": 0}, ValueError, "rank"),
        ({"layers": ["7"]}, ValueError, "layer"),
        ({"hessian_data": (torch.zeros(2, 4),)}, TypeError, "hessian_data must be a pair"),
        ({"test": (torch.zeros(2, 4), torch.zeros(3))}, ValueError, "test must be non-empty"),
        ({"loss_fn": 3}, TypeError, "loss_fn must be callable"),
        ({"method": "newton"}, ValueError, "method"),
        ({"method": "lissa", "lissa_depth": 0}, ValueError, "lissa_depth"),
        ({"method": "lissa", "lissa_repeats": 0}, ValueError, "lissa_repeats"),
        ({"method": "lissa", "lissa_scale": -1.0}, ValueError, "lissa_scale"),
        ({"method": "lissa", "lissa_batch_size": 0}, ValueError, "lissa_batch_size"),
        ({"method": "lissa", "damping": -1.0}, ValueError, "damping"),
        ({"method": "arnoldi", "arnoldi_dim": 1}, ValueError, "arnoldi_dim"),
        ({"seed": -1}, ValueError, "seed"),
        ({"method": "arnoldi", "arnoldi_tol": 1e9}, ValueError, "lower arnoldi_tol"),
    ],
)
def test_bad_arguments(kwargs, error, match) -> None:
    args = {
        "train": (torch.randn(5, 4, generator=_gen(8)), torch.tensor([0, 1, 0, 1, 0])),
        "test": (torch.randn(2, 4, generator=_gen(9)), torch.tensor([1, 0])),
        **kwargs,
    }
    with pytest.raises(error, match=match):
        hessian_influence(nn.Linear(4, 2), **args)


def test_too_many_parameters_is_refused() -> None:
    model = nn.Linear(200, 101)
    data = (torch.zeros(2, 200), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"20301 parameters.*layers=.*arnoldi"):
        hessian_self_influence(model, data)


def test_a_zero_hessian_is_the_damping_alone() -> None:
    """A loss linear in the parameters has a constant gradient (no graph to differentiate
    again): H = 0, so LiSSA's (H + damping I)^-1 is 1 / damping, not an autograd error."""
    model = nn.Linear(3, 2).double()
    x = torch.randn(5, 3, generator=_gen(5), dtype=torch.float64)
    y = torch.zeros(5, dtype=torch.long)

    def linear(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return outputs.sum(1)

    rows = F.pad(x, (0, 1), value=1.0)
    expected = 2 * rows.square().sum(1) / 0.5  # two outputs share each input's gradient
    got = hessian_self_influence(
        model, (x, y), loss_fn=linear, method="lissa", damping=0.5, lissa_depth=50
    )
    torch.testing.assert_close(got, expected)
    with pytest.raises(ValueError, match="arnoldi_tol"):
        hessian_self_influence(model, (x, y), loss_fn=linear, method="arnoldi", damping=0.5)


def test_arnoldi_stops_on_an_invariant_subspace() -> None:
    """H = 4 I spans one Krylov direction: with arnoldi_tol=0 the next direction's norm 0
    ends the iteration (a clear error), rather than dividing by it into NaN."""
    model = nn.Linear(2, 1, bias=False).double()
    x = torch.eye(2, dtype=torch.float64).repeat(2, 1)
    y = torch.zeros(4, dtype=torch.float64)
    with pytest.raises(ValueError, match="arnoldi_tol=0"):
        hessian_self_influence(
            model,
            (x, y),
            loss_fn=_squared_error,
            method="arnoldi",
            arnoldi_tol=0.0,
            arnoldi_dim=5,
            damping=0.0,
        )
