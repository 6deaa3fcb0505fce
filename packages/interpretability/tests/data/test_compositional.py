"""Synthetic compositional scenes and the planted-selectivity population (MILAN ground truth)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuronkit.interpretability.data.compositional import (
    COLORS,
    CONCEPT_KINDS,
    POSITIONS,
    SHAPES,
    Concept,
    PlantedConceptNet,
    annotate,
    compositional_images,
    concept_vocabulary,
    parse_description,
    planted_population,
    shape_templates,
)

_QUADRANT_SIDES = (("top", "left"), ("top", "right"), ("bottom", "left"), ("bottom", "right"))


def test_templates_are_distinguishable() -> None:
    t = shape_templates().flatten(1)
    t = t / t.norm(dim=1, keepdim=True)
    cos = t @ t.T
    off = cos[~torch.eye(len(SHAPES), dtype=torch.bool)]
    assert float(off.max()) < 0.9  # the detector bank thresholds template cosine at 0.9


def test_images_labels_and_determinism() -> None:
    d = compositional_images(50, seed=3)
    assert d.images.shape == (50, 3, 16, 16)
    assert len(d) == 50
    assert float(d.images.min()) >= 0.0
    assert float(d.images.max()) <= 1.0
    n_obj = (d.colors >= 0).sum(1)
    assert int(n_obj.min()) >= 1
    assert int(n_obj.max()) <= 3
    assert torch.equal(d.colors >= 0, d.shapes >= 0)
    # dense labels agree with the object table
    templates = shape_templates()
    for i in range(10):
        for q in range(4):
            on = d.pixel_labels[i, 2] == q + 1
            if int(d.colors[i, q]) < 0:
                assert not on.any()
            else:
                assert torch.all(d.pixel_labels[i, 0][on] == d.colors[i, q] + 1)
                assert torch.all(d.pixel_labels[i, 1][on] == d.shapes[i, q] + 1)
                assert int(on.sum()) == int(templates[d.shapes[i, q]].sum())
    again = compositional_images(50, seed=3)
    torch.testing.assert_close(d.images, again.images)
    assert not torch.equal(d.images, compositional_images(50, seed=4).images)
    assert "top left" in " ".join(d.descriptions()) or "top right" in " ".join(d.descriptions())


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"n": 0}, ValueError),
        ({"n": 2, "size": 15}, ValueError),
        ({"n": 2, "size": 18.0}, TypeError),
        ({"n": 2, "max_objects": 5}, ValueError),
        ({"n": 2, "noise": -0.1}, ValueError),
    ],
)
def test_images_bad_inputs(kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        compositional_images(**kwargs)


def test_concepts_paraphrases_parse_back() -> None:
    vocab = concept_vocabulary()
    assert len(vocab) == 4 + 4 + 4 + 16 + 1
    for c in vocab:
        for text in c.descriptions():
            assert parse_description(text) == c
    assert parse_description("red crosses") == Concept("color_shape", color="red", shape="cross")
    assert parse_description("red blue shapes") is None
    assert parse_description("red shapes on the left") is None
    assert parse_description("") is None
    with pytest.raises(ValueError, match="color must be one of"):
        Concept("color", color="purple")
    with pytest.raises(ValueError, match="shape must be None"):
        Concept("color", color="red", shape="circle")
    with pytest.raises(ValueError, match="kind must be one of"):
        Concept("texture")
    with pytest.raises(TypeError):
        parse_description(3)  # type: ignore[arg-type]


def test_annotate_generic_frequency_and_seed() -> None:
    c = Concept("color_shape", color="red", shape="circle")
    texts = annotate(c, 4000, p_generic=0.5, seed=0)
    generic = np.mean([parse_description(t).is_generic for t in texts])  # type: ignore[union-attr]
    assert 0.47 < generic < 0.53
    assert all(parse_description(t) in (c, Concept("generic")) for t in texts)
    assert annotate(c, 5, seed=1) == annotate(c, 5, seed=1)
    assert set(annotate(Concept("generic"), 50, p_generic=0.0, seed=0)) <= {"shapes", "objects"}
    assert set(annotate(c, 50, p_generic=0.0, seed=0)) == {"red circles"}
    with pytest.raises(ValueError, match="p_generic"):
        annotate(c, 3, p_generic=1.5)
    with pytest.raises(TypeError, match="concept"):
        annotate("red", 3)  # type: ignore[arg-type]


def _has_concept(d, concept: Concept) -> torch.Tensor:
    out = torch.zeros(len(d), dtype=torch.bool)
    for q in range(4):
        ok = d.colors[:, q] >= 0
        if concept.color is not None:
            ok &= d.colors[:, q] == COLORS.index(concept.color)
        if concept.shape is not None:
            ok &= d.shapes[:, q] == SHAPES.index(concept.shape)
        if concept.position is not None and concept.position not in _QUADRANT_SIDES[q]:
            ok &= False
        out |= ok
    return out


def test_planted_units_are_selective() -> None:
    d = compositional_images(300, seed=0)
    concepts = [
        Concept("color", color="red"),
        Concept("shape", shape="circle"),
        Concept("position", position="left"),
        Concept("color_shape", color="blue", shape="cross"),
        Concept("generic"),
    ]
    net = PlantedConceptNet(concepts, noise_weight=0.0, seed=0)
    with torch.no_grad():
        acts = net(d.images)
    assert acts.shape == (300, 5, 8, 8)
    peak = acts.flatten(2).amax(2)
    for u, c in enumerate(concepts):
        has = _has_concept(d, c)
        if c.is_generic:
            assert bool((peak[:, u] > 0).all())
            continue
        assert has.any()
        assert (~has).any()
        # fires on (almost) every image with its concept, never without it
        assert float((peak[has, u] > 0).float().mean()) > (0.7 if c.kind == "color_shape" else 0.95)
        assert float(peak[~has, u].max()) < 1e-6


def test_planted_population_mix_and_errors() -> None:
    net = planted_population(58, generic_fraction=0.1, seed=2)
    kinds = [c.kind for c in net.concepts]
    assert kinds.count("generic") == 6
    assert set(kinds) == set(CONCEPT_KINDS)
    assert net.n_units == 58
    assert [c.position for c in net.concepts if c.kind == "position"]
    assert {c.position for c in net.concepts if c.kind == "position"} <= set(POSITIONS)
    only = planted_population(8, kinds=("color",), generic_fraction=0.0, seed=0)
    assert sorted(c.color for c in only.concepts) == sorted(COLORS * 2)  # type: ignore[type-var]
    with pytest.raises(ValueError, match="x must be"):
        net(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="concepts must hold"):
        PlantedConceptNet([])
    with pytest.raises(TypeError, match="concepts"):
        PlantedConceptNet(["red"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="generic_fraction"):
        planted_population(4, generic_fraction=2.0)


def test_a_float64_network_runs_in_float64() -> None:
    """Images are cast to the network's dtype (a hard .float() broke .double() models)."""
    from neuronkit.interpretability.data.compositional import Concept, PlantedConceptNet

    net = PlantedConceptNet([Concept("color", color="red"), Concept("generic")], seed=0)
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    out = net.double()(images.double())
    assert out.dtype == torch.float64
    torch.testing.assert_close(out.float(), net.float()(images), atol=1e-5, rtol=1e-5)
