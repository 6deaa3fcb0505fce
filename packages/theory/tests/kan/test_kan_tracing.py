"""KAN / S-KAN under torch.export, torch.compile, torch.jit.trace (ONNX) and torch.fx."""

from __future__ import annotations

import io

import pytest
import torch

import neuronkit.theory.kan.basis as kan_basis
from neuronkit.theory.kan import KAN, SKAN, SPACES


def _clear_basis_caches() -> None:
    """Empty the B-spline fast path's module-level caches (whatever their names)."""
    kan_basis._POLY_CACHE.clear()
    for name in (
        "_column_offsets",
        "_flat_offsets",
        "_cached_column_offsets",
        "_cached_flat_offsets",
    ):
        clear = getattr(getattr(kan_basis, name, None), "cache_clear", None)
        if clear is not None:
            clear()


def _cached_tensors() -> list[torch.Tensor]:
    """The tensors in the B-spline fast path's dict cache (the lru_caches are checked through
    the values eager calls give)."""
    return list(kan_basis._POLY_CACHE.values())


def test_export_leaves_no_traced_tensors_in_the_basis_caches() -> None:
    # the caches were filled with FakeTensors while torch.export traced on cold caches: later
    # eager calls gave other numbers (max diff 0.28) and a second export failed ("fake tensor
    # in the exported program constant's list")
    x = torch.rand(5, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1
    model = KAN([3, 4, 2], seed=0).eval()
    with torch.no_grad():
        ref = model(x)
    _clear_basis_caches()
    first = torch.export.export(model, (x,))
    assert all(type(t) is torch.Tensor for t in _cached_tensors())
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref, rtol=0, atol=0)
        assert all(type(t) is torch.Tensor for t in _cached_tensors())
        second = torch.export.export(model, (x,))  # warm caches now
        x2 = torch.rand(5, 3, generator=torch.Generator().manual_seed(1)) * 2 - 1
        for ep in (first, second):
            torch.testing.assert_close(ep.module()(x2), model(x2))
        torch.testing.assert_close(model(x), ref, rtol=0, atol=0)


def test_compiling_on_cold_caches_with_input_gradients() -> None:
    # torch.compile of a B-spline KAN with an input that requires grad, on empty caches,
    # crashed in dynamo ("'dsilu' ... aliases an input or output"); and the eager calls after
    # it must not read tensors made while compiling
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(5, 3, generator=gen) * 2 - 1
    model = KAN([3, 4, 2], seed=0)
    xe = x.clone().requires_grad_()
    ref = model(xe)
    (ref_grad,) = torch.autograd.grad(ref.sum(), xe)
    _clear_basis_caches()
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    xc = x.clone().requires_grad_()
    out = compiled(xc)
    (grad,) = torch.autograd.grad(out.sum(), xc)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(grad, ref_grad)
    assert all(type(t) is torch.Tensor for t in _cached_tensors())
    xe2 = x.clone().requires_grad_()
    again = model(xe2)
    torch.testing.assert_close(again, ref, rtol=0, atol=0)
    torch.testing.assert_close(torch.autograd.grad(again.sum(), xe2)[0], ref_grad)


@pytest.mark.filterwarnings(
    "ignore::FutureWarning", "ignore::DeprecationWarning"
)  # jit, legacy ONNX
def test_multilayer_bspline_kan_traces_with_torch_jit() -> None:
    # the fast path's autograd Function failed under torch.jit.trace (unordered_map::at), so a
    # multi-layer KAN could neither be traced nor exported by ONNX's legacy exporter
    gen = torch.Generator().manual_seed(0)
    model = KAN([3, 4, 2], seed=0).eval()
    x = torch.rand(5, 3, generator=gen) * 2 - 1
    traced = torch.jit.trace(model, (x,))
    x2 = torch.rand(7, 3, generator=gen) * 2.4 - 1.2  # another batch size, beyond the grid
    with torch.no_grad():
        torch.testing.assert_close(traced(x2), model(x2))


@pytest.mark.filterwarnings(
    "ignore::FutureWarning", "ignore::DeprecationWarning"
)  # jit, legacy ONNX
def test_multilayer_bspline_kan_exports_to_onnx_with_the_legacy_exporter() -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model = KAN([3, 4, 2], seed=0).eval()
    x = torch.rand(5, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1
    buf = io.BytesIO()
    torch.onnx.export(model, (x,), buf, dynamo=False)
    session = ort.InferenceSession(buf.getvalue())
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.as_tensor(got), model(x), rtol=1e-5, atol=1e-5)


def test_torch_fx_traces_non_bspline_kan_and_skan() -> None:
    # the basis functions' tensor check rejected an fx Proxy, and S-KAN chose its spaces by
    # the values of ``active`` (a data-dependent branch)
    x = torch.rand(5, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for model in (
        KAN([3, 4, 2], space="chebyshev", seed=0).eval(),
        SKAN([3, 4, 2], spaces=("chebyshev",), seed=0).eval(),
    ):
        gm = torch.fx.symbolic_trace(model)
        with torch.no_grad():
            torch.testing.assert_close(gm(x), model(x))


@pytest.mark.parametrize("space", SPACES)
def test_pruning_dependency_graph_traces_every_kan_space(space: str) -> None:
    pruning = pytest.importorskip("neuronkit.pruning")
    x = torch.rand(5, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1
    pruning.DependencyGraph(KAN([3, 6, 2], space=space, seed=0).eval(), x)


def test_pruning_dependency_graph_traces_skan() -> None:
    pruning = pytest.importorskip("neuronkit.pruning")
    x = torch.rand(5, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1
    _clear_basis_caches()  # the bspline space built its cached constants on the fx Proxy
    model = SKAN([3, 6, 2], seed=0).eval()
    pruning.DependencyGraph(model, x)
    assert all(type(t) is torch.Tensor for t in _cached_tensors())


def test_skan_exports_and_equals_eager_after_selection() -> None:
    # S-KAN's forward read ``active.any(0).tolist()``: torch.export failed on the
    # data-dependent choice (GuardOnDataDependentSymNode)
    gen = torch.Generator().manual_seed(0)
    model = SKAN([3, 4, 2], seed=0).eval()
    with torch.no_grad():
        for layer in model.skan_layers():
            layer.theta.copy_(torch.randn(layer.theta.shape, generator=gen))
            layer.theta[:, -1] = -10.0  # no node keeps the last space: eager skips it
    model.select(2)
    x = torch.rand(5, 3, generator=gen) * 2 - 1
    ep = torch.export.export(model, (x,))
    x2 = torch.rand(5, 3, generator=gen) * 2.4 - 1.2
    with torch.no_grad():
        assert not bool(model.layers[0].active[:, -1].any())
        torch.testing.assert_close(ep.module()(x2), model(x2))
