"""``torch.func`` transforms through spiking networks: per-example gradients (``vmap(grad)``),
forward mode (``jvp``), model ensembles (``stack_module_state``), with the surrogate gradient in
every mode and input checks that still run."""

import pytest
import torch
from torch import nn
from torch.func import functional_call, grad, jvp, stack_module_state, vmap

import neuronkit.snn as snn

NEURONS = {
    "lif": snn.LIF,
    "if": snn.IF,
    "plif": snn.PLIF,
    "alif": snn.ALIF,
    "cuba": snn.CuBaLIF,
}


def _net(neuron: nn.Module) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(snn.SeqLinear(4, 8), neuron, snn.SeqLinear(8, 3))


def _assert_matches_loop(net: nn.Module, x: torch.Tensor, y: torch.Tensor, loss) -> None:
    """``vmap(grad)`` over the batch axis of ``x: [T, B, ...]`` and targets ``y: [B]`` gives
    each example's gradient of ``loss(out [T, 1, ...], y_b [1])``, as a backward per example."""
    params = {k: v.detach() for k, v in net.named_parameters()}
    buffers = dict(net.named_buffers())

    def one(p, x_b, y_b):
        return loss(functional_call(net, (p, buffers), (x_b.unsqueeze(1),)), y_b.unsqueeze(0))

    grads = vmap(grad(one), in_dims=(None, 1, 0))(params, x, y)
    for b in range(x.shape[1]):
        net.zero_grad()
        loss(net(x[:, b : b + 1]), y[b : b + 1]).backward()
        for name, p in net.named_parameters():
            torch.testing.assert_close(grads[name][b], p.grad, atol=1e-6, rtol=1e-5)


def _squares(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return out.pow(2).sum()


@pytest.mark.parametrize(
    "neuron",
    [
        lambda: snn.LIF(),
        lambda: snn.LIF(fused=False),
        lambda: snn.IF(),
        lambda: snn.IF(fused=False),
        lambda: snn.PLIF(),
        lambda: snn.PLIF(fused=False),
        lambda: snn.ALIF(),
        lambda: snn.CuBaLIF(),
    ],
    ids=["lif", "lif-reference", "if", "if-reference", "plif", "plif-reference", "alif", "cuba"],
)
def test_per_example_gradients_equal_one_backward_per_example(neuron):
    net = _net(neuron())
    x = 3 * torch.randn(6, 4, 4, generator=torch.Generator().manual_seed(1))
    _assert_matches_loop(net, x, torch.zeros(4), _squares)


@pytest.mark.parametrize("kind", NEURONS)
def test_forward_mode_is_the_surrogate_gradient(kind):
    """jvp along a parameter direction equals the reverse-mode gradient's inner product with it:
    forward and reverse mode use the same surrogate."""
    net = _net(NEURONS[kind]())
    x = 3 * torch.randn(6, 2, 4, generator=torch.Generator().manual_seed(2))
    params = {k: v.detach() for k, v in net.named_parameters()}
    gen = torch.Generator().manual_seed(3)
    tangent = {k: torch.randn(v.shape, generator=gen) for k, v in params.items()}

    def f(p):
        return functional_call(net, p, (x,)).pow(2).sum()

    _, directional = jvp(f, (params,), (tangent,))
    gradient = grad(f)(params)
    expected = sum((gradient[k] * tangent[k]).sum() for k in params)
    assert float(expected.abs()) > 1e-3  # the spikes carry a gradient at all
    torch.testing.assert_close(directional, expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    "loss",
    ["spike_count_ce", "mean_membrane_ce", "softmax_sum_ce", "tet_ce", "spike_count_mse"],
)
def test_readout_losses_under_vmap(loss):
    net = nn.Sequential(snn.SeqLinear(5, 3), snn.LIF())
    x = 2 * torch.randn(5, 3, 5, generator=torch.Generator().manual_seed(4))
    _assert_matches_loop(net, x, torch.tensor([2, 0, 1]), getattr(snn, loss))


def test_convolutional_network_with_integrator_under_vmap():
    torch.manual_seed(0)
    net = nn.Sequential(
        snn.SeqConv2d(1, 4, 3, padding=1),
        snn.LIF(),
        snn.SeqAvgPool2d(2),
        snn.SeqFlatten(),
        snn.SeqLinear(64, 3),
        snn.LI(),
    )
    x = torch.rand(4, 3, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    _assert_matches_loop(net, 4 * x, torch.zeros(3), _squares)


def test_ensemble_of_models_with_learnable_tau():
    torch.manual_seed(0)
    models = [nn.Sequential(snn.SeqLinear(5, 4), snn.PLIF(), snn.SeqLinear(4, 2)) for _ in range(3)]
    with torch.no_grad():
        for i, model in enumerate(models):
            model[1].w.fill_(float(i) - 1.0)  # a different time constant per member
    params, buffers = stack_module_state(models)
    x = 2 * torch.randn(6, 2, 5, generator=torch.Generator().manual_seed(6))
    out = vmap(lambda p, b: functional_call(models[0], (p, b), (x,)))(params, buffers)
    torch.testing.assert_close(out, torch.stack([model(x) for model in models]))


def test_spikes_and_encoders_under_vmap():
    x = torch.rand(3, 2, 5, generator=torch.Generator().manual_seed(7))
    assert torch.equal(vmap(snn.heaviside)(x - 0.5), snn.heaviside(x - 0.5))
    assert torch.equal(
        vmap(lambda row: snn.latency_encode(row, 4), out_dims=1)(x), snn.latency_encode(x, 4)
    )
    assert torch.equal(
        vmap(lambda row: snn.direct_encode(row, 4), out_dims=1)(x), snn.direct_encode(x, 4)
    )
    surrogate = snn.ATan()
    _, tangent = jvp(surrogate, (x - 0.5,), (torch.ones_like(x),))
    torch.testing.assert_close(tangent, surrogate.derivative(x - 0.5))


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "reference"])
def test_input_checks_still_run_under_vmap(fused):
    net = _net(snn.LIF(fused=fused))
    x = torch.randn(6, 4, 4)
    x[2, 1, 0] = float("nan")  # in one example only
    params = {k: v.detach() for k, v in net.named_parameters()}
    with pytest.raises(ValueError, match="x must be finite"):
        vmap(lambda x_b: net[1](x_b.unsqueeze(1)), in_dims=1)(x)
    with pytest.raises(ValueError, match=r"target must hold class labels in \[0, 2\]"):
        vmap(
            grad(lambda p, x_b, t: snn.spike_count_ce(functional_call(net, p, (x_b,)), t)),
            in_dims=(None, 1, 0),
        )(params, x.nan_to_num().unsqueeze(2), torch.tensor([0, 1, 3, 0]).unsqueeze(1))
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        vmap(lambda row: snn.latency_encode(row, 4))(torch.tensor([[0.5], [1.5]]))


@pytest.mark.parametrize("kind", ["lif", "if", "plif"])
@pytest.mark.parametrize("requires_grad", [False, True], ids=["no-grad", "grad"])
def test_autograd_forward_ad_on_the_fused_path(kind, requires_grad):
    """``torch.autograd.forward_ad`` dual inputs take the reference recurrence (the fused
    path's out= buffers and autograd Function have no forward-mode rule): same spikes, and the
    tangent equals ``torch.func.jvp``'s."""
    import torch.autograd.forward_ad as fwAD

    net = _net(NEURONS[kind]())
    x = (3 * torch.randn(6, 2, 4, generator=torch.Generator().manual_seed(5))).requires_grad_(
        requires_grad
    )
    tangent = torch.randn(x.shape, generator=torch.Generator().manual_seed(6))
    with fwAD.dual_level():
        out = fwAD.unpack_dual(net(fwAD.make_dual(x, tangent)))
    expected, expected_tangent = jvp(net, (x.detach(),), (tangent,))
    assert torch.equal(out.primal, expected)
    assert float(expected_tangent.detach().abs().max()) > 1e-3
    torch.testing.assert_close(out.tangent, expected_tangent)


def test_pdsg_forward_mode_and_clear_vmap_error():
    """PDSG's Gaussian is its forward-mode rule too; per-example vmap cannot pool its batch
    statistics, so it is refused by name."""
    from neuronkit.snn.attacks import PDSG

    net = _net(snn.LIF(threshold=0.5))
    snn.swap_surrogate(net, PDSG())
    x = 3 * torch.randn(6, 1, 4, generator=torch.Generator().manual_seed(7))
    tangent = torch.randn(x.shape, generator=torch.Generator().manual_seed(8))

    def restart() -> None:
        for module in net.modules():
            if isinstance(getattr(module, "surrogate", None), PDSG):
                module.surrogate.begin()

    restart()
    _, directional = jvp(net, (x,), (tangent,))
    restart()
    jacobian = torch.func.jacrev(net)(x).reshape(directional.numel(), x.numel())
    assert float(directional.abs().max()) > 1e-3
    torch.testing.assert_close(directional.flatten(), jacobian @ tangent.flatten())
    with pytest.raises(RuntimeError, match=r"PDSG cannot run under torch\.func\.vmap"):
        vmap(lambda x_b: net(x_b.unsqueeze(1)), in_dims=1)(x.expand(6, 3, 4))
