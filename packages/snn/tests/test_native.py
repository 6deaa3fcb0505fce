"""The compiled LIF/IF loops (``neuronkit.snn._native``) give the ATen loops' results bit for
bit, forward and backward, and fall back to them cleanly."""

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from neuronkit.snn import (
    PLIF,
    ALIFState,
    ATan,
    CuBaLIFState,
    FastSigmoid,
    IFState,
    LIFState,
    Sigmoid,
    _native,
    alif_multistep,
    cuba_lif_multistep,
    if_multistep,
    lif_multistep,
    native_status,
)

HAS_COMPILER = bool(os.environ.get("CC")) or any(shutil.which(c) for c in ("cc", "gcc", "clang"))


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Load the library anew in the test and again after it (the environment restored)."""
    _native._library.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    _native._library.cache_clear()


def test_the_compiled_loops_load_where_a_compiler_exists() -> None:
    if not HAS_COMPILER:
        pytest.skip("no C compiler on this machine: the ATen loops run (checked below)")
    assert native_status().startswith("compiled: "), native_status()


def _counting(monkeypatch: pytest.MonkeyPatch, *names: str) -> dict[str, int]:
    """Count the calls into the compiled forward and backward (or ``names``)."""
    calls = dict.fromkeys(names or ("_forward", "_backward"), 0)
    for name in calls:
        original = getattr(_native, name)

        def counted(*args: Any, _name: str = name, _f: Any = original, **kw: Any) -> Any:
            calls[_name] += 1
            return _f(*args, **kw)

        monkeypatch.setattr(_native, name, counted)
    return calls


_CALLS = ("_forward", "_backward", "_leak_sums_call")


def _both(
    call: Any, leaves: list[torch.Tensor], monkeypatch: pytest.MonkeyPatch, *, leak: bool = False
) -> list[Any]:
    """``call()``'s outputs and the gradients of one loss, compiled loops first (asserted to
    run, backward too when there is a gradient, and the leak's sums with ``leak``), then
    ATen."""
    results = []
    for native in (True, False):
        calls = _counting(monkeypatch, *_CALLS) if native else {}
        if not native:
            monkeypatch.setattr(_native, "_library", lambda: None)
        out = call()
        g = torch.Generator().manual_seed(3)
        loss = (out.spikes * torch.randn(out.spikes.shape, generator=g, dtype=out.v.dtype)).sum()
        loss = loss + (out.v * torch.randn(out.v.shape, generator=g, dtype=out.v.dtype)).sum()
        grads = torch.autograd.grad(loss, leaves) if loss.requires_grad else ()
        results.append((out.spikes, out.v, *grads))
        if native:
            backward = int(loss.requires_grad)
            assert calls == dict(zip(_CALLS, (1, backward, backward * leak), strict=True))
    return results


@pytest.mark.usefixtures("compiled")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize(
    "setting",
    ["lerp", "lerp_large", "no_input_decay", "learnable", "learnable_lam", "per_neuron",
     "per_neuron_lam", "if", "v_reset", "no_grad"],
)  # fmt: skip
def test_compiled_and_aten_loops_agree_bitwise(
    dtype: torch.dtype, reset: str, detach_reset: bool, setting: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(9, 4, 300, generator=g, dtype=dtype) * 1.5 + 0.3).requires_grad_()
    v0 = (torch.randn(4, 300, generator=g, dtype=dtype) * 0.5).requires_grad_()
    learnable = setting.startswith(("learnable", "per_neuron"))  # tau (w or lam), threshold
    thr = torch.tensor(0.9, dtype=dtype, requires_grad=learnable)
    tau: Any = {"lerp_large": 1.5}.get(setting, 3.0)
    if learnable:
        tau = torch.tensor(2.5, dtype=dtype, requires_grad=True)
    if setting.startswith("per_neuron"):  # w = 1 / tau on both sides of ATen's lerp switch
        tau = (1.3 + 1.7 * torch.rand(300, generator=g, dtype=dtype)).requires_grad_()
        thr = (0.7 + 0.4 * torch.rand(300, generator=g, dtype=dtype)).requires_grad_()
    leaves = [x, v0] + ([tau, thr] if learnable else [])
    kw: dict[str, Any] = {"reset": reset, "detach_reset": detach_reset, "threshold": thr}
    kw["surrogate"] = FastSigmoid()
    kw["v_reset"] = -0.2 if setting == "v_reset" else 0.0

    def call() -> Any:
        with torch.set_grad_enabled(setting != "no_grad"):
            if setting == "if":
                return if_multistep(x, _state(v0, "if"), **kw)
            decay_input = setting not in ("no_input_decay", "learnable_lam", "per_neuron_lam")
            return lif_multistep(x, _state(v0), tau=tau, decay_input=decay_input, **kw)

    compiled, aten = _both(call, leaves, monkeypatch, leak=learnable)
    assert len(compiled) == len(aten) == (2 if setting == "no_grad" else 2 + len(leaves))
    for a, b in zip(compiled, aten):
        assert torch.equal(a, b)


def _in_loop_surrogate_settings(test: Any) -> Any:
    """The settings of the in-loop surrogate tests (LIF and ALIF): FastSigmoid and two ATan
    slopes are computed in the compiled backward, Sigmoid's derivative is handed to it."""
    for mark in (
        pytest.mark.parametrize("detach_reset", [False, True]),
        pytest.mark.parametrize("reset", ["subtract", "zero", "zero_to", "none"]),
        pytest.mark.parametrize("surrogate", [FastSigmoid(), ATan(), ATan(3.7), Sigmoid()]),
        pytest.mark.parametrize("dtype", [torch.float32, torch.float64]),
        pytest.mark.usefixtures("compiled"),
    ):
        test = mark(test)
    return test


def _state(v0: torch.Tensor, kind: str = "lif") -> Any:
    return IFState(v0) if kind == "if" else LIFState(v0)


@pytest.mark.usefixtures("compiled")
def test_the_module_path_and_a_learnable_tau_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    x = (torch.randn(12, 8, 64) * 2).requires_grad_()
    runs = []
    for native in (True, False):
        calls = _counting(monkeypatch, *_CALLS) if native else {}
        if not native:
            monkeypatch.setattr(_native, "_library", lambda: None)
        torch.manual_seed(1)
        neuron = PLIF(init_tau=2.0, reset="zero", detach_reset=False)
        spikes = neuron(x)
        spikes.square().sum().backward()
        runs.append((spikes, x.grad.clone(), neuron.w.grad.clone()))  # type: ignore[union-attr]
        x.grad = None
        if native:  # the leak's gradient sums over time in the compiled pass
            assert calls == dict.fromkeys(_CALLS, 1)
    for a, b in zip(*runs):
        assert torch.equal(a, b)


@_in_loop_surrogate_settings
@pytest.mark.parametrize("needs", ["x", "x_and_v0", "x_and_v"])
def test_the_backward_computes_built_in_surrogates_and_dl_du_in_its_loop(
    dtype: torch.dtype, surrogate: Any, reset: str, detach_reset: bool, needs: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """FastSigmoid and ATan are computed in the compiled backward, which also scales dh by
    the drive's weight when nothing else needs dh: the same bits as the ATen ops."""
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(9, 4, 300, generator=g, dtype=dtype) * 1.5 + 0.3).requires_grad_()
    v0 = (torch.randn(4, 300, generator=g, dtype=dtype) * 0.5).requires_grad_(needs == "x_and_v0")
    leaves = [x, v0] if needs == "x_and_v0" else [x]
    v_reset = -0.2 if reset == "zero_to" else 0.0
    kw = dict(tau=3.0, threshold=0.9, surrogate=surrogate, detach_reset=detach_reset,
              reset="zero" if reset == "zero_to" else reset, v_reset=v_reset)  # fmt: skip
    spy: list[tuple[str, float]] = []
    original = _native._backward

    def spied(*args: Any, surrogate: Any = ("given", 0.0, 0.0), scale: Any = (1.0, None),
              **kwargs: Any) -> Any:  # fmt: skip
        spy.append((surrogate[0], scale[0]))  # (the scalar, the columns: None here)
        return original(*args, surrogate=surrogate, scale=scale, **kwargs)

    results = []
    for native in (True, False):
        if native:
            monkeypatch.setattr(_native, "_backward", spied)
        else:
            monkeypatch.setattr(_native, "_library", lambda: None)
        out = lif_multistep(x, LIFState(v0), **kw)
        weights = torch.randn(out.spikes.shape, generator=torch.Generator().manual_seed(2),
                              dtype=dtype)  # fmt: skip
        loss = (out.spikes * weights).sum() + (out.v.sum() if needs == "x_and_v" else 0.0)
        results.append((out.spikes, out.v, *torch.autograd.grad(loss, leaves)))
    for a, b in zip(*results):
        assert torch.equal(a, b)
    name = {FastSigmoid: "fast_sigmoid", ATan: "atan"}.get(type(surrogate), "given")
    assert spy == [(name, 1 / 3.0 if name != "given" and needs != "x_and_v0" else 1.0)]


@pytest.mark.usefixtures("compiled")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reset", ["subtract", "zero", "zero_to", "none"])
@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize(
    "setting",
    ["lerp", "lerp_large", "no_input_decay", "learnable", "learnable_lam", "per_neuron",
     "per_neuron_leak", "no_grad"],
)  # fmt: skip
@pytest.mark.parametrize("outputs", ["spikes", "all"])
def test_compiled_and_aten_alif_loops_agree_bitwise(
    dtype: torch.dtype, reset: str, detach_reset: bool, setting: str, outputs: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(9, 4, 300, generator=g, dtype=dtype) * 1.5 + 0.5).requires_grad_()
    v0 = (torch.randn(4, 300, generator=g, dtype=dtype) * 0.5).requires_grad_()
    a0 = torch.rand(4, 300, generator=g, dtype=dtype).requires_grad_()
    kw: dict[str, Any] = {"tau": 1.5 if setting == "lerp_large" else 3.0, "tau_adapt": 4.0}
    kw |= {"beta": 1.1, "threshold": 0.9, "reset": "zero" if reset == "zero_to" else reset}
    kw |= {"v_reset": -0.2 if reset == "zero_to" else 0.0, "detach_reset": detach_reset}
    kw |= {"decay_input": setting not in ("no_input_decay", "learnable_lam")}
    leaves = [x, v0, a0]
    learnable = setting.startswith("learnable")
    if learnable:  # all four parameters, 0-d tensors
        for name in ("tau", "tau_adapt", "beta", "threshold"):
            kw[name] = torch.tensor(kw[name], dtype=dtype, requires_grad=True)
            leaves.append(kw[name])
    per_neuron = {"per_neuron": ("tau_adapt", "beta"), "per_neuron_leak": ("tau", "threshold")}
    for name in per_neuron.get(setting, ()):  # one per neuron, learnable (w on both sides of
        spread = torch.rand(300, generator=g, dtype=dtype)  # ATen's lerp switch for tau)
        kw[name] = (kw[name] * (0.5 if name == "tau" else 1.0) + spread * 2).requires_grad_()
        leaves.append(kw[name])
    adapting = learnable or setting in per_neuron  # the adaptation's gradients needed
    leaking = learnable or setting == "per_neuron_leak"  # the leak's gradient needed
    names = ("_alif_forward", "_alif_backward", "_leak_sums_call", "_alif_adapt_sums_call")
    results = []
    for native in (True, False):
        calls = _counting(monkeypatch, *names) if native else {}
        if not native:
            monkeypatch.setattr(_native, "_library", lambda: None)
        with torch.set_grad_enabled(setting != "no_grad"):
            out = alif_multistep(x, ALIFState(v0, a0), **kw)
        w = torch.randn(out.spikes.shape, generator=torch.Generator().manual_seed(3), dtype=dtype)
        loss = (out.spikes * w).sum()
        if outputs == "all":
            loss = loss + (out.v * w).sum() + out.state.a.square().sum()
        grads = torch.autograd.grad(loss, leaves) if loss.requires_grad else ()
        results.append((out.spikes, out.v, *out.state, *grads))
        if native:
            backward = int(loss.requires_grad)
            counts = (1, backward, backward * leaking, backward * adapting)
            assert calls == dict(zip(names, counts, strict=True))
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)


@_in_loop_surrogate_settings
def test_the_alif_backward_computes_built_in_surrogates_in_its_loop(
    dtype: torch.dtype, surrogate: Any, reset: str, detach_reset: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """FastSigmoid and ATan at ``h - theta`` are computed in ALIF's compiled backward (other
    surrogates are given to it): the same bits as the ATen ops."""
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(9, 4, 300, generator=g, dtype=dtype) * 1.5 + 0.5).requires_grad_()
    v0 = (torch.randn(4, 300, generator=g, dtype=dtype) * 0.5).requires_grad_()
    a0 = torch.rand(4, 300, generator=g, dtype=dtype).requires_grad_()
    kw = dict(tau=3.0, tau_adapt=4.0, beta=1.1, threshold=0.9, surrogate=surrogate,
              reset="zero" if reset == "zero_to" else reset, detach_reset=detach_reset,
              v_reset=-0.2 if reset == "zero_to" else 0.0)  # fmt: skip
    spy: list[str] = []
    original = _native._alif_backward

    def spied(*args: Any, surrogate: Any = ("given", 0.0, 0.0), **kwargs: Any) -> Any:
        spy.append(surrogate[0])
        return original(*args, surrogate=surrogate, **kwargs)

    results = []
    for native in (True, False):
        if native:
            monkeypatch.setattr(_native, "_alif_backward", spied)
        else:
            monkeypatch.setattr(_native, "_library", lambda: None)
        out = alif_multistep(x, ALIFState(v0, a0), **kw)
        w = torch.randn(out.spikes.shape, generator=torch.Generator().manual_seed(2), dtype=dtype)
        loss = (out.spikes * w).sum() + (out.v * w).sum() + out.state.a.square().sum()
        results.append((out.spikes, out.v, *torch.autograd.grad(loss, [x, v0, a0])))
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)
    assert spy == [{FastSigmoid: "fast_sigmoid", ATan: "atan"}.get(type(surrogate), "given")]


@pytest.mark.usefixtures("compiled")
def test_threads_split_the_columns_without_changing_a_bit() -> None:
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(8, 16, 2600, generator=g) * 1.5).requires_grad_()  # 332,800 elements
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            out = lif_multistep(x, tau=2.0, reset="zero", detach_reset=False)
            (grad,) = torch.autograd.grad((out.spikes * x.detach()).sum(), x)
            results.append((out.spikes, out.v, grad))
        ranges = _native._columns(8, 16 * 2600)
    finally:
        torch.set_num_threads(threads)
    assert ranges == [(0, 21504), (21504, 41600)]  # 2 threads, cut at a multiple of 1024
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_the_environment_switches_the_compiled_loops_off(fresh: pytest.MonkeyPatch) -> None:
    fresh.setenv("NEURONKIT_SNN_NATIVE", "0")
    assert native_status() == "ATen ops: NEURONKIT_SNN_NATIVE=0"
    out = lif_multistep(torch.ones(3, 2, 4), tau=2.0)
    assert out.spikes.shape == (3, 2, 4)


def test_a_failed_build_warns_leaves_nothing_and_falls_back(
    fresh: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    fresh.setenv("NEURONKIT_CACHE_DIR", str(tmp_path))
    fresh.setenv("CC", "false")  # a "compiler" that always fails
    with pytest.warns(RuntimeWarning, match="building the compiled loops failed"):
        status = native_status()
    assert status.startswith("ATen ops: building the compiled loops failed"), status
    assert not any(p.is_file() for p in tmp_path.rglob("*"))  # no half-written library
    x = torch.randn(5, 2, 3)
    assert torch.equal(
        lif_multistep(x, tau=2.0).spikes, lif_multistep(x, tau=2.0, fused=False).spikes
    )


def test_a_missing_compiler_falls_back_quietly(fresh: pytest.MonkeyPatch) -> None:
    fresh.delenv("CC", raising=False)
    fresh.setattr(_native.shutil, "which", lambda name: None)
    assert native_status() == "ATen ops: no C compiler found (set CC to use the compiled loops)"


def test_a_disagreeing_build_is_not_used(fresh: pytest.MonkeyPatch) -> None:
    if not HAS_COMPILER:
        pytest.skip("no C compiler on this machine: nothing is built to check")
    fresh.setattr(_native, "_disagreement", lambda lib: "the forward (float32, add, reset zero)")
    with pytest.warns(RuntimeWarning, match="differ from ATen's in the forward"):
        assert native_status().startswith("ATen ops: the compiled loops differ")
    assert _native.forward(torch.ones(2, 3), torch.zeros(3), 0.5, None, 1.0, 0.0, "zero",
                           keep_h=False, keep_v=False) is None  # fmt: skip


def test_the_build_is_cached_per_source_compiler_and_cpu(
    fresh: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    if not HAS_COMPILER:
        pytest.skip("no C compiler on this machine: nothing is built")
    fresh.setenv("NEURONKIT_CACHE_DIR", str(tmp_path))
    status = native_status()
    assert status.startswith(f"compiled: {tmp_path / 'snn'}"), status
    (built,) = (tmp_path / "snn").iterdir()
    stamp = built.stat().st_mtime_ns
    _native._library.cache_clear()
    assert native_status() == status
    assert built.stat().st_mtime_ns == stamp  # reused, not rebuilt


@pytest.mark.usefixtures("compiled")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("tau_syn", [2.5, "tensor"])
def test_the_compiled_synaptic_current_agrees_bitwise(
    dtype: torch.dtype, tau_syn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(11, 4, 300, generator=g, dtype=dtype) * 1.5).requires_grad_()
    i0 = torch.randn(4, 300, generator=g, dtype=dtype).requires_grad_()
    v0 = torch.randn(4, 300, generator=g, dtype=dtype)
    leaves = [x, i0]
    if tau_syn == "tensor":
        tau_syn = torch.tensor(2.5, dtype=dtype, requires_grad=True)
        leaves.append(tau_syn)
    runs = []
    for native in (True, False):
        calls = _counting(monkeypatch, "_current_forward", "_scan_back_call") if native else {}
        if not native:
            monkeypatch.setattr(_native, "_library", lambda: None)
        out = cuba_lif_multistep(x, CuBaLIFState(v0, i0), tau_mem=3.0, tau_syn=tau_syn)
        loss = (out.spikes * x.detach()).sum() + out.state.i.square().sum()
        runs.append((out.spikes, out.v, *out.state, *torch.autograd.grad(loss, leaves)))
        if native:
            assert calls == {"_current_forward": 1, "_scan_back_call": 1}
    for a, b in zip(*runs):
        assert torch.equal(a, b)


@pytest.mark.usefixtures("compiled")
def test_the_compiled_loops_decline_a_state_on_another_device() -> None:
    """A start state on another device than x (here meta) goes to the ATen loops, which say so;
    the compiled loops would read its memory as host memory (the process crashed)."""
    x = torch.rand(4, 3, 5)
    elsewhere = torch.zeros(3, 5, device="meta")
    cpu = torch.zeros(3, 5)
    thr = torch.tensor(1.0)
    assert _native.forward(x, elsewhere, 0.5, None, thr, 0.0, "subtract", keep_h=False,
                           keep_v=True) is None  # fmt: skip
    for v0, a0 in ((elsewhere, cpu), (cpu, elsewhere)):
        assert _native.alif_forward(x, v0, a0, 0.5, None, 20.0, 1.8, thr, 0.0, "subtract",
                                    keep=False) is None  # fmt: skip
    assert _native.current_forward(x, elsewhere, 3.0) is None
    assert _native.forward(x, cpu, 0.5, None, thr, 0.0, "subtract", keep_h=False,
                           keep_v=True) is not None  # fmt: skip
