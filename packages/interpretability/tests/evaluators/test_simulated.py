"""Simulated judges and the synthetic pairwise benchmark for WideDeep."""

from __future__ import annotations

import numpy as np
import pytest

from neuronkit.interpretability.evaluators import (
    A_BETTER,
    B_BETTER,
    LAYER1_PROMPT,
    QUALITY_DIMENSIONS,
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
    judge = SimulatedJudge(data, JudgeBiases(importance_noise=0.0), seed=0)
    net = WideDeep(judge, width=3, depth=2)
    res = net.evaluate(data.samples[0])
    relevant = {QUALITY_DIMENSIONS[k] for k in np.flatnonzero(data.weights[0] >= 0.1)}
    assert set(res.roles) == relevant or (not relevant and len(res.roles) == 1)
    assert res.roles[0] == QUALITY_DIMENSIONS[int(np.argmax(data.weights[0]))]
    for layer in res.layers:
        for o in layer:
            assert 1 <= o.score_a <= 10
            assert 1 <= o.score_b <= 10
            assert parse_scores(o.text) == (o.score_a, o.score_b)
    assert judge.calls == 1 + 3 * 2
    assert parse_roles(
        judge(net.role_prompt.format(question=data.samples[0].question, answer_a="a", answer_b="b"))
    ) == list(res.roles)


def test_same_seed_same_replies_and_position_bias_shows() -> None:
    data = simulated_pairwise_data(100, seed=4)
    a = WideDeep(SimulatedJudge(data, seed=7), width=2, depth=2).predict(data.samples)
    b = WideDeep(SimulatedJudge(data, seed=7), width=2, depth=2).predict(data.samples)
    np.testing.assert_array_equal(a, b)
    biased = JudgeBiases(position_bias=3.0)
    pred = WideDeep(SimulatedJudge(data, biased, seed=0), width=2, depth=1).predict(data.samples)
    assert np.mean(pred == A_BETTER) > 0.9


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
