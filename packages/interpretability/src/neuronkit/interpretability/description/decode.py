"""MILAN's description search: maximise pointwise mutual information with the exemplars.

Hernandez et al., "Natural Language Descriptions of Deep Visual Features" (ICLR 2022) describe
a neuron with exemplar set ``E`` by

    d* = argmax_d  log p(d | E) - lambda * log p(d)

(``lambda = 0`` is max-likelihood decoding). As in the authors' ``milan/decoders.py``
(strategy ``rerank``, default ``temperature = 0.2``), candidates come from beam search over
the captioner ``p(d | E)`` and are reranked with the language prior ``p(d)``. Max-likelihood
decoding picks the top beam; it favours descriptions that are likely whatever the neuron
("shapes"), which the prior term penalises.

* :func:`pmi_scores`: the reranking score (pure function).
* :func:`describe`: one exemplar set -> :class:`Description` (chosen text and every candidate).
* :func:`describe_units`: every unit of an :class:`~.exemplars.Exemplars`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from neuronkit.common import check_number, check_type

from .captioner import Captioner
from .exemplars import Exemplars
from .prior import LanguagePrior

__all__ = ["DEFAULT_LAMBDA", "Description", "describe", "describe_units", "pmi_scores"]

#: The authors' default weight of the language prior (``Decoder(temperature=.2)``).
DEFAULT_LAMBDA = 0.2


def pmi_scores(
    log_likelihood: torch.Tensor, log_prior: torch.Tensor, lam: float = DEFAULT_LAMBDA
) -> torch.Tensor:
    """``log p(d | E) - lam * log p(d)`` elementwise (``[n]`` each; ``lam >= 0``)."""
    check_type("log_likelihood", log_likelihood, torch.Tensor)
    check_type("log_prior", log_prior, torch.Tensor)
    if log_likelihood.shape != log_prior.shape:
        raise ValueError(
            f"log_prior must have the shape of log_likelihood {tuple(log_likelihood.shape)}, "
            f"got {tuple(log_prior.shape)}"
        )
    check_number("lam", lam, ge=0.0)
    for name, t in (("log_likelihood", log_likelihood), ("log_prior", log_prior)):
        if t.dtype == torch.bool or t.is_complex():
            raise TypeError(f"{name} must be a real-valued tensor, got dtype {t.dtype}")
    if torch.isnan(log_likelihood).any() or torch.isnan(log_prior).any():
        raise ValueError("log_likelihood and log_prior must not contain NaN")
    return log_likelihood - lam * log_prior


@dataclass(frozen=True)
class Description:
    """The outcome of :func:`describe`.

    Attributes:
        text: the chosen description.
        score: its score ``log p(d|E) - lam log p(d)``.
        lam: the prior weight used.
        candidates: every candidate as ``(text, log p(d|E), log p(d))``, in beam order
            (``log p(d)`` is ``nan`` when no prior was given).
    """

    text: str
    score: float
    lam: float
    candidates: tuple[tuple[str, float, float], ...]

    def rerank(self, lam: float) -> str:
        """The candidate chosen with another prior weight (``0``: max likelihood)."""
        check_number("lam", lam, ge=0.0)
        if lam == 0:
            return max(self.candidates, key=lambda c: c[1])[0]
        if any(c[2] != c[2] for c in self.candidates):
            raise ValueError("rerank needs log p(d) of every candidate (describe with a prior)")
        return max(self.candidates, key=lambda c: c[1] - lam * c[2])[0]


def describe(
    captioner: Captioner,
    images: torch.Tensor,
    masks: torch.Tensor,
    *,
    prior: LanguagePrior | None = None,
    lam: float = DEFAULT_LAMBDA,
    beam_size: int = 20,
    max_length: int = 8,
) -> Description:
    """Describe one neuron from its exemplar set.

    Args:
        captioner: any :class:`~.captioner.Captioner` (e.g. a trained
            :class:`~.captioner.ExemplarCaptioner` or an :class:`~.captioner.HFCaptioner`).
        images: ``[k, C, H, W]`` exemplar images.
        masks: ``[k, 1, H, W]`` exemplar masks.
        prior: a :class:`~.prior.LanguagePrior`; required when ``lam > 0``.
        lam: prior weight ``lambda >= 0`` (``0``: max-likelihood decoding).
        beam_size: candidates from the captioner's beam search.
        max_length: most words per description.

    Returns:
        :class:`Description` (chosen text, score and every scored candidate).
    """
    if not isinstance(captioner, Captioner):
        raise TypeError(
            "captioner must have log_prob(images, masks, descriptions) and "
            f"propose(images, masks, beam_size=, max_length=), got {type(captioner).__name__}"
        )
    check_number("lam", lam, ge=0.0)
    if prior is not None and not isinstance(prior, LanguagePrior):
        raise TypeError(f"prior must have log_prob(descriptions), got {type(prior).__name__}")
    if lam > 0 and prior is None:
        raise ValueError(f"prior must be given when lam > 0 (got lam={lam}); use lam=0 for ML")
    check_number("beam_size", beam_size, ge=1, integer=True)
    check_number("max_length", max_length, ge=1, integer=True)
    proposals = captioner.propose(images, masks, beam_size=beam_size, max_length=max_length)
    if not proposals:
        raise ValueError("captioner proposed no candidate descriptions")
    texts = [t for t, _ in proposals]
    ll = torch.tensor([float(s) for _, s in proposals])
    if bool(ll.isnan().any()):
        raise ValueError(f"captioner proposed candidates with NaN log p(d|E): {proposals!r:.200}")
    lp = (
        prior.log_prob(texts).float().cpu()
        if prior is not None
        else torch.full_like(ll, float("nan"))
    )
    scores = pmi_scores(ll, lp, lam) if lam > 0 else ll
    best = int(torch.argmax(scores))
    candidates = tuple(
        (t, float(a), float(b)) for t, a, b in zip(texts, ll.tolist(), lp.tolist(), strict=True)
    )
    return Description(texts[best], float(scores[best]), float(lam), candidates)


def describe_units(
    captioner: Captioner,
    exemplars: Exemplars,
    *,
    prior: LanguagePrior | None = None,
    lam: float = DEFAULT_LAMBDA,
    beam_size: int = 20,
    max_length: int = 8,
    rows: Sequence[int] | None = None,
) -> list[Description]:
    """:func:`describe` every exemplar set of ``exemplars`` (or the given ``rows``)."""
    check_type("exemplars", exemplars, Exemplars)
    if rows is None:
        indices: Sequence[int] = range(len(exemplars))
    else:
        if isinstance(rows, (str, bytes)) or not hasattr(rows, "__iter__"):
            raise TypeError(f"rows must be a sequence of row indices, got {rows!r:.80}")
        indices = []
        for i, row in enumerate(rows):
            if hasattr(row, "item") and getattr(row, "ndim", None) == 0:  # array / tensor entry
                row = row.item()
            check_number(f"rows[{i}]", row, ge=-len(exemplars), lt=len(exemplars), integer=True)
            indices.append(int(row))
    return [
        describe(
            captioner,
            exemplars.images[i],
            exemplars.masks[i],
            prior=prior,
            lam=lam,
            beam_size=beam_size,
            max_length=max_length,
        )
        for i in indices
    ]
