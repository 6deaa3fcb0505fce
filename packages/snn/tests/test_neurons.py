"""Neuron step functions, multi-step functions and module shells."""

import copy
import pickle
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from neuronkit.snn import (
    ALIF,
    IF,
    LI,
    LIF,
    PLIF,
    ALIFState,
    CuBaLIF,
    CuBaLIFState,
    IFState,
    LIFState,
    SeqLinear,
    alif_multistep,
    alif_step,
    cuba_lif_multistep,
    cuba_lif_step,
    if_multistep,
    if_step,
    lif_multistep,
    lif_step,
)

F64 = torch.float64
STEPS = {
    "if": (if_step, if_multistep, IFState, IF),
    "lif": (lif_step, lif_multistep, LIFState, LIF),
    "alif": (alif_step, alif_multistep, ALIFState, ALIF),
    "cuba": (cuba_lif_step, cuba_lif_multistep, CuBaLIFState, CuBaLIF),
}


def _drive(T: int = 12, B: int = 3, N: int = 5, seed: int = 0, dtype: Any = F64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(T, B, N, generator=g, dtype=dtype) * 2.0


# ---- hand-computed dynamics --------------------------------------------------------------------


def test_lif_decay_input_by_hand() -> None:
    x = torch.full((3, 1, 1), 1.5, dtype=F64)
    soft = lif_multistep(x, tau=2.0)
    hard = lif_multistep(x, tau=2.0, reset="zero")
    # h1 = 0.75; h2 = 0.75 + (1.5 - 0.75)/2 = 1.125 -> spike
    assert soft.spikes.flatten().tolist() == [0.0, 1.0, 0.0]
    assert soft.v.flatten().tolist() == pytest.approx([0.75, 0.125, 0.8125])
    assert hard.v.flatten().tolist() == pytest.approx([0.75, 0.0, 0.75])


def test_lif_without_input_decay_is_beta_v_plus_x() -> None:
    x = _drive()
    out = lif_multistep(x, tau=4.0, decay_input=False, reset="none")
    beta, v, vs = 1 - 1 / 4.0, torch.zeros_like(x[0]), []
    for t in range(x.shape[0]):
        v = beta * v + x[t]
        vs.append(v)
    torch.testing.assert_close(out.v, torch.stack(vs))


def test_if_integrates_and_subtracts() -> None:
    x = torch.full((4, 1, 1), 0.4, dtype=F64)
    out = if_multistep(x)
    assert out.spikes.flatten().tolist() == [0.0, 0.0, 1.0, 0.0]
    assert out.v.flatten().tolist() == pytest.approx([0.4, 0.8, 0.2, 0.6])


def test_v_reset_is_leak_target_and_initial_state() -> None:
    x = torch.zeros(5, 1, 1, dtype=F64)
    out = lif_multistep(x, v_reset=-0.5, reset="zero")
    assert torch.all(out.v == -0.5)


def test_dt_scales_time_constants() -> None:
    x = _drive()
    a = lif_multistep(x, tau=4.0, dt=2.0)
    b = lif_multistep(x, tau=2.0, dt=1.0)
    assert torch.equal(a.spikes, b.spikes)
    assert torch.equal(a.v, b.v)


def test_alif_with_beta_zero_is_lif() -> None:
    x = _drive()
    a = alif_multistep(x, beta=0.0, tau=3.0)
    b = lif_multistep(x, tau=3.0, fused=False)
    assert torch.equal(a.spikes, b.spikes)
    assert torch.equal(a.v, b.v)


def test_alif_adapts() -> None:
    x = torch.full((60, 2, 4), 1.5, dtype=F64)
    adaptive = alif_multistep(x, tau=2.0, tau_adapt=10.0, beta=1.0)
    plain = lif_multistep(x, tau=2.0)
    assert adaptive.spikes.sum() < plain.spikes.sum()
    assert adaptive.spikes[:5].sum() == plain.spikes[:5].sum()  # same until adaptation builds
    a = adaptive.state.a
    assert torch.all((a >= 0) & (a <= 1))


def test_cuba_with_instant_synapse_is_lif() -> None:
    x = _drive()
    a = cuba_lif_multistep(x, tau_mem=3.0, tau_syn=1.0)
    b = lif_multistep(x, tau=3.0, fused=False)
    assert torch.equal(a.spikes, b.spikes)
    assert torch.equal(a.v, b.v)
    assert torch.equal(a.state.i, x[-1])


def test_cuba_current_filters_input() -> None:
    x = torch.zeros(6, 1, 1, dtype=F64)
    x[0] = 1.0
    out = cuba_lif_multistep(x, tau_mem=100.0, tau_syn=2.0, threshold=10.0)
    # the current decays geometrically by 1 - 1/tau_syn after its jump
    assert out.state.i.item() == pytest.approx(0.5**5)


# ---- invariants (property-based) ---------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    kind=st.sampled_from(sorted(STEPS)),
    reset=st.sampled_from(["subtract", "zero", "none"]),
    seed=st.integers(0, 2**16),
    scale=st.floats(0.1, 4.0),
    threshold=st.floats(0.2, 2.0),
)
def test_spikes_binary_and_reset_invariants(
    kind: str, reset: str, seed: int, scale: float, threshold: float
) -> None:
    _, multistep, _, _ = STEPS[kind]
    x = (_drive(T=8, seed=seed) - 0.5) * scale
    kw: dict[str, Any] = {"reset": reset, "threshold": threshold}
    if kind == "alif":
        kw["beta"] = 0.0  # fixed threshold, so the invariants below refer to ``threshold``
    out = multistep(x, **kw)
    assert set(out.spikes.unique().tolist()) <= {0.0, 1.0}
    fired = out.spikes.bool()
    if reset == "zero":
        assert torch.all(out.v[fired] == 0.0)
        assert torch.all(out.v <= threshold)
    if reset == "subtract":
        assert torch.all(out.v[~fired] < threshold)


@settings(max_examples=20, deadline=None)
@given(kind=st.sampled_from(sorted(STEPS)), seed=st.integers(0, 2**16), split=st.integers(1, 7))
def test_multistep_equals_step_loop_and_chunks(kind: str, seed: int, split: int) -> None:
    step, multistep, _, _ = STEPS[kind]
    x = _drive(T=8, seed=seed, dtype=torch.float32)
    full = multistep(x)
    state, spikes = None, []
    for t in range(x.shape[0]):
        s, state = step(x[t], state)
        spikes.append(s)
    assert torch.equal(torch.stack(spikes), full.spikes)
    assert all(torch.equal(a, b) for a, b in zip(state, full.state))
    first = multistep(x[:split])
    second = multistep(x[split:], first.state)
    assert torch.equal(torch.cat([first.spikes, second.spikes]), full.spikes)
    assert torch.equal(second.v, full.v[split:])


@pytest.mark.parametrize("kind", sorted(STEPS))
def test_surrogate_gradient_reaches_input(kind: str) -> None:
    _, multistep, _, _ = STEPS[kind]
    x = _drive().requires_grad_()
    multistep(x).spikes.sum().backward()
    assert x.grad is not None
    assert x.grad.abs().sum() > 0


def test_detach_reset_changes_gradient_not_forward() -> None:
    x = _drive().requires_grad_()
    grads, outs = [], []
    for detach in (False, True):
        out = lif_multistep(x, detach_reset=detach, fused=False)
        (g,) = torch.autograd.grad(out.spikes.sum(), x)
        grads.append(g)
        outs.append(out.spikes)
    assert torch.equal(outs[0], outs[1])
    assert not torch.allclose(grads[0], grads[1])


def test_tensor_parameters_per_neuron() -> None:
    x = _drive()
    thr = torch.tensor([0.5, 1.0, 1.5, 2.0, 2.5], dtype=F64)
    out = lif_multistep(x, threshold=thr, tau=torch.full((5,), 2.0, dtype=F64))
    for n in range(5):
        ref = lif_multistep(x[..., n : n + 1], threshold=float(thr[n]), tau=2.0)
        assert torch.equal(out.spikes[..., n : n + 1], ref.spikes)


@pytest.mark.parametrize("kind", sorted(STEPS))
def test_tensor_parameters_take_the_input_dtype(kind: str) -> None:
    _, multistep, _, _ = STEPS[kind]
    name = {"if": "threshold", "lif": "tau", "alif": "tau", "cuba": "tau_mem"}[kind]
    value = torch.full((5,), 0.9 if name == "threshold" else 2.0, dtype=F64)
    x = _drive(dtype=torch.float32)
    out = multistep(x, **{name: value})
    assert out.spikes.dtype == out.v.dtype == torch.float32
    ref = multistep(x, **{name: value.float()})
    assert torch.equal(out.spikes, ref.spikes)
    assert torch.equal(out.v, ref.v)


# ---- modules -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(STEPS))
def test_module_matches_functional(kind: str) -> None:
    step, multistep, _, module_cls = STEPS[kind]
    module = module_cls()
    x = _drive()
    run = module.run(x)
    assert torch.equal(module(x), run.spikes)
    ref = multistep(x)
    assert torch.equal(run.spikes, ref.spikes)
    assert torch.equal(run.v, ref.v)
    s, state = module.step(x[0])
    s_ref, state_ref = step(x[0])
    assert torch.equal(s, s_ref)
    assert all(torch.equal(a, b) for a, b in zip(state, state_ref))
    # explicit state: a second call from the returned state continues the run
    again = module.run(x, run.state)
    assert torch.equal(again.spikes, multistep(x, ref.state).spikes)
    assert list(module.buffers()) == []  # no hidden state


def test_module_repr_and_options() -> None:
    lif = LIF(tau=3.0, reset="zero", detach_reset=True, surrogate="sigmoid", validate=False)
    text = repr(lif)
    assert "tau=3" in text
    assert "reset='zero'" in text
    assert "Sigmoid(alpha=4.0)" in text
    assert "tau_adapt=20.0" in repr(ALIF())
    assert "tau_syn=5.0" in repr(CuBaLIF())
    assert "threshold=1.0" in repr(IF())


def test_plif_learns_tau() -> None:
    plif = PLIF(init_tau=3.0)
    assert plif.tau.item() == pytest.approx(3.0)
    x = _drive(dtype=torch.float32)
    ref = LIF(tau=3.0)(x)
    out = plif(x)
    torch.testing.assert_close(out, ref)
    out.sum().backward()
    assert plif.w.grad is not None
    assert plif.w.grad.abs() > 0
    assert [n for n, _ in plif.named_parameters()] == ["w"]


def test_plif_dt() -> None:
    plif = PLIF(init_tau=4.0, dt=2.0)
    assert plif.tau.item() == pytest.approx(4.0)


def test_tiny_network_trains_on_digits() -> None:
    from neuronkit.snn import SeqFlatten, SeqLinear, direct_encode, load_digits, spike_count_ce

    torch.manual_seed(0)
    data = load_digits()
    x, y = direct_encode(data.x_train[:256], 4), data.y_train[:256]
    net = torch.nn.Sequential(SeqFlatten(), SeqLinear(64, 10), LIF(tau=2.0))
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    losses = []
    for _ in range(15):
        loss = spike_count_ce(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


# ---- bad inputs --------------------------------------------------------------------------------

X3 = torch.zeros(2, 3, 4)


@pytest.mark.parametrize("kind", sorted(STEPS))
def test_bad_rank_and_type(kind: str) -> None:
    step, multistep, _, module_cls = STEPS[kind]
    module = module_cls()
    for call in (multistep, module.run, module):
        with pytest.raises(ValueError, match=r"x must have at least 3 dimensions \[T, B, \.\.\.\]"):
            call(torch.zeros(3, 4))  # a [B, N] step handed to a multi-step entry
        with pytest.raises(TypeError, match=r"x must be a torch\.Tensor"):
            call([[[0.0]]])
        with pytest.raises(TypeError, match="x must be a floating-point tensor"):
            call(torch.zeros(2, 3, 4, dtype=torch.long))
        with pytest.raises(ValueError, match="x must be finite"):
            call(torch.full((2, 3, 4), float("nan")))
        with pytest.raises(ValueError, match="T >= 1"):
            call(torch.zeros(0, 3, 4))
    for call in (step, module.step):
        with pytest.raises(ValueError, match=r"x must have at least 2 dimensions \[B, \.\.\.\]"):
            call(torch.zeros(4))
        with pytest.raises(ValueError, match="x must be finite"):
            call(torch.full((3, 4), float("inf")))


@pytest.mark.parametrize("kind", sorted(STEPS))
def test_bad_state(kind: str) -> None:
    step, multistep, state_cls, _ = STEPS[kind]
    good = multistep(X3).state
    with pytest.raises(TypeError, match=f"state must be a {state_cls.__name__} or None"):
        multistep(X3, tuple(good))
    wrong = state_cls(*(torch.zeros(2, 3, 4) for _ in good))  # [T, B, N]: a time-major mix-up
    with pytest.raises(ValueError, match=r"state\.v must have shape \[3, 4\]"):
        multistep(X3, wrong)
    with pytest.raises(ValueError, match=r"state\.v must have shape \[3, 4\]"):
        step(X3[0], wrong)
    with pytest.raises(TypeError, match=r"state\.v must be a torch\.Tensor"):
        step(X3[0], state_cls(*([1.0] * len(good))))
    assert step(X3[0], good)[1] is not None


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"threshold": 0.0}, ValueError, "threshold must be > 0, got 0.0"),
        ({"threshold": -1.0}, ValueError, "threshold must be > 0"),
        ({"threshold": "1"}, TypeError, "threshold must be a real number"),
        ({"threshold": torch.ones(3, dtype=torch.long)}, TypeError, "threshold must be a float"),
        ({"threshold": torch.ones(5)}, ValueError, r"threshold must broadcast to .*\[3, 4\]"),
        ({"v_reset": 1.0}, ValueError, r"v_reset must be < threshold \(1\), got 1.0"),
        ({"v_reset": float("nan")}, ValueError, "v_reset must be finite"),
        ({"reset": "hard"}, ValueError, r"reset must be one of \['subtract', 'zero', 'none'\]"),
        ({"reset": None}, TypeError, "reset must be str"),
        ({"detach_reset": 1}, TypeError, "detach_reset must be bool"),
        ({"surrogate": "nope"}, ValueError, "surrogate must be one of"),
    ],
)
@pytest.mark.parametrize("kind", sorted(STEPS))
def test_bad_common_parameters(kind: str, kwargs: dict, error: type, match: str) -> None:
    step, multistep, _, module_cls = STEPS[kind]
    with pytest.raises(error, match=match):
        multistep(X3, **kwargs)
    with pytest.raises(error, match=match):
        step(X3[0], **kwargs)
    if not any(isinstance(v, torch.Tensor) for v in kwargs.values()):
        with pytest.raises(error, match=match):
            module_cls(**kwargs)


TAUS = {"lif": ["tau"], "alif": ["tau", "tau_adapt"], "cuba": ["tau_mem", "tau_syn"]}


@pytest.mark.parametrize(("kind", "name"), [(k, n) for k, ns in TAUS.items() for n in ns])
def test_bad_time_constants(kind: str, name: str) -> None:
    step, multistep, _, module_cls = STEPS[kind]
    for call in (lambda **kw: multistep(X3, **kw), lambda **kw: step(X3[0], **kw), module_cls):
        with pytest.raises(ValueError, match=f"{name} must be > 0, got -2.0"):
            call(**{name: -2.0})
        with pytest.raises(ValueError, match=f"{name} must be > 0, got 0"):
            call(**{name: 0})
        with pytest.raises(ValueError, match=rf"{name} must be >= dt \(1\), got 0.5"):
            call(**{name: 0.5})
        with pytest.raises(ValueError, match="dt must be > 0"):
            call(dt=0.0)
        with pytest.raises(TypeError, match="decay_input must be bool"):
            call(decay_input="yes")


def test_bad_module_only_arguments() -> None:
    with pytest.raises(ValueError, match="init_tau must be > 1"):
        PLIF(init_tau=1.0)
    with pytest.raises(ValueError, match="beta must be >= 0"):
        ALIF(beta=-1.0)
    with pytest.raises(TypeError, match="fused must be bool"):
        LIF(fused=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="validate must be bool"):
        IF(validate="no")  # type: ignore[arg-type]


def test_validate_false_skips_value_checks_only() -> None:
    nan = torch.full((2, 3, 4), float("nan"))
    lif_multistep(nan, validate=False)  # NaN passes through when asked not to validate
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        lif_multistep(torch.zeros(3, 4), validate=False)  # structure is always checked


@pytest.mark.parametrize("decay_input", [False, True])
def test_two_state_tensor_parameters_follow_the_input_dtype(decay_input: bool) -> None:
    x = _drive(dtype=torch.float32) * 2
    threshold = torch.tensor([1.0, 1.1, 1.2, 0.9, 1.0], dtype=F64)
    out = alif_multistep(
        x, threshold=threshold, beta=torch.tensor(0.5, dtype=F64), decay_input=decay_input
    )
    ref = alif_multistep(
        x, threshold=threshold.float(), beta=torch.tensor(0.5), decay_input=decay_input
    )
    assert out.spikes.dtype == out.v.dtype == torch.float32
    assert torch.equal(out.spikes, ref.spikes)
    cuba = cuba_lif_multistep(x, threshold=threshold, decay_input=decay_input)
    assert cuba.spikes.dtype == torch.float32


# ---- tensor parameters and state are value-checked like floats ---------------------------------

NAN = float("nan")
TENSOR_PARAMS = {  # kind: [(keyword, bad value, match)]
    "if": [
        ("threshold", -1.0, "threshold must be > 0"),
        ("threshold", 0.0, "threshold must be > 0"),
    ],
    "lif": [
        ("tau", -2.0, "tau must be > 0"),
        ("tau", 0.0, "tau must be > 0"),
        ("tau", 0.5, r"tau must be >= dt \(1\)"),
        ("tau", NAN, "tau must be finite"),
        ("threshold", NAN, "threshold must be finite"),
        ("threshold", float("inf"), "threshold must be finite"),
    ],
    "alif": [
        ("beta", -5.0, "beta must be >= 0"),
        ("tau_adapt", 0.0, "tau_adapt must be > 0"),
        ("tau_adapt", 0.5, r"tau_adapt must be >= dt"),
    ],
    "cuba": [("tau_syn", -1.0, "tau_syn must be > 0"), ("tau_mem", NAN, "tau_mem must be finite")],
}


@pytest.mark.parametrize(
    ("kind", "name", "value", "match"),
    [(k, *case) for k, cases in TENSOR_PARAMS.items() for case in cases],
)
@pytest.mark.parametrize("per_neuron", [False, True])
def test_tensor_parameters_are_range_checked(
    kind: str, name: str, value: float, match: str, per_neuron: bool
) -> None:
    step, multistep, _, module_cls = STEPS[kind]
    # one bad element among good ones is enough; a 0-d tensor is checked as well
    good = {"threshold": 1.0, "beta": 1.0}.get(name, 2.0)
    bad = torch.tensor([good, value, good, good]) if per_neuron else torch.tensor(value)
    calls = [
        lambda: multistep(X3, **{name: bad}),
        lambda: step(X3[0], **{name: bad}),
        lambda: module_cls(**{name: bad}),
    ]
    if kind in ("if", "lif"):
        calls.append(lambda: multistep(X3, fused=False, **{name: bad}))
    for call in calls:
        with pytest.raises(ValueError, match=match):
            call()


def test_tensor_threshold_must_exceed_v_reset() -> None:
    with pytest.raises(ValueError, match=r"v_reset must be < threshold \(a tensor with minimum"):
        lif_multistep(X3, threshold=torch.tensor([1.0, 0.4, 1.0, 1.0]), v_reset=0.5)


def test_tensor_tau_equal_to_dt_in_its_own_precision_is_valid() -> None:
    # float32 stores 0.7 just below the double 0.7: still tau == dt, not tau < dt
    out = lif_multistep(X3, tau=torch.tensor(0.7), dt=0.7)
    assert torch.equal(out.v, lif_multistep(X3, tau=0.7, dt=0.7).v)


def test_learnable_tensor_parameter_is_checked_and_keeps_its_gradient() -> None:
    thr = torch.tensor([1.0, 1.5, 0.8, 1.2], requires_grad=True)
    out = lif_multistep(_drive(T=4, B=3, N=4, dtype=torch.float32), threshold=thr)
    out.v.sum().backward()
    assert thr.grad is not None
    with pytest.raises(ValueError, match="threshold must be > 0"):
        lif_multistep(X3, threshold=torch.tensor([1.0, -1.0, 1.0, 1.0], requires_grad=True))
    plif = PLIF()
    with torch.no_grad():
        plif.w.fill_(NAN)  # a diverged learnable tau
    with pytest.raises(ValueError, match="tau must be finite"):
        plif(X3)


def test_validate_false_skips_tensor_value_checks() -> None:
    lif_multistep(X3, tau=torch.tensor(-2.0), validate=False)
    alif_multistep(X3, beta=torch.tensor(-1.0), validate=False)


@pytest.mark.parametrize("kind", sorted(STEPS))
@pytest.mark.parametrize("bad", [NAN, float("inf")])
def test_non_finite_state_is_rejected_by_name(kind: str, bad: float) -> None:
    step, multistep, state_cls, module_cls = STEPS[kind]
    fields = state_cls._fields
    for field in fields:
        state = state_cls(
            *(torch.full((3, 4), bad) if f == field else torch.zeros(3, 4) for f in fields)
        )
        runs: list[tuple[Any, dict]] = [(multistep, {}), (module_cls().run, {}), (module_cls(), {})]
        if kind in ("if", "lif"):
            runs.append((multistep, {"fused": False}))
        for call, kw in runs:
            with pytest.raises(ValueError, match=rf"state\.{field} must be finite"):
                call(X3, state, **kw)
        with pytest.raises(ValueError, match=rf"state\.{field} must be finite"):
            step(X3[0], state)
    # the input is still named first when it is the culprit
    finite = state_cls(*(torch.zeros(3, 4) for _ in fields))
    with pytest.raises(ValueError, match="x must be finite"):
        multistep(torch.full((2, 3, 4), NAN), finite)
    multistep(X3, state_cls(*(torch.full((3, 4), NAN) for _ in fields)), validate=False)


@pytest.mark.parametrize("kind", sorted(STEPS))
def test_neurons_are_channel_local(kind: str) -> None:
    # read by tools that prune channels through a layer (neuronkit-pruning); a per-neuron
    # setting is a buffer, which the tool reads from the state and slices with the channels
    module = STEPS[kind][3]
    assert module().channel_local
    assert module(threshold=torch.linspace(1.0, 2.0, 5)).channel_local
    assert module(threshold=torch.tensor(1.5)).channel_local
    assert PLIF().channel_local  # its learnable tau is one 0-d parameter per layer


# ---- tensor settings are buffers -----------------------------------------------------------------

PER_NEURON = {  # kind: the settings given as one tensor value per neuron
    "if": {"threshold": (0.5, 1.5)},
    "lif": {"tau": (1.5, 4.0), "threshold": (0.5, 1.5)},
    "alif": {"tau": (1.5, 4.0), "tau_adapt": (5.0, 30.0), "beta": (0.5, 2.0)},
    "cuba": {"tau_mem": (2.0, 12.0), "tau_syn": (1.5, 6.0), "threshold": (0.5, 1.5)},
}


def _per_neuron(kind: str, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        n: lo + (hi - lo) * torch.rand(5, generator=g) for n, (lo, hi) in PER_NEURON[kind].items()
    }


@pytest.mark.parametrize("kind", sorted(STEPS))
def test_tensor_settings_are_in_the_state_dict_and_follow_the_module(kind: str) -> None:
    module_cls = STEPS[kind][3]
    settings_ = _per_neuron(kind, seed=0)
    a = module_cls(**settings_)
    assert sorted(a.state_dict()) == sorted(settings_)
    assert list(a.parameters()) == []
    b = module_cls(**_per_neuron(kind, seed=1))
    x = _drive(dtype=torch.float32)
    assert not torch.equal(a(x), b(x))
    b.load_state_dict(a.state_dict())
    assert torch.equal(a(x), b(x))
    # each module owns a copy: loading a state dict leaves the caller's tensors (and any other
    # module built from them) alone
    shared = _per_neuron(kind, seed=2)
    kept = {n: v.clone() for n, v in shared.items()}
    c, d = module_cls(**shared), module_cls(**shared)
    c.load_state_dict(a.state_dict())
    assert all(torch.equal(shared[n], kept[n]) for n in shared)
    assert all(torch.equal(getattr(d, n), kept[n]) for n in shared)
    # they move and cast with the module (as .to(device) moves them)
    assert all(getattr(a.double(), name).dtype == F64 for name in settings_)
    assert torch.equal(copy.deepcopy(a)(x.double()), a(x.double()))
    assert torch.equal(pickle.loads(pickle.dumps(a))(x.double()), a(x.double()))
    # floats stay attributes, parameters stay parameters
    assert module_cls().state_dict() == {}
    name = next(iter(settings_))
    learnable = module_cls(**{name: nn.Parameter(settings_[name])})
    assert [n for n, _ in learnable.named_parameters()] == [name]
    assert list(learnable.buffers()) == []


@pytest.mark.parametrize("kind", sorted(STEPS))
def test_repr_of_per_neuron_settings_shows_shape_and_range(kind: str) -> None:
    module_cls = STEPS[kind][3]
    settings_ = _per_neuron(kind, seed=0)
    text = repr(module_cls(**settings_))
    for name, value in settings_.items():
        assert f"{name}=tensor(shape=[5], min={float(value.min()):.4g}" in text
    name = next(iter(settings_))
    one = repr(module_cls(**{name: nn.Parameter(torch.tensor(2.5))}))
    assert f"{name}=2.5," in one


@pytest.mark.parametrize("kind", sorted(STEPS))
def test_per_neuron_settings_are_in_the_state_channel_local_holds(kind: str) -> None:
    module_cls = STEPS[kind][3]
    name = next(iter(PER_NEURON[kind]))
    per_neuron = _per_neuron(kind, seed=0)[name]
    learnable = module_cls(**{name: nn.Parameter(per_neuron)})
    assert learnable.channel_local  # the setting is a parameter: tools see and slice it
    assert name in dict(learnable.named_parameters())
    assert name in dict(module_cls(**{name: per_neuron}).named_buffers())


@pytest.mark.parametrize("kind", sorted(STEPS))
def test_flags_of_the_functions_are_type_checked(kind: str) -> None:
    step, multistep, _, _ = STEPS[kind]
    x = _drive()
    with pytest.raises(TypeError, match="validate must be bool"):
        multistep(x, validate="yes")
    with pytest.raises(TypeError, match="validate must be bool"):
        step(x[0], validate="yes")
    if kind in ("if", "lif"):
        with pytest.raises(TypeError, match="fused must be bool"):
            multistep(x, fused="yes")


@pytest.mark.parametrize(
    "make",
    [
        lambda v: LIF(tau=v),
        lambda v: LIF(v_reset=-v / 8),
        lambda v: IF(threshold=v / 4),
        lambda v: ALIF(tau=v),
        lambda v: CuBaLIF(tau_mem=v),
        lambda v: LI(tau=v),
    ],
    ids=["lif_tau", "lif_v_reset", "if_threshold", "alif_tau", "cuba_tau_mem", "li_tau"],
)
def test_compiled_models_with_different_float_settings(make: Any) -> None:
    # dynamo traces a float setting that changes between compiled models as a symbol, whose
    # value cannot be read by the parameter checks
    torch._dynamo.reset()
    x = _drive(T=4, B=2, N=8, dtype=torch.float32)
    for value in (2.0, 3.0):
        net = nn.Sequential(SeqLinear(8, 16), make(value))
        compiled = torch.compile(net, fullgraph=True, backend="eager")
        assert torch.equal(compiled(x), net(x))


@pytest.mark.parametrize("decay_input", [True, False])
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_step_loop_gradients_equal_fused_multistep_for_per_neuron_tau_and_threshold(
    reset: str, decay_input: bool
) -> None:
    g = torch.Generator().manual_seed(6)
    x = (torch.randn(7, 3, 5, generator=g, dtype=F64) * 1.5).requires_grad_()
    tau = (1.2 + 3.0 * torch.rand(5, generator=g, dtype=F64)).requires_grad_()
    thr = (0.8 + 0.4 * torch.rand(5, generator=g, dtype=F64)).requires_grad_()
    kw: dict[str, Any] = {"tau": tau, "threshold": thr, "v_reset": -0.2, "reset": reset}
    kw.update(decay_input=decay_input, dt=0.5)
    w = torch.randn(7, 3, 5, generator=g, dtype=F64)
    full = lif_multistep(x, **kw)
    assert "Fused" in type(full.spikes.grad_fn).__name__
    state, spikes = None, []
    for t in range(x.shape[0]):
        s, state = lif_step(x[t], state, **kw)
        spikes.append(s)
    looped = torch.stack(spikes)
    assert 0 < float(looped.detach().mean()) < 1
    assert torch.equal(looped, full.spikes)
    leaves = (x, tau, thr)
    g_full = torch.autograd.grad((full.spikes * w).sum() + full.state.v.square().sum(), leaves)
    g_loop = torch.autograd.grad((looped * w).sum() + state.v.square().sum(), leaves)
    for a, b in zip(g_full, g_loop):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", [*STEPS, "plif", "iir", "li"])
@pytest.mark.parametrize("fused", [True, False])
def test_autocast_integrates_half_precision_input_in_float32(kind: str, fused: bool) -> None:
    """Under autocast a bfloat16 input is integrated in float32: the spikes (in bfloat16) and
    the float32 membrane and state equal a float32 run on the same values, in chunks too (in
    bfloat16 a drive of 0.0015 per step would not lift a membrane near 1: 2**-8 apart)."""
    from neuronkit.snn.training import IIRLIF

    x = torch.full((1500, 2, 3), 0.0015) + 0.001 * _drive(1500, 2, 3, dtype=torch.float32)
    x = x.bfloat16()
    if kind == "iir":
        module: nn.Module = IIRLIF(leak=1.0)
    elif kind == "li":
        module = LI(tau=200.0)
    elif kind == "plif":
        module = PLIF(init_tau=2000.0, decay_input=False, fused=fused)
    else:  # slow leaks and the input as a jump: the membranes reach the threshold
        kw: dict[str, Any] = {} if kind == "if" else {"decay_input": False}
        kw |= {"cuba": {"tau_mem": 2000.0}, "if": {}}.get(kind, {"tau": 2000.0})
        module = STEPS[kind][3](**kw, **({"fused": fused} if kind in ("if", "lif") else {}))
    xg = x.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = module(xg)
    ref = module(x.float())
    assert out.dtype == (torch.float32 if kind == "li" else torch.bfloat16)
    assert torch.equal(out.float(), ref)
    if kind != "li":
        assert ref.sum() > 0
    out.float().sum().backward()
    assert xg.grad is not None
    assert xg.grad.dtype == torch.bfloat16
    if kind == "iir":
        return
    with torch.autocast("cpu", dtype=torch.bfloat16):
        head = module.run(x[:700])  # type: ignore[operator]
        tail = module.run(x[700:], head[-1])  # type: ignore[operator]
        state = None
        for x_t in x[:5]:
            _, state = module.step(x_t, state)  # type: ignore[operator]
    assert all(f.dtype == torch.float32 for f in tail[-1])
    assert all(f.dtype == torch.float32 for f in state)
    whole = torch.cat([head[0], tail[0]]).float()
    assert torch.equal(whole, ref)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # a bfloat16 state is upcast
        half_state = type(state)(*(f.bfloat16() for f in state))
        module.step(x[0], half_state)  # type: ignore[operator]


@pytest.mark.parametrize(
    "make",
    [
        lambda: PLIF(),
        lambda: PLIF(fused=False),
        lambda: LIF(tau=nn.Parameter(torch.full((4,), 3.0))),
        lambda: ALIF(beta=nn.Parameter(torch.tensor(1.0))),
        lambda: CuBaLIF(tau_syn=nn.Parameter(torch.tensor(3.0))),
        lambda: LI(tau=nn.Parameter(torch.tensor(3.0))),
    ],
)
@pytest.mark.parametrize("how", ["run", "step"])
def test_state_made_under_inference_mode_continues_with_autograd(make: Any, how: str) -> None:
    """A state from a run under torch.inference_mode (a warm-up) continues a run that trains
    learnable settings, with the result of a state made without it; torch would refuse to
    save the inference tensor for the backward of tau or beta."""
    neuron = make()
    x = torch.rand(6, 2, 4) * 1.5
    with torch.inference_mode():
        warm = neuron.run(x[:3])[-1]
    plain = type(warm)(*(f.clone() for f in warm))
    nxt = x[3] if how == "step" else x[3:]
    out = getattr(neuron, how)(nxt, warm)[0]
    ref = getattr(neuron, how)(nxt, plain)[0]
    (grads,) = torch.autograd.grad(out.sum(), [next(neuron.parameters())], allow_unused=True)
    (want,) = torch.autograd.grad(ref.sum(), [next(neuron.parameters())], allow_unused=True)
    assert torch.equal(out, ref)
    assert torch.equal(grads, want)
    assert warm[0].is_inference()  # the caller's state is left as it is
