"""Simulated judges and the synthetic pairwise benchmark for WideDeep."""

from __future__ import annotations

import numpy as np
import pytest

from neuronkit.interpretability.evaluators import (
    A_BETTER,
    B_BETTER,
    LAYER1_PROMPT,
    QUALITY_DIMENSIONS,
    ROLE_PROMPT,
    TIE,
    JudgeBiases,
    SimulatedJudge,
    WideDeep,
    agreement,
    parse_roles,
    parse_scores,
    simulated_pairwise_data,
)


def test_data_labels_follow_the_weighted_margin() -> None:
    data = simulated_pairwise_data(500, tie_threshold=0.2, seed=3)
    assert len(data) == 500
    assert data.weights.shape == (500, len(QUALITY_DIMENSIONS))
    np.testing.assert_allclose(data.weights.sum(1), 1.0)
    margin = np.einsum("nd,nd->n", data.weights, data.quality_a - data.quality_b)
    np.testing.assert_allclose(data.margin, margin)
    assert np.all(data.labels[margin > 0.2] == A_BETTER)
    assert np.all(data.labels[margin < -0.2] == B_BETTER)
    assert np.all(data.labels[np.abs(margin) <= 0.2] == TIE)
    assert len({s.question for s in data.samples}) == 500
    again = simulated_pairwise_data(500, tie_threshold=0.2, seed=3)
    np.testing.assert_array_equal(again.labels, data.labels)


def test_data_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="n_samples"):
        simulated_pairwise_data(0)
    with pytest.raises(ValueError, match="concentration"):
        simulated_pairwise_data(5, concentration=0.0)
    with pytest.raises(TypeError, match="seed"):
        simulated_pairwise_data(5, seed=1.5)  # type: ignore[arg-type]


def test_noiseless_unbiased_judge_recovers_the_truth() -> None:
    data = simulated_pairwise_data(200, seed=1)
    exact = JudgeBiases(
        role_focus=0.0,
        noise=0.0,
        shared_noise=0.0,
        position_bias=0.0,
        verbosity_bias=0.0,
        detail_verbosity_bias=0.0,
        importance_noise=0.0,
    )
    judge = SimulatedJudge(data, exact, seed=0)
    net = WideDeep(judge, width=2, depth=1, tie_margin=0.5)
    pred = net.predict(data.samples)
    decided = np.abs(data.margin) > 1.0  # well beyond tie and rounding effects
    assert np.mean(pred[decided] == data.labels[decided]) > 0.95


def test_roles_are_the_relevant_dimensions_and_replies_parse() -> None:
    data = simulated_pairwise_data(20, seed=2)
    biases = JudgeBiases(importance_noise=0.0, role_min_importance=0.1)
    judge = SimulatedJudge(data, biases, seed=0)
    net = WideDeep(judge, width=3, depth=2)
    res = net.evaluate(data.samples[0])
    relevant = {QUALITY_DIMENSIONS[k] for k in np.flatnonzero(data.weights[0] >= 0.1)}
    assert set(res.roles) == relevant or (not relevant and len(res.roles) == 1)
    assert res.roles[0] == QUALITY_DIMENSIONS[int(np.argmax(data.weights[0]))]
    for layer in res.layers:
        for o in layer:
            assert len(o.replies) == 2  # both answer orders
            for text, a, b in o.replies:
                assert 1 <= a <= 10
                assert 1 <= b <= 10
                assert parse_scores(text) == (a, b)
            assert o.score_a == np.mean([r[1] for r in o.replies])
    assert judge.calls == 1 + 3 * 2 * 2
    assert parse_roles(
        judge(net.role_prompt.format(question=data.samples[0].question, answer_a="a", answer_b="b"))
    ) == list(res.roles)


def test_same_seed_same_replies_and_position_bias_shows() -> None:
    data = simulated_pairwise_data(100, seed=4)
    a = WideDeep(SimulatedJudge(data, seed=7), width=2, depth=2).predict(data.samples)
    b = WideDeep(SimulatedJudge(data, seed=7), width=2, depth=2).predict(data.samples)
    np.testing.assert_array_equal(a, b)
    biased = JudgeBiases(position_bias=3.0)
    once = WideDeep(SimulatedJudge(data, biased, seed=0), width=2, depth=1, swap_order=False)
    pred = once.predict(data.samples)
    assert np.mean(pred == A_BETTER) > 0.9
    # both answer orders (the default): the bias toward the first position cancels
    both = WideDeep(SimulatedJudge(data, biased, seed=0), width=2, depth=1).predict(data.samples)
    assert abs(np.mean(both == A_BETTER) - np.mean(data.labels == A_BETTER)) < 0.15
    assert agreement(both, data.labels)["kappa"] > agreement(pred, data.labels)["kappa"] + 0.2


def test_judge_reads_which_answer_is_shown_first() -> None:
    data = simulated_pairwise_data(50, seed=6)
    i = int(np.argmax(np.abs(data.margin)))  # a clear case: |margin| > 2
    s = data.samples[i]
    role = QUALITY_DIMENSIONS[int(np.argmax(data.weights[i]))]
    exact = {"noise": 0.0, "shared_noise": 0.0, "verbosity_bias": 0.0, "importance_noise": 0.0}

    def mean_gap(judge: SimulatedJudge, first: str, second: str) -> float:
        prompt = LAYER1_PROMPT.format(
            question=s.question, answer_a=first, answer_b=second, role=role
        )
        return float(np.mean([np.subtract(*parse_scores(judge(prompt))) for _ in range(40)]))

    for position_bias in (0.0, 1.0):
        judge = SimulatedJudge(data, JudgeBiases(position_bias=position_bias, **exact), seed=0)
        forward = mean_gap(judge, s.answer_a, s.answer_b)
        swapped = mean_gap(judge, s.answer_b, s.answer_a)
        # the better answer wins in both orders; the position bias (2 score points per
        # latent unit) favours whichever answer is shown first
        assert np.sign(forward) == np.sign(data.margin[i]) == -np.sign(swapped)
        assert forward + swapped == pytest.approx(4 * position_bias, abs=0.5)
        with pytest.raises(ValueError, match="Assistant 1's answer"):
            judge(LAYER1_PROMPT.format(question=s.question, answer_a="x", answer_b="y", role=role))


def test_judge_lists_every_dimension_by_default() -> None:
    # the role prompt asks for as many perspectives as possible (as the paper's role
    # generation and the reference's unlimited role prompt do): no relevance cut-off
    data = simulated_pairwise_data(30, seed=2)
    judge = SimulatedJudge(data, JudgeBiases(importance_noise=0.0), seed=0)
    for i, s in enumerate(data.samples):
        roles = parse_roles(
            judge(ROLE_PROMPT.format(question=s.question, answer_a="a", answer_b="b"))
        )
        assert len(roles) == len(QUALITY_DIMENSIONS)
        assert roles == [QUALITY_DIMENSIONS[k] for k in np.argsort(-data.weights[i], kind="stable")]


def test_role_list_is_deterministic_per_sample() -> None:
    # the reference queries the roles at temperature 0 (inference-WideDeep.py, get_aspects:
    # query_gpt(tp=0)): the perceived-importance order carries no per-call noise
    data = simulated_pairwise_data(30, seed=3)
    judge = SimulatedJudge(data, JudgeBiases(importance_noise=2.0), seed=0)
    for s in data.samples:
        prompt = ROLE_PROMPT.format(question=s.question, answer_a="a", answer_b="b")
        assert len({judge(prompt) for _ in range(5)}) == 1


def test_multi_dimension_perspective_spreads_the_role_focus() -> None:
    # a layer-2 neuron's perspective joins the layer-1 roles ("accuracy, relevance"): the
    # role_focus share goes to those dimensions by their (here exact) importance
    data = simulated_pairwise_data(200, seed=8)
    exact = {"noise": 0.0, "shared_noise": 0.0, "position_bias": 0.0, "importance_noise": 0.0}
    biases = JudgeBiases(verbosity_bias=0.0, detail_verbosity_bias=0.0, **exact)
    judge = SimulatedJudge(data, biases, seed=0)
    dims = [0, 1]
    role = ", ".join(QUALITY_DIMENSIONS[k] for k in dims)
    gap = data.quality_a - data.quality_b
    w = data.weights
    share = np.zeros_like(w)
    share[:, dims] = w[:, dims] / w[:, dims].sum(1, keepdims=True)
    focused = np.einsum("nd,nd->n", 0.4 * w + 0.6 * share, gap)
    holistic = data.margin
    i = int(np.argmax(np.abs(focused - holistic) * (np.abs(focused) < 3.5)))
    assert abs(focused[i] - holistic[i]) > 1.0  # the two readings are distinguishable
    s = data.samples[i]
    prompt = LAYER1_PROMPT.format(
        question=s.question, answer_a=s.answer_a, answer_b=s.answer_b, role=role
    )
    mean_gap = np.mean([np.subtract(*parse_scores(judge(prompt))) for _ in range(60)]) / 2
    assert mean_gap == pytest.approx(focused[i], abs=0.35)
    # one named dimension: the single-role look; all of them: the holistic look
    every = ", ".join(QUALITY_DIMENSIONS)
    prompt = LAYER1_PROMPT.format(
        question=s.question, answer_a=s.answer_a, answer_b=s.answer_b, role=every
    )
    mean_gap = np.mean([np.subtract(*parse_scores(judge(prompt))) for _ in range(60)]) / 2
    assert mean_gap == pytest.approx(holistic[i], abs=0.35)


def test_layer2_integration_beats_layer1_when_perspectives_mislead() -> None:
    """Pure role focus and a heavily verbosity-biased detail reviewer: the layer-2 neurons,
    which weigh perspectives by importance, agree better with the truth than layer 1."""
    data = simulated_pairwise_data(150, seed=5)
    biases = JudgeBiases(role_focus=1.0, detail_verbosity_bias=3.0, role_min_importance=0.0)
    res = WideDeep(SimulatedJudge(data, biases, seed=0), width=6, depth=2).evaluate_many(
        data.samples
    )
    k1 = agreement(np.array([r.readout(1) for r in res]), data.labels)["kappa"]
    k2 = agreement(np.array([r.readout(2, readout="last") for r in res]), data.labels)["kappa"]
    assert k2 > k1 + 0.05


def test_judge_rejects_foreign_prompts_and_bad_arguments() -> None:
    data = simulated_pairwise_data(5, seed=0)
    judge = SimulatedJudge(data, seed=0)
    with pytest.raises(ValueError, match="prompt"):
        judge("Rate this answer please.")
    foreign = LAYER1_PROMPT.format(question="unknown?", answer_a="a", answer_b="b", role="x")
    with pytest.raises(ValueError, match="prompt"):
        judge(foreign)
    with pytest.raises(TypeError, match="data"):
        SimulatedJudge("data")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="role_focus"):
        JudgeBiases(role_focus=1.5)
    with pytest.raises(ValueError, match="noise"):
        JudgeBiases(noise=-1.0)
