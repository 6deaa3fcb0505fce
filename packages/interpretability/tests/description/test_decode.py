"""PMI decoding: log p(d|E) - lambda log p(d), reranking beam candidates."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch

from neuronkit.interpretability.description import (
    DEFAULT_LAMBDA,
    Description,
    describe,
    pmi_scores,
)

_LL = {"shapes": -0.9, "red circles": -1.4, "blue circles": -3.0}
_LP = {"shapes": -1.1, "red circles": -4.2, "blue circles": -4.0}


class _Captioner:
    def log_prob(self, images: torch.Tensor, masks: torch.Tensor, descriptions: Sequence[str]):
        return torch.tensor([_LL[d] for d in descriptions])

    def propose(self, images, masks, *, beam_size: int, max_length: int):
        return sorted(_LL.items(), key=lambda x: -x[1])[:beam_size]


class _Prior:
    def log_prob(self, descriptions: Sequence[str]) -> torch.Tensor:
        return torch.tensor([_LP[d] for d in descriptions])


_IMAGES = torch.zeros(3, 3, 8, 8)
_MASKS = torch.ones(3, 1, 8, 8)


def test_pmi_scores() -> None:
    ll, lp = torch.tensor([-1.0, -2.0]), torch.tensor([-1.0, -5.0])
    torch.testing.assert_close(pmi_scores(ll, lp, 0.2), torch.tensor([-0.8, -1.0]))
    torch.testing.assert_close(pmi_scores(ll, lp, 0.0), ll)
    with pytest.raises(ValueError, match="log_prior"):
        pmi_scores(ll, lp[:1])
    with pytest.raises(ValueError, match="lam"):
        pmi_scores(ll, lp, -1.0)
    with pytest.raises(ValueError, match="NaN"):
        pmi_scores(ll, torch.tensor([float("nan"), 0.0]))


def test_pmi_prefers_specific_ml_prefers_generic() -> None:
    ml = describe(_Captioner(), _IMAGES, _MASKS, lam=0.0)
    assert ml.text == "shapes"
    assert ml.score == pytest.approx(-0.9)
    pmi = describe(_Captioner(), _IMAGES, _MASKS, prior=_Prior(), lam=DEFAULT_LAMBDA)
    assert isinstance(pmi, Description)
    # shapes: -0.9 + 0.22 = -0.68; red circles: -1.4 + 0.84 = -0.56
    assert pmi.text == "red circles"
    assert pmi.score == pytest.approx(-1.4 + 0.2 * 4.2)
    assert pmi.rerank(0.0) == "shapes"
    assert pmi.rerank(0.2) == "red circles"
    assert pmi.rerank(5.0) == "red circles"
    assert [c[0] for c in pmi.candidates] == ["shapes", "red circles", "blue circles"]
    with pytest.raises(ValueError, match="prior"):
        ml.rerank(0.2)


def test_describe_bad_inputs() -> None:
    with pytest.raises(ValueError, match="prior must be given"):
        describe(_Captioner(), _IMAGES, _MASKS, lam=0.2)
    with pytest.raises(TypeError, match="captioner"):
        describe(object(), _IMAGES, _MASKS, lam=0.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="prior"):
        describe(_Captioner(), _IMAGES, _MASKS, prior=object(), lam=0.2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="beam_size"):
        describe(_Captioner(), _IMAGES, _MASKS, lam=0.0, beam_size=0)


def test_pmi_scores_rejects_bool_tensors_by_name() -> None:
    ll = torch.tensor([-1.0, -2.0])
    with pytest.raises(TypeError, match="log_likelihood must be a real-valued tensor"):
        pmi_scores(ll > -1.5, ll)
    with pytest.raises(TypeError, match="log_prior must be a real-valued tensor"):
        pmi_scores(ll, ll > -1.5)


def test_describe_units_checks_rows_and_describe_refuses_nan_scores() -> None:
    from neuronkit.interpretability.description import Exemplars, describe_units

    u = 3
    ex = Exemplars(
        torch.arange(u),
        torch.zeros(u, 3, dtype=torch.long),
        torch.zeros(u, 3),
        torch.zeros(u, 3, 3, 8, 8),
        torch.ones(u, 3, 1, 8, 8),
        torch.zeros(u),
    )
    assert len(describe_units(_Captioner(), ex, prior=_Prior(), rows=[0, -1])) == 2
    for rows, err, match in (
        ([5], ValueError, r"rows\[0\] must be < 3"),
        ([-5], ValueError, r"rows\[0\] must be >= -3"),
        ([1.5], TypeError, r"rows\[0\] must be an integer"),
        ([True], TypeError, r"rows\[0\] must be an integer"),
        (1, TypeError, "rows must be a sequence"),
        ("ab", TypeError, "rows must be a sequence"),
    ):
        with pytest.raises(err, match=match):
            describe_units(_Captioner(), ex, prior=_Prior(), rows=rows)  # type: ignore[arg-type]

    class _NaNCaptioner(_Captioner):
        def propose(self, images, masks, *, beam_size: int, max_length: int):
            return [("shapes", float("nan")), ("red circles", -1.0)]

    with pytest.raises(ValueError, match="captioner proposed candidates with NaN"):
        describe(_NaNCaptioner(), _IMAGES, _MASKS, lam=0.0)
