"""Synthetic compositional images and a neuron population with planted selectivities.

Ground truth for describing neurons in natural language (MILAN: Hernandez et al., "Natural
Language Descriptions of Deep Visual Features", ICLR 2022). The paper annotates the exemplars
of real vision-model neurons (MILANNOTATIONS), trains a captioner on them and describes new
neurons; here every ingredient has a known answer:

* :func:`compositional_images`: ``[N, 3, H, W]`` scenes of 1-3 objects, each with a colour
  (red, green, blue, yellow), a shape (square, circle, triangle, cross), a position (one of
  the four quadrants: left/right x top/bottom) and a brightness in ``[0.5, 1]``.
* :class:`Concept` / :func:`concept_vocabulary`: what a neuron detects (a colour, a shape, a
  position, a colour-shape conjunction, or "any object"), its paraphrases, and
  :func:`parse_description`, which maps a description back to the concept it names.
* :class:`PlantedConceptNet` / :func:`planted_population`: a convolutional model whose layer
  ``"units"`` holds neurons with planted selectivities. A fixed detector bank (colour
  similarity, normalised template matching for shapes, quadrant masks, object presence) feeds
  a 1x1 convolution whose weights plant each unit's concept (conjunctions as thresholded AND),
  plus small random weights on every detector (heterogeneity), followed by ReLU and 2x2
  average pooling, so unit maps are ``[B, U, H/2, W/2]`` and must be upsampled for masks.
  Responses grow with object brightness, so units have graded, image-dependent activations.
* :func:`annotate`: MILANNOTATIONS-like descriptions of a unit's exemplars: each annotator
  writes, with probability ``p_generic``, a generic description ("shapes", "objects") and
  otherwise a paraphrase of the planted concept. Generic descriptions are therefore the most
  frequent strings in the captions, which is what makes max-likelihood decoding prefer them
  (the paper's motivation for PMI decoding).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from neuronkit.common import check_number, check_probability, check_seed, check_type

__all__ = [
    "COLORS",
    "CONCEPT_KINDS",
    "GENERIC_DESCRIPTIONS",
    "POSITIONS",
    "SHAPES",
    "CompositionalImages",
    "Concept",
    "PlantedConceptNet",
    "annotate",
    "compositional_images",
    "concept_vocabulary",
    "parse_description",
    "planted_population",
    "shape_templates",
]

COLORS: tuple[str, ...] = ("red", "green", "blue", "yellow")
SHAPES: tuple[str, ...] = ("square", "circle", "triangle", "cross")
POSITIONS: tuple[str, ...] = ("left", "right", "top", "bottom")
CONCEPT_KINDS: tuple[str, ...] = ("color", "shape", "position", "color_shape", "generic")
#: Generic descriptions and how often annotators pick each one when they write a generic one.
GENERIC_DESCRIPTIONS: tuple[tuple[str, float], ...] = (("shapes", 0.6), ("objects", 0.4))
_RGB = {
    "red": (1.0, 0.0, 0.0),
    "green": (0.0, 1.0, 0.0),
    "blue": (0.0, 0.0, 1.0),
    "yellow": (1.0, 1.0, 0.0),
}
_TEMPLATE = 7
_QUADRANT_POSITIONS = (("top", "left"), ("top", "right"), ("bottom", "left"), ("bottom", "right"))


def _generator(seed: int | torch.Generator) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    check_seed(seed)
    return torch.Generator().manual_seed(int(seed))


def _plural(word: str) -> str:
    return word + "es" if word.endswith(("s", "x", "ch", "sh")) else word + "s"


def _singular(word: str) -> str:
    for shape in SHAPES:
        if word in (shape, _plural(shape)):
            return shape
    return word


def shape_templates() -> torch.Tensor:
    """Binary ``[4, 7, 7]`` templates of :data:`SHAPES` (square, circle, triangle, cross)."""
    i, j = torch.meshgrid(torch.arange(_TEMPLATE), torch.arange(_TEMPLATE), indexing="ij")
    c = _TEMPLATE // 2
    square = torch.ones(_TEMPLATE, _TEMPLATE)
    circle = (((i - c) ** 2 + (j - c) ** 2) <= 9).float()
    triangle = ((j - c).abs() * 2 <= i).float()
    cross = ((i == c) | (j == c)).float()
    return torch.stack([square, circle, triangle, cross])


@dataclass(frozen=True)
class CompositionalImages:
    """Scenes from :func:`compositional_images`.

    Attributes:
        images: ``[N, 3, H, W]`` RGB in ``[0, 1]``.
        colors: ``[N, 4]`` colour index of the object in each quadrant (top-left, top-right,
            bottom-left, bottom-right), ``-1`` when the quadrant is empty.
        shapes: ``[N, 4]`` shape index per quadrant, ``-1`` when empty.
        brightness: ``[N, 4]`` object brightness per quadrant (0 when empty).
        pixel_labels: ``[N, 3, H, W]`` dense labels per pixel: colour + 1, shape + 1 and
            quadrant + 1 of the object covering it (0 on the background).
    """

    images: torch.Tensor
    colors: torch.Tensor
    shapes: torch.Tensor
    brightness: torch.Tensor
    pixel_labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def descriptions(self) -> list[str]:
        """One plain-language description of each scene (e.g. ``"red circle top left"``)."""
        out = []
        for n in range(len(self)):
            parts = []
            for q in range(4):
                if int(self.colors[n, q]) >= 0:
                    top, side = _QUADRANT_POSITIONS[q]
                    color = COLORS[int(self.colors[n, q])]
                    parts.append(f"{color} {SHAPES[int(self.shapes[n, q])]} {top} {side}")
            out.append(" and ".join(parts))
        return out


def compositional_images(
    n: int,
    *,
    size: int = 16,
    max_objects: int = 3,
    noise: float = 0.03,
    seed: int | torch.Generator = 0,
) -> CompositionalImages:
    """Generate ``n`` scenes of colored shapes in the quadrants of a ``size x size`` canvas.

    Each scene has 1..``max_objects`` objects in distinct quadrants; each object has a uniform
    random colour, shape, brightness in ``[0.5, 1]`` and a 0/1 pixel jitter inside its
    quadrant; Gaussian pixel noise of std ``noise`` is added and the image clipped to
    ``[0, 1]``.

    Args:
        n: number of images (>= 1).
        size: canvas side, even and >= 16 (quadrants must hold the 7x7 shapes plus jitter).
        max_objects: 1..4 objects at most per scene.
        noise: pixel noise std (>= 0).
        seed: seed or ``torch.Generator``.

    Returns:
        :class:`CompositionalImages` with ``images [n, 3, size, size]``.
    """
    check_number("n", n, ge=1, integer=True)
    check_number("size", size, ge=16, integer=True)
    if size % 2:
        raise ValueError(f"size must be even, got {size}")
    check_number("max_objects", max_objects, ge=1, le=4, integer=True)
    check_number("noise", noise, ge=0.0)
    gen = _generator(seed)
    templates = shape_templates()
    half = size // 2
    max_jitter = half - _TEMPLATE
    images = torch.zeros(n, 3, size, size)
    labels = torch.zeros(n, 3, size, size, dtype=torch.long)
    colors = torch.full((n, 4), -1, dtype=torch.long)
    shapes = torch.full((n, 4), -1, dtype=torch.long)
    brightness = torch.zeros(n, 4)
    counts = torch.randint(1, max_objects + 1, (n,), generator=gen)
    for i in range(n):
        quadrants = torch.randperm(4, generator=gen)[: int(counts[i])]
        for q in quadrants.tolist():
            c = int(torch.randint(len(COLORS), (1,), generator=gen))
            s = int(torch.randint(len(SHAPES), (1,), generator=gen))
            b = 0.5 + 0.5 * float(torch.rand((), generator=gen))
            dy, dx = torch.randint(max_jitter + 1, (2,), generator=gen).tolist()
            y0 = (q // 2) * half + dy
            x0 = (q % 2) * half + dx
            region = (slice(y0, y0 + _TEMPLATE), slice(x0, x0 + _TEMPLATE))
            mask = templates[s]
            rgb = torch.tensor(_RGB[COLORS[c]]) * b
            images[i, :, region[0], region[1]] += rgb[:, None, None] * mask
            on = mask.bool()
            for channel, value in enumerate((c + 1, s + 1, q + 1)):
                labels[i, channel, region[0], region[1]][on] = value
            colors[i, q], shapes[i, q], brightness[i, q] = c, s, b
    if noise > 0:
        images = images + noise * torch.randn(images.shape, generator=gen)
    return CompositionalImages(images.clamp(0.0, 1.0), colors, shapes, brightness, labels)


@dataclass(frozen=True)
class Concept:
    """What a unit detects: ``kind`` in :data:`CONCEPT_KINDS` and its attribute names.

    ``color`` / ``shape`` / ``position`` are names from :data:`COLORS`, :data:`SHAPES`,
    :data:`POSITIONS` (``None`` where the kind does not use them). ``Concept("generic")``
    detects any object.
    """

    kind: str
    color: str | None = None
    shape: str | None = None
    position: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in CONCEPT_KINDS:
            raise ValueError(f"kind must be one of {CONCEPT_KINDS}, got {self.kind!r}")
        need = {
            "color": ("color",),
            "shape": ("shape",),
            "position": ("position",),
            "color_shape": ("color", "shape"),
            "generic": (),
        }[self.kind]
        for attr, names in (("color", COLORS), ("shape", SHAPES), ("position", POSITIONS)):
            value = getattr(self, attr)
            if attr in need and value not in names:
                raise ValueError(
                    f"{attr} must be one of {names} for a {self.kind!r} concept, got {value!r}"
                )
            if attr not in need and value is not None:
                raise ValueError(f"{attr} must be None for a {self.kind!r} concept, got {value!r}")

    @property
    def is_generic(self) -> bool:
        """Whether the concept is "any object"."""
        return self.kind == "generic"

    def descriptions(self) -> tuple[str, ...]:
        """Paraphrases an annotator may write for this concept (specific wording only)."""
        if self.kind == "color":
            return (f"{self.color} shapes", f"{self.color} objects")
        if self.kind == "shape":
            return (_plural(str(self.shape)), f"{self.shape} shapes")
        if self.kind == "position":
            return (f"shapes on the {self.position}", f"objects on the {self.position}")
        if self.kind == "color_shape":
            return (f"{self.color} {_plural(str(self.shape))}",)
        return tuple(d for d, _ in GENERIC_DESCRIPTIONS)

    def __str__(self) -> str:
        parts = [p for p in (self.color, self.shape, self.position) if p is not None]
        return " ".join(parts) if parts else "any object"


def concept_vocabulary(kinds: Sequence[str] = CONCEPT_KINDS) -> list[Concept]:
    """Every concept of the given kinds (colours, shapes, positions, colour x shape, generic)."""
    out: list[Concept] = []
    for kind in kinds:
        if kind not in CONCEPT_KINDS:
            raise ValueError(f"kinds must hold names from {CONCEPT_KINDS}, got {kind!r}")
        if kind == "color":
            out += [Concept("color", color=c) for c in COLORS]
        elif kind == "shape":
            out += [Concept("shape", shape=s) for s in SHAPES]
        elif kind == "position":
            out += [Concept("position", position=p) for p in POSITIONS]
        elif kind == "color_shape":
            out += [Concept("color_shape", color=c, shape=s) for c in COLORS for s in SHAPES]
        else:
            out.append(Concept("generic"))
    return out


def parse_description(text: str) -> Concept | None:
    """The concept a description names, or ``None`` when it names none unambiguously.

    Words are matched against :data:`COLORS`, :data:`SHAPES` (singular or plural) and
    :data:`POSITIONS`; a description with none of them is generic; one with two colours,
    two shapes, two positions, or a combination other than colour+shape is ``None``.
    """
    check_type("text", text, str)
    words = text.lower().split()
    colors = {w for w in words if w in COLORS}
    shapes = {_singular(w) for w in words if _singular(w) in SHAPES}
    positions = {w for w in words if w in POSITIONS}
    if len(colors) > 1 or len(shapes) > 1 or len(positions) > 1:
        return None
    color = next(iter(colors), None)
    shape = next(iter(shapes), None)
    position = next(iter(positions), None)
    if position is not None:
        return Concept("position", position=position) if color is shape is None else None
    if color is not None and shape is not None:
        return Concept("color_shape", color=color, shape=shape)
    if color is not None:
        return Concept("color", color=color)
    if shape is not None:
        return Concept("shape", shape=shape)
    return Concept("generic") if words else None


def annotate(
    concept: Concept,
    n: int = 3,
    *,
    p_generic: float = 0.5,
    seed: int | np.random.Generator = 0,
) -> list[str]:
    """``n`` crowd-style descriptions of a unit with the given concept (MILANNOTATIONS-like).

    Each annotator independently writes a generic description (drawn from
    :data:`GENERIC_DESCRIPTIONS`) with probability ``p_generic``, otherwise one of the
    concept's paraphrases uniformly; a generic unit always gets generic descriptions.
    """
    check_type("concept", concept, Concept)
    check_number("n", n, ge=1, integer=True)
    check_probability("p_generic", p_generic)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    names = [d for d, _ in GENERIC_DESCRIPTIONS]
    weights = np.array([w for _, w in GENERIC_DESCRIPTIONS])
    out = []
    for _ in range(n):
        if concept.is_generic or rng.random() < p_generic:
            out.append(names[int(rng.choice(len(names), p=weights / weights.sum()))])
        else:
            options = concept.descriptions()
            out.append(options[int(rng.integers(len(options)))])
    return out


class _DetectorBank(nn.Module):
    """Fixed feature detectors: 4 colour, 4 shape, 4 position maps and object presence.

    ``[B, 3, H, W] -> [B, 13, H, W]``, each map in ``[0, 1]`` scaled by the local brightness.
    """

    rgb: torch.Tensor
    templates: torch.Tensor
    halves: torch.Tensor

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.register_buffer("rgb", torch.tensor([_RGB[c] for c in COLORS]))
        t = shape_templates()
        self.register_buffer("templates", (t / t.flatten(1).norm(dim=1)[:, None, None])[:, None])
        idx = torch.arange(size)
        half = size // 2
        left = (idx < half).float()[None, :].expand(size, size)
        top = (idx < half).float()[:, None].expand(size, size)
        self.register_buffer("halves", torch.stack([left, 1 - left, top, 1 - top]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value = x.amax(dim=1, keepdim=True)  # brightness [B, 1, H, W]
        presence = ((value - 0.25) / 0.15).clamp(0.0, 1.0)
        chroma = x / value.clamp_min(1e-3)
        dist = ((chroma[:, None] - self.rgb[None, :, :, None, None]) ** 2).sum(2)
        colors = torch.exp(-dist / 0.1) * presence * value
        pad = _TEMPLATE // 2
        ones = torch.ones(1, 1, _TEMPLATE, _TEMPLATE, dtype=x.dtype)
        energy = F.conv2d(presence**2, ones, padding=pad).clamp_min(1e-6).sqrt()
        cosine = F.conv2d(presence, self.templates, padding=pad) / energy
        evidence = ((cosine - 0.9) / 0.1).clamp(0.0, 1.0)
        shapes = F.max_pool2d(evidence, _TEMPLATE, stride=1, padding=pad) * presence * value
        positions = self.halves[None] * presence * value
        return torch.cat([colors, shapes, positions, presence * value], dim=1)


class PlantedConceptNet(nn.Module):
    """A conv model whose layer ``"units"`` holds neurons with planted selectivities.

    ``forward(x [B, 3, H, W]) -> [B, U, H/2, W/2]``: fixed detectors (layer ``"detectors"``,
    13 maps: colours, shapes, positions, presence), a 1x1 convolution with the planted
    weights, ReLU and 2x2 average pooling (together the layer ``"units"``).

    Args:
        concepts: the planted concept of each unit.
        size: image side the model expects.
        noise_weight: std of the random weights added on every detector map (heterogeneity
            and weak polysemanticity, as in real units).
        seed: seed or generator for the random weights and gains.
    """

    def __init__(
        self,
        concepts: Sequence[Concept],
        *,
        size: int = 16,
        noise_weight: float = 0.02,
        seed: int | torch.Generator = 0,
    ) -> None:
        super().__init__()
        if isinstance(concepts, (str, bytes)) or not isinstance(concepts, Sequence):
            raise TypeError(f"concepts must be a sequence of Concept, got {type(concepts)}")
        if not concepts:
            raise ValueError("concepts must hold at least one Concept, got an empty sequence")
        for i, c in enumerate(concepts):
            check_type(f"concepts[{i}]", c, Concept)
        check_number("size", size, ge=16, integer=True)
        check_number("noise_weight", noise_weight, ge=0.0)
        gen = _generator(seed)
        self.concepts = list(concepts)
        self.size = int(size)
        self.detectors = _DetectorBank(size)
        n_maps = len(COLORS) + len(SHAPES) + len(POSITIONS) + 1
        weight = noise_weight * torch.randn(len(concepts), n_maps, generator=gen)
        bias = torch.zeros(len(concepts))
        for u, c in enumerate(concepts):
            idx = []
            if c.color is not None:
                idx.append(COLORS.index(c.color))
            if c.shape is not None:
                idx.append(len(COLORS) + SHAPES.index(c.shape))
            if c.position is not None:
                idx.append(len(COLORS) + len(SHAPES) + POSITIONS.index(c.position))
            if c.is_generic:
                idx.append(n_maps - 1)
            for i in idx:
                weight[u, i] += 1.0
            # A unit fires once its detectors' summed drive exceeds len(idx) - 0.75: a single
            # detector at brightness > 0.25, a conjunction only when both detectors are on.
            bias[u] = -(len(idx) - 0.75)
        gain = 1.0 + torch.rand(len(concepts), generator=gen)
        with torch.random.fork_rng(devices=[]):  # default init, overwritten below
            conv = nn.Conv2d(n_maps, len(concepts), 1)
        with torch.no_grad():
            conv.weight.copy_((gain[:, None] * weight)[:, :, None, None])
            assert conv.bias is not None
            conv.bias.copy_(gain * bias)
        conv.requires_grad_(False)
        self.units = nn.Sequential(conv, nn.ReLU(), nn.AvgPool2d(2))

    @property
    def n_units(self) -> int:
        """Number of units ``U``."""
        return len(self.concepts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Unit maps ``[B, U, H/2, W/2]`` for images ``x [B, 3, H, W]``."""
        check_type("x", x, torch.Tensor)
        if x.ndim != 4 or x.shape[1:] != (3, self.size, self.size):
            raise ValueError(
                f"x must be [B, 3, {self.size}, {self.size}], got shape {tuple(x.shape)}"
            )
        # the images in the network's dtype (float32 unless converted, e.g. with .double())
        return self.units(self.detectors(x.to(self.detectors.rgb.dtype)))


def planted_population(
    n_units: int,
    *,
    kinds: Sequence[str] = CONCEPT_KINDS,
    generic_fraction: float = 0.1,
    size: int = 16,
    noise_weight: float = 0.02,
    seed: int = 0,
) -> PlantedConceptNet:
    """A :class:`PlantedConceptNet` of ``n_units`` units with random planted concepts.

    A fraction ``generic_fraction`` of the units (rounded) detect any object; the others get
    concepts drawn uniformly from the non-generic concepts of ``kinds`` (cycled through a
    random permutation, so every concept appears before any repeats).
    """
    check_number("n_units", n_units, ge=1, integer=True)
    check_probability("generic_fraction", generic_fraction)
    check_seed(seed)
    specific = [c for c in concept_vocabulary(kinds) if not c.is_generic]
    n_generic = math.floor(generic_fraction * n_units + 0.5)
    if n_generic < n_units and not specific:
        raise ValueError(f"kinds must include a non-generic kind, got {tuple(kinds)}")
    rng = np.random.default_rng(seed)
    concepts: list[Concept] = [Concept("generic")] * n_generic
    while len(concepts) < n_units:
        order = rng.permutation(len(specific))
        concepts += [specific[i] for i in order[: n_units - len(concepts)]]
    perm = rng.permutation(n_units)
    return PlantedConceptNet(
        [concepts[i] for i in perm], size=size, noise_weight=noise_weight, seed=seed + 7919
    )
