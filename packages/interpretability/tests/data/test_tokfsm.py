"""TokFSM: random FSM structure, encoding, sampling and the true next-token distribution."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuronkit.interpretability.data.tokfsm import TokFSM, random_tokfsm


def test_random_fsm_has_fixed_out_degree_and_is_seeded() -> None:
    fsm = random_tokfsm(20, 4, 5, seed=3)
    assert fsm.n_states == 20
    assert fsm.digits == 2  # 5 ** 2 = 25 >= 20
    assert fsm.vocab_size == 6
    assert fsm.bos == 5
    np.testing.assert_array_equal((fsm.transition > 0).sum(1), 4)
    np.testing.assert_allclose(fsm.transition.sum(1), 1.0)
    np.testing.assert_array_equal(fsm.transition, random_tokfsm(20, 4, 5, seed=3).transition)
    assert not np.array_equal(fsm.transition, random_tokfsm(20, 4, 5, seed=4).transition)
    assert len(fsm.successors(0)) == 4


def test_paper_defaults_use_two_tokens_per_state() -> None:
    fsm = random_tokfsm(seed=0)
    assert (fsm.n_states, fsm.base, fsm.digits) == (100, 10, 2)
    assert fsm.encode(np.array([[7, 42]])).tolist() == [[10, 0, 7, 4, 2]]


def test_encode_decode_round_trip() -> None:
    fsm = random_tokfsm(30, 3, 4, seed=0)  # 3 digits in base 4
    states = torch.randint(0, 30, (5, 6))
    tokens = fsm.encode(states)
    assert tokens.shape == (5, 1 + 6 * 3)
    torch.testing.assert_close(fsm.decode(tokens[:, 1:]), states)
    # 3 3 3 in base 4 is 63 >= 30 states: not a state
    assert fsm.decode(torch.tensor([[3, 3, 3]])).tolist() == [[-1]]


def test_samples_follow_transitions_and_labels_line_up() -> None:
    fsm = random_tokfsm(12, 3, 4, seed=1)
    sample = fsm.sample(64, 10, seed=0)
    states = sample.states.numpy()
    assert (fsm.transition[states[:, :-1], states[:, 1:]] > 0).all()
    torch.testing.assert_close(sample.tokens, fsm.encode(states))
    ends = sample.state_end_labels()
    assert (ends[:, 2::2] == sample.states).all()
    assert (ends[:, 1::2] == -1).all()
    torch.testing.assert_close(fsm.sample(64, 10, seed=0).tokens, sample.tokens)


def test_next_token_distribution_matches_brute_force() -> None:
    fsm = random_tokfsm(9, 2, 3, seed=2)  # 2 digits in base 3, every pair a state
    sample = fsm.sample(3, 3, seed=5)
    dist = fsm.next_token_distribution(sample.tokens).numpy()
    np.testing.assert_allclose(dist.sum(-1), 1.0)
    n = fsm.n_states
    # enumerate all trajectories of 3 states with their probabilities; condition by counting
    trajs = np.array(list(np.ndindex(n, n, n)))
    weights = np.full(len(trajs), 1.0 / n)
    for i in range(2):
        weights *= fsm.transition[trajs[:, i], trajs[:, i + 1]]
    seqs = fsm.encode(trajs).numpy()
    for b in range(3):
        toks = sample.tokens[b].numpy()
        for t in range(len(toks) - 1):
            match = (seqs[:, : t + 1] == toks[: t + 1]).all(1)
            probs = np.bincount(
                seqs[match, t + 1], weights=weights[match], minlength=fsm.vocab_size
            )
            np.testing.assert_allclose(dist[b, t], probs / probs.sum(), atol=1e-12)


def test_accuracy_criteria() -> None:
    fsm = random_tokfsm(16, 4, 4, seed=0)
    sample = fsm.sample(8, 5, seed=1)
    dist = fsm.next_token_distribution(sample.tokens)
    perfect = torch.log(dist.float() + 1e-9)
    assert fsm.next_token_accuracy(perfect, sample.tokens, criterion="argmax") == 1.0
    assert fsm.next_token_accuracy(perfect, sample.tokens) == 1.0
    worst = torch.where(dist > 0, -1e9, 0.0).float()
    assert fsm.next_token_accuracy(worst, sample.tokens) == 0.0


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="rows must sum to 1"):
        TokFSM(np.ones((3, 3)))
    with pytest.raises(ValueError, match="square"):
        TokFSM(np.ones((2, 3)) / 3)
    with pytest.raises(ValueError, match="n_edges"):
        random_tokfsm(5, 6)
    fsm = random_tokfsm(10, 2, 4, seed=0)
    with pytest.raises(ValueError, match="BOS"):
        fsm.next_token_distribution(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="states must lie"):
        fsm.encode(np.array([[10]]))
    with pytest.raises(ValueError, match="criterion"):
        fsm.next_token_accuracy(
            torch.zeros(1, 3, 5), fsm.sample(1, 1, seed=0).tokens, criterion="x"
        )
    with pytest.raises(TypeError, match="tokens"):
        fsm.decode([[1, 2]])  # type: ignore[arg-type]
    bad = torch.tensor([[fsm.bos, 0, 0, 0, 0]])
    if fsm.transition[0, 0] == 0:
        with pytest.raises(ValueError, match="probability 0"):
            fsm.next_token_distribution(bad)


def test_non_integer_states_and_tokens_and_bad_logits_are_refused_by_name() -> None:
    fsm = random_tokfsm(4, 2, base=2, seed=0)
    for states in (np.array([[0.5, 1.7]]), np.array([[np.nan, 1.0]]), np.array([[True, False]])):
        with pytest.raises(TypeError, match="states must hold integer states"):
            fsm.encode(states)
        with pytest.raises(TypeError, match="states must hold integer states"):
            fsm.sample_from_states(states)
    with pytest.raises(TypeError, match="states must hold integer states"):
        fsm.encode([["a"]])
    with pytest.raises(ValueError, match="states must hold at least one trajectory"):
        fsm.encode(np.zeros((0, 2), dtype=int))
    with pytest.raises(TypeError, match="bos must be bool"):
        fsm.encode([[0, 1]], bos="no")  # type: ignore[arg-type]
    sample = fsm.sample(2, 3, seed=0)
    with pytest.raises(TypeError, match="tokens must be an integer tensor"):
        fsm.decode(sample.tokens[:, 1:].float() + 0.5)
    with pytest.raises(TypeError, match="tokens must be an integer tensor"):
        fsm.next_token_distribution(sample.tokens.float() + 0.3)
    logits = torch.zeros(2, sample.tokens.shape[1], fsm.vocab_size)
    with pytest.raises(TypeError, match="logits must be a real-valued tensor"):
        fsm.next_token_accuracy(logits.bool(), sample.tokens)
    with pytest.raises(ValueError, match="logits must not hold NaN"):
        fsm.next_token_accuracy(logits + float("nan"), sample.tokens)
    assert 0 <= fsm.next_token_accuracy(logits - float("inf"), sample.tokens) <= 1  # masked
