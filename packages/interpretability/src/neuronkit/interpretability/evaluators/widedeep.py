"""WideDeep: wider and deeper networks of LLM evaluators.

Zhang, Yu, Yu, Lv, Liu, Huang, Xu & Li, "Wider and Deeper LLM Networks are Fairer LLM
Evaluators" (arXiv:2308.01862, 2023).

An LLM evaluator network judges a pairwise sample (a question and two answers). Its
"neurons" are calls to one frozen LLM (the ``judge``):

1. **Roles.** For each sample the LLM is first asked to list as many evaluation perspectives
   (neuron roles) as it can, adapted to that question (:data:`ROLE_PROMPT`).
2. **Layer 1** (the width): neuron ``j`` evaluates the two answers independently from the
   perspective ``roles[j]`` and writes two scores (1 to 10) and a rationale
   (:data:`LAYER1_PROMPT`); as in the reference code, a layer has at most one neuron per role
   (``repeat_roles=True`` cycles through the roles instead).
3. **Both answer orders** (``swap_order=True``, the default): as in the reference code
   (``init_layer`` and ``single_layer`` of ``inference-WideDeep.py``), every neuron of every
   layer is called twice, once with answer A shown first and once with the answers swapped;
   the swapped call's scores are mapped back to A and B and its reply relabelled (Assistant 1
   <-> Assistant 2), and the neuron's scores are the mean over the two orders. A constant
   preference for the first position cancels (FairEval's balanced position calibration).
4. **Layer 2 and above** (the depth): every neuron receives the outputs of *all* neurons of the
   previous layer (roles, scores and rationales of both orders, :func:`format_evaluations`)
   and integrates them into a more comprehensive evaluation (:data:`LAYER2_PROMPT`), like a
   reviewer reading the other reviews in one round of discussion. Its perspective is the union
   of the perspectives of the neurons it reads (``deep_roles="union"``, the default), as in the
   reference code (``gen_prompt_QA`` and its siblings in ``utils/experts_task.py`` take the
   joined aspects of all connected neurons as the layer-2 "Angle of View"); ``"own"`` keeps
   neuron ``j``'s layer-1 role. In the swapped call the reviews are relabelled to the swapped
   order. ``connectivity="window"`` instead wires the layers as the reference code does
   (``single_layer``, ``win_size = 2``): neuron ``j`` reads only neurons ``j - 1``, ``j`` and
   ``j + 1`` of the previous layer (:data:`WINDOW_HALF_WIDTH`).
5. **Readout.** The scores of the neurons (of the last layer, or of all layers as in the
   paper's best setting and the reference code) are averaged (or voted) into the verdict:
   answer A better, answer B better, or a tie.

The backend is any callable ``judge(prompt: str) -> str`` (or returning the two scores as a
pair of numbers); :func:`hf_pipeline_judge` adapts a Hugging Face ``text-generation``
pipeline and :func:`hf_judge` builds one from a model name (needs the ``transformers`` extra).
"""

from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from neuronkit.common import check_choice, check_number, check_type

#: What :func:`hf_judge` accepts as a hub id without a local directory (the hub's own rule,
#: or looser: letters, digits, ``_``, ``.``, ``-``, an optional ``org/`` and at most 96 chars).
_HUB_ID = re.compile(r"(?:[\w.-]+/)?[\w.-]{1,96}")

#: Half-width of the layer-to-layer window of ``WideDeep(connectivity="window")``: a neuron
#: ``j`` of layer 2 and above reads neurons ``j - 1 .. j + 1`` of the previous layer, clipped
#: at the first and last neuron (no wrap-around). The reference code hard-codes it:
#: ``win_size = 2`` in ``single_layer`` of ``WideDeep/inference-WideDeep.py`` reads indices
#: ``max(i - win_size + 1, 0)`` to ``min(n, i + win_size) - 1``.
WINDOW_HALF_WIDTH = 1

#: Verdict codes (also the label codes of the simulated data): A better, B better, tie.
A_BETTER, B_BETTER, TIE = 0, 1, 2
VERDICT_NAMES = ("A", "B", "tie")

#: Prompt asking the LLM for the evaluation perspectives (neuron roles) of one sample.
ROLE_PROMPT = (
    "We would like to request your feedback on the performance of two AI assistants in "
    "response to the user question displayed below.\n\n"
    "[Question]\n{question}\n\n"
    "[The Start of Assistant 1's Answer]\n{answer_a}\n[The End of Assistant 1's Answer]\n\n"
    "[The Start of Assistant 2's Answer]\n{answer_b}\n[The End of Assistant 2's Answer]\n\n"
    "Before evaluating, list as many evaluation perspectives as possible that matter for "
    "judging answers to this particular question, one per line, most important first, as a "
    "numbered list ('1. <perspective>'). Output only the list."
)

#: Prompt of a layer-1 neuron: an independent evaluation from one perspective.
LAYER1_PROMPT = (
    "You are a helpful and precise assistant for checking the quality of answers.\n"
    "Your evaluation perspective: {role}.\n\n"
    "[Question]\n{question}\n\n"
    "[The Start of Assistant 1's Answer]\n{answer_a}\n[The End of Assistant 1's Answer]\n\n"
    "[The Start of Assistant 2's Answer]\n{answer_b}\n[The End of Assistant 2's Answer]\n\n"
    "Please rate the two answers from your perspective ({role}). Each assistant receives an "
    "overall score on a scale of 1 to 10, where a higher score indicates better overall "
    "performance. Output 'Assistant 1: <score>' and 'Assistant 2: <score>' on the first two "
    "lines, then a short explanation of your evaluation, avoiding any bias from the order "
    "in which the answers were presented or from their length."
)

#: Prompt of a layer-2 (or deeper) neuron: it reads every review of the previous layer.
LAYER2_PROMPT = (
    "You are a helpful and precise assistant for checking the quality of answers.\n"
    "Your evaluation perspective: {role}.\n\n"
    "[Question]\n{question}\n\n"
    "[The Start of Assistant 1's Answer]\n{answer_a}\n[The End of Assistant 1's Answer]\n\n"
    "[The Start of Assistant 2's Answer]\n{answer_b}\n[The End of Assistant 2's Answer]\n\n"
    "[Reviews from the previous layer]\n{evaluations}\n[End of Reviews]\n\n"
    "Other reviewers evaluated the answers from their own perspectives (above). Consider "
    "their scores and rationales, weigh each perspective by how much it matters for this "
    "question, discount the reviewers' biases, and give your comprehensive evaluation. "
    "Output 'Assistant 1: <score>' and 'Assistant 2: <score>' (1 to 10) on the first two "
    "lines, then a short explanation."
)

_NUMBER = r"([+-]?\d+(?:\.\d+)?)"
# "Assistant 1: 7", "Assistant 1's score = 7", with markdown bold around the label or the
# number ("**Assistant 1**: 7", "Assistant 1: **7**"); "7e3" is not read as 7
_ASSISTANT = re.compile(
    r"assistant\s*([12])\s*\**\s*(?:'s)?\s*(?:score)?\s*\**\s*[:=\-]\s*\**\s*"
    + _NUMBER
    + r"(?![eE][+-]?\d)",
    re.IGNORECASE,
)
_TWO_NUMBERS = re.compile(r"^\s*" + _NUMBER + r"\s*[,;/ \t]\s*" + _NUMBER + r"\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:\d+[.)]|[-*\u2022])\s*(.+?)\s*$")
_ASSISTANT_LABEL = re.compile(r"(assistant\s*)([12])(?!\d)", re.IGNORECASE)

Judge = Callable[[str], Any]


def parse_scores(text: str) -> tuple[float, float]:
    """Parse the two scores ``(score_a, score_b)`` from an evaluator's reply.

    Accepted formats: lines ``Assistant 1: 7`` and ``Assistant 2: 5`` anywhere in the text
    (case-insensitive, ``Assistant 1 score = 7`` and markdown bold work too), or a first
    non-empty line holding just the two numbers (``7 5`` or ``7, 5``; FairEval's format).

    Raises:
        TypeError: ``text`` is not a string.
        ValueError: no scores could be found, or they are not finite.
    """
    check_type("text", text, str)
    found: dict[str, float] = {}
    for match in _ASSISTANT.finditer(text):
        found.setdefault(match.group(1), float(match.group(2)))
    if "1" in found and "2" in found:
        a, b = found["1"], found["2"]
    else:
        lines = [line for line in text.splitlines() if line.strip()]
        first = _TWO_NUMBERS.match(lines[0]) if lines else None
        if first is None:
            raise ValueError(
                "text must contain 'Assistant 1: <score>' and 'Assistant 2: <score>' or start "
                f"with a line of two numbers, got {text[:200]!r}"
            )
        a, b = float(first.group(1)), float(first.group(2))
    if not (math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"text must hold finite scores, got {a!r} and {b!r}")
    return a, b


def swap_labels(text: str) -> str:
    """Swap the labels ``Assistant 1`` and ``Assistant 2`` in ``text`` (any case).

    Used to bring a reply about the swapped answer order back to the original order, and the
    previous layer's reviews into the swapped order, as the reference code does.
    """
    check_type("text", text, str)
    return _ASSISTANT_LABEL.sub(lambda m: m.group(1) + ("2" if m.group(2) == "1" else "1"), text)


def parse_roles(text: str, max_roles: int | None = None) -> list[str]:
    """Parse a numbered or bulleted list of evaluation perspectives (neuron roles).

    Duplicates (case-insensitive) are dropped, order is kept; a trailing explanation after a
    colon or dash (``1. Accuracy: is it correct``) is cut off.

    Raises:
        TypeError: ``text`` is not a string.
        ValueError: no list item was found, or ``max_roles`` < 1.
    """
    check_type("text", text, str)
    if max_roles is not None:
        check_number("max_roles", max_roles, ge=1, integer=True)
    roles: list[str] = []
    seen: set[str] = set()
    for line in text.splitlines():
        match = _LIST_ITEM.match(line)
        if match is None:
            continue
        role = re.split(r"\s*(?::|\s-\s)\s*", match.group(1), maxsplit=1)[0].strip(" *.")
        if role and role.lower() not in seen:
            seen.add(role.lower())
            roles.append(role)
    if not roles:
        raise ValueError(f"text must hold a numbered list of perspectives, got {text[:200]!r}")
    return roles[:max_roles] if max_roles is not None else roles


@dataclass(frozen=True)
class PairwiseSample:
    """One pairwise evaluation sample: a question and two answers (A shown first)."""

    question: str
    answer_a: str
    answer_b: str

    def __post_init__(self) -> None:
        for name in ("question", "answer_a", "answer_b"):
            check_type(name, getattr(self, name), str)


@dataclass(frozen=True)
class NeuronOutput:
    """What one LLM neuron answered: its layer (1-based), index, role, text and scores.

    Attributes:
        text: the neuron's replies, labelled as in the original order (Assistant 1 = answer
            A), joined by a blank line.
        score_a, score_b: the neuron's scores, the mean over its calls (both answer orders
            when the network swaps them).
        replies: each call's ``(text, score_a, score_b)`` in the original labelling: the
            original order first, then the swapped one (empty when built by hand: ``text``
            and the scores are then the only call).
    """

    layer: int
    index: int
    role: str
    text: str
    score_a: float
    score_b: float
    replies: tuple[tuple[str, float, float], ...] = ()

    def __post_init__(self) -> None:
        check_number("layer", self.layer, ge=1, integer=True)
        check_number("index", self.index, ge=0, integer=True)
        for name in ("role", "text"):
            check_type(name, getattr(self, name), str)
        for name in ("score_a", "score_b"):
            check_number(name, getattr(self, name))

    @property
    def difference(self) -> float:
        """``score_a - score_b`` (positive: answer A judged better)."""
        return self.score_a - self.score_b


def aggregate_verdict(
    outputs: Sequence[NeuronOutput],
    *,
    aggregation: str = "mean",
    tie_margin: float = 0.0,
) -> int:
    """Turn neuron outputs into one verdict (:data:`A_BETTER`, :data:`B_BETTER` or :data:`TIE`).

    ``"mean"``: average ``score_a - score_b`` over the neurons; A if it exceeds
    ``tie_margin``, B if it is below ``-tie_margin``, else a tie. ``"vote"``: each neuron votes
    with the same rule on its own difference; the most frequent verdict wins and a tie
    between the top counts is a tie.
    """
    if isinstance(outputs, (str, bytes)) or not isinstance(outputs, Collection):
        raise TypeError(
            f"outputs must be a sequence of NeuronOutput, got {type(outputs).__name__} "
            f"({outputs!r:.80})"
        )
    for o in outputs:
        check_type("outputs[i]", o, NeuronOutput)
    check_choice("aggregation", aggregation, ("mean", "vote"))
    check_number("tie_margin", tie_margin, ge=0.0)
    if len(outputs) == 0:
        raise ValueError("outputs must hold at least one NeuronOutput, got none")
    diffs = np.array([o.difference for o in outputs], dtype=float)
    if aggregation == "mean":
        return _decide(float(diffs.mean()), tie_margin)
    counts = np.bincount([_decide(float(d), tie_margin) for d in diffs], minlength=3)
    best = np.flatnonzero(counts == counts.max())
    return int(best[0]) if len(best) == 1 else TIE


def _decide(diff: float, margin: float) -> int:
    if diff > margin:
        return A_BETTER
    if diff < -margin:
        return B_BETTER
    return TIE


@dataclass(frozen=True)
class WideDeepResult:
    """The evaluation of one sample: roles, every neuron's output per layer, and the verdict.

    Attributes:
        layers: ``layers[l][j]`` is neuron ``j`` of layer ``l + 1``; ``depth`` tuples of one
            output per neuron (``min(width, len(roles))`` unless ``repeat_roles``).
        verdict: the network's verdict under its own readout settings.
    """

    sample: PairwiseSample
    roles: tuple[str, ...]
    layers: tuple[tuple[NeuronOutput, ...], ...]
    verdict: int
    score_a: float
    score_b: float

    def readout(
        self,
        n_layers: int | None = None,
        *,
        readout: str = "all",
        aggregation: str = "mean",
        tie_margin: float = 0.0,
    ) -> int:
        """Verdict of the network truncated to its first ``n_layers`` layers.

        ``n_layers=1`` gives the verdict of the single-layer network of the same width (its
        layer-1 neurons are exactly the same calls). ``readout``: ``"all"`` pools the neurons
        of every kept layer, ``"last"`` only the last kept layer.
        """
        n = len(self.layers) if n_layers is None else n_layers
        check_number("n_layers", n, ge=1, le=len(self.layers), integer=True)
        check_choice("readout", readout, ("all", "last"))
        kept = self.layers[:n]
        pool = [o for layer in kept for o in layer] if readout == "all" else list(kept[-1])
        return aggregate_verdict(pool, aggregation=aggregation, tie_margin=tie_margin)


def format_evaluations(outputs: Sequence[NeuronOutput]) -> str:
    """The previous layer's reviews as a layer-2 neuron sees them: one block per reply (a
    neuron called in both answer orders gives two blocks under the same reviewer header,
    both labelled as in the original order, like the reference's two contents per neuron)."""
    if isinstance(outputs, (str, bytes)) or not isinstance(outputs, Collection):
        raise TypeError(
            f"outputs must be a sequence of NeuronOutput, got {type(outputs).__name__} "
            f"({outputs!r:.80})"
        )
    blocks = []
    for o in outputs:
        check_type("outputs[i]", o, NeuronOutput)
        texts = [r[0] for r in o.replies] if o.replies else [o.text]
        for text in texts:
            blocks.append(f"Reviewer {o.index + 1} (perspective: {o.role}):\n{text.strip()}")
    return "\n\n".join(blocks)


def _scores_from_reply(reply: Any, where: str) -> tuple[str, float, float]:
    if isinstance(reply, str):
        a, b = parse_scores(reply)
        return reply, a, b
    if (
        isinstance(reply, Sequence)
        and len(reply) == 2
        and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in reply)
    ):
        a, b = float(reply[0]), float(reply[1])
        if not (math.isfinite(a) and math.isfinite(b)):
            raise ValueError(f"judge reply for {where} must hold finite scores, got {reply!r}")
        return f"Assistant 1: {a:g}\nAssistant 2: {b:g}", a, b
    raise TypeError(
        f"judge reply for {where} must be a str or a pair of numbers (score_a, score_b), "
        f"got {type(reply).__name__} ({reply!r:.80})"
    )


class WideDeep:
    """An LLM evaluator network of ``width`` neurons per layer and ``depth`` layers.

    Args:
        judge: the LLM backend, ``judge(prompt: str) -> str`` (a reply holding the scores, see
            :func:`parse_scores`) or ``-> (score_a, score_b)``. Used for every neuron and,
            unless ``roles`` is given, to generate the roles.
        width: neurons per layer (>= 1), one per role: a layer has ``min(width, len(roles))``
            neurons, neuron ``j`` taking ``roles[j]`` (the reference code caps the width at the
            number of roles, so every neuron holds a different perspective).
        repeat_roles: let ``width`` exceed the number of roles, neuron ``j`` taking
            ``roles[j % len(roles)]`` (repeated calls per perspective; not the paper's).
        depth: layers (>= 1); layer ``l >= 2`` neurons read outputs of layer ``l - 1`` (all of
            them, or a window: ``connectivity``).
        roles: fixed perspectives for every sample instead of generating them per sample.
        role_judge: backend for role generation (default: ``judge``); must return text.
        max_roles: keep at most this many generated roles.
        readout: ``"all"`` (pool every layer's neurons, the paper's best setting) or
            ``"last"``.
        aggregation: ``"mean"`` of score differences or majority ``"vote"`` (each neuron
            votes with its own score difference, the mean over both orders).
        tie_margin: |mean score difference| <= this is a tie (score points).
        swap_order: call every neuron twice, with the answers in the original and in the
            swapped order, and average the two score pairs (the reference code's protocol
            against position bias); ``False``: one call per neuron, answer A shown first.
        deep_roles: perspective of a neuron in layer 2 and above: ``"union"`` (default) the
            perspectives of the neurons of the previous layer that it reads (all of them, or
            its window under ``connectivity="window"``), in order and without repeats, joined
            by ``", "`` (the reference's layer-2 "Angle of View": the joined aspects of the
            neurons it reads); ``"own"`` the layer-1 role of the neuron with the same index.
            A deep neuron's perspectives are the individual layer-1 roles it has joined, so
            in layer 3 and above the union is taken over those roles, not over the joined
            strings (with ``connectivity="all"`` every neuron of layer 2 and above holds the
            same union of all layer-1 roles).
        connectivity: which neurons of the previous layer a neuron of layer 2 and above reads.
            ``"all"`` (default, the paper's description): every neuron of the previous
            layer. ``"window"`` (the reference code: ``single_layer`` in
            ``WideDeep/inference-WideDeep.py`` with ``win_size = 2``): neuron ``j`` reads
            neurons ``j - 1``, ``j`` and ``j + 1`` (:data:`WINDOW_HALF_WIDTH`), clipped at the
            first and last neuron, without wrap-around; with ``deep_roles="union"`` its
            perspective joins exactly the perspectives of those neurons (the reference joins
            the window's aspects in ``gen_prompt_QA`` of ``utils/experts_task.py`` and passes
            them on, so a layer-3 neuron holds the roles of ``j - 2 .. j + 2``). When the
            window holds no other neuron (a layer of one neuron) the neuron gets no reviews
            and is asked with ``layer1_prompt``, as the reference skips its history block when
            there are no colleagues' evaluations. Differences from the reference: the
            neuron's own previous review is one block among the window's reviews
            (:func:`format_evaluations`, labelled by reviewer number) rather than a separate
            "Your Historical Evaluations" block before "Other Colleagues' Evaluations"; the
            joined perspectives keep their order (the reference joins a ``set``, so its
            order varies from run to run); and the prompts are this module's, not the
            reference's.
        role_prompt, layer1_prompt, layer2_prompt: templates with the fields ``{question}``,
            ``{answer_a}``, ``{answer_b}``, ``{role}`` and (layer 2) ``{evaluations}``.

    Example:
        A judge that always prefers the answer shown first is cancelled by the two orders:

        >>> first = lambda p: "Assistant 1: 8\\nAssistant 2: 6"
        >>> sample = PairwiseSample("q?", "a", "b")
        >>> WideDeep(first, width=2, roles=["accuracy"]).evaluate(sample).verdict == TIE
        True
        >>> once = WideDeep(first, width=2, roles=["accuracy"], swap_order=False)
        >>> once.evaluate(sample).verdict == A_BETTER
        True
    """

    def __init__(
        self,
        judge: Judge,
        *,
        width: int = 4,
        depth: int = 2,
        roles: Sequence[str] | None = None,
        role_judge: Judge | None = None,
        max_roles: int | None = None,
        readout: str = "all",
        aggregation: str = "mean",
        tie_margin: float = 0.0,
        repeat_roles: bool = False,
        swap_order: bool = True,
        deep_roles: str = "union",
        connectivity: str = "all",
        role_prompt: str = ROLE_PROMPT,
        layer1_prompt: str = LAYER1_PROMPT,
        layer2_prompt: str = LAYER2_PROMPT,
    ) -> None:
        if not callable(judge):
            raise TypeError(f"judge must be callable (prompt -> reply), got {type(judge).__name__}")
        if role_judge is not None and not callable(role_judge):
            raise TypeError(f"role_judge must be callable, got {type(role_judge).__name__}")
        check_number("width", width, ge=1, integer=True)
        check_number("depth", depth, ge=1, integer=True)
        if max_roles is not None:
            check_number("max_roles", max_roles, ge=1, integer=True)
        check_choice("readout", readout, ("all", "last"))
        check_choice("aggregation", aggregation, ("mean", "vote"))
        check_number("tie_margin", tie_margin, ge=0.0)
        check_type("repeat_roles", repeat_roles, bool)
        check_type("swap_order", swap_order, bool)
        check_choice("deep_roles", deep_roles, ("union", "own"))
        check_choice("connectivity", connectivity, ("all", "window"))
        if roles is not None:
            if (
                isinstance(roles, str)
                or not isinstance(roles, Sequence)
                or not all(isinstance(r, str) and r.strip() for r in roles)
            ):
                raise TypeError(f"roles must be a sequence of non-empty str, got {roles!r:.120}")
            if len(roles) == 0:
                raise ValueError("roles must hold at least one perspective, got an empty sequence")
        for name, template, fields in (
            ("role_prompt", role_prompt, ("question", "answer_a", "answer_b")),
            ("layer1_prompt", layer1_prompt, ("question", "answer_a", "answer_b", "role")),
            (
                "layer2_prompt",
                layer2_prompt,
                ("question", "answer_a", "answer_b", "role", "evaluations"),
            ),
        ):
            check_type(name, template, str)
            missing = [f for f in fields if "{" + f + "}" not in template]
            if missing:
                raise ValueError(f"{name} must contain the fields {missing}, got {template[:80]!r}")
        self.judge = judge
        self.role_judge = role_judge
        self.width = int(width)
        self.depth = int(depth)
        self.roles = None if roles is None else tuple(str(r).strip() for r in roles)
        self.max_roles = max_roles
        self.readout_mode = readout
        self.aggregation = aggregation
        self.tie_margin = float(tie_margin)
        self.repeat_roles = repeat_roles
        self.swap_order = swap_order
        self.deep_roles = deep_roles
        self.connectivity = connectivity
        self.role_prompt = role_prompt
        self.layer1_prompt = layer1_prompt
        self.layer2_prompt = layer2_prompt

    def generate_roles(self, sample: PairwiseSample) -> tuple[str, ...]:
        """The neuron roles for ``sample``: the fixed ``roles`` or the LLM's perspectives."""
        check_type("sample", sample, PairwiseSample)
        if self.roles is not None:
            return self.roles
        backend = self.role_judge if self.role_judge is not None else self.judge
        reply = backend(
            self.role_prompt.format(
                question=sample.question, answer_a=sample.answer_a, answer_b=sample.answer_b
            )
        )
        if not isinstance(reply, str):
            raise TypeError(
                f"role generation reply must be a str (a numbered list), got "
                f"{type(reply).__name__}; pass roles=... for a judge that only returns scores"
            )
        return tuple(parse_roles(reply, self.max_roles))

    def _call(
        self,
        role: str,
        question: str,
        first: str,
        second: str,
        previous: str | None,
        where: str,
    ) -> tuple[str, float, float]:
        """One judge call with ``first`` shown as Assistant 1: ``(reply, score_1, score_2)``;
        ``previous`` is the previous layer's reviews (``None`` in layer 1)."""
        fields = {"question": question, "answer_a": first, "answer_b": second, "role": role}
        if previous is None:
            prompt = self.layer1_prompt.format(**fields)
        else:
            prompt = self.layer2_prompt.format(evaluations=previous, **fields)
        return _scores_from_reply(self.judge(prompt), where)

    def _reads(self, j: int, n: int) -> range:
        """Indices of the previous layer's ``n`` neurons that neuron ``j`` reads."""
        if self.connectivity == "all":
            return range(n)
        return range(max(j - WINDOW_HALF_WIDTH, 0), min(j + WINDOW_HALF_WIDTH + 1, n))

    def evaluate(self, sample: PairwiseSample) -> WideDeepResult:
        """Run the network on one sample (``n * depth`` neurons, each called twice when
        ``swap_order``, + 1 call for the roles, with ``n = width`` if ``repeat_roles`` else
        ``min(width, len(roles))``)."""
        check_type("sample", sample, PairwiseSample)
        roles = self.generate_roles(sample)
        n_neurons = self.width if self.repeat_roles else min(self.width, len(roles))
        q = sample.question
        layers: list[tuple[NeuronOutput, ...]] = []
        # the individual layer-1 roles each neuron of the previous layer stands for
        aspects: list[tuple[str, ...]] = []
        for layer in range(1, self.depth + 1):
            outputs = []
            new_aspects = []
            # the previous layer's reviews as shown, in both labellings, per set of neurons read
            # (formatted once: with connectivity="all" every neuron reads the same ones)
            shown: dict[range, tuple[str, str]] = {}
            for j in range(n_neurons):
                own_role = roles[j % len(roles)]
                previous: str | None = None
                swapped_previous: str | None = None
                if layers:
                    # layer >= 2: read the previous layer's neurons (all, or j's window) and,
                    # with deep_roles="union", take their joined perspectives (reference:
                    # single_layer's window, gen_prompt_QA's joined aspects)
                    read = self._reads(j, len(layers[-1]))
                    joined = tuple(dict.fromkeys(a for k in read for a in aspects[k]))
                    role = ", ".join(joined) if self.deep_roles == "union" else own_role
                    new_aspects.append(joined if self.deep_roles == "union" else (own_role,))
                    if self.connectivity == "all" or len(read) > 1:
                        if read not in shown:
                            reviews = format_evaluations([layers[-1][k] for k in read])
                            shown[read] = (reviews, swap_labels(reviews))
                        previous, swapped_previous = shown[read]
                else:
                    role = own_role
                    new_aspects.append((own_role,))
                where = f"layer {layer} neuron {j}"
                # original order: answer A is Assistant 1
                text, a, b = self._call(role, q, sample.answer_a, sample.answer_b, previous, where)
                replies = [(text, a, b)]
                if self.swap_order:
                    # swapped order: answer B is Assistant 1; the reviews are relabelled to
                    # match, and the reply is brought back to the original labelling
                    s_text, s1, s2 = self._call(
                        role, q, sample.answer_b, sample.answer_a, swapped_previous, where
                    )
                    replies.append((swap_labels(s_text), s2, s1))
                outputs.append(
                    NeuronOutput(
                        layer,
                        j,
                        role,
                        "\n\n".join(r[0].strip() for r in replies),
                        float(np.mean([r[1] for r in replies])),
                        float(np.mean([r[2] for r in replies])),
                        tuple(replies),
                    )
                )
            layers.append(tuple(outputs))
            aspects = new_aspects
        pool = [o for lay in layers for o in lay] if self.readout_mode == "all" else layers[-1]
        verdict = aggregate_verdict(pool, aggregation=self.aggregation, tie_margin=self.tie_margin)
        return WideDeepResult(
            sample=sample,
            roles=roles,
            layers=tuple(layers),
            verdict=verdict,
            score_a=float(np.mean([o.score_a for o in pool])),
            score_b=float(np.mean([o.score_b for o in pool])),
        )

    def evaluate_many(self, samples: Sequence[PairwiseSample]) -> list[WideDeepResult]:
        """:meth:`evaluate` each sample in order."""
        if isinstance(samples, PairwiseSample) or not isinstance(samples, Sequence):
            raise TypeError(
                f"samples must be a sequence of PairwiseSample, got {type(samples).__name__}"
            )
        return [self.evaluate(s) for s in samples]

    def predict(self, samples: Sequence[PairwiseSample]) -> np.ndarray:
        """Verdicts ``[N]`` (int: 0 = A better, 1 = B better, 2 = tie) for ``samples``."""
        return np.array([r.verdict for r in self.evaluate_many(samples)], dtype=np.int64)


def agreement(predicted: Any, truth: Any) -> dict[str, float]:
    """Agreement of verdicts with ground truth: Cohen's kappa and accuracy.

    Args:
        predicted, truth: ``[N]`` integer labels (e.g. 0 = A, 1 = B, 2 = tie), N >= 1.

    Returns:
        ``{"kappa": ..., "accuracy": ...}``; kappa is 0 when both label sets hold one and the
        same single class (sklearn would return NaN) and otherwise sklearn's
        ``cohen_kappa_score``.
    """
    from sklearn.metrics import cohen_kappa_score

    p = np.asarray(predicted)
    t = np.asarray(truth)
    for name, arr in (("predicted", p), ("truth", t)):
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(
                f"{name} must be a non-empty 1-D array of labels, got shape {arr.shape}"
            )
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"{name} must hold integer labels, got dtype {arr.dtype}")
    if p.shape != t.shape:
        raise ValueError(
            f"predicted and truth must have the same shape, got {p.shape} and {t.shape}"
        )
    accuracy = float((p == t).mean())
    if len(np.union1d(p, t)) == 1:
        return {"kappa": 0.0, "accuracy": accuracy}
    return {"kappa": float(cohen_kappa_score(t, p)), "accuracy": accuracy}


def hf_pipeline_judge(
    pipeline: Any, *, max_new_tokens: int = 256, **generate_kwargs: Any
) -> Callable[[str], str]:
    """Adapt a Hugging Face ``text-generation`` pipeline to a ``judge(prompt) -> str``.

    The pipeline is called as ``pipeline(prompt, max_new_tokens=..., return_full_text=False,
    **generate_kwargs)`` and must return ``[{"generated_text": str}, ...]``; the first
    generation is the reply. Any object with that calling convention works (tests use a fake).
    """
    if not callable(pipeline):
        raise TypeError(
            f"pipeline must be a callable text-generation pipeline, got {pipeline!r:.80}"
        )
    check_number("max_new_tokens", max_new_tokens, ge=1, integer=True)

    def judge(prompt: str) -> str:
        check_type("prompt", prompt, str)
        out = pipeline(
            prompt, max_new_tokens=max_new_tokens, return_full_text=False, **generate_kwargs
        )
        first = out[0] if isinstance(out, list) and out else out
        if isinstance(first, list) and first:  # batched pipelines nest one level deeper
            first = first[0]
        if not isinstance(first, dict) or not isinstance(first.get("generated_text"), str):
            raise TypeError(
                "pipeline must return [{'generated_text': str}, ...], got "
                f"{type(out).__name__} ({out!r:.120})"
            )
        text: str = first["generated_text"]
        if text.startswith(prompt):  # pipelines that ignore return_full_text
            text = text[len(prompt) :]
        return text

    return judge


def hf_judge(
    model: str,
    *,
    max_new_tokens: int = 256,
    pipeline_kwargs: dict[str, Any] | None = None,
    **generate_kwargs: Any,
) -> Callable[[str], str]:
    """A judge backed by ``transformers.pipeline("text-generation", model=model)``.

    ``model`` is a Hugging Face hub id (``"name"`` or ``"org/name"``) or a local model
    directory; anything else is refused before the hub is contacted.
    Requires the ``transformers`` extra
    (``pip install 'neuronkit-interpretability[transformers]'``).
    Greedy decoding is the default (``do_sample=False``) unless ``generate_kwargs`` says otherwise.
    """
    check_type("model", model, str)
    if not (os.path.isdir(model) or _HUB_ID.fullmatch(model)):
        raise ValueError(
            "model must be a Hugging Face hub id ('name' or 'org/name') or an existing local "
            f"model directory, got {model!r:.120}"
        )
    try:
        import transformers
    except ImportError as exc:  # pragma: no cover - exercised with a blocked import in tests
        raise ImportError(
            "hf_judge needs Hugging Face transformers: install the 'transformers' extra, "
            "pip install 'neuronkit-interpretability[transformers]'"
        ) from exc
    pipe = transformers.pipeline("text-generation", model=model, **(pipeline_kwargs or {}))
    generate_kwargs.setdefault("do_sample", False)
    return hf_pipeline_judge(pipe, max_new_tokens=max_new_tokens, **generate_kwargs)
