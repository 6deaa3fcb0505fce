"""Kumar et al. lazy-to-rich model: closed-form NTK, kernel plateau, delay measurement."""

import pytest
import torch

from neuronkit.theory.grokking import (
    LazyRichHistory,
    ScaledQuadraticNet,
    grokking_delay,
    initial_ntk_regression,
    quadratic_feature_data,
    train_lazy_rich,
)
from neuronkit.theory.measures import empirical_ntk, kernel_target_alignment


def test_closed_form_ntk_equals_torch_func() -> None:
    model = ScaledQuadraticNet(5, 20, alpha=3.0, eps=0.4, seed=0)
    x = torch.randn(6, 5, dtype=torch.float64)
    assert torch.allclose(model.ntk(x), empirical_ntk(model, x), atol=1e-10)


def test_ntk_of_one_set_equals_the_two_set_form_exactly() -> None:
    """``ntk(x)`` reuses one feature factor and its Gram matrix: same bits as ``ntk(x, x')``."""
    model = ScaledQuadraticNet(7, 30, alpha=2.0, eps=0.3, seed=1)
    x = torch.randn(12, 7, dtype=torch.float64)
    assert torch.equal(model.ntk(x), model.ntk(x, x.clone()))
    assert model.ntk(x, x[:5]).shape == (12, 5)


def _reference_train(model, xtr, ytr, xte, yte, steps, lr, eval_every, align_every, stop):
    """The plain loop (fresh tensors, ``model(x)``, ``model.ntk``) the fast one must match."""
    hist = LazyRichHistory()
    plateau = None
    xa, ya = xte, yte  # the default: all test inputs
    with torch.no_grad():
        w0 = model.weight.detach().clone()
        f0_train, f0_test = model(xtr), model(xte)
        w = model.weight
        coef = 2.0 * model.alpha / (model.width * xtr.shape[0])
        for t in range(steps + 1):
            z = xtr @ w.T
            r = model.alpha * model.activation(z).mean(dim=1) - f0_train - ytr
            if t % eval_every == 0 or t == steps:
                hist.steps.append(t)
                hist.train_loss.append(float((r**2).mean()))
                hist.test_loss.append(float(((model(xte) - f0_test - yte) ** 2).mean()))
                hist.weight_change.append(float(torch.linalg.norm(w - w0) / torch.linalg.norm(w0)))
            if t % align_every == 0 or t == steps:
                hist.alignment_steps.append(t)
                hist.alignment.append(kernel_target_alignment(model.ntk(xa), ya))
            fitted = hist.train_loss[-1] <= 0.1 * hist.train_loss[0]
            if plateau is None and t % eval_every == 0 and fitted:
                plateau = hist.test_loss[-1]
            if plateau is not None and hist.test_loss[-1] < stop * plateau:
                if hist.alignment_steps[-1] != t:
                    hist.alignment_steps.append(t)
                    hist.alignment.append(kernel_target_alignment(model.ntk(xa), ya))
                break
            if t == steps:
                break
            w.sub_(lr * (coef * ((1.0 + model.eps * z) * r[:, None]).T @ xtr))
    return hist


@pytest.mark.parametrize(("alpha", "steps", "stop"), [(1.5, 600, 0.4), (6.0, 333, 0.01)])
def test_training_loop_is_bit_identical_to_the_plain_loop(alpha, steps, stop) -> None:
    """Preallocated buffers and the cached alignment Gram change no bit of the history."""
    data = quadratic_feature_data(60, 250, 8, seed=4)
    args = (data.x_train, data.y_train, data.x_test, data.y_test)
    fast = ScaledQuadraticNet(8, 24, alpha=alpha, eps=0.5, seed=5)
    slow = ScaledQuadraticNet(8, 24, alpha=alpha, eps=0.5, seed=5)
    lr = 24 / alpha**2
    hist = train_lazy_rich(
        fast, *args, steps=steps, eval_every=7, align_every=50, stop_drop_fraction=stop
    )
    ref = _reference_train(slow, *args, steps, lr, 7, 50, stop)
    assert hist == ref
    assert torch.equal(fast.weight, slow.weight)
    assert hist.steps[-1] < steps if stop == 0.4 else hist.steps[-1] == steps


def test_training_step_is_gradient_descent_on_the_centred_loss() -> None:
    """One step moves ``W`` by ``-lr dL/dW`` (autograd), ``L = mean (f - f_0 - y)^2``."""
    data = quadratic_feature_data(40, 10, 6, seed=6)
    model = ScaledQuadraticNet(6, 16, alpha=2.0, eps=0.5, seed=7)
    w = model.weight.detach().clone().requires_grad_(True)
    f0 = model(data.x_train).detach()
    z = data.x_train @ w.T
    f = model.alpha * model.activation(z).mean(dim=1)
    loss = ((f - f0 - data.y_train) ** 2).mean()
    (grad,) = torch.autograd.grad(loss, w)
    lr = 16 / 2.0**2
    train_lazy_rich(model, data.x_train, data.y_train, data.x_test, data.y_test, steps=1)
    assert torch.allclose(model.weight, w.detach() - lr * grad, rtol=0, atol=1e-12)


def test_data_and_forward_shapes() -> None:
    data = quadratic_feature_data(30, 10, 4, seed=1)
    assert data.x_train.shape == (30, 4)
    assert data.y_test.shape == (10,)
    assert torch.allclose(data.y_train, (data.x_train @ data.beta) ** 2 / 2)
    model = ScaledQuadraticNet(4, 8, seed=0)
    assert model(data.x_test).shape == (10,)


def test_lazy_limit_follows_kernel_regression() -> None:
    """For a very lazy net, GD converges to the initial-NTK interpolant."""
    data = quadratic_feature_data(6, 50, 10, seed=2)
    model = ScaledQuadraticNet(10, 40, alpha=200.0, eps=0.5, seed=3)
    kr = initial_ntk_regression(model, data.x_train, data.y_train, data.x_test, data.y_test)
    hist = train_lazy_rich(
        model, data.x_train, data.y_train, data.x_test, data.y_test, steps=2000, eval_every=100
    )
    assert hist.train_loss[-1] < 1e-3 * hist.train_loss[0]
    assert hist.test_loss[-1] == pytest.approx(kr, rel=0.05)
    assert hist.weight_change[-1] < 0.01


def test_grokking_delay_reads_the_events() -> None:
    h = LazyRichHistory(
        steps=[0, 10, 20, 30, 40],
        train_loss=[1.0, 0.05, 0.01, 0.0, 0.0],
        test_loss=[1.0, 0.6, 0.6, 0.25, 0.1],
    )
    ev = grokking_delay(h)
    assert ev == {"t_fit": 10.0, "plateau": 0.6, "t_drop": 30.0, "delay": 20.0}


def test_bad_inputs_name_the_argument() -> None:
    with pytest.raises(ValueError, match="width"):
        ScaledQuadraticNet(3, 0)
    with pytest.raises(ValueError, match="alpha"):
        ScaledQuadraticNet(3, 4, alpha=-1.0)
    model = ScaledQuadraticNet(3, 4, seed=0)
    with pytest.raises(ValueError, match="y_train"):
        train_lazy_rich(
            model, torch.ones(5, 3), torch.ones(4), torch.ones(2, 3), torch.ones(2), steps=2
        )
    with pytest.raises(ValueError, match="x_test"):
        initial_ntk_regression(
            model, torch.ones(5, 3), torch.ones(5), torch.ones(2, 4), torch.ones(2)
        )


def test_alignment_uses_all_test_inputs_unless_limited() -> None:
    """Default: every test input (the authors' notebook); ``align_points`` keeps the first k."""
    data = quadratic_feature_data(30, 40, 5, seed=8)
    args = (data.x_train, data.y_train, data.x_test, data.y_test)
    model = ScaledQuadraticNet(5, 12, alpha=2.0, eps=0.5, seed=9)
    every = kernel_target_alignment(model.ntk(data.x_test), data.y_test)
    first = kernel_target_alignment(model.ntk(data.x_test[:10]), data.y_test[:10])
    assert every != first
    h_all = train_lazy_rich(ScaledQuadraticNet(5, 12, 2.0, 0.5, seed=9), *args, steps=1)
    h_ten = train_lazy_rich(
        ScaledQuadraticNet(5, 12, 2.0, 0.5, seed=9), *args, steps=1, align_points=10
    )
    assert h_all.alignment[0] == pytest.approx(every, rel=1e-12)
    assert h_ten.alignment[0] == pytest.approx(first, rel=1e-12)


def test_kernel_plateau_is_read_at_interpolation_not_at_the_fit() -> None:
    """A lazy net's test loss reaches the initial-NTK regression error once it interpolates.

    At ``t_fit`` (train loss at 10%) it is still falling and far above the kernel error, so the
    reproduction's kernel check reads the test loss at interpolation (train loss at 0.1%).
    """
    from neuronkit.theory.grokking.lazy_rich import interpolation_plateau

    data = quadratic_feature_data(200, 300, 25, seed=11)
    model = ScaledQuadraticNet(25, 40, alpha=1000.0, eps=0.5, seed=21)
    kr = initial_ntk_regression(model, data.x_train, data.y_train, data.x_test, data.y_test)
    hist = train_lazy_rich(
        model, data.x_train, data.y_train, data.x_test, data.y_test, steps=6500, eval_every=10
    )
    assert hist.weight_change[-1] < 0.01
    assert interpolation_plateau(hist) == pytest.approx(kr, rel=0.02)
    assert abs(grokking_delay(hist)["plateau"] - kr) > 0.2 * kr


@pytest.mark.parametrize("alpha", [1e-170, 1e-160, 1e160, 1e300])
def test_kernel_regression_is_alpha_invariant_at_extreme_scales(alpha) -> None:
    """With no ridge the plateau does not depend on alpha: (alpha/N)^2 must not over/underflow
    into a NaN (or a zero kernel, predicting 0)."""
    data = quadratic_feature_data(20, 50, 30, seed=0)
    args = (data.x_train, data.y_train, data.x_test, data.y_test)
    ref = initial_ntk_regression(ScaledQuadraticNet(30, 8, alpha=1.0, seed=1), *args)
    got = initial_ntk_regression(ScaledQuadraticNet(30, 8, alpha=alpha, seed=1), *args)
    assert got == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize("alpha", [1e-170, 1e200])
def test_default_lr_out_of_float_range_names_alpha(alpha) -> None:
    data = quadratic_feature_data(8, 8, 4, seed=0)
    model = ScaledQuadraticNet(4, 8, alpha=alpha, seed=1)
    with pytest.raises(ValueError, match="alpha"):
        train_lazy_rich(model, data.x_train, data.y_train, data.x_test, data.y_test, steps=2)


def test_float32_model_trains_and_regresses_in_its_own_dtype() -> None:
    """A float32 model (``dtype=`` or ``.float()``) got the float64 data as is: torch's bare
    matmul dtype error (or the model's own about an ``x`` the user never passed)."""
    data = quadratic_feature_data(20, 10, 5, seed=0)
    args = (data.x_train, data.y_train, data.x_test, data.y_test)
    m64 = ScaledQuadraticNet(5, 16, seed=0)
    m32 = ScaledQuadraticNet(5, 16, seed=0).float()
    assert initial_ntk_regression(m32, *args, ridge=1e-3) == pytest.approx(
        initial_ntk_regression(m64, *args, ridge=1e-3), rel=1e-4
    )
    h64 = train_lazy_rich(m64, *args, steps=20)
    h32 = train_lazy_rich(m32, *args, steps=20)
    assert m32.weight.dtype == torch.float32
    assert h32.test_loss == pytest.approx(h64.test_loss, rel=1e-4)
    assert h32.alignment == pytest.approx(h64.alignment, rel=1e-4)


def test_ntk_checks_its_inputs_like_forward() -> None:
    """``ntk`` passed its inputs to torch unchecked: bare matmul dtype or shape errors."""
    model = ScaledQuadraticNet(5, 4, seed=0)  # float64
    with pytest.raises(TypeError, match=r"^x1 must have the model's dtype torch.float64"):
        model.ntk(torch.zeros(3, 5))
    with pytest.raises(ValueError, match=r"^x2 must be \[B, 5\], got shape \(2, 4\)"):
        model.ntk(torch.zeros(3, 5, dtype=torch.float64), torch.zeros(2, 4, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"^x1 must be Tensor"):
        model.ntk([[0.0] * 5])
