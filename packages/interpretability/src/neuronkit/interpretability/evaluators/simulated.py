"""Simulated LLM judges and a synthetic pairwise benchmark for WideDeep.

A stand-in for LLMEval^2 (Zhang et al., "Wider and Deeper LLM Networks are Fairer LLM
Evaluators", 2023) that needs no model: every sample is a question with two answers whose
latent quality is known on several dimensions, and the "human" label compares the answers on
the dimensions that matter for that question. :class:`SimulatedJudge` answers the real
WideDeep prompts (:mod:`neuronkit.interpretability.evaluators.widedeep`) as a noisy, biased LLM:

* **Roles.** Asked for perspectives (the prompt asks for as many as possible, like the
  reference's role prompt), it lists every quality dimension whose *perceived* importance (a
  noisy copy of the true importance) is at least ``role_min_importance`` (default 0: all of
  them), most important first. The list is deterministic per sample (no per-call noise): the
  reference queries the roles at temperature 0 (``get_aspects`` calls ``query_gpt(tp=0)`` in
  ``inference-WideDeep.py``), the scores at the default temperature.
* **Answer order.** It reads which answer is shown first (Assistant 1), so a network may show
  the answers in either order: quality, length and the per-sample error belong to the answers,
  the position bias to the first position.
* **Layer-1 neuron** with role ``k``: attends mostly to dimension ``k`` (``role_focus``) and
  partly to its holistic impression (its perceived importance times the quality gap), plus a
  position bias toward the answer shown first, a verbosity bias toward the longer answer
  (strong for the ``"level of detail"`` role), a per-sample error shared by all calls on that
  sample (a misjudgement of the answers, whatever their order), and per-call noise; the result
  is written as integer scores 1 to 10 with a rationale. A perspective naming several
  dimensions (``"accuracy, relevance"``, the joined roles a layer-2 neuron gets) spreads the
  ``role_focus`` share over them by their perceived importance (one dimension: as above; all
  of them: a holistic look), and its verbosity bias is that of the ``"level of detail"`` role
  in proportion to the share it gets.
* **Layer-2 neuron**: parses every review in its prompt, averages the reported score gaps per
  perspective, and weighs each perspective by how important *it* perceives that perspective
  for the question (``integration`` share), mixing in its own layer-1-style judgment. This is
  the mechanism a count-based vote over layer-1 neurons lacks: a vote weighs each perspective
  by how many neurons hold it, so an unimportant perspective (e.g. a verbosity-biased "level of
  detail" reviewer on a factual question) counts as much as the decisive one, and each vote
  carries one neuron's noise while a layer-2 neuron sees all of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

import numpy as np

from neuronkit.common import check_number, check_seed, check_type

from .widedeep import A_BETTER, B_BETTER, TIE, PairwiseSample, parse_scores

#: The quality dimensions of the simulated benchmark (the last one is length-biased).
QUALITY_DIMENSIONS = (
    "accuracy",
    "relevance",
    "helpfulness",
    "coherence",
    "harmlessness",
    "level of detail",
)
_DETAIL = QUALITY_DIMENSIONS.index("level of detail")
_TASKS = ("open QA", "math", "writing", "coding", "summarization", "safety", "brainstorming")

_QUESTION = re.compile(r"\[Question\]\n(.*?)\n\n\[The Start of Assistant 1", re.S)
_FIRST_ANSWER = re.compile(
    r"\[The Start of Assistant 1's Answer\]\n(.*?)\n\[The End of Assistant 1's Answer\]", re.S
)
_ROLE = re.compile(r"Your evaluation perspective: (.*?)\.\n")
_REVIEWS = re.compile(r"\[Reviews from the previous layer\]\n(.*?)\n\[End of Reviews\]", re.S)
_REVIEWER = re.compile(r"Reviewer \d+ \(perspective: (.*?)\):\n")
_ROLE_REQUEST = "list as many evaluation perspectives"


@dataclass(frozen=True)
class SimulatedPairwiseData:
    """A synthetic pairwise benchmark with ground-truth ("human") labels.

    Attributes:
        samples: ``N`` :class:`PairwiseSample` (questions are unique; A is shown first).
        labels: ``[N]`` int, 0 = A better, 1 = B better, 2 = tie.
        weights: ``[N, D]`` true importance of each quality dimension (rows sum to 1).
        quality_a, quality_b: ``[N, D]`` latent quality of the two answers.
        length_a, length_b: ``[N]`` answer lengths in words (independent of quality).
        margin: ``[N]`` true quality gap ``weights . (quality_a - quality_b)``.
        dimensions: the ``D`` dimension names (the roles a judge can take).
    """

    samples: tuple[PairwiseSample, ...]
    labels: np.ndarray
    weights: np.ndarray
    quality_a: np.ndarray
    quality_b: np.ndarray
    length_a: np.ndarray
    length_b: np.ndarray
    margin: np.ndarray
    dimensions: tuple[str, ...] = QUALITY_DIMENSIONS

    def __len__(self) -> int:
        return len(self.samples)


def simulated_pairwise_data(
    n_samples: int,
    *,
    concentration: float = 0.5,
    tie_threshold: float = 0.15,
    seed: int = 0,
) -> SimulatedPairwiseData:
    """Generate ``n_samples`` pairwise samples with latent qualities and human labels.

    Each sample's importance weights are ``Dirichlet(concentration)`` over the
    :data:`QUALITY_DIMENSIONS` (small concentration: each question hinges on few aspects),
    answer qualities are standard normal per dimension, lengths log-normal and independent of
    quality. Label: A if ``margin > tie_threshold``, B if ``< -tie_threshold``, else a tie.
    """
    check_number("n_samples", n_samples, ge=1, integer=True)
    check_number("concentration", concentration, gt=0.0)
    check_number("tie_threshold", tie_threshold, ge=0.0)
    check_seed(seed)
    rng = np.random.default_rng(seed)
    d = len(QUALITY_DIMENSIONS)
    weights = rng.dirichlet(np.full(d, float(concentration)), size=n_samples)
    qa = rng.standard_normal((n_samples, d))
    qb = rng.standard_normal((n_samples, d))
    la = np.round(np.exp(rng.normal(5.0, 0.5, n_samples))).astype(np.int64)
    lb = np.round(np.exp(rng.normal(5.0, 0.5, n_samples))).astype(np.int64)
    margin = np.einsum("nd,nd->n", weights, qa - qb)
    labels = np.full(n_samples, TIE, dtype=np.int64)
    labels[margin > tie_threshold] = A_BETTER
    labels[margin < -tie_threshold] = B_BETTER
    tasks = rng.integers(0, len(_TASKS), n_samples)
    samples = tuple(
        PairwiseSample(
            question=f"[Q{i}] ({_TASKS[tasks[i]]}) Simulated user question number {i}.",
            answer_a=f"(simulated answer A to Q{i}, {la[i]} words)",
            answer_b=f"(simulated answer B to Q{i}, {lb[i]} words)",
        )
        for i in range(n_samples)
    )
    return SimulatedPairwiseData(samples, labels, weights, qa, qb, la, lb, margin)


@dataclass(frozen=True)
class JudgeBiases:
    """Behaviour of a :class:`SimulatedJudge` (latent units: one unit ~ one score point).

    Attributes:
        role_focus: share of a neuron's attention on its role's dimension (rest: holistic).
        noise: std of per-call noise.
        shared_noise: std of a per-sample error shared by every call on that sample.
        position_bias: constant preference for the answer shown first (Assistant 1).
        verbosity_bias: preference per unit of standardized log-length gap (all roles).
        detail_verbosity_bias: the same for the ``"level of detail"`` role.
        importance_noise: log-normal noise of the perceived dimension importance.
        integration: share of a layer-2 neuron's judgment taken from the reviews.
        role_min_importance: asked for perspectives, the judge lists the dimensions whose
            perceived importance is at least this (the most important one at least); 0, the
            default, lists every dimension, as the role prompt asks for as many perspectives
            as possible.
    """

    role_focus: float = 0.6
    noise: float = 0.7
    shared_noise: float = 0.3
    position_bias: float = 0.3
    verbosity_bias: float = 0.15
    detail_verbosity_bias: float = 0.8
    importance_noise: float = 0.5
    integration: float = 0.7
    role_min_importance: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("role_focus", "integration", "role_min_importance"):
                check_number(f.name, value, ge=0.0, le=1.0)
            elif f.name in ("position_bias", "verbosity_bias", "detail_verbosity_bias"):
                check_number(f.name, value)
            else:
                check_number(f.name, value, ge=0.0)


class SimulatedJudge:
    """A noisy, biased stand-in LLM that answers WideDeep's prompts (see module docstring).

    Call it like any judge: ``judge(prompt) -> str``. It recognises the sample by the
    question text, so it only understands prompts built from the default templates and
    samples of its ``data``. Per-call randomness comes from a generator seeded with ``seed``
    (same seed and call order: same replies); per-sample perception errors are fixed by
    ``(seed, sample index)``.
    """

    def __init__(
        self, data: SimulatedPairwiseData, biases: JudgeBiases | None = None, *, seed: int = 0
    ) -> None:
        check_type("data", data, SimulatedPairwiseData)
        if biases is not None:
            check_type("biases", biases, JudgeBiases)
        check_seed(seed)
        self.data = data
        self.biases = biases if biases is not None else JudgeBiases()
        self.seed = int(seed)
        self._rng = np.random.default_rng([self.seed, 1])
        self._index = {s.question: i for i, s in enumerate(data.samples)}
        self._dims = {name: k for k, name in enumerate(data.dimensions)}
        n, d = data.weights.shape
        per_sample = np.random.default_rng([self.seed, 2])
        self._perception = per_sample.standard_normal((n, d))
        self._shared = np.asarray(per_sample.normal(0.0, self.biases.shared_noise, n))
        spread = float(np.log(np.concatenate([data.length_a, data.length_b])).std() * np.sqrt(2))
        self._length_gap = (np.log(data.length_a) - np.log(data.length_b)) / max(spread, 1e-9)
        self.calls = 0

    # -- latent quantities ----------------------------------------------------------------
    def _importance(self, i: int, *, sampled: bool = True) -> np.ndarray:
        """Perceived importance of the dimensions for sample ``i``: the judge's fixed
        misperception plus, when ``sampled`` (a call at non-zero temperature), per-call noise."""
        b = self.biases
        d = self.data.weights.shape[1]
        h = self._rng.standard_normal(d) if sampled else np.zeros(d)
        w = self.data.weights[i] * np.exp(
            b.importance_noise * (self._perception[i] + h) / np.sqrt(2)
        )
        return np.asarray(w / w.sum())

    def _look(self, i: int, role: str, sign: float = 1.0) -> float:
        """One neuron's latent judgment of sample ``i`` from ``role`` (positive: the answer
        shown first is better; ``sign`` is +1 when that is answer A, -1 when it is B)."""
        b = self.biases
        imp = self._importance(i)
        ks = self._role_dims(role)
        if not ks:
            attention, verbosity = imp, b.verbosity_bias
        else:
            # the role's share of attention goes to its dimension(s), split by perceived
            # importance when it names several (one dimension: all of it)
            share = np.zeros_like(imp)
            share[ks] = imp[ks] / imp[ks].sum() if len(ks) > 1 else 1.0
            attention = (1.0 - b.role_focus) * imp + b.role_focus * share
            verbosity = b.verbosity_bias + (b.detail_verbosity_bias - b.verbosity_bias) * float(
                share[_DETAIL]
            )
        gap = sign * (self.data.quality_a[i] - self.data.quality_b[i])
        return float(
            attention @ gap
            + b.position_bias
            + sign * (verbosity * self._length_gap[i] + self._shared[i])
            + self._rng.normal(0.0, b.noise)
        )

    def _role_dims(self, role: str) -> list[int]:
        """Indices of the dimensions a perspective names: one name, or several joined by
        commas (unknown names are ignored; none known: an empty list, a holistic look)."""
        name = role.strip().lower()
        if name in self._dims:
            return [self._dims[name]]
        ks = [self._dims[p.strip()] for p in name.split(",") if p.strip() in self._dims]
        return list(dict.fromkeys(ks))

    def _integrate(self, i: int, reviews: list[tuple[str, float]]) -> float:
        """Importance-weighted mean of the reviews' per-perspective score gaps (latent units)."""
        imp = self._importance(i)
        by_role: dict[str, list[float]] = {}
        for role, gap in reviews:
            by_role.setdefault(role.strip().lower(), []).append(gap)
        total, norm = 0.0, 0.0
        for role, gaps in by_role.items():
            ks = self._role_dims(role)
            weight = float(imp[ks].sum()) if ks else 1.0 / len(imp)
            total += weight * sum(gaps) / len(gaps)
            norm += weight
        return total / norm if norm > 0 else 0.0

    def _scores(self, latent: float) -> tuple[int, int]:
        lenient = float(self._rng.uniform(-0.5, 0.5))
        a = min(10, max(1, round(6.0 + latent + lenient)))
        b = min(10, max(1, round(6.0 - latent + lenient)))
        return a, b

    # -- the prompt interface ---------------------------------------------------------------
    def __call__(self, prompt: str) -> str:
        check_type("prompt", prompt, str)
        match = _QUESTION.search(prompt)
        if match is None or match.group(1) not in self._index:
            raise ValueError(
                "prompt must be a WideDeep default-template prompt about a sample of this "
                f"judge's data, got {prompt[:120]!r}"
            )
        i = self._index[match.group(1)]
        self.calls += 1
        if _ROLE_REQUEST in prompt:
            imp = self._importance(i, sampled=False)  # temperature 0, as in the reference
            order = [int(k) for k in np.argsort(-imp, kind="stable")]
            keep = [k for k in order if imp[k] >= self.biases.role_min_importance] or order[:1]
            return "\n".join(f"{r + 1}. {self.data.dimensions[k]}" for r, k in enumerate(keep))
        role_match = _ROLE.search(prompt)
        if role_match is None:
            raise ValueError(
                f"prompt must state 'Your evaluation perspective: ...', got {prompt[:120]!r}"
            )
        role = role_match.group(1)
        sign = self._order(i, prompt)
        own = self._look(i, role, sign)
        reviews_match = _REVIEWS.search(prompt)
        if reviews_match is None:
            latent, how = own, "independently"
        else:
            parts = _REVIEWER.split(reviews_match.group(1))
            reviews = []
            for r_role, text in zip(parts[1::2], parts[2::2], strict=True):
                sa, sb = parse_scores(text)
                reviews.append((r_role, (sa - sb) / 2.0))
            if not reviews:
                raise ValueError("prompt's review section must hold at least one review")
            mix = self.biases.integration
            latent = mix * self._integrate(i, reviews) + (1.0 - mix) * own
            how = f"after weighing {len(reviews)} reviews by relevance"
        a, b = self._scores(latent)
        la, lb = self.data.length_a[i], self.data.length_b[i]
        if sign < 0:
            la, lb = lb, la
        return (
            f"Assistant 1: {a}\nAssistant 2: {b}\n"
            f"Judged {how} from the perspective of {role}; Assistant 1's answer has {la} words, "
            f"Assistant 2's has {lb} words."
        )

    def _order(self, i: int, prompt: str) -> float:
        """+1 if answer A of sample ``i`` is shown first (Assistant 1), -1 if answer B is."""
        match = _FIRST_ANSWER.search(prompt)
        sample = self.data.samples[i]
        first = None if match is None else match.group(1)
        if first == sample.answer_a:
            return 1.0
        if first == sample.answer_b:
            return -1.0
        raise ValueError(
            "prompt must show one of the sample's two answers as Assistant 1's answer, got "
            f"{prompt[:120]!r}"
        )
