"""Quadratic neurons and ReLinear (Fan et al.)."""

import pytest
import torch

from neuronkit.theory.quadratic import (
    QuadraticLinear,
    QuadraticNet,
    conventional_net,
    quadratic_forward,
    quadratic_net_size,
    relinear_param_groups,
)


def test_forward_matches_the_neuron_formula() -> None:
    layer = QuadraticLinear(3, 2, init="random", seed=0)
    x = torch.randn(5, 3)
    y = layer(x)
    for o in range(2):
        r = x @ layer.weight_r[o] + layer.bias_r[o]
        g = x @ layer.weight_g[o] + layer.bias_g[o]
        expected = r * g + (x * x) @ layer.weight_b[o] + layer.bias_c[o]
        assert torch.allclose(y[:, o], expected, atol=1e-6)


def test_relinear_init_is_the_conventional_neuron() -> None:
    layer = QuadraticLinear(4, 3, seed=1)
    x = torch.randn(6, 4)
    linear = torch.nn.functional.linear(x, layer.weight_r, layer.bias_r)
    assert torch.allclose(layer(x), linear, atol=1e-6)
    assert torch.equal(layer.bias_g, torch.ones(3))
    assert not layer.weight_g.any()
    assert not layer.weight_b.any()
    assert not layer.bias_c.any()


def test_seeded_and_parameter_count() -> None:
    a, b = QuadraticNet([3, 4, 1], seed=2), QuadraticNet([3, 4, 1], seed=2)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert sum(p.numel() for p in a.parameters()) == quadratic_net_size([3, 4, 1])
    c = QuadraticNet([3, 4, 1], quadratic_output=False)
    assert sum(p.numel() for p in c.parameters()) == quadratic_net_size(
        [3, 4, 1], quadratic_output=False
    )
    assert sum(p.numel() for p in conventional_net([3, 4, 1]).parameters()) == 21


def test_single_neuron_can_draw_a_sphere() -> None:
    layer = QuadraticLinear(2, 1, init="random", seed=0)
    with torch.no_grad():
        layer.weight_r.zero_()
        layer.bias_r.zero_()
        layer.weight_b.fill_(1.0)
        layer.bias_c.fill_(-1.0)
    x = torch.tensor([[0.0, 0.5], [2.0, 0.0]])
    assert torch.allclose(layer(x)[:, 0], torch.tensor([-0.75, 3.0]))


def test_param_groups_scale_learning_rates() -> None:
    net = QuadraticNet([2, 3, 1], quadratic_output=False, seed=0)
    groups = relinear_param_groups(net, 0.1, gamma_g=0.5, gamma_b=0.01, beta_b=1e-3)
    by_name = {g["name"]: g for g in groups}
    assert by_name["quadratic_g"]["lr"] == pytest.approx(0.05)
    assert by_name["quadratic_b"]["lr"] == pytest.approx(0.001)
    assert by_name["quadratic_b"]["weight_decay"] == pytest.approx(1e-3)
    n = sum(p.numel() for g in groups for p in g["params"])
    assert n == sum(p.numel() for p in net.parameters())
    torch.optim.SGD(groups, lr=0.1)  # accepted by an optimizer


def test_gamma_zero_keeps_quadratic_terms_frozen() -> None:
    net = QuadraticNet([2, 3, 1], seed=0)
    opt = torch.optim.SGD(relinear_param_groups(net, 0.1, gamma_g=0.0, gamma_b=0.0), lr=0.1)
    before = [
        p.clone()
        for m in net.modules()
        if isinstance(m, QuadraticLinear)
        for p in m.g_parameters() + m.b_parameters()
    ]
    net(torch.randn(8, 2)).pow(2).mean().backward()
    opt.step()
    after = [
        p
        for m in net.modules()
        if isinstance(m, QuadraticLinear)
        for p in m.g_parameters() + m.b_parameters()
    ]
    assert all(torch.equal(a, b) for a, b in zip(before, after))


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="out_features"):
        QuadraticLinear(3, 0)
    with pytest.raises(ValueError, match="init"):
        QuadraticLinear(3, 2, init="xavier")
    with pytest.raises(ValueError, match="widths"):
        QuadraticNet([3])
    with pytest.raises(ValueError, match=r"widths\[1\]"):
        QuadraticNet([3, -1, 1])
    with pytest.raises(ValueError, match="in_features"):
        QuadraticLinear(3, 2)(torch.randn(4, 5))
    with pytest.raises(ValueError, match="lr"):
        relinear_param_groups(QuadraticNet([2, 1]), 0.0)
    layer = QuadraticLinear(3, 2)
    with pytest.raises(ValueError, match="weight_g"):
        quadratic_forward(
            torch.randn(2, 3),
            layer.weight_r,
            layer.bias_r,
            torch.zeros(2, 4),
            layer.bias_g,
            layer.weight_b,
            layer.bias_c,
        )


def test_default_gammas_are_the_reference_codes() -> None:
    # FengleiFan/ReLinear qtrainer_10_5.py: lr 0.1, lr_gb 1e-5 for both the g and the b group
    net = QuadraticNet([2, 3, 1], seed=0)
    by_name = {g["name"]: g for g in relinear_param_groups(net, 0.1)}
    assert by_name["linear"]["lr"] == pytest.approx(0.1)
    assert by_name["quadratic_g"]["lr"] == pytest.approx(1e-5)
    assert by_name["quadratic_b"]["lr"] == pytest.approx(1e-5)
