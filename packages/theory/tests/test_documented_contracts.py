"""The public callables do what their docstrings say about shapes, dtypes, return types and
accepted inputs: each test here was a documented shape that crashed (or came back in another
shape), a documented type that was refused with a raw torch error, or a return type or dtype
other than the documented one."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

F32, F64 = torch.float32, torch.float64


# --- relative L2 errors: the bandlimited and the operator versions agree --------------------


def test_relative_l2_error_refuses_an_all_zero_target_like_relative_l2() -> None:
    """It returned ||prediction|| / 1e-300 (2.2e300 here) where operators.relative_l2 raises."""
    from neuronkit.theory.bandlimited import relative_l2_error
    from neuronkit.theory.operators import relative_l2

    with pytest.raises(ValueError, match=r"nonzero norm"):
        relative_l2(torch.tensor([[1.0, 2.0]]), torch.zeros(1, 2))
    for prediction in ([1.0, 2.0], [0.0, 0.0]):
        with pytest.raises(ValueError, match=r"^target must have a nonzero norm"):
            relative_l2_error(prediction, [0.0, 0.0])
    with pytest.raises(ValueError, match=r"^target must have a nonzero norm.*empty"):
        relative_l2_error(torch.zeros(0), torch.zeros(0))


@pytest.mark.parametrize("scale", [1.0, 1e200, 1e-200, 1e-310])
def test_relative_l2_error_is_scale_free_and_matches_relative_l2(scale: float) -> None:
    """At 1e200 it was NaN (the squares overflowed), at 1e-200 0.0 (they underflowed), and a
    subnormal target's error read 1e-10 instead of 1."""
    from neuronkit.theory.bandlimited import relative_l2_error
    from neuronkit.theory.operators import relative_l2

    prediction = torch.tensor([1.0, 1.0], dtype=F64) * scale
    target = torch.tensor([1.0, 2.0], dtype=F64) * scale
    rel = 1e-12 if scale != 1e-310 else 1e-6  # subnormals carry fewer digits
    assert relative_l2_error(prediction, target) == pytest.approx(1 / math.sqrt(5), rel=rel)
    assert relative_l2_error(prediction, target) == pytest.approx(
        float(relative_l2(prediction[None], target[None])), rel=1e-12
    )
    assert relative_l2_error([0.0], [1e-310]) == 1.0


def test_approximation_curve_refuses_all_zero_test_targets_before_fitting() -> None:
    from neuronkit.theory.bandlimited import BandlimitedRandomNet, approximation_curve

    x = torch.linspace(-1, 1, 20, dtype=F64)[:, None]
    y = torch.sin(3 * x[:, 0])
    with pytest.raises(ValueError, match=r"^y_test must not be all zeros"):
        approximation_curve(x, y, x, 0 * y, bands=[1.0], widths=[5], seed=0)
    net = BandlimitedRandomNet(5, 1.0, seed=0).fit(x, y)
    with pytest.raises(ValueError, match=r"^target must have a nonzero norm"):
        net.relative_error(x, 0 * y)
    assert 0 <= net.relative_error(x, y) < 1  # unchanged for a nonzero target


def test_relative_l2_refuses_integer_tensors_by_name() -> None:
    from neuronkit.theory.operators import relative_l2

    ints = torch.ones(2, 3, dtype=torch.long)
    with pytest.raises(TypeError, match=r"^pred must be a floating-point tensor"):
        relative_l2(ints, ints.float())
    with pytest.raises(TypeError, match=r"^target must be a floating-point tensor"):
        relative_l2(ints.float(), ints)


# --- multigrid building blocks: x in the weight's dtype ------------------------------------


def test_multigrid_blocks_name_an_input_of_another_dtype() -> None:
    from neuronkit.theory.operators import (
        MgConv,
        Prolongation,
        Restriction,
        prolong2d,
        restrict2d,
    )

    fine, coarse = torch.zeros(2, 3, 7, 7, dtype=F64), torch.zeros(2, 3, 3, 3, dtype=F64)
    weight = torch.zeros(3, 3, 3, 3)
    pattern = r"^x must have the weight's dtype torch.float32, got torch.float64"
    with pytest.raises(TypeError, match=pattern):
        restrict2d(fine, weight)
    with pytest.raises(TypeError, match=pattern):
        prolong2d(coarse, weight, (7, 7))
    with pytest.raises(TypeError, match=pattern):
        Restriction(3, 3)(fine)
    with pytest.raises(TypeError, match=pattern):
        Prolongation(3, 3)(coarse, (7, 7))
    with pytest.raises(TypeError, match=r"^f must have the model's dtype torch.float32"):
        MgConv(3, 2, levels=2)(fine)
    assert restrict2d(fine, weight.double()).shape == (2, 3, 3, 3)
    assert MgConv(3, 2, levels=2).double()(fine).shape == (2, 2, 7, 7)


# --- dynamical systems ---------------------------------------------------------------------


def test_dense_forward_and_backward_name_mismatched_dtypes() -> None:
    from neuronkit.theory.dynamical import dense_backward, dense_forward

    x, w, b = torch.ones(3, 2, dtype=F64), torch.ones(4, 2, dtype=F64), torch.ones(4, dtype=F64)
    assert dense_forward(x[:1], w, b, "relu").shape == (1, 4)  # a batch of one
    with pytest.raises(TypeError, match=r"^x must have the weight's dtype torch.float64"):
        dense_forward(x.float(), w, b)
    with pytest.raises(TypeError, match=r"^bias must have the weight's dtype torch.float32"):
        dense_forward(x.float(), w.float(), b)
    with pytest.raises(TypeError, match=r"^x must be a floating tensor"):
        dense_forward(x.long(), w, b)
    with pytest.raises(TypeError, match=r"^x must have the weight's dtype"):
        dense_backward(x.float(), torch.ones(3, 4, dtype=F64), w, b)


def test_neuron_layer_checks_its_dtype_like_dense_learner() -> None:
    from neuronkit.theory.dynamical import dense_learner, mlp_learner, neuron_layer

    for build in (
        lambda d: dense_learner(2, 3, lr=0.1, dtype=d),
        lambda d: neuron_layer(2, 3, lr=0.1, dtype=d),
        lambda d: mlp_learner([2, 3, 1], lr=0.1, dtype=d, granularity="neuron"),
    ):
        for bad in (torch.int64, "float64"):
            with pytest.raises(TypeError, match=r"^dtype must be a floating torch.dtype"):
                build(bad)
    assert neuron_layer(2, 3, lr=0.1, dtype=F32).initial_state()["n0"].weight.dtype == F32


def test_trajectory_of_zero_steps_and_input_functions_returning_no_mapping() -> None:
    from neuronkit.theory.dynamical import Port, constant, delay, simulate

    trajectory = simulate(constant(Port("c", (2,)), torch.zeros(2)), 0)
    assert trajectory.outputs == {"c": []}
    with pytest.raises(ValueError, match=r"no values of port 'c'.*0 steps"):
        trajectory.stack("c")
    assert simulate(constant(Port("c", (2,)), torch.zeros(2)), 3).stack("c").shape == (3, 2)
    system = delay(Port("x", (1,)), torch.zeros(1))
    with pytest.raises(TypeError, match=r"^inputs\(0\) must return a mapping port -> tensor"):
        simulate(system, 2, lambda t: torch.zeros(1))


# --- KAN bases -------------------------------------------------------------------------------


def test_bspline_basis_refuses_integer_inputs_and_too_few_knots() -> None:
    from neuronkit.theory.kan import bspline_basis, extended_grid

    knots = extended_grid(3, 5, 3)
    assert bspline_basis(torch.zeros(1, 3), knots, 3).shape == (1, 3, 8)
    with pytest.raises(TypeError, match=r"^x must be a floating tensor"):
        bspline_basis(torch.zeros(2, 3, dtype=torch.long), knots, 3)
    with pytest.raises(ValueError, match=r"^knots must have at least k \+ 2 = 5 columns"):
        bspline_basis(torch.zeros(2, 3), knots[:, :3], 3)  # was an empty [2, 3, 0] basis
    assert bspline_basis(torch.zeros(2, 3), knots[:, :5], 3).shape == (2, 3, 1)


def test_basis_values_returns_n_basis_functions_or_names_the_knots() -> None:
    """With knots for another size the B-spline basis had their n_knots - k - 1 functions."""
    from neuronkit.theory.kan import basis_values, extended_grid

    x = torch.zeros(4, 3)
    knots = extended_grid(3, 5, 3)  # [3, 12]: 8 functions of order 3
    assert basis_values("bspline", x, 8, knots=knots, k=3).shape == (4, 3, 8)
    with pytest.raises(ValueError, match=r"^knots must be \[in, n_basis \+ k \+ 1\] = \[in, 8\]"):
        basis_values("bspline", x, 4, knots=knots, k=3)
    for space in ("chebyshev", "fourier", "rbf", "wavelet"):
        assert basis_values(space, x, 5).shape == (4, 3, 5)


def test_bspline_linear_names_mismatched_dtypes_and_non_tensor_arguments() -> None:
    from neuronkit.theory.kan import bspline_linear

    x, coef = torch.zeros(4, 3), torch.zeros(2, 3, 8)
    base, bias = torch.zeros(2, 3), torch.zeros(2)
    assert bspline_linear(x, coef, base, bias, -1.0, 0.4, 3).shape == (4, 2)
    with pytest.raises(TypeError, match=r"^x must have the coef's dtype torch.float32"):
        bspline_linear(x.double(), coef, base, bias, -1.0, 0.4, 3)
    with pytest.raises(TypeError, match=r"^x must be a floating tensor"):
        bspline_linear(x.long(), coef, base, bias, -1.0, 0.4, 3)
    with pytest.raises(TypeError, match=r"^base_weight must have the coef's dtype"):
        bspline_linear(x, coef, base.double(), bias, -1.0, 0.4, 3)
    with pytest.raises(TypeError, match=r"^bias must be a torch.Tensor or None"):
        bspline_linear(x, coef, base, np.zeros(2), -1.0, 0.4, 3)
    out = bspline_linear(x.double(), coef.double(), base.double(), bias.double(), -1.0, 0.4, 3)
    assert out.dtype == F64


def test_matched_mlp_is_closest_beyond_4096_hidden_units() -> None:
    """The width search stopped at 4095 hidden units: 20002 parameters got 12286."""
    from neuronkit.theory.kan import matched_mlp, mlp_parameter_count

    model = matched_mlp(1, 1, 20002, depth=1)  # 3 h + 1 parameters
    hidden = model[0].out_features
    assert hidden == 6667
    assert mlp_parameter_count(1, hidden, 1, 1) == 20002
    assert sum(p.numel() for p in model.parameters()) == 20002
    assert matched_mlp(3, 2, 100, depth=2)[0].out_features == min(
        range(1, 100), key=lambda h: abs(mlp_parameter_count(3, h, 2, 2) - 100)
    )


# --- networks with a documented input layout -----------------------------------------------


def test_tanh_net_relu_rnn_and_ntk_network_check_their_documented_layout() -> None:
    """1-D inputs gave a scalar (not ``[B]``) or an IndexError; a wrong width torch's bare
    "mat1 and mat2 shapes cannot be multiplied"."""
    from neuronkit.theory.lazy_rich import ReluRNN, TwoLayerTanhNet, low_rank_weight
    from neuronkit.theory.ntk import NTKNetwork, relu_dual

    net = TwoLayerTanhNet(low_rank_weight(5, 3, 2, 1.0, seed=0), torch.ones(5))
    assert net(torch.zeros(1, 3, dtype=F64)).shape == (1,)
    for bad in (torch.zeros(3, dtype=F64), torch.zeros(4, 2, dtype=F64)):
        with pytest.raises(ValueError, match=r"^x must have shape \[B, 3\]"):
            net(bad)
    rnn = ReluRNN(torch.zeros(4, 3), torch.zeros(4, 4), torch.zeros(2, 4))
    assert rnn(torch.zeros(1, 1, 3, dtype=F64)).shape == (1, 1, 2)
    for bad in (torch.zeros(5, 3, dtype=F64), torch.zeros(2, 5, 2, dtype=F64)):
        with pytest.raises(ValueError, match=r"^x must have shape \[B, T, 3\]"):
            rnn(bad)
    ntk_net = NTKNetwork(3, 8, 2, relu_dual(), seed=0)
    assert ntk_net(torch.zeros(1, 3, dtype=F64)).shape == (1,)
    with pytest.raises(ValueError, match=r"^x must have shape \[B, 3\]"):
        ntk_net(torch.zeros(3, dtype=F64))


def test_modules_checked_by_layout_still_give_empirical_ntks() -> None:
    """The layout checks read no values: they hold under torch.func's vmap over jacrev."""
    from neuronkit.theory.lazy_rich import TwoLayerTanhNet
    from neuronkit.theory.measures import empirical_ntk
    from neuronkit.theory.ntk import NTKNetwork, relu_dual

    x = torch.randn(4, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    for model in (
        TwoLayerTanhNet(torch.randn(6, 3, dtype=F64), torch.ones(6, dtype=F64)),
        NTKNetwork(3, 8, 2, relu_dual(), seed=0),
    ):
        kernel = empirical_ntk(model, x)
        assert kernel.shape == (4, 4)
        torch.testing.assert_close(kernel, kernel.T)


def test_power_law_predict_returns_an_array_for_a_number_and_a_tensor() -> None:
    from neuronkit.theory.scaling import fit_power_law

    fit = fit_power_law([1.0, 2.0, 3.0], [3.0, 2.0, 1.0])
    one = fit.predict(5.0)
    assert isinstance(one, np.ndarray)
    assert one.shape == ()
    many = fit.predict(torch.tensor([1.0, 2.0]))
    assert isinstance(many, np.ndarray)
    assert many.shape == (2,)


def test_function_tasks_are_float32_under_a_float64_default() -> None:
    """Documented float32: with torch's default dtype float64 the inputs were float64 while
    the targets were float32."""
    from neuronkit.theory.data import function_task

    default = torch.get_default_dtype()
    torch.set_default_dtype(F64)
    try:
        task = function_task("exp_sin", 4, 3, seed=0)
    finally:
        torch.set_default_dtype(default)
    assert {t.dtype for t in (task.x_train, task.y_train, task.x_test, task.y_test)} == {F32}
    same = function_task("exp_sin", 4, 3, seed=0)  # under float32 the numbers are unchanged
    assert torch.equal(task.x_train, same.x_train)
    assert torch.equal(task.y_test, same.y_test)


# --- functional cores and submodules: inputs in the parameters' dtype ----------------------


def test_timescale_readout_and_step_name_mismatched_dtypes() -> None:
    from neuronkit.theory.timescales import TimescaleRNN, timescale_rnn_step

    rnn = TimescaleRNN(1, 4, seed=0)
    with pytest.raises(TypeError, match=r"^h must have the model's dtype torch.float32"):
        rnn.readout(torch.zeros(2, 4, dtype=F64))
    h, w = torch.zeros(2, 4), torch.zeros(4, 4)
    assert timescale_rnn_step(h, h, w, torch.zeros(4), torch.ones(4)).shape == (2, 4)
    with pytest.raises(TypeError, match=r"^h must have the w_rec's dtype torch.float32"):
        timescale_rnn_step(h.double(), h, w, torch.zeros(4), torch.ones(4))
    with pytest.raises(TypeError, match=r"^bias must have the w_rec's dtype"):
        timescale_rnn_step(h, h, w, torch.zeros(4, dtype=F64), torch.ones(4))


def test_process_building_blocks_check_their_inputs() -> None:
    from neuronkit.theory.processes import (
        GaussianDecoder,
        MultiheadAttentionBlock,
        NeuralProcess,
        mpnp_losses,
    )

    decoder = GaussianDecoder(1, 8, 1, 8)
    xt, r = torch.zeros(2, 4, 1), torch.zeros(2, 8)
    mean, std = decoder(xt, r)
    assert mean.shape == std.shape == (2, 4, 1)
    assert decoder(xt.expand(3, 2, 4, 1), r.expand(3, 2, 8))[0].shape == (3, 2, 4, 1)
    with pytest.raises(TypeError, match=r"^r must have the model's dtype torch.float32"):
        decoder(xt, r.double())
    with pytest.raises(ValueError, match=r"^x must have shape \[\.\.\., N, 1\]"):
        decoder(torch.zeros(2, 4, 2), r)
    with pytest.raises(ValueError, match=r"^queries must have shape \[B, Nq, 8\]"):
        MultiheadAttentionBlock(8, 2)(torch.zeros(3, 8), torch.zeros(4, 8))  # unbatched
    process = NeuralProcess(hidden=8, seed=0)
    with pytest.raises(TypeError, match=r"^x must have the model's dtype torch.float32"):
        process.latent(torch.zeros(2, 3, 1, dtype=F64), torch.zeros(2, 3, 1, dtype=F64))
    context, pseudo = torch.zeros(2, 3, 8), torch.zeros(2, 2, 4, 8)
    yt = torch.zeros(2, 4, 1)
    assert set(mpnp_losses(decoder, context, pseudo, xt, yt)) == {
        "marginal",
        "amortized",
        "pseudo",
        "total",
    }
    with pytest.raises(TypeError, match=r"^context must have the decoder's dtype torch.float32"):
        mpnp_losses(decoder, context.double(), pseudo.double(), xt.double(), yt.double())
    with pytest.raises(TypeError, match=r"^yt must be a torch.Tensor"):
        mpnp_losses(decoder, context, pseudo, xt, yt.numpy())


def test_functions_running_any_model_name_an_input_of_another_dtype() -> None:
    """relu_preactivations, decision_boundary_points, randomized_accuracy and
    train_regression passed torch's bare "mat1 and mat2 must have the same dtype" on."""
    from neuronkit.theory.complexity import decision_boundary_points, relu_preactivations
    from neuronkit.theory.kan import train_regression
    from neuronkit.theory.simplicity import randomized_accuracy

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    x = torch.randn(20, 3, dtype=F64)
    y = torch.zeros(20, dtype=torch.long)
    pattern = r"^x must have the model's parameter dtype torch.float32, got dtype torch.float64"
    with pytest.raises(TypeError, match=pattern):
        relu_preactivations(model, x)
    with pytest.raises(TypeError, match=pattern):
        decision_boundary_points(model, x, 3, seed=0)
    with pytest.raises(TypeError, match=pattern):
        randomized_accuracy(model, x, y, [0], seed=0)
    with pytest.raises(TypeError, match=pattern):
        train_regression(torch.nn.Linear(3, 1), x, x.sum(1), steps=1)
    assert len(relu_preactivations(model, x.float())) == 1


def test_train_classifier_names_the_inputs_of_another_dtype() -> None:
    from neuronkit.theory.scaling import train_classifier

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    x, y = torch.randn(8, 4), torch.zeros(8, dtype=torch.long)
    kw = {"epochs": 1, "batch_size": 4, "seed": 0}
    with pytest.raises(TypeError, match=r"^x_test must have the model's parameter dtype"):
        train_classifier(model, x, y, x.double(), y, **kw)
    with pytest.raises(TypeError, match=r"^x_train must have the model's parameter dtype"):
        train_classifier(model, x.double(), y, x, y, **kw)
    assert len(train_classifier(model, x, y, x, y, **kw).test_error) == 2


def test_models_converting_their_input_themselves_still_run() -> None:
    """Only torch's own dtype error is renamed: a model that casts its input is not refused."""
    from neuronkit.theory.complexity import relu_preactivations
    from neuronkit.theory.simplicity import randomized_accuracy

    class Casting(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU())
            self.head = torch.nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.net(x.float()))

    x = torch.randn(6, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    assert relu_preactivations(Casting(), x)[0].shape == (6, 4)
    assert 0 <= randomized_accuracy(Casting(), x, torch.zeros(6, dtype=torch.long), []) <= 1
