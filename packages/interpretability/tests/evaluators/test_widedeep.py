"""WideDeep evaluator network: parsing, network wiring, readout, agreement, HF adapter."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from neuronkit.interpretability.evaluators import (
    A_BETTER,
    B_BETTER,
    LAYER2_PROMPT,
    TIE,
    NeuronOutput,
    PairwiseSample,
    WideDeep,
    aggregate_verdict,
    agreement,
    format_evaluations,
    hf_judge,
    hf_pipeline_judge,
    parse_roles,
    parse_scores,
    swap_labels,
)

SAMPLE = PairwiseSample("What is 2 + 2?", "It is 4.", "It is 5.")


def _out(a: float, b: float, layer: int = 1, index: int = 0, role: str = "r") -> NeuronOutput:
    return NeuronOutput(layer, index, role, f"Assistant 1: {a}\nAssistant 2: {b}", a, b)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Assistant 1: 8\nAssistant 2: 6\nBecause...", (8.0, 6.0)),
        ("**Assistant 1 score: 7.5**, assistant 2 score = 9", (7.5, 9.0)),
        ("Assistant 2: 3\nAssistant 1: 4", (4.0, 3.0)),
        ("\n 7 5\nThe first answer is better.", (7.0, 5.0)),
        ("7, 5", (7.0, 5.0)),
        ("**Assistant 1**: 8.5\n**Assistant 2**: 9", (8.5, 9.0)),  # bold labels
        ("Assistant 1: **7**\nAssistant 2: **5**", (7.0, 5.0)),
    ],
)
def test_parse_scores_formats(text: str, expected: tuple[float, float]) -> None:
    assert parse_scores(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "Assistant 1: 8 only", "I like the first one more.", "Assistant 1: 1e3\nAssistant 2: 2"],
)
def test_parse_scores_rejects_unparseable(text: str) -> None:
    with pytest.raises(ValueError, match="text must contain"):
        parse_scores(text)


def test_parse_scores_rejects_non_str() -> None:
    with pytest.raises(TypeError, match="text"):
        parse_scores(7)  # type: ignore[arg-type]


def test_parse_roles_numbered_bulleted_dedup_and_cap() -> None:
    text = "Here:\n1. Accuracy: is it right\n2) Relevance\n- accuracy\n* Level of detail - depth\n"
    assert parse_roles(text) == ["Accuracy", "Relevance", "Level of detail"]
    assert parse_roles(text, max_roles=2) == ["Accuracy", "Relevance"]
    with pytest.raises(ValueError, match="numbered list"):
        parse_roles("no list here")
    with pytest.raises(ValueError, match="max_roles"):
        parse_roles(text, max_roles=0)


def test_aggregate_mean_vote_and_ties() -> None:
    outs = [_out(8, 6), _out(5, 6), _out(5, 6)]  # gaps +2, -1, -1: mean 0
    assert aggregate_verdict(outs) == TIE
    assert aggregate_verdict(outs, aggregation="vote") == B_BETTER
    assert aggregate_verdict([_out(7, 6)], tie_margin=1.0) == TIE
    assert aggregate_verdict([_out(7, 6)]) == A_BETTER
    assert aggregate_verdict([_out(7, 6), _out(6, 7)], aggregation="vote") == TIE
    with pytest.raises(ValueError, match="outputs"):
        aggregate_verdict([])
    with pytest.raises(ValueError, match="aggregation"):
        aggregate_verdict(outs, aggregation="max")
    with pytest.raises(TypeError, match="outputs"):
        aggregate_verdict("AB")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"outputs\[i\] must be NeuronOutput"):
        aggregate_verdict([_out(7, 6), 1.0])  # type: ignore[list-item]


class _RecordingJudge:
    """Scores A above B by (layer index) points and records every prompt."""

    def __init__(self, roles_text: str = "1. accuracy\n2. relevance\n3. detail") -> None:
        self.prompts: list[str] = []
        self.roles_text = roles_text

    def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if "list as many evaluation perspectives" in prompt:
            return self.roles_text
        layer = 2 if "[Reviews from the previous layer]" in prompt else 1
        return f"Assistant 1: {5 + layer}\nAssistant 2: 5\nok"


def test_width_is_capped_at_one_neuron_per_role_unless_roles_repeat() -> None:
    # the reference (DAMO-ConvAI WideDeep, init_layer) uses min(width, number of roles)
    # neurons, each with its own perspective
    judge = _RecordingJudge()
    res = WideDeep(judge, width=4, depth=2).evaluate(SAMPLE)
    assert len(judge.prompts) == 1 + 3 * 2 * 2  # 3 neurons x 2 layers x 2 answer orders
    assert [o.role for o in res.layers[0]] == ["accuracy", "relevance", "detail"]
    assert [o.role for o in res.layers[1]] == ["accuracy, relevance, detail"] * 3
    with pytest.raises(TypeError, match="repeat_roles"):
        WideDeep(judge, repeat_roles="yes")  # type: ignore[arg-type]


def test_network_wiring_roles_and_layer2_sees_all_layer1_outputs() -> None:
    judge = _RecordingJudge()
    net = WideDeep(judge, width=4, depth=2, repeat_roles=True, swap_order=False)
    res = net.evaluate(SAMPLE)
    assert len(judge.prompts) == 1 + 4 * 2
    assert res.roles == ("accuracy", "relevance", "detail")
    assert [o.role for o in res.layers[0]] == ["accuracy", "relevance", "detail", "accuracy"]
    for prompt in judge.prompts[5:]:
        assert prompt.count("Reviewer ") == 4  # every layer-1 neuron, nothing else
        assert "Reviewer 4 (perspective: accuracy)" in prompt
    assert all(o.difference == 1 for o in res.layers[0])
    assert all(o.difference == 2 for o in res.layers[1])
    assert res.score_a - res.score_b == pytest.approx(1.5)  # readout "all": both layers
    assert res.verdict == A_BETTER
    assert res.readout(1, tie_margin=1.0) == TIE  # layer 1 alone: gap 1 is within the margin
    assert res.readout(2, readout="last", tie_margin=1.0) == A_BETTER
    with pytest.raises(ValueError, match="n_layers"):
        res.readout(3)


def test_deep_neurons_take_the_joined_roles_of_the_neurons_they_read() -> None:
    # reference (DAMO-ConvAI WideDeep, utils/experts_task.py gen_prompt_QA): a layer-2
    # neuron's "Angle of View" is the joined aspects of the layer-1 neurons it reads
    judge = _RecordingJudge()
    res = WideDeep(judge, width=4, depth=3, repeat_roles=True, swap_order=False).evaluate(SAMPLE)
    union = "accuracy, relevance, detail"  # in order, without the repeated "accuracy"
    layer1 = [p for p in judge.prompts[1:] if "[Reviews from the previous layer]" not in p]
    deep = [p for p in judge.prompts[1:] if "[Reviews from the previous layer]" in p]
    assert len(layer1) == 4
    assert len(deep) == 8
    assert all(f"Your evaluation perspective: {union}." in p for p in deep)
    assert [o.role for o in res.layers[1]] == [union] * 4
    assert [o.role for o in res.layers[2]] == [union] * 4
    assert f"Reviewer 1 (perspective: {union})" in deep[-1]
    own = _RecordingJudge()
    res = WideDeep(own, width=3, depth=2, deep_roles="own", swap_order=False).evaluate(SAMPLE)
    assert [o.role for o in res.layers[1]] == ["accuracy", "relevance", "detail"]
    assert "Your evaluation perspective: relevance." in own.prompts[-2]
    with pytest.raises(ValueError, match="deep_roles"):
        WideDeep(own, deep_roles="window")


def test_fixed_roles_skip_generation_and_pair_replies() -> None:
    calls: list[str] = []

    def judge(prompt: str) -> tuple[float, float]:
        calls.append(prompt)
        return (3.0, 7.0)

    net = WideDeep(
        judge, width=3, depth=1, roles=["accuracy", "detail"], readout="last", swap_order=False
    )
    preds = net.predict([SAMPLE, SAMPLE])
    assert preds.tolist() == [B_BETTER, B_BETTER]
    assert len(calls) == 4  # two roles: two neurons per sample
    with pytest.raises(TypeError, match="role generation reply"):
        WideDeep(judge, width=1).evaluate(SAMPLE)


def test_bad_judge_replies_and_arguments() -> None:
    with pytest.raises(TypeError, match="judge reply"):
        WideDeep(lambda p: 7, roles=["a"], width=1).evaluate(SAMPLE)
    with pytest.raises(ValueError, match="finite"):
        WideDeep(lambda p: (float("nan"), 1.0), roles=["a"], width=1).evaluate(SAMPLE)
    with pytest.raises(TypeError, match="judge must be callable"):
        WideDeep("gpt")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="width"):
        WideDeep(lambda p: "", width=0)
    with pytest.raises(ValueError, match="readout"):
        WideDeep(lambda p: "", readout="first")
    with pytest.raises(TypeError, match="roles"):
        WideDeep(lambda p: "", roles="accuracy")
    with pytest.raises(ValueError, match="layer2_prompt"):
        WideDeep(lambda p: "", layer2_prompt=LAYER2_PROMPT.replace("{evaluations}", ""))
    with pytest.raises(TypeError, match="samples"):
        WideDeep(lambda p: "", roles=["a"]).evaluate_many(SAMPLE)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="answer_b"):
        PairwiseSample("q", "a", None)  # type: ignore[arg-type]


class _ContentJudge:
    """Knows each answer's worth (8 for "It is 4.", 3 for "It is 5."), adds a position bias
    of ``bias`` points to the answer shown first, and records every prompt."""

    def __init__(self, bias: float = 1.0) -> None:
        self.bias = bias
        self.prompts: list[str] = []

    def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if "list as many evaluation perspectives" in prompt:
            return "1. accuracy\n2. relevance"
        first = prompt.split("[The Start of Assistant 1's Answer]\n", 1)[1].split("\n", 1)[0]
        worth = {"It is 4.": 8.0, "It is 5.": 3.0}
        s1 = worth[first] + self.bias
        s2 = worth["It is 5." if first == "It is 4." else "It is 4."]
        return f"Assistant 1: {s1:g}\nAssistant 2: {s2:g}\nAssistant 1's answer is {first}"


def test_swap_order_scores_each_neuron_in_both_orders_and_averages() -> None:
    # reference (DAMO-ConvAI WideDeep/inference-WideDeep.py, init_layer and single_layer):
    # every neuron is called with (ans1, ans2) and with (ans2, ans1); the swapped scores are
    # mapped back, the swapped reply relabelled, and all score pairs are averaged
    judge = _ContentJudge(bias=1.0)
    res = WideDeep(judge, width=2, depth=2).evaluate(SAMPLE)
    assert len(judge.prompts) == 1 + 2 * 2 * 2
    for prompt, first in zip(judge.prompts[1:], ["It is 4.", "It is 5."] * 4, strict=True):
        assert f"[The Start of Assistant 1's Answer]\n{first}\n" in prompt
    for o in res.layers[0]:
        assert [(a, b) for _, a, b in o.replies] == [(9.0, 3.0), (8.0, 4.0)]
        assert (o.score_a, o.score_b) == (8.5, 3.5)  # the position bias cancels
        for text, a, b in o.replies:  # both replies labelled as in the original order
            assert parse_scores(text) == (a, b)
        assert "Assistant 2's answer is It is 5." in o.text  # the swapped reply, relabelled
    forward, swapped = judge.prompts[5], judge.prompts[6]  # layer 2, neuron 1, both orders
    assert forward.count("Reviewer ") == swapped.count("Reviewer ") == 4  # 2 neurons x 2 orders
    assert "Reviewer 1 (perspective: accuracy):\nAssistant 1: 9\nAssistant 2: 3" in forward
    assert "Reviewer 1 (perspective: accuracy):\nAssistant 2: 9\nAssistant 1: 3" in swapped
    assert res.score_a - res.score_b == pytest.approx(5.0)
    with pytest.raises(TypeError, match="swap_order"):
        WideDeep(judge, swap_order=1)  # type: ignore[arg-type]


def test_swap_order_cancels_a_pure_position_bias() -> None:
    def first_wins(prompt: str) -> tuple[float, float]:
        return (7.0, 5.0)

    swapped = WideDeep(first_wins, roles=["accuracy"], width=1, depth=2)
    assert swapped.evaluate(SAMPLE).verdict == TIE
    assert swapped.evaluate(SAMPLE).layers[0][0].replies[1][1:] == (5.0, 7.0)
    once = WideDeep(first_wins, roles=["accuracy"], width=1, depth=2, swap_order=False)
    assert once.evaluate(SAMPLE).verdict == A_BETTER


def test_swap_labels() -> None:
    text = "Assistant 1: 8\nASSISTANT 2 score = 3; assistant 1's answer, Assistant 12"
    assert swap_labels(text) == (
        "Assistant 2: 8\nASSISTANT 1 score = 3; assistant 2's answer, Assistant 12"
    )
    assert parse_scores(swap_labels("Assistant 1: 8\nAssistant 2: 3")) == (3.0, 8.0)
    with pytest.raises(TypeError, match="text"):
        swap_labels(3)  # type: ignore[arg-type]


def test_format_evaluations() -> None:
    text = format_evaluations([_out(8, 6, index=0, role="accuracy"), _out(1, 2, index=1)])
    assert text.startswith("Reviewer 1 (perspective: accuracy):\nAssistant 1: 8")
    assert "Reviewer 2 (perspective: r)" in text
    both = NeuronOutput(1, 0, "a", "x\n\ny", 5.0, 5.0, (("x", 6.0, 4.0), ("y", 4.0, 6.0)))
    assert format_evaluations([both]) == (
        "Reviewer 1 (perspective: a):\nx\n\nReviewer 1 (perspective: a):\ny"
    )


def test_agreement_matches_sklearn_and_handles_degenerate_input() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 200)
    pred = np.where(rng.random(200) < 0.6, truth, rng.integers(0, 3, 200))
    m = agreement(pred, truth)
    assert m["kappa"] == pytest.approx(cohen_kappa_score(truth, pred))
    assert m["accuracy"] == pytest.approx(float((pred == truth).mean()))
    assert agreement(truth, truth)["kappa"] == pytest.approx(1.0)
    assert agreement(np.zeros(5, int), np.zeros(5, int)) == {"kappa": 0.0, "accuracy": 1.0}
    with pytest.raises(ValueError, match="same shape"):
        agreement(truth[:5], truth)
    with pytest.raises(TypeError, match="integer labels"):
        agreement(truth.astype(float), truth)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        agreement(np.array([], dtype=int), np.array([], dtype=int))


class _FakePipeline:
    def __init__(self, reply: object, echo: bool = False) -> None:
        self.reply, self.echo, self.kwargs = reply, echo, {}

    def __call__(self, prompt: str, **kwargs: object) -> object:
        self.kwargs = kwargs
        if self.echo:
            return [{"generated_text": prompt + str(self.reply)}]
        return self.reply


def test_hf_pipeline_judge_with_fake_pipeline() -> None:
    pipe = _FakePipeline([{"generated_text": "Assistant 1: 9\nAssistant 2: 2"}])
    judge = hf_pipeline_judge(pipe, max_new_tokens=32, temperature=0.0)
    assert parse_scores(judge("prompt")) == (9.0, 2.0)
    assert pipe.kwargs == {"max_new_tokens": 32, "return_full_text": False, "temperature": 0.0}
    echo = hf_pipeline_judge(_FakePipeline("Assistant 1: 1\nAssistant 2: 3", echo=True))
    assert echo("Rate: ") == "Assistant 1: 1\nAssistant 2: 3"
    nested = hf_pipeline_judge(_FakePipeline([[{"generated_text": "4 5"}]]))
    net = WideDeep(nested, roles=["accuracy"], width=2, depth=2, swap_order=False)
    assert net.evaluate(SAMPLE).verdict == B_BETTER
    with pytest.raises(TypeError, match="generated_text"):
        hf_pipeline_judge(_FakePipeline([{"text": "x"}]))("p")
    with pytest.raises(TypeError, match="pipeline"):
        hf_pipeline_judge("gpt2")
    with pytest.raises(ValueError, match="max_new_tokens"):
        hf_pipeline_judge(pipe, max_new_tokens=0)


def test_hf_judge_names_the_extra_when_transformers_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # makes the import fail
    with pytest.raises(ImportError, match="transformers"):
        hf_judge("gpt2")
    with pytest.raises(ImportError, match="transformers"):
        hf_judge("org/model-1.5B_v2")


def test_hf_judge_refuses_a_bad_model_before_the_hub(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # nothing may be loaded or fetched
    for bad in ("?not-a-valid-argument?", "a/b/c", "./missing/dir", "", "x" * 97):
        with pytest.raises(ValueError, match=r"^model must"):
            hf_judge(bad)
    with pytest.raises(TypeError, match=r"^model must"):
        hf_judge(None)  # type: ignore[arg-type]
    with pytest.raises(ImportError, match="transformers"):  # an existing directory passes
        hf_judge(str(tmp_path / ""))


_HEADER = re.compile(r"Reviewer (\d+) \(perspective: ([^)]*)\)")
_PERSPECTIVE = re.compile(r"Your evaluation perspective: (.*)\.\n")


def _reviewers(prompt: str) -> list[tuple[int, str]]:
    """The (reviewer number, perspective) headers of the reviews shown in ``prompt``."""
    return [(int(n), role) for n, role in _HEADER.findall(prompt)]


def test_window_connectivity_reads_only_the_neighbours_and_joins_their_roles() -> None:
    # reference (DAMO-ConvAI WideDeep/inference-WideDeep.py, single_layer, win_size = 2):
    # neuron i reads neurons max(i - 1, 0) .. min(i + 1, n - 1) of the previous layer, no
    # wrap-around, and gen_prompt_QA joins exactly those neurons' aspects
    judge = _RecordingJudge("1. r0\n2. r1\n3. r2\n4. r3")
    res = WideDeep(judge, width=4, depth=2, connectivity="window", swap_order=False).evaluate(
        SAMPLE
    )
    deep = judge.prompts[5:]
    assert len(deep) == 4
    windows = [[0, 1], [0, 1, 2], [1, 2, 3], [2, 3]]
    for j, (prompt, window) in enumerate(zip(deep, windows, strict=True)):
        assert _reviewers(prompt) == [(k + 1, f"r{k}") for k in window], j
        union = ", ".join(f"r{k}" for k in window)
        assert _PERSPECTIVE.findall(prompt) == [union]
        assert res.layers[1][j].role == union
    assert [o.difference for o in res.layers[1]] == [2.0] * 4


def test_window_connectivity_in_both_answer_orders_and_deeper_layers() -> None:
    judge = _RecordingJudge("1. r0\n2. r1\n3. r2\n4. r3")
    res = WideDeep(judge, width=4, depth=3, connectivity="window").evaluate(SAMPLE)
    assert len(judge.prompts) == 1 + 4 * 3 * 2
    layer2, layer3 = judge.prompts[9:17], judge.prompts[17:]
    windows = [[0, 1], [0, 1, 2], [1, 2, 3], [2, 3]]
    for j, window in enumerate(windows):
        forward, swapped = layer2[2 * j], layer2[2 * j + 1]
        # both orders of every window neuron, in both calls; the swapped call relabelled
        expected = [(k + 1, f"r{k}") for k in window for _ in range(2)]
        assert _reviewers(forward) == _reviewers(swapped) == expected
        assert "Assistant 1: 6\nAssistant 2: 5" in forward
        assert "Assistant 2: 6\nAssistant 1: 5" in swapped
        assert _PERSPECTIVE.findall(forward) == _PERSPECTIVE.findall(swapped)
    # layer 3: the window of layer 2, whose neurons already joined their own windows (the
    # reference passes the joined aspects on), so neuron j holds r(j-2) .. r(j+2)
    layer2_roles = ["r0, r1", "r0, r1, r2", "r1, r2, r3", "r2, r3"]
    assert [o.role for o in res.layers[1]] == layer2_roles
    assert [o.role for o in res.layers[2]] == [
        "r0, r1, r2",
        "r0, r1, r2, r3",
        "r0, r1, r2, r3",
        "r1, r2, r3",
    ]
    for j, window in enumerate(windows):
        expected = [(k + 1, layer2_roles[k]) for k in window for _ in range(2)]
        assert _reviewers(layer3[2 * j]) == expected


def test_window_connectivity_with_own_roles_and_at_width_two() -> None:
    judge = _RecordingJudge("1. r0\n2. r1\n3. r2\n4. r3")
    net = WideDeep(judge, width=4, depth=2, connectivity="window", deep_roles="own")
    res = net.evaluate(SAMPLE)
    assert [o.role for o in res.layers[1]] == ["r0", "r1", "r2", "r3"]
    assert [len(_reviewers(p)) for p in judge.prompts[9::2]] == [4, 6, 6, 4]
    # width 2 (the reference's default number of neurons): the window is the whole layer
    window, everything = _RecordingJudge(), _RecordingJudge()
    WideDeep(window, width=2, depth=3, connectivity="window").evaluate(SAMPLE)
    WideDeep(everything, width=2, depth=3).evaluate(SAMPLE)
    assert window.prompts == everything.prompts


def test_window_connectivity_at_width_one_shows_no_reviews() -> None:
    # reference (gen_prompt_QA): the history block is only added when the neuron has
    # colleagues in its window; a lone neuron is asked again without any reviews
    judge = _RecordingJudge()
    res = WideDeep(judge, width=1, depth=2, connectivity="window").evaluate(SAMPLE)
    assert len(judge.prompts) == 1 + 2 * 2
    assert judge.prompts[3:] == judge.prompts[1:3]  # the layer-1 prompts, no reviews
    assert [o.role for o in res.layers[1]] == ["accuracy"]
    every = _RecordingJudge()
    WideDeep(every, width=1, depth=2).evaluate(SAMPLE)
    assert all("[Reviews from the previous layer]" in p for p in every.prompts[3:])


def test_all_connectivity_is_the_default_and_bad_values_are_refused() -> None:
    default, explicit = _RecordingJudge(), _RecordingJudge()
    a = WideDeep(default, width=4, depth=3, repeat_roles=True).evaluate(SAMPLE)
    net = WideDeep(explicit, width=4, depth=3, repeat_roles=True, connectivity="all")
    assert net.evaluate(SAMPLE) == a
    assert default.prompts == explicit.prompts
    union = "accuracy, relevance, detail"
    for p in default.prompts[9:17]:  # layer 2: every layer-1 neuron, both orders
        assert _reviewers(p) == [(k + 1, o.role) for k, o in enumerate(a.layers[0]) for _ in "ab"]
    for p in default.prompts[17:]:  # layer 3: every layer-2 neuron
        assert _reviewers(p) == [(k + 1, union) for k in range(4) for _ in "ab"]
    assert WideDeep(default).connectivity == "all"
    for bad in ("neighbours", "WINDOW", None, 2):
        with pytest.raises(ValueError, match=r"connectivity must be one of \['all', 'window'\]"):
            WideDeep(default, connectivity=bad)  # type: ignore[arg-type]


def test_roles_iterators_and_bad_neuron_outputs_are_refused_by_name() -> None:
    with pytest.raises(TypeError, match="roles must be a sequence"):
        WideDeep(lambda p: "1 2", roles=iter(["accuracy"]))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="score_a must be finite"):
        NeuronOutput(1, 0, "r", "t", float("nan"), 1.0)
    with pytest.raises(TypeError, match="score_b must be a real number"):
        NeuronOutput(1, 0, "r", "t", 7.0, "1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="layer must be >= 1"):
        NeuronOutput(0, 0, "r", "t", 7.0, 1.0)
    with pytest.raises(TypeError, match="role must be str"):
        NeuronOutput(1, 0, None, "t", 7.0, 1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="outputs must be a sequence of NeuronOutput"):
        format_evaluations(None)  # type: ignore[arg-type]
