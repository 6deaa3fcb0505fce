"""Tests of the ENAS controller, REINFORCE and the memory buffer (nas.controller)."""

from __future__ import annotations

import itertools

import pytest
import torch

from neuronkit.pruning.nas import (
    Architecture,
    CellSpace,
    ENASController,
    MemoryBuffer,
    ReinforceConfig,
    ReinforceTrainer,
    random_architectures,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors


def _all_architectures(space: CellSpace) -> list[Architecture]:
    return [
        Architecture.from_sequence(space, s)
        for s in itertools.product(*(range(c) for c in space.choices))
    ]


def test_probabilities_over_the_whole_space_sum_to_one() -> None:
    space = CellSpace(num_nodes=3, ops=("tanh", "relu"))
    ctrl = ENASController(space, hidden=8, tanh_c=None, temperature=None, seed=1)
    with torch.no_grad():  # make the distribution far from uniform
        for p in ctrl.parameters():
            p.mul_(20.0)
    archs = _all_architectures(space)
    assert len(archs) == space.size == 16
    total = ctrl.log_prob(archs).detach().exp().sum()
    assert float(total) == pytest.approx(1.0, abs=1e-5)


def test_sample_log_prob_and_hidden_match_teacher_forcing() -> None:
    space = CellSpace(num_nodes=5)
    ctrl = ENASController(space, hidden=16, seed=0)
    s = ctrl.sample(6, seed=4)
    assert s.sequences.shape == (6, space.num_decisions)
    assert s.log_prob.shape == s.entropy.shape == (6,)
    assert s.hidden.shape == (6, 16)
    assert s.log_prob.requires_grad
    assert torch.allclose(s.log_prob, ctrl.log_prob(s.architectures), atol=1e-6)
    assert torch.allclose(s.hidden, ctrl.hidden_states(s.architectures), atol=1e-6)
    again = ctrl.sample(6, seed=4)
    assert again.architectures == s.architectures
    probs = ctrl.decision_probabilities(s.architectures)
    assert [p.shape[1] for p in probs] == list(space.choices)
    for p in probs:
        assert torch.allclose(p.sum(1), torch.ones(6))
    # ENAS's logit shaping bounds every logit by tanh_c
    assert all(float(p.max() / p.min()) <= torch.exp(torch.tensor(5.0)) + 1e-3 for p in probs)


def test_hidden_state_is_the_state_at_the_last_decision() -> None:
    """The architecture's hidden state is the LSTM state from which its last token is drawn
    (Adam & Lorraine's analysis code takes ``hidden[0]`` returned by the controller's
    ``sample``, whose loop never feeds the last token back): it depends on the first
    ``2B - 2`` tokens only."""
    space = CellSpace(num_nodes=4)
    ctrl = ENASController(space, hidden=8, seed=3)
    base = random_architectures(space, 1, seed=0)[0]
    seq = list(base.to_sequence())
    variants = [Architecture.from_sequence(space, [*seq[:-1], op]) for op in range(len(space.ops))]
    hidden = ctrl.hidden_states(variants)
    assert torch.allclose(hidden, hidden[:1].expand_as(hidden))
    with torch.no_grad():  # the state computed by hand: zero input, then tokens 0 .. T-2
        h = c = inp = torch.zeros(1, 8)
        for t in range(space.num_decisions):
            h, c = ctrl.lstm(inp, (h, c))
            inp = ctrl.embedding(torch.tensor([seq[t] + ctrl._token_offset[t]]))
    assert torch.allclose(hidden[0], h[0], atol=1e-6)
    s = ctrl.sample(5, seed=1)
    assert torch.allclose(s.hidden, ctrl.hidden_states(s.architectures), atol=1e-6)


def test_initialization_is_uniform_in_pm_0_1_with_zero_decoder_bias() -> None:
    ctrl = ENASController(CellSpace(num_nodes=4), hidden=8, seed=2)
    for name, p in ctrl.named_parameters():
        assert float(p.detach().abs().max()) <= 0.1
        if name.startswith("decoders") and name.endswith("bias"):
            assert float(p.detach().abs().max()) == 0.0


def test_reinforce_learns_a_rewarded_choice_and_tracks_the_baseline() -> None:
    space = CellSpace(num_nodes=3)
    ctrl = ENASController(space, hidden=16, seed=0)
    trainer = ReinforceTrainer(
        ctrl, ReinforceConfig(lr=0.05, baseline_decay=0.5, entropy_weight=0.0)
    )
    gen = torch.Generator().manual_seed(0)
    probe = [Architecture((1, 0, 0), (0, 0))]
    before = float(ctrl.decision_probabilities(probe)[0][0, 1])
    first = None
    for _ in range(40):
        s = ctrl.sample(16, generator=gen)
        rewards = torch.tensor([1.0 if a.ops[0] == 1 else 0.0 for a in s.architectures])
        out = trainer.step(s, rewards)
        first = rewards.mean().item() if first is None else first
    after = float(ctrl.decision_probabilities(probe)[0][0, 1])
    assert before == pytest.approx(0.25, abs=0.02)
    assert after > 0.8
    assert 0.0 <= out["baseline"] <= 1.0
    # the first step initializes the baseline with the first mean reward
    t2 = ReinforceTrainer(ctrl, ReinforceConfig(entropy_weight=0.0))
    s = ctrl.sample(4, seed=1)
    assert t2.step(s, torch.full((4,), 0.3))["baseline"] == pytest.approx(0.3)
    s = ctrl.sample(4, seed=2)
    assert t2.step(s, torch.full((4,), 0.5))["baseline"] == pytest.approx(0.95 * 0.3 + 0.05 * 0.5)


def test_memory_replay_raises_the_likelihood_of_buffered_architectures() -> None:
    space = CellSpace(num_nodes=5)
    ctrl = ENASController(space, hidden=16, seed=0)
    replay = random_architectures(space, 4, seed=9)
    trainer = ReinforceTrainer(ctrl, ReinforceConfig(lr=0.02))
    before = ctrl.log_prob(replay).detach()
    for i in range(30):
        s = ctrl.sample(4, seed=i)
        out = trainer.step(s, torch.zeros(4), memory=replay)
    after = ctrl.log_prob(replay).detach()
    assert bool((after > before + 1.0).all())
    assert out["memory_loss"] == pytest.approx(float(-after.mean()), rel=0.2)


def test_memory_buffer_policies() -> None:
    space = CellSpace(num_nodes=4)
    archs = random_architectures(space, 10, seed=0)
    best = MemoryBuffer(3, policy="best", seed=0)
    best.add(archs, [float(i) for i in range(10)])
    assert sorted(best.rewards) == [7.0, 8.0, 9.0]
    assert set(best.architectures) == set(archs[7:])
    best.add([archs[7]], [100.0])  # a re-seen architecture keeps its best reward
    assert len(best) == 3
    assert max(best.rewards) == 100.0
    best.add([archs[0]], [-1.0])  # worse than everything: not kept
    assert archs[0] not in best.architectures
    rnd = MemoryBuffer(4, policy="random", seed=0)
    rnd.add(archs[:4], [0.0] * 4)
    assert rnd.architectures == archs[:4]
    rnd.add(archs[4:], torch.zeros(6))
    assert len(rnd) == 4
    assert set(rnd.architectures) != set(archs[:4])
    drawn = rnd.sample(50)
    assert len(drawn) == 50
    assert set(drawn) <= set(rnd.architectures)


def test_bad_inputs() -> None:
    space = CellSpace(num_nodes=3)
    ctrl = ENASController(space, hidden=4)
    with pytest.raises(ValueError, match="hidden"):
        ENASController(space, hidden=0)
    with pytest.raises(ValueError, match="tanh_c"):
        ENASController(space, tanh_c=-1.0)
    with pytest.raises(ValueError, match="n must be"):
        ctrl.sample(0, seed=0)
    with pytest.raises(ValueError, match="seed"):
        ctrl.sample(2)
    with pytest.raises(ValueError, match="nodes"):
        ctrl.log_prob([Architecture((0, 0), (0,))])
    with pytest.raises(ValueError, match="policy"):
        MemoryBuffer(3, policy="fifo")
    with pytest.raises(ValueError, match="capacity"):
        MemoryBuffer(0)
    buf = MemoryBuffer(2)
    with pytest.raises(ValueError, match="before sampling"):
        buf.sample(1)
    with pytest.raises(ValueError, match="rewards"):
        buf.add([Architecture((0, 0, 0), (0, 0))], [1.0, 2.0])
    with pytest.raises(ValueError, match="lr"):
        ReinforceConfig(lr=0.0)
    with pytest.raises(ValueError, match="baseline_decay"):
        ReinforceConfig(baseline_decay=1.0)
    trainer = ReinforceTrainer(ctrl)
    s = ctrl.sample(3, seed=0)
    with pytest.raises(ValueError, match="rewards must have shape"):
        trainer.step(s, torch.zeros(2))
    with pytest.raises(ValueError, match="finite"):
        trainer.step(s, torch.tensor([0.0, float("nan"), 1.0]))
    with pytest.raises(TypeError, match="controller"):
        ReinforceTrainer("ctrl")  # type: ignore[arg-type]


def test_a_float64_controller_runs_in_float64() -> None:
    """The LSTM states follow the controller's dtype (they were float32 after .double())."""
    space = CellSpace(num_nodes=4)
    ctrl = ENASController(space, hidden=8, seed=0).double()
    s = ctrl.sample(3, seed=1)
    assert s.log_prob.dtype == torch.float64
    assert torch.allclose(s.log_prob, ctrl.log_prob(s.architectures))
    assert all(p.dtype == torch.float64 for p in ctrl.decision_probabilities(s.architectures))


def test_reinforce_step_under_no_grad_and_a_sample_without_a_graph() -> None:
    """A step under torch.no_grad() (e.g. inside an evaluation block) still learns from a
    sample drawn with its graph; a sample drawn under no_grad is named, not torch's "element
    0 of tensors does not require grad"."""
    space = CellSpace(num_nodes=3)
    replay = random_architectures(space, 2, seed=9)
    a, b = ENASController(space, hidden=8, seed=0), ENASController(space, hidden=8, seed=0)
    ta, tb = ReinforceTrainer(a), ReinforceTrainer(b)
    out_a = ta.step(a.sample(4, seed=1), torch.rand(4, generator=torch.Generator()), replay)
    sample = b.sample(4, seed=1)
    with torch.no_grad():
        rewards = torch.rand(4, generator=torch.Generator())
        out_b = tb.step(sample, rewards, replay)
    assert out_a == out_b
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    with torch.no_grad():
        detached = b.sample(4, seed=2)
    with pytest.raises(ValueError, match="sample must carry the controller's autograd graph"):
        tb.step(detached, torch.zeros(4))
    with torch.inference_mode(), pytest.raises(RuntimeError, match=r"^ReinforceTrainer\.step"):
        tb.step(b.sample(4, seed=3), torch.zeros(4))
