"""Dtype tests: models of another dtype than the default, and a float64 default dtype.

One-hots, constants and accumulators follow the tensors they meet, not
``torch.get_default_dtype()``; data loaders follow the default dtype unless told otherwise.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import nn

from neuronkit.pruning import DependencyGraph, DigitsCNN, layer_hessians
from neuronkit.pruning.bricks import tasks as brick_tasks
from neuronkit.pruning.bricks.discovery import BrickDiscovery, ffn_activations
from neuronkit.pruning.bricks.model import BrickTransformer, task_accuracy, train_multitask
from neuronkit.pruning.bricks.routing import (
    ExpertRouter,
    MoEfication,
    RoutedGate,
    oracle_gate,
    train_router,
)
from neuronkit.pruning.bricks.tasks import make_task_data
from neuronkit.pruning.data import load_digits
from neuronkit.pruning.dynamic import DynamicCNN, mask_loss

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors


@pytest.fixture
def default_float64() -> Iterator[None]:
    """torch's default dtype is float64 for the test, restored afterwards."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


# --------------------------------------------------------------------------- bricks


def _bricks(dtype: torch.dtype | None = None):
    data = make_task_data(list(brick_tasks.TASKS)[:2], 32, seed=0)
    torch.manual_seed(0)
    model = BrickTransformer(12, data.tokens.shape[1], d_model=16, n_heads=2, n_layers=1, d_ff=32)
    model = model.eval()
    return (model if dtype is None else model.to(dtype)), data


def _moe_everything(model: BrickTransformer, data) -> dict:
    """MoEfication + oracle / routed gates + BrickDiscovery.transform on ``model``."""
    moe = MoEfication(n_experts=4, router_epochs=1).fit(model, data)
    inputs, hidden, _ = ffn_activations(model, data, labelled_only=False)
    x, h = inputs[0], hidden[0]
    oracle = oracle_gate(model.ffns[0], moe.labels_[0], 4, 2)
    routed = moe.gates(0.5)[0]
    bd = BrickDiscovery(n_partitions=2).fit(model, data)
    _, bd_hidden, _ = ffn_activations(model, data)
    return {
        "moe": moe,
        "x": x,
        "hidden": h,
        "oracle": oracle(x),
        "routed": routed(x),
        "oracle_acc": task_accuracy(model, data, gates=moe.oracle_gates(model, 0.5)),
        "routed_acc": task_accuracy(model, data, gates=moe.gates(0.5)),
        "recall": moe.recall(model, data, 0.5),
        "bd": bd,
        "transform": bd.transform(bd_hidden),
    }


def test_bricks_trainers_name_float16_parameters_adam_cannot_train() -> None:
    """Adam's eps (1e-8) is 0 in float16: a float16 brick model or router trained to NaN
    weights after one step and reported NaN losses, with no error."""
    model, data = _bricks(torch.float16)
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(TypeError, match=r"model: Adam cannot train float16 parameters \('"):
        train_multitask(model, data, steps=3, batch_size=8, warmup=1)
    with pytest.raises(TypeError, match=r"parameters: .* \('parameters\[0\]' and 0 more"):
        train_multitask(model, data, steps=3, parameters=[model.head.weight])
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    router = ExpertRouter(16, 4).half()
    x, h = torch.randn(64, 16).half(), torch.rand(64, 32).half()
    with pytest.raises(TypeError, match=r"router: Adam cannot train float16 parameters"):
        train_router(router, x, h, np.arange(32) % 4, epochs=2)
    result = train_multitask(model.bfloat16(), data, steps=3, batch_size=8, warmup=1, log_every=1)
    assert all(np.isfinite(result.loss))  # bfloat16, as the message suggests, trains


def test_float64_model_under_float32_default_routes_like_the_float32_one() -> None:
    m32, data = _bricks()
    m64 = copy.deepcopy(m32).double()
    r32 = _moe_everything(m32, data)
    r64 = _moe_everything(m64, data)
    for key in ("hidden", "oracle", "routed", "transform"):
        value = r64[key][0] if key == "transform" else r64[key]
        assert value.dtype == torch.float64, key
    assert all(r.proj.weight.dtype == torch.float64 for r in r64["moe"].routers_)
    for a, b in zip(r32["moe"].labels_, r64["moe"].labels_):
        np.testing.assert_array_equal(a, b)  # the same experts from the same weights
    # the same routing decisions (the oracle is exact; the router is trained in its precision)
    assert torch.equal(r64["oracle"], r32["oracle"].double())
    assert float((r64["routed"] == r32["routed"].double()).float().mean()) >= 0.95
    for t32, t64 in zip(r32["transform"], r64["transform"]):
        torch.testing.assert_close(t64, t32.double(), atol=1e-5, rtol=1e-5)


def test_router_with_float64_keys_starts_at_the_float64_centres() -> None:
    keys = torch.randn(8, 4, dtype=torch.float64)
    labels = np.repeat(np.arange(2), 4)
    router = ExpertRouter(4, 2, keys=keys, labels=labels)
    want = torch.nn.functional.normalize(keys, dim=1).view(2, 4, 4).mean(1)
    torch.testing.assert_close(router.proj.weight.double(), want, atol=1e-6, rtol=1e-6)
    # float32 keys: the centres as before, bit for bit
    k32 = keys.float()
    r32 = ExpertRouter(4, 2, keys=k32, labels=labels)
    want32 = torch.nn.functional.normalize(k32, dim=1).view(2, 4, 4).sum(1) / 4.0
    assert r32.proj.weight.dtype == torch.float32
    torch.testing.assert_close(r32.proj.weight, want32, atol=0, rtol=0)


def test_routed_and_oracle_gates_of_a_float64_ffn() -> None:
    m32, data = _bricks()
    m64 = copy.deepcopy(m32).double()
    labels = np.repeat(np.arange(4), 8)
    router = ExpertRouter(16, 4).double()
    x = torch.randn(5, 16, dtype=torch.float64)
    assert RoutedGate(router, labels, 2)(x).dtype == torch.float64
    assert oracle_gate(m64.ffns[0], labels, 4, 2)(x).dtype == torch.float64
    acc = task_accuracy(m64, data, gates=[oracle_gate(m64.ffns[0], labels, 4, 2)])
    assert torch.isfinite(acc).all()


def test_bricks_under_a_float64_default(default_float64: None) -> None:
    model, data = _bricks()
    assert model.ffns[0].w_in.weight.dtype == torch.float64
    r = _moe_everything(model, data)
    assert r["oracle"].dtype == torch.float64
    assert r["routed"].dtype == torch.float64
    assert r["transform"][0].dtype == torch.float64
    assert all(np.isfinite(r["recall"]))


def test_float32_bricks_under_a_float64_default(default_float64: None) -> None:
    model, data = _bricks(torch.float32)
    r = _moe_everything(model, data)
    assert r["oracle"].dtype == torch.float32
    assert r["routed"].dtype == torch.float32
    assert r["transform"][0].dtype == torch.float32
    labels = np.repeat(np.arange(4), 8)
    routed = RoutedGate(ExpertRouter(16, 4).float(), labels, 2)
    assert torch.isfinite(task_accuracy(model, data, gates=[routed])).all()


# --------------------------------------------------------------------------- OBS-PA


def _conv_bn(dtype: torch.dtype) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    m = nn.Sequential(
        nn.Conv2d(3, 8, 3),
        nn.BatchNorm2d(8, affine=False),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 4),
    ).eval()
    return m.to(dtype), torch.randn(2, 3, 8, 8).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_data_free_hessians_after_a_plain_batchnorm_of_another_dtype(dtype) -> None:
    m, x = _conv_bn(dtype)
    h = layer_hessians(DependencyGraph(m, x), samples=4)
    assert h
    assert all(torch.isfinite(v.float()).all() for v in h.values())


def test_data_free_hessians_of_a_float32_model_under_a_float64_default(
    default_float64: None,
) -> None:
    m, x = _conv_bn(torch.float32)
    h = layer_hessians(DependencyGraph(m, x), samples=4)
    assert h
    assert all(torch.isfinite(v).all() for v in h.values())


# --------------------------------------------------------------------------- FTWT


def test_ftwt_loss_and_macs_follow_a_float32_model_under_a_float64_default(
    default_float64: None,
) -> None:
    torch.manual_seed(0)
    model = DigitsCNN(widths=(4, 6, 5)).float().eval()
    head = nn.Sequential(model.pool, nn.Flatten(), model.fc)
    net = DynamicCNN.from_sequential(model.features, head, ratio=0.8).eval()
    x = torch.rand(3, 1, 8, 8, dtype=torch.float32)
    for gating in ("dense", "oracle", "dynamic"):
        out = net.run(x, gating)
        assert out.logits.dtype == torch.float32
        assert out.macs.dtype == torch.float32, gating
        assert all(k.dtype == torch.float32 for k in out.kept_in), gating
        assert mask_loss(out.mask_logits, out.targets).dtype == torch.float32, gating


def test_ftwt_macs_and_loss_of_a_float64_model_under_the_float32_default() -> None:
    torch.manual_seed(0)
    model = DigitsCNN(widths=(4, 6, 5)).double().eval()
    head = nn.Sequential(model.pool, nn.Flatten(), model.fc)
    net = DynamicCNN.from_sequential(model.features, head, ratio=0.8).eval()
    out = net.run(torch.rand(3, 1, 8, 8, dtype=torch.float64), "dynamic")
    assert out.macs.dtype == torch.float64
    assert mask_loss(out.mask_logits, out.targets).dtype == torch.float64


# --------------------------------------------------------------------------- digits


def test_digits_follow_the_default_dtype(default_float64: None) -> None:
    d = load_digits(0.25, seed=0)
    assert d.x_train.dtype == torch.float64
    assert d.x_test.dtype == torch.float64
    assert d.y_train.dtype == torch.int64
    f = load_digits(0.25, seed=0, dtype=torch.float32)
    assert f.x_train.dtype == torch.float32
    assert f.x_test.dtype == torch.float32
    torch.testing.assert_close(f.x_train.double(), d.x_train, atol=1e-5, rtol=1e-5)


def test_digits_are_float32_under_the_float32_default() -> None:
    d = load_digits(0.25, seed=0)
    e = load_digits(0.25, seed=0, dtype=torch.float32)
    assert d.x_train.dtype == torch.float32
    assert torch.equal(d.x_train, e.x_train)
    assert torch.equal(d.x_test, e.x_test)
    g = load_digits(0.25, seed=0, dtype=torch.float64)
    assert g.x_test.dtype == torch.float64
    assert torch.equal(g.y_train, d.y_train)


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, "float32", np.float32])
def test_digits_reject_a_bad_dtype(dtype) -> None:
    with pytest.raises((TypeError, ValueError), match="dtype must be"):
        load_digits(dtype=dtype)
