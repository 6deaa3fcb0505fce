"""Multifaceted digits: a classification task in which one class has planted facets.

Nguyen, Yosinski & Clune (2016, "Multifaceted Feature Visualization") argue that a class
neuron responds to several distinct kinds of input (its *facets*). To test facet discovery
with a known answer, :func:`multifaceted_digits` builds a task from scikit-learn's bundled
8x8 digits (nothing is downloaded): the *facet class* (label 0) is the union of two or more
different digits (by default 0 and 1: a ring and a bar, the planted facets), and every other
class is one further digit. A classifier must map both facets to the same output, and the
ground-truth facet of every image is known.

Images are the digits upsampled (bilinear) to ``digit_size`` pixels and pasted at the centre
of a blank ``size x size`` canvas with a random shift of up to ``max_shift`` pixels, optionally
with Gaussian pixel noise; values are in ``[0, 1]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from neuronkit.common import check_number, check_seed, check_type

from ._index import subset_index
from .block_digits import load_digits

__all__ = ["MultifacetedDigits", "multifaceted_digits"]


@dataclass(frozen=True)
class MultifacetedDigits:
    """A multifaceted-digits data set.

    Attributes:
        x: ``[N, 1, size, size]`` images in ``[0, 1]``.
        y: ``[N]`` class labels; class ``facet_class`` (0) holds the planted facets.
        facet: ``[N]`` planted facet of each image of the facet class (``0..F-1``, the
            position of its digit in ``facet_digits``), ``-1`` for the other classes.
        digit: ``[N]`` the original digit of each image.
        facet_digits: the digits forming the facet class, one per facet.
        other_digits: the digits of classes ``1, 2, ...``.
    """

    x: torch.Tensor
    y: torch.Tensor
    facet: torch.Tensor
    digit: torch.Tensor
    facet_digits: tuple[int, ...]
    other_digits: tuple[int, ...]

    facet_class: int = 0

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def n_classes(self) -> int:
        """Number of classes (1 facet class + one per other digit)."""
        return 1 + len(self.other_digits)

    @property
    def n_facets(self) -> int:
        """Number of planted facets of the facet class."""
        return len(self.facet_digits)

    def subset(self, index: torch.Tensor) -> MultifacetedDigits:
        """The examples at ``index`` (a ``[M]`` integer or ``[N]`` boolean tensor)."""
        check_type("index", index, torch.Tensor)
        index = subset_index(index, len(self))
        return MultifacetedDigits(
            x=self.x[index],
            y=self.y[index],
            facet=self.facet[index],
            digit=self.digit[index],
            facet_digits=self.facet_digits,
            other_digits=self.other_digits,
        )

    def facet_mean_images(self) -> torch.Tensor:
        """``[F, 1, size, size]`` mean image of each planted facet."""
        return torch.stack([self.x[self.facet == f].mean(0) for f in range(self.n_facets)])


def multifaceted_digits(
    facet_digits: Sequence[int] = (0, 1),
    other_digits: Sequence[int] = (2, 3, 4, 5),
    *,
    size: int = 20,
    digit_size: int = 16,
    max_shift: int = 1,
    noise: float = 0.0,
    seed: int = 0,
) -> MultifacetedDigits:
    """Build the multifaceted-digits task (see the module docstring).

    Args:
        facet_digits: at least two distinct digits merged into class 0, one facet each.
        other_digits: digits of the remaining classes (at least one; disjoint from
            ``facet_digits``).
        size: canvas side in pixels.
        digit_size: side of the upsampled digit (``8 <= digit_size <= size``).
        max_shift: largest random shift of the digit from the centre, in pixels.
        noise: standard deviation of Gaussian pixel noise (clamped back into ``[0, 1]``).
        seed: seeds the shifts and the noise.

    Returns:
        :class:`MultifacetedDigits` with all 1797 scikit-learn digits of the chosen classes.
    """
    facets = _digits("facet_digits", facet_digits, minimum=2)
    others = _digits("other_digits", other_digits, minimum=1)
    if set(facets) & set(others):
        raise ValueError(
            f"facet_digits and other_digits must be disjoint, got {facets} and {others}"
        )
    check_number("size", size, ge=8, integer=True)
    check_number("digit_size", digit_size, ge=8, le=size, integer=True)
    check_number("max_shift", max_shift, ge=0, integer=True)
    if (size - digit_size) // 2 < max_shift:
        raise ValueError(
            f"max_shift must be <= (size - digit_size) // 2 = {(size - digit_size) // 2} so the "
            f"digit stays on the canvas, got {max_shift}"
        )
    check_number("noise", noise, ge=0.0)
    check_seed(seed)
    x8, digit = load_digits(None)
    keep = torch.isin(digit, torch.tensor(facets + others))
    x8, digit = x8[keep], digit[keep]
    n = digit.shape[0]
    up = F.interpolate(x8, size=(digit_size, digit_size), mode="bilinear", align_corners=False)
    up = up.clamp(0.0, 1.0)
    gen = torch.Generator().manual_seed(int(seed))
    shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=gen)
    canvas = torch.zeros(n, 1, size, size)
    offset = (size - digit_size) // 2
    for i in range(n):
        top = offset + int(shifts[i, 0])
        left = offset + int(shifts[i, 1])
        canvas[i, :, top : top + digit_size, left : left + digit_size] = up[i]
    if noise > 0:
        canvas = (canvas + float(noise) * torch.randn(canvas.shape, generator=gen)).clamp(0, 1)
    label_of = {d: 0 for d in facets} | {d: i + 1 for i, d in enumerate(others)}
    facet_of = {d: i for i, d in enumerate(facets)}
    y = torch.tensor([label_of[int(d)] for d in digit], dtype=torch.int64)
    facet = torch.tensor([facet_of.get(int(d), -1) for d in digit], dtype=torch.int64)
    return MultifacetedDigits(
        x=canvas,
        y=y,
        facet=facet,
        digit=digit.clone(),
        facet_digits=facets,
        other_digits=others,
    )


def _digits(name: str, digits: Sequence[int], *, minimum: int) -> tuple[int, ...]:
    if isinstance(digits, (str, bytes)) or not isinstance(digits, Sequence):
        raise TypeError(f"{name} must be a sequence of digits 0-9, got {digits!r:.80}")
    values = tuple(digits)
    if len(values) < minimum or len(set(values)) != len(values):
        raise ValueError(f"{name} must be at least {minimum} distinct digits, got {list(values)}")
    for i, d in enumerate(values):
        check_number(f"{name}[{i}]", d, ge=0, le=9, integer=True)
    return tuple(int(d) for d in values)
