"""The compiled loops of the fused LIF/IF path (``_native.c``), built at first use.

:func:`fused_lif <neuronkit.snn.multistep.fused_lif>` in eager PyTorch spends most of its time
in per-step dispatch: one to three ATen ops of a few microseconds each per time step, on
tensors whose arithmetic takes far less. ``_native.c`` runs the whole forward recurrence, and
the backward's reset partials, drive and reverse-time recurrence (from the derivative of the
built-in ``FastSigmoid`` and ``ATan`` surrogates on), in one call each; so do CuBa-LIF's
synaptic current, ALIF's two-state forward and backward, and a learnable ``tau``'s gradient
sums. It is plain C with
no Python or torch headers, compiled once per machine with the system C compiler (``$CC``,
else ``cc``, ``gcc`` or ``clang``; a few seconds) into ``$NEURONKIT_CACHE_DIR/snn``
(default ``$XDG_CACHE_HOME/neuronkit/snn``, else ``~/.cache/neuronkit/snn``) and loaded with
:mod:`ctypes`. Before first use every variant runs against the ATen loops on random data and
must give the same bits; otherwise (and without a compiler, or with
``NEURONKIT_SNN_NATIVE=0``) the ATen loops run, slower and never different.
:func:`native_status` says which, and why.

Scope: CPU float32/float64 tensors with ``tau`` and ``threshold`` (for ALIF also
``tau_adapt`` and ``beta``) floats, 0-d or per-neuron tensors. A per-neuron ``tau_syn``, other
dtypes and devices, ``torch.compile`` and ``torch.func`` use the ATen loops.

The same library holds :class:`~neuronkit.snn.SpikeLinear`'s event-driven product
(:func:`spike_linear`, :func:`spike_weight_grad`): sums of weight rows at the spikes of a binary
input, in an order of its own, so it has no ATen twin to match bit for bit; its fallback is the
dense product.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import cast

import torch
from torch import Tensor

from neuronkit.common import atomic_path

from ._core import Param
from .surrogate import ATan, FastSigmoid, Surrogate

__all__ = ["native_status"]

_SOURCE = Path(__file__).with_name("_native.c")
_FLAGS = ["-O3", "-std=c99", "-ffp-contract=off", "-fPIC", "-shared"]
_CHARGES = ("lerp_small", "lerp_large", "add_scaled", "add", "lerp_each")
_RESETS = ("subtract", "zero", "zero_to", "none")
_SURROGATES = ("given", "fast_sigmoid", "atan")
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
_PARALLEL_MIN = 1 << 18  # elements (T x n) below which one thread does the whole call
_status = "not loaded yet"


def native_status() -> str:
    """How the fused LIF/IF loops run: ``"compiled: <library path>"``, or why they use ATen ops
    (no C compiler, ``NEURONKIT_SNN_NATIVE=0``, a failed build or bit check). Loads the
    library (building it at first use)."""
    _library()
    return _status


def _cache_dir() -> Path:
    if folder := os.environ.get("NEURONKIT_CACHE_DIR"):
        return Path(folder) / "snn"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "neuronkit" / "snn"


def _cpu_flags() -> str:
    """The CPU's feature flags (Linux), so a library built with ``-march=native`` is never
    loaded on another machine sharing the cache."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def _build(compiler: list[str]) -> Path:
    """Compile ``_native.c`` into the cache (atomically; reused when the source, compiler and
    CPU are the same); tries ``-march=native`` first."""
    source = _SOURCE.read_bytes()
    parts = [*compiler, *_FLAGS, _cpu_flags(), platform.machine()]
    key = hashlib.sha256(b"\0".join([source, *(p.encode() for p in parts)])).hexdigest()[:16]
    target = _cache_dir() / f"lif-{key}{'.dll' if os.name == 'nt' else '.so'}"
    if target.exists():
        return target
    errors = []
    for extra in (["-march=native"], []):
        try:
            with atomic_path(target) as tmp:
                subprocess.run(
                    [*compiler, *_FLAGS, *extra, str(_SOURCE), "-o", str(tmp), "-lm"],
                    check=True, capture_output=True, text=True, timeout=120,
                )  # fmt: skip
            return target
        except subprocess.CalledProcessError as err:
            errors.append(f"{' '.join(err.cmd)}:\n{err.stderr.strip()[-2000:]}")
    raise RuntimeError("\n".join(errors))


@functools.cache
def _library() -> ctypes.CDLL | None:
    """The loaded, bit-checked library, or None (``_status`` says why)."""
    global _status
    if os.environ.get("NEURONKIT_SNN_NATIVE", "1") == "0":
        _status = "ATen ops: NEURONKIT_SNN_NATIVE=0"
        return None
    compiler = os.environ.get("CC") or next(
        (c for c in ("cc", "gcc", "clang") if shutil.which(c)), None
    )
    if compiler is None:
        _status = "ATen ops: no C compiler found (set CC to use the compiled loops)"
        return None
    try:
        path = _build(shlex.split(compiler))
        lib = ctypes.CDLL(str(path))
    except (OSError, RuntimeError, subprocess.SubprocessError) as err:
        _status = f"ATen ops: building the compiled loops failed ({err})"
        warnings.warn(f"neuronkit.snn: {_status}", RuntimeWarning, stacklevel=2)
        return None
    real, i64, ptr, code = ctypes.c_double, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
    signatures = {  # name: (argument types, return type)
        "nk_lif_forward": ([code] * 2 + [ptr] * 5 + [i64] * 4 + [real, ptr] * 2 + [real], code),
        "nk_lif_backward": (
            [ptr] * 4
            + [i64] * 4
            + [code] * 3
            + [real, ptr, real, real, ptr, real, real, real, ptr],
            code,
        ),
        "nk_alif_forward": (
            [code] * 2 + [ptr] * 7 + [i64] * 4 + [real, ptr] * 4 + [real],
            code,
        ),
        "nk_alif_backward": (
            [ptr] * 7
            + [i64] * 4
            + [code] * 3
            + [real]
            + [real, ptr] * 4
            + [real] * 2
            + [real, ptr],
            code,
        ),
        "nk_leak_sums": ([ptr] * 6 + [i64] * 4 + [code, real, ptr, real], code),
        "nk_alif_adapt_sums": ([ptr] * 6 + [i64] * 4 + [code] + [real, ptr] * 2, None),
        "nk_current_forward": ([ptr] * 3 + [i64] * 4 + [real], None),
        "nk_scan_back": ([ptr] + [i64] * 4 + [real], None),
        "nk_spike_chunk": ([], i64),
        "nk_spike_pack": ([ptr, i64, i64, ptr, i64, i64], None),
        "nk_spike_count": ([ptr, ptr] + [i64] * 3, code),
        "nk_spike_linear": ([ptr] * 6 + [i64] * 4, code),
        "nk_spike_columns": ([ptr, ptr, i64, i64, ptr, ptr], None),
        "nk_spike_weight_grad": ([ptr] * 4 + [i64] * 4, code),
    }
    for suffix in _SUFFIX.values():
        for name, (argtypes, restype) in signatures.items():
            fn = getattr(lib, f"{name}_{suffix}")
            fn.argtypes, fn.restype = argtypes, restype
    mismatch = _disagreement(lib)
    if mismatch:
        _status = f"ATen ops: the compiled loops differ from ATen's in {mismatch}"
        warnings.warn(f"neuronkit.snn: {_status}", RuntimeWarning, stacklevel=2)
        return None
    _status = f"compiled: {path}"
    return lib


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1)


if hasattr(os, "register_at_fork"):  # a forked child has none of the parent's pool threads
    os.register_at_fork(after_in_child=_pool.cache_clear)


def _columns(nt: int, n: int) -> list[tuple[int, int]]:
    """Column ranges ``[lo, hi)`` for one call each: one range, or one per torch thread for
    big inputs (ctypes releases the GIL), split at multiples of 1024 (the C block)."""
    threads = torch.get_num_threads()
    if threads == 1 or nt * n < _PARALLEL_MIN:
        return [(0, n)]
    per_thread = -(-n // threads)
    step = -(-per_thread // 1024) * 1024
    return [(lo, min(n, lo + step)) for lo in range(0, n, step)]


def _each(ranges: list[tuple[int, int]], call: Callable[[int, int], int]) -> None:
    """``call(lo, hi)`` for each column range, on the thread pool when there are several; a
    nonzero return (an unknown variant code) raises."""
    codes = _codes(ranges, call)
    if any(codes):
        raise RuntimeError(f"neuronkit.snn: the compiled loop rejected its arguments ({codes})")


def _codes(ranges: list[tuple[int, int]], call: Callable[[int, int], int]) -> list[int]:
    """``call(lo, hi)``'s return for each range, on the thread pool when there are several."""
    if len(ranges) == 1:
        return [call(*ranges[0])]
    return [f.result() for f in [_pool().submit(call, lo, hi) for lo, hi in ranges]]


def _scalar(p: Param | None) -> float | None:
    """A float for a float or 0-d tensor parameter, None for a per-neuron tensor."""
    if isinstance(p, Tensor):
        return float(p) if p.dim() == 0 else None
    return None if p is None else float(p)


Columnwise = tuple[float, Tensor | None]  # a scalar, or per column (then the scalar is unused)


def _columnwise(p: Param, shape: torch.Size, dtype: torch.dtype) -> Columnwise | None:
    """A parameter for the kernels: ``(value, None)`` for a float or 0-d tensor; ``(0.0,
    columns)`` for a per-neuron tensor, one value per column of one step ``shape`` (``[B,
    ...]``, contiguous, ``dtype``); None for a tensor of another dtype or device or one not
    broadcastable to a step (ATen's path)."""
    if (value := _scalar(p)) is not None:
        return value, None
    assert isinstance(p, Tensor)  # not a float
    if p.dtype != dtype or p.device.type != "cpu":
        return None
    try:
        return 0.0, p.detach().expand(shape).contiguous()
    except RuntimeError:
        return None


def _pass(p: Columnwise) -> tuple[float, int | None]:
    """A parameter as the kernels take it: the scalar and the columns' address."""
    return p[0], None if p[1] is None else p[1].data_ptr()


def forward(
    u: Tensor, v0: Tensor, w: Param | None, lam: Param | None, threshold: Param,
    v_reset: float, mode: str, *, keep_h: bool, keep_v: bool,
) -> tuple[Tensor, Tensor, Tensor | None] | None:  # fmt: skip
    """The forward recurrence in one compiled call, as ``multistep._loop`` returns it; None
    where it does not apply (or is not available)."""
    if (
        u.device.type != "cpu"
        or v0.device != u.device  # the loop would read another device's memory as the host's
        or u.dtype not in _SUFFIX
        or v0.shape != u.shape[1:]
    ):
        return None
    weight = lam if w is None else w
    thr = _columnwise(threshold, v0.shape, u.dtype)
    a = (0.0, None) if weight is None else _columnwise(weight, v0.shape, u.dtype)
    if thr is None or a is None or (lib := _library()) is None:
        return None
    if weight is None:  # IF
        kind = "add"
    elif w is None:
        kind = "add_scaled"
    elif a[1] is not None:  # ATen's lerp takes one of two roundings, per element
        kind = "lerp_each"
    else:
        kind = "lerp_small" if abs(a[0]) < 0.5 else "lerp_large"
    code = "zero_to" if mode == "zero" and v_reset != 0.0 else mode
    return _forward(lib, u, v0, kind, code, a, thr, v_reset, keep_h=keep_h, keep_v=keep_v)


def _forward(
    lib: ctypes.CDLL, u: Tensor, v0: Tensor, kind: str, code: str, a: Columnwise,
    thr: Columnwise, v_reset: float, *, keep_h: bool, keep_v: bool,
) -> tuple[Tensor, Tensor, Tensor | None]:  # fmt: skip
    u = u.contiguous()
    spikes = torch.empty_like(u)
    v = v0.to(u.dtype, memory_format=torch.contiguous_format, copy=True)  # v_0, then v_T
    v_seq = torch.empty_like(u) if keep_v else None
    h_seq = v_seq if code == "none" and keep_v else torch.empty_like(u) if keep_h else None
    nt, n = u.shape[0], v.numel()
    fn = getattr(lib, f"nk_lif_forward_{_SUFFIX[u.dtype]}")
    h_ptr = None if h_seq is None or h_seq is v_seq else h_seq.data_ptr()  # "none": h is v
    v_ptr = None if v_seq is None else v_seq.data_ptr()
    args = (_CHARGES.index(kind), _RESETS.index(code), u.data_ptr(), v.data_ptr(),
            spikes.data_ptr(), h_ptr, v_ptr, nt, n)  # fmt: skip
    params = (*_pass(a), *_pass(thr), v_reset)
    _each(_columns(nt, n), lambda lo, hi: fn(*args, lo, hi, *params))
    return spikes, v if v_seq is None else v_seq, h_seq if keep_h else None


def backward(
    g: Tensor | Surrogate, h: Tensor, g_s: Tensor | None, g_v: Tensor | None, threshold: Param,
    v_reset: float, mode: str, detach_reset: bool, decay: Param | None, *,
    keep_g: bool = False, scale: Param = 1.0,
) -> Tensor | None:  # fmt: skip
    """``multistep._through_time`` in one compiled call: ``dh * scale [T, B, ...]``. ``g``: the
    surrogate derivatives (written over unless ``keep_g``), or a built-in surrogate whose
    derivative the loop computes from ``h`` (:class:`FastSigmoid`, :class:`ATan`). None where it
    does not apply."""
    if (
        torch.compiler.is_compiling()  # traced: the ATen ops, which the compiler fuses
        or h.device.type != "cpu"
        or h.dtype not in _SUFFIX
        or not h.is_contiguous()
    ):
        return None
    source = _derivative_source(g, h)
    params = (threshold, 1.0 if decay is None else decay, scale)
    thr, k, c = (_columnwise(p, h.shape[1:], h.dtype) for p in params)
    if source is None or thr is None or k is None or c is None or (lib := _library()) is None:
        return None
    given, surrogate = source
    return _backward(lib, given, h, g_s, g_v, thr, v_reset, mode, detach_reset, k,
                     keep_g=keep_g, surrogate=surrogate, scale=c)  # fmt: skip


def _derivative_source(
    g: Tensor | Surrogate, h: Tensor
) -> tuple[Tensor | None, tuple[str, float, float]] | None:
    """What a compiled backward gets for ``g``: ``(g, ("given", 0, 0))`` for derivatives shaped
    like ``h``, ``(None, code)`` for a built-in surrogate it computes itself
    (:func:`_surrogate_code`); None where neither applies."""
    if isinstance(g, Tensor):
        return (g, ("given", 0.0, 0.0)) if g.shape == h.shape else None
    code = _surrogate_code(g)
    return None if code is None else (None, code)


def _surrogate_code(surrogate: Surrogate) -> tuple[str, float, float] | None:
    """The compiled backward's name and constants for a built-in surrogate (exactly
    :class:`FastSigmoid` or :class:`ATan`, whose roundings ``_native.c`` repeats); None for
    others."""
    if type(surrogate) is FastSigmoid:
        return "fast_sigmoid", float(surrogate.alpha), 0.0
    if type(surrogate) is ATan:
        return "atan", *surrogate._coefficients()
    return None


def _backward(
    lib: ctypes.CDLL, g: Tensor | None, h: Tensor, g_s: Tensor | None, g_v: Tensor | None,
    thr: Columnwise, v_reset: float, mode: str, detach_reset: bool, k: Columnwise, *,
    keep_g: bool = False, surrogate: tuple[str, float, float] = ("given", 0.0, 0.0),
    scale: Columnwise = (1.0, None),
) -> Tensor:  # fmt: skip
    if g is None:
        d = torch.empty_like(h)
    else:
        d = g.clone(memory_format=torch.contiguous_format) if keep_g else g.contiguous()
    g_s, g_v = (None if t is None else t.to(h.dtype).contiguous() for t in (g_s, g_v))
    nt, n = h.shape[0], h[0].numel()
    fn = getattr(lib, f"nk_lif_backward_{_SUFFIX[h.dtype]}")
    ptrs = [None if t is None else t.data_ptr() for t in (d, h, g_s, g_v)]
    name, c1, c2 = surrogate
    reset = "zero_to" if mode == "zero" and v_reset != 0.0 else mode
    codes = (_SURROGATES.index(name), _RESETS.index(reset))
    params = (*_pass(thr), v_reset, *_pass(k), c1, c2, *_pass(scale))
    _each(_columns(nt, n), lambda lo, hi: fn(*ptrs, nt, n, lo, hi, *codes, detach_reset, *params))
    return d


def alif_forward(
    u: Tensor, v0: Tensor, a0: Tensor, w: Param | None, lam: Param | None, tau_adapt: Param,
    beta: Param, threshold: Param, v_reset: float, mode: str, *, keep: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor | None, Tensor | None] | None:  # fmt: skip
    """``multistep._alif_loop`` in one compiled call; None where it does not apply."""
    if (
        torch.compiler.is_compiling()
        or u.device.type != "cpu"
        or v0.device != u.device  # the loop would read another device's memory as the host's
        or a0.device != u.device
        or u.dtype not in _SUFFIX
        or v0.shape != u.shape[1:]
        or a0.shape != u.shape[1:]
    ):
        return None
    weight = lam if w is None else w
    if weight is None:  # ALIF always leaks; nothing to run here otherwise
        return None
    a, thr, b, k = (_columnwise(p, v0.shape, u.dtype) for p in (weight, threshold, beta, tau_adapt))
    if a is None or thr is None or b is None or k is None or (lib := _library()) is None:
        return None
    if w is None:
        kind = "add_scaled"
    elif a[1] is not None:  # ATen's lerp branch per element
        kind = "lerp_each"
    else:
        kind = "lerp_small" if abs(a[0]) < 0.5 else "lerp_large"
    code = "zero_to" if mode == "zero" and v_reset != 0.0 else mode
    return _alif_forward(lib, u, v0, a0, kind, code, a, thr, b, k, v_reset, keep=keep)


def _alif_forward(
    lib: ctypes.CDLL, u: Tensor, v0: Tensor, a0: Tensor, kind: str, code: str, a: Columnwise,
    thr: Columnwise, beta: Columnwise, tau_adapt: Columnwise, v_reset: float, *, keep: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor | None, Tensor | None]:  # fmt: skip
    u = u.contiguous()
    spikes, vs = torch.empty_like(u), torch.empty_like(u)
    hs, thetas = (torch.empty_like(u), torch.empty_like(u)) if keep else (None, None)
    v, a_last = (t.to(u.dtype, memory_format=torch.contiguous_format, copy=True) for t in (v0, a0))
    nt, n = u.shape[0], v.numel()
    fn = getattr(lib, f"nk_alif_forward_{_SUFFIX[u.dtype]}")
    ptrs = [None if t is None else t.data_ptr() for t in (u, v, a_last, spikes, vs, hs, thetas)]
    codes = (_CHARGES.index(kind), _RESETS.index(code))
    params = (*_pass(a), *_pass(thr), *_pass(beta), *_pass(tau_adapt), v_reset)
    _each(_columns(nt, n), lambda lo, hi: fn(*codes, *ptrs, nt, n, lo, hi, *params))
    return spikes, vs, a_last, hs, thetas


def alif_backward(
    g: Tensor | Surrogate, h: Tensor, theta: Tensor, g_s: Tensor | None, g_v: Tensor | None,
    dv: Tensor, da: Tensor, mode: str, detach_reset: bool, v_reset: float, tau_adapt: Param,
    keep_a: Param, beta: Param, decay: Param, scale: Param,
) -> Tensor | None:  # fmt: skip
    """``multistep._alif_through_time`` in one compiled call: ``dh * scale [T, B, ...]``
    (``dv`` and ``da`` in place). ``g``: the surrogate derivatives (written over), or a built-in
    surrogate whose derivative the loop computes from ``h - theta``. None (nothing done) where
    it does not apply."""
    if (
        torch.compiler.is_compiling()
        or h.device.type != "cpu"
        or h.dtype not in _SUFFIX
        or any(t.dtype != h.dtype or not t.is_contiguous() for t in (h, theta, dv, da))
        or theta.shape != h.shape
        or dv.shape != h.shape[1:]
        or da.shape != h.shape[1:]
        or (source := _derivative_source(g, h)) is None
    ):
        return None
    params = (tau_adapt, keep_a, beta, decay, scale)
    tau_a, keep, b, k, c = (_columnwise(p, dv.shape, h.dtype) for p in params)
    if tau_a is None or keep is None or b is None or k is None or c is None:
        return None
    if (lib := _library()) is None:
        return None
    given, surrogate = source
    return _alif_backward(lib, given, h, theta, g_s, g_v, dv, da, mode, detach_reset, v_reset,
                          tau_a, keep, b, k, c, surrogate=surrogate)  # fmt: skip


def _alif_backward(
    lib: ctypes.CDLL, g: Tensor | None, h: Tensor, theta: Tensor, g_s: Tensor | None,
    g_v: Tensor | None, dv: Tensor, da: Tensor, mode: str, detach_reset: bool, v_reset: float,
    tau_adapt: Columnwise, keep_a: Columnwise, beta: Columnwise, decay: Columnwise,
    scale: Columnwise, *,
    surrogate: tuple[str, float, float] = ("given", 0.0, 0.0),
) -> Tensor:  # fmt: skip
    # in place over the given derivatives (a copy only in another dtype or layout)
    d = torch.empty_like(h) if g is None else g.to(h.dtype).contiguous()
    g_s, g_v = (None if t is None else t.to(h.dtype).contiguous() for t in (g_s, g_v))
    nt, n = h.shape[0], dv.numel()
    fn = getattr(lib, f"nk_alif_backward_{_SUFFIX[h.dtype]}")
    ptrs = [None if t is None else t.data_ptr() for t in (d, h, theta, g_s, g_v, dv, da)]
    name, c1, c2 = surrogate
    codes = (_SURROGATES.index(name), _RESETS.index(mode), detach_reset)
    columns = (*_pass(tau_adapt), *_pass(keep_a), *_pass(beta), *_pass(decay))
    params = (v_reset, *columns, c1, c2, *_pass(scale))
    _each(_columns(nt, n), lambda lo, hi: fn(*ptrs, nt, n, lo, hi, *codes, *params))
    return d


def leak_sums(
    dh: Tensor, h: Tensor, u: Tensor | None, v0: Tensor, threshold: Param, v_reset: float,
    mode: str,
) -> Tensor | None:  # fmt: skip
    """The gradient of the leak's parameter before its reduction to the parameter's shape, in
    one compiled pass: ``sum_t dh_t (u_t - v_{t-1})`` with ``u``, else ``sum_t dh_t v_{t-1}``,
    float64 ``[B, ...]``, with ``v_{t-1}`` recomputed from ``h [T, B, ...]`` (a scalar or
    per-neuron ``threshold``, or ALIF's ``theta`` shaped like ``h``) and ``v0``. None where it
    does not apply."""
    if (
        torch.compiler.is_compiling()
        or h.device.type != "cpu"
        or h.dtype not in _SUFFIX
        or any(t is not None and t.dtype != h.dtype for t in (dh, u))
    ):
        return None
    theta = threshold if isinstance(threshold, Tensor) and threshold.shape == h.shape else None
    thr = (0.0, None) if theta is not None else _columnwise(threshold, h.shape[1:], h.dtype)
    if thr is None or (lib := _library()) is None:
        return None
    return _leak_sums_call(lib, dh, h, theta, u, v0, thr, v_reset, mode)


def _leak_sums_call(
    lib: ctypes.CDLL, dh: Tensor, h: Tensor, theta: Tensor | None, u: Tensor | None,
    v0: Tensor, thr: Columnwise, v_reset: float, mode: str,
) -> Tensor:  # fmt: skip
    dh, h = dh.contiguous(), h.contiguous()
    theta, u = (None if t is None else t.contiguous() for t in (theta, u))
    start = v0.to(h.dtype).expand(h.shape[1:]).contiguous()
    total = torch.zeros(h.shape[1:], dtype=torch.float64)
    nt, n = h.shape[0], start.numel()
    fn = getattr(lib, f"nk_leak_sums_{_SUFFIX[h.dtype]}")
    ptrs = [None if t is None else t.data_ptr() for t in (dh, h, theta, u, start, total)]
    reset = _RESETS.index("zero_to" if mode == "zero" and v_reset != 0.0 else mode)
    params = (reset, *_pass(thr), v_reset)
    _each(_columns(nt, n), lambda lo, hi: fn(*ptrs, nt, n, lo, hi, *params))
    return total


def alif_adapt_sums(
    dh: Tensor, h: Tensor, theta: Tensor, g_v: Tensor | None, a0: Tensor, mode: str,
    tau_adapt: Param, decay: Param,
) -> Tensor | None:  # fmt: skip
    """``multistep._adapt_sums`` in one compiled pass: float64 ``[4, B, ...]``; None where it
    does not apply."""
    if (
        torch.compiler.is_compiling()
        or h.device.type != "cpu"
        or h.dtype not in _SUFFIX
        or any(t is not None and t.dtype != h.dtype for t in (dh, theta, g_v))
        or theta.shape != h.shape
        or (g_v is not None and g_v.shape != h.shape)
    ):
        return None
    tau, k = (_columnwise(p, h.shape[1:], h.dtype) for p in (tau_adapt, decay))
    if tau is None or k is None or (lib := _library()) is None:
        return None
    try:
        start = a0.to(h.dtype).expand(h.shape[1:]).contiguous()
    except RuntimeError:  # not broadcastable to one step: the ATen path says so
        return None
    return _alif_adapt_sums_call(lib, dh, h, theta, g_v, start, mode, tau, k)


def _alif_adapt_sums_call(
    lib: ctypes.CDLL, dh: Tensor, h: Tensor, theta: Tensor, g_v: Tensor | None, a0: Tensor,
    mode: str, tau_adapt: Columnwise, decay: Columnwise,
) -> Tensor:  # fmt: skip
    """``a0``: contiguous, of one step's shape and ``h``'s dtype."""
    dh, h, theta = dh.contiguous(), h.contiguous(), theta.contiguous()
    g_v = None if g_v is None else g_v.contiguous()
    out = torch.zeros((4, *h.shape[1:]), dtype=torch.float64)
    nt, n = h.shape[0], a0.numel()
    fn = getattr(lib, f"nk_alif_adapt_sums_{_SUFFIX[h.dtype]}")
    ptrs = [None if t is None else t.data_ptr() for t in (dh, h, theta, g_v, a0, out)]
    no_reset = int(mode == "none")
    params = (no_reset, *_pass(tau_adapt), *_pass(decay))
    _each(_columns(nt, n), lambda lo, hi: fn(*ptrs, nt, n, lo, hi, *params))
    return out


def current_forward(x: Tensor, i0: Tensor, tau: Param) -> Tensor | None:
    """``multistep._current_loop`` in one compiled call: the synaptic currents ``[T, B,
    ...]``; None where it does not apply."""
    if (
        torch.compiler.is_compiling()
        or x.device.type != "cpu"
        or i0.device != x.device  # the loop would read another device's memory as the host's
        or x.dtype not in _SUFFIX
    ):
        return None
    k = _scalar(tau)
    if k is None or (lib := _library()) is None:
        return None
    try:
        start = i0.to(x.dtype).expand(x.shape[1:]).contiguous()
    except RuntimeError:  # not broadcastable to one step: the ATen loop says so
        return None
    return _current_forward(lib, x, start, k)


def _current_forward(lib: ctypes.CDLL, x: Tensor, i0: Tensor, tau: float) -> Tensor:
    x = x.contiguous()
    out = torch.empty_like(x)
    nt, n = x.shape[0], i0.numel()
    fn = getattr(lib, f"nk_current_forward_{_SUFFIX[x.dtype]}")
    ptrs = (x.data_ptr(), i0.data_ptr(), out.data_ptr())
    _each(_columns(nt, n), lambda lo, hi: fn(*ptrs, nt, n, lo, hi, tau))
    return out


def scan_back(d: Tensor, lam: Param) -> bool:
    """``multistep._scan_back`` in one compiled call, in place over ``d``; False (nothing
    done) where it does not apply."""
    if (
        torch.compiler.is_compiling()
        or d.device.type != "cpu"
        or d.dtype not in _SUFFIX
        or not d.is_contiguous()
    ):
        return False
    k = _scalar(lam)
    if k is None or (lib := _library()) is None:
        return False
    _scan_back_call(lib, d, k)
    return True


def _scan_back_call(lib: ctypes.CDLL, d: Tensor, lam: float) -> None:
    nt, n = d.shape[0], d[0].numel()
    fn = getattr(lib, f"nk_scan_back_{_SUFFIX[d.dtype]}")
    _each(_columns(nt, n), lambda lo, hi: fn(d.data_ptr(), nt, n, lo, hi, lam))


_SPIKE_ROWS = 64  # input rows per block of nk_spike_linear (SPIKE_ROWS)
_SPIKE_PARALLEL_MIN = 1 << 24  # multiply-adds of the dense product below which one thread runs


Spikes = tuple[Tensor, Tensor]  # by row: start [N + 1] (int64), inputs [spikes] (int32)


def spike_linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> tuple[Tensor, Spikes] | None:
    """``x @ weight.T + bias`` for a binary ``x [N, in]`` by summing the weight columns of each
    row's spikes (``SpikeLinear``'s forward; no autograd), and ``x``'s spikes by row; None
    where it does not apply: not a CPU float32/float64 input of the weight's dtype, no compiled
    loops, or a value of ``x`` other than 0 or 1."""
    if (
        torch.compiler.is_compiling()
        or x.device.type != "cpu"
        or x.dtype not in _SUFFIX
        or weight.dtype != x.dtype
        or weight.device != x.device
        or (bias is not None and (bias.dtype != x.dtype or bias.device != x.device))
        or max(x.shape) >= 2**31  # int32 indices
        or (lib := _library()) is None
    ):
        return None
    x, b = x.detach().contiguous(), None if bias is None else bias.detach().contiguous()
    suffix, n, (n_out, n_in) = _SUFFIX[x.dtype], x.shape[0], weight.shape
    ranges = _rows(n, n_in * n_out)
    start = torch.zeros(n + 1, dtype=torch.int64)
    count = getattr(lib, f"nk_spike_count_{suffix}")
    if any(_codes(ranges, lambda lo, hi: count(x.data_ptr(), start[1:].data_ptr(), n_in, lo, hi))):
        return None  # not binary
    start = start.cumsum(0)
    cols = torch.empty(int(start[-1]), dtype=torch.int32)
    packed = _spike_pack(lib, weight.detach().t(), n_in, n_out)
    out = torch.empty(n, n_out, dtype=x.dtype)
    fn = getattr(lib, f"nk_spike_linear_{suffix}")
    ptrs = (x, start, cols, packed, b, out)
    args = [None if t is None else t.data_ptr() for t in ptrs]
    if any(_codes(ranges, lambda lo, hi: fn(*args, n_in, n_out, lo, hi))):
        return None  # out of memory for its buffer: the dense product
    return out, (start, cols)


def spike_weight_grad(spikes: Spikes, n_in: int, grad: Tensor) -> Tensor:
    """``grad.T @ x`` ``[out, in]`` from the spikes by row of a binary ``x [N, in]``
    (:func:`spike_linear`) and ``grad [N, out]``: per input, the sum of ``grad``'s rows at its
    spikes."""
    lib = _library()
    assert lib is not None  # spike_linear ran
    (start, cols), suffix, (n, n_out) = spikes, _SUFFIX[grad.dtype], grad.shape
    by_input = torch.empty(n_in + 1, dtype=torch.int64)
    rows = torch.empty_like(cols)
    getattr(lib, f"nk_spike_columns_{suffix}")(
        start.data_ptr(), cols.data_ptr(), n, n_in, by_input.data_ptr(), rows.data_ptr()
    )
    packed = _spike_pack(lib, grad.contiguous(), n, n_out)
    out = torch.empty(n_in, n_out, dtype=grad.dtype)
    fn = getattr(lib, f"nk_spike_weight_grad_{suffix}")
    ptrs = (by_input.data_ptr(), rows.data_ptr(), packed.data_ptr(), out.data_ptr())
    if any(_codes(_rows(n_in, n * n_out), lambda lo, hi: fn(*ptrs, n, n_out, lo, hi))):
        raise MemoryError("neuronkit.snn: no memory for SpikeLinear's weight gradient")
    return out.t()


def _spike_pack(lib: ctypes.CDLL, src: Tensor, n: int, width: int) -> Tensor:
    """``src [n, width]`` (any strides) in the column chunks ``[ceil(width / CH), n, CH]`` of
    ``nk_spike_pack``."""
    suffix = _SUFFIX[src.dtype]
    chunk = getattr(lib, f"nk_spike_chunk_{suffix}")()
    packed = torch.empty(-(-width // chunk), n, chunk, dtype=src.dtype)
    getattr(lib, f"nk_spike_pack_{suffix}")(
        src.data_ptr(), src.stride(0), src.stride(1), packed.data_ptr(), n, width
    )
    return packed


def _rows(n: int, row_work: int) -> list[tuple[int, int]]:
    """Row ranges ``[lo, hi)`` for ``nk_spike_linear``: one, or one per torch thread when the
    dense product would take ``_SPIKE_PARALLEL_MIN`` multiply-adds, split at its row blocks."""
    threads = torch.get_num_threads()
    if threads == 1 or n * row_work < _SPIKE_PARALLEL_MIN:
        return [(0, n)]
    step = -(-n // threads)
    step = -(-step // _SPIKE_ROWS) * _SPIKE_ROWS
    return [(lo, min(n, lo + step)) for lo in range(0, n, step)]


def _disagreement(lib: ctypes.CDLL) -> str | None:
    """The first variant whose compiled result differs by a single bit from the ATen loops'
    (``multistep._loop``, ``_through_time``, ``_current_loop``, ``_scan_back``) on random
    data, else None."""
    from .multistep import _current_loop, _loop, _scan_back, _through_time  # (cyclic)

    gen = torch.Generator().manual_seed(0)
    for dtype in _SUFFIX:
        u, g, g_s, g_v = (torch.randn(7, 3, 1100, generator=gen, dtype=dtype) for _ in range(4))
        u = u * 1.5 + 0.4  # 3300 columns: more than one block of 1024
        v0 = torch.randn(3, 1100, generator=gen, dtype=dtype)
        thr = torch.tensor(0.8, dtype=dtype)
        per_neuron = 0.2 + 0.6 * torch.rand(1100, generator=gen, dtype=dtype)  # both lerp sides
        thr_neuron = 0.6 + 0.4 * torch.rand(1100, generator=gen, dtype=dtype)
        leaks: list[tuple[str, float | None, Param | None]]
        leaks = [("lerp_small", 0.3, None), ("lerp_large", 0.7, None),
                 ("add_scaled", None, 0.9), ("add_scaled", None, torch.tensor(0.9, dtype=dtype)),
                 ("add", None, None)]  # fmt: skip
        # a lerp weight, lam and threshold per neuron (the kernels' columns)
        cases: list[tuple[str, Param | None, Param | None, Tensor]]
        cases = [(*leak, thr) for leak in leaks]
        cases += [("lerp_each", per_neuron, None, thr_neuron)]
        cases += [("add_scaled", None, per_neuron, thr_neuron)]
        for kind, w, lam, threshold in cases:
            weight = lam if w is None else w
            a = (0.0, None) if weight is None else _columnwise(weight, v0.shape, dtype)
            thr_c = _columnwise(threshold, v0.shape, dtype)
            decay: Param = 0.6
            if isinstance(weight, Tensor) and weight.dim():  # the leak's decay per neuron too
                decay = 1.0 - weight if w is not None else weight
            decay_c = _columnwise(decay, v0.shape, dtype)
            assert a is not None and thr_c is not None and decay_c is not None  # noqa: PT018
            w_t = torch.tensor(w, dtype=dtype) if isinstance(w, float) else w
            for mode, v_reset in [("subtract", 0.0), ("zero", 0.0), ("zero", -0.2), ("none", 0.0)]:
                code = "zero_to" if v_reset else mode
                want = _loop(u, v0, w_t, lam, threshold, v_reset, mode, keep_h=True,
                             keep_v=True, native=False)  # fmt: skip
                got = _forward(lib, u, v0, kind, code, a, thr_c, v_reset, keep_h=True, keep_v=True)
                if not all(map(torch.equal, want, got)):  # type: ignore[arg-type]
                    return f"the forward ({dtype}, {kind}, reset {code})"
                h = got[2]
                assert h is not None  # keep_h
                leak_args = (lib, g, h, u, v0, thr, thr_neuron, v_reset, mode)
                if kind == "lerp_small" and (mismatch := _leak_disagreement(*leak_args)):
                    return mismatch  # one leak kind suffices
                for detach in (False, True):
                    args = (g_s, g_v, threshold, v_reset, mode, detach)
                    want_dh = _through_time(g.clone(), h, *args, decay, keep_g=False)
                    got_dh = _backward(lib, g, h, g_s, g_v, thr_c, v_reset, mode, detach, decay_c,
                                       keep_g=True)  # fmt: skip
                    if not torch.equal(want_dh, got_dh):
                        return (
                            f"the backward ({dtype}, {kind}, reset {code}, detach_reset={detach})"
                        )
                    in_loop = kind in ("add", "lerp_each")  # the surrogates computed in the loop
                    for surrogate in (FastSigmoid(10.0), ATan(2.0)) if in_loop else ():
                        g_h = surrogate.derivative(h - threshold)
                        scale = a if kind == "lerp_each" else (0.3, None)
                        want_dh = _through_time(g_h, h, *args, decay, keep_g=False)
                        want_dh.mul_(0.3 if scale[1] is None else scale[1])
                        code_s = _surrogate_code(surrogate)
                        assert code_s is not None  # a built-in
                        got_dh = _backward(lib, None, h, g_s, g_v, thr_c, v_reset, mode, detach,
                                           decay_c, surrogate=code_s, scale=scale)  # fmt: skip
                        if not torch.equal(want_dh, got_dh):
                            return f"the backward with {surrogate} ({dtype}, {kind}, reset {code})"
        with_tau = [case for case in cases if case[0] != "add"]  # IF has no ALIF
        if (mismatch := _alif_disagreement(lib, u, v0, g, g_s, g_v, with_tau)) is not None:
            return mismatch
        for tau in (3.0, torch.tensor(1.7, dtype=dtype)):
            currents = _current_loop(u, v0, tau, native=False)
            if not torch.equal(currents, _current_forward(lib, u, v0, float(tau))):
                return f"the synaptic current ({dtype})"
            lam = 1.0 - 1.0 / tau
            want_d, got_d = g.clone(), g.clone()
            _scan_back(want_d, lam, native=False)
            _scan_back_call(lib, got_d, float(lam))
            if not torch.equal(want_d, got_d):
                return f"the synaptic current's backward ({dtype})"
    return None


def _leak_disagreement(
    lib: ctypes.CDLL, dh: Tensor, h: Tensor, u: Tensor, v0: Tensor, thr: Tensor,
    thr_neuron: Tensor, v_reset: float, mode: str,
) -> str | None:  # fmt: skip
    """:func:`_disagreement` for the leak's gradient sum (``multistep._leak_sums``), for a
    scalar threshold, one per neuron and ALIF's ``theta [T, B, ...]``."""
    from .multistep import _leak_sums  # (cyclic)

    theta = thr + 0.1 * h.abs()  # any threshold per element and step
    for threshold, given, kind in [
        (thr, None, "a scalar threshold"),
        (thr_neuron, None, "a threshold per neuron"),
        (theta, theta, "ALIF's theta"),
    ]:
        columns = (0.0, None) if given is not None else _columnwise(threshold, v0.shape, h.dtype)
        assert columns is not None  # CPU, h's dtype
        for drive in (u, None):  # the lerp's w, and lam
            want = _leak_sums(dh, h, threshold, v_reset, mode, v0, drive, native=False)
            got = _leak_sums_call(lib, dh, h, given, drive, v0, columns, v_reset, mode)
            if not torch.equal(want, got):
                return f"the leak's gradient ({h.dtype}, reset {mode}, v_reset {v_reset}, {kind})"
    return None


def _alif_disagreement(
    lib: ctypes.CDLL,
    u: Tensor,
    v0: Tensor,
    g: Tensor,
    g_s: Tensor,
    g_v: Tensor,
    cases: list[tuple[str, Param | None, Param | None, Tensor]],
) -> str | None:
    """:func:`_disagreement` for ALIF (``multistep._alif_loop``, ``_alif_through_time``,
    ``_adapt_sums``), for each ``(kind, w, lam, threshold)`` of ``cases``."""
    from .multistep import _adapt_sums, _alif_loop, _alif_through_time  # (cyclic)

    dtype = u.dtype
    a0 = torch.rand(v0.shape, generator=torch.Generator().manual_seed(1), dtype=dtype)
    gen = torch.Generator().manual_seed(2)
    # the adaptation as 0-d tensors (the kernels' scalars) with the first leak, per neuron
    # (their columns) with the others
    scalars = [torch.tensor(c, dtype=dtype) for c in (1.3, 5.0)]
    per_neuron = [c + torch.rand(v0.shape[-1:], generator=gen, dtype=dtype) for c in (1.3, 5.0)]
    for index, (kind, w, lam, thr) in enumerate(cases):
        beta, tau_a = scalars if index == 0 else per_neuron
        keep_a = 1.0 - 1.0 / tau_a
        weight = lam if w is None else w
        assert weight is not None  # IF has no ALIF
        decay: Param = 0.6  # and the scale 0.3; per neuron with a per-neuron leak
        scale: Param = 0.3
        if isinstance(weight, Tensor) and weight.dim():
            decay, scale = (1.0 - weight if w is not None else weight), weight
        params = (weight, thr, beta, tau_a, keep_a, decay, scale)
        columns = [_columnwise(p, v0.shape, dtype) for p in params]
        if any(c is None for c in columns):
            return f"the ALIF parameters' columns ({dtype}, {kind})"  # (not reached)
        a, thr_c, beta_c, tau_c, keep_c, decay_c, scale_c = cast(list[Columnwise], columns)
        w_t = torch.tensor(w, dtype=dtype) if isinstance(w, float) else w
        for mode, v_reset in [("subtract", 0.0), ("zero", 0.0), ("zero", -0.2), ("none", 0.0)]:
            code = "zero_to" if v_reset else mode
            want = _alif_loop(u, v0, a0, w_t, lam, tau_a, beta, thr, v_reset, mode,
                              FastSigmoid(), keep=True, native=False)  # fmt: skip
            got = _alif_forward(lib, u, v0, a0, kind, code, a, thr_c, beta_c, tau_c, v_reset,
                                keep=True)  # fmt: skip
            if not all(map(torch.equal, want, got)):  # type: ignore[arg-type]
                return f"the ALIF forward ({dtype}, {kind}, reset {code})"
            h, theta = got[3], got[4]
            assert h is not None  # keep
            assert theta is not None
            # (detach_reset, g_s, g_v, the derivatives given or the surrogate computing them)
            runs_of: list[tuple[bool, Tensor | None, Tensor | None, Tensor | Surrogate]]
            runs_of = [(False, g_s, g_v, g), (True, g_s, g_v, g), (False, None, None, g)]
            runs_of += [(False, g_s, g_v, FastSigmoid(10.0)), (True, None, g_v, ATan(2.0))]
            for detach, gs, gv, surrogate in runs_of:
                given = surrogate if isinstance(surrogate, Tensor) else None
                code_s = (
                    _surrogate_code(surrogate)
                    if not isinstance(surrogate, Tensor)
                    else ("given", 0.0, 0.0)
                )
                assert code_s is not None  # a built-in
                runs = []
                for native in (False, True):
                    dv, da = torch.zeros_like(v0), a0.clone()
                    args = (h, theta, gs, gv, dv, da, mode, detach, v_reset)
                    if native:
                        g_in = None if given is None else given.clone()
                        factors = (tau_c, keep_c, beta_c, decay_c, scale_c)
                        d = _alif_backward(lib, g_in, *args, *factors, surrogate=code_s)
                    else:
                        g_or_s = surrogate if given is None else given.clone()
                        d = _alif_through_time(g_or_s, *args, tau_a, beta, decay, scale=scale,
                                               native=False)  # fmt: skip
                    runs.append((d, dv, da))
                if not all(map(torch.equal, *runs)):
                    name = "given" if given is not None else type(surrogate).__name__
                    return (f"the ALIF backward ({dtype}, reset {code}, detach_reset={detach}, "
                            f"{name} derivatives)")  # fmt: skip
            for gv in (g_v, None) if index < 2 or kind == "lerp_each" else ():  # (suffice)
                want_sums = _adapt_sums(g, h, theta, gv, a0, mode, tau_a, decay, native=False)
                got_sums = _alif_adapt_sums_call(lib, g, h, theta, gv, a0, mode, tau_c, decay_c)
                if not torch.equal(want_sums, got_sums):
                    return f"the ALIF adaptation's gradients ({dtype}, reset {code})"
    return None
