"""The 12-bit task of Shwartz-Ziv & Tishby, "Opening the Black Box of Deep Neural Networks via
Information" (2017), Section 3.

The input is 12 binary units standing for 12 uniformly distributed points on the 2-D sphere,
all ``2 ** 12 = 4096`` patterns, and the label is ``y = 1[f(x) > theta]`` for a function ``f``
that is invariant under O(3) rotations of the sphere, with ``theta`` set so that the classes
are (nearly) balanced.

The authors ship the labels as a data file (``data/var_u.mat`` in ``ravidziv/IDNNs``, rows in
binary-counting order like :func:`all_binary_inputs`) without the code that made them. Those
labels are nevertheless exactly such a rule: with each bit a charge ``s_i = 2 x_i - 1`` at a
vertex ``p_i`` of the regular icosahedron (the only 12-point configuration uniform on the
sphere; bit ``i`` at vertex :data:`REFERENCE_VERTEX_ORDER` ``[i]``),
``f(x) = sum_i s_i + |sum_i s_i p_i|`` (total charge plus dipole magnitude, both invariant)
and ``theta`` the cut between distinct values of ``f`` that best balances the classes
reproduce every one of the 4096 labels (``P(y = 1) = 2118 / 4096 = 0.517``; 87.5% of them
follow from the number of active bits alone). This is the default (:func:`charge_dipole`).

The earlier construction, the rotation-invariant angular power
``f_l(x) = sum_{i,j} s_i s_j P_l(p_i . p_j)`` (``P_l`` the Legendre polynomial; for ``l = 1``
the squared dipole moment ``|sum_i s_i p_i|^2``) summed over chosen degrees, stays available
with ``twelve_bit_task(degrees=...)``; it has no charge term, so its labels are symmetric under
flipping all bits and unlike the authors' (``P(y = 1) = 0.497`` for ``degrees=(1,)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.polynomial import legendre

from neuronkit.common import as_float_array, check_number, check_seed

__all__ = [
    "REFERENCE_VERTEX_ORDER",
    "TwelveBitTask",
    "all_binary_inputs",
    "charge_dipole",
    "icosahedron_vertices",
    "spherical_power",
    "twelve_bit_task",
]


# Bit i of the authors' inputs sits at vertex REFERENCE_VERTEX_ORDER[i] of icosahedron_vertices()
# (found by matching the pair structure of their labels to the icosahedron graph; any
# symmetry of the icosahedron applied to it gives the same labels).
REFERENCE_VERTEX_ORDER: tuple[int, ...] = (0, 1, 8, 2, 3, 5, 11, 10, 4, 9, 6, 7)


def icosahedron_vertices() -> np.ndarray:
    """The 12 vertices of the regular icosahedron on the unit sphere: ``[12, 3]`` float64.

    Order: for ``a, b`` in ``(-1, 1)``, the points ``(0, a, b phi)``, ``(a, b phi, 0)``,
    ``(b phi, 0, a)`` normalized (``phi`` the golden ratio).
    """
    phi = (1.0 + 5.0**0.5) / 2.0
    rows: list[tuple[float, float, float]] = []
    for a in (-1.0, 1.0):
        for b in (-1.0, 1.0):
            rows += [(0.0, a, b * phi), (a, b * phi, 0.0), (b * phi, 0.0, a)]
    pts = np.asarray(rows, dtype=np.float64)
    return pts / np.linalg.norm(pts, axis=1, keepdims=True)


def all_binary_inputs(n_bits: int = 12) -> np.ndarray:
    """All ``2 ** n_bits`` binary patterns, ``[2 ** n_bits, n_bits]`` float64 in {0, 1}.

    Row ``k`` is the binary expansion of ``k`` (most significant bit first).
    """
    check_number("n_bits", n_bits, ge=1, le=20, integer=True)
    k = np.arange(2**n_bits)[:, None]
    return ((k >> np.arange(n_bits)[::-1][None, :]) & 1).astype(np.float64)


def spherical_power(x: np.ndarray, points: np.ndarray, degrees: Sequence[int] = (1,)) -> np.ndarray:
    """Rotation-invariant angular power of binary charges on the sphere.

    ``f(x) = sum_l sum_{i,j} s_i s_j P_l(p_i . p_j)`` with ``s = 2 x - 1``. Rotating all points
    by any ``R`` in O(3) leaves ``p_i . p_j`` and hence ``f`` unchanged.

    Args:
        x: ``[N, P]`` binary inputs in {0, 1}.
        points: ``[P, 3]`` unit vectors.
        degrees: Legendre degrees ``l >= 1`` to sum.

    Returns:
        ``[N]`` float64 values.
    """
    arr, pts = _check_charges(x, points)
    degs = list(degrees)
    if not degs:
        raise ValueError("degrees must name at least one Legendre degree, got none")
    for d in degs:
        check_number("degrees[i]", d, ge=1, integer=True)
    cos = np.clip(pts @ pts.T, -1.0, 1.0)
    kernel = sum(legendre.legval(cos, np.eye(d + 1)[d]) for d in degs)
    s = 2.0 * arr - 1.0
    return np.einsum("ni,ij,nj->n", s, kernel, s)


def charge_dipole(x: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Total charge plus dipole magnitude, ``f(x) = sum_i s_i + |sum_i s_i p_i|``, ``s = 2x - 1``.

    Both terms are invariant under O(3) rotations of the points; thresholded at the balanced cut
    with the points of :data:`REFERENCE_VERTEX_ORDER` it gives the authors' 12-bit labels.

    Args:
        x: ``[N, P]`` binary inputs in {0, 1}.
        points: ``[P, 3]`` unit vectors.

    Returns:
        ``[N]`` float64 values.
    """
    arr, pts = _check_charges(x, points)
    s = 2.0 * arr - 1.0
    return s.sum(1) + np.linalg.norm(s @ pts, axis=1)


def _check_charges(x: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    arr = as_float_array("x", x)
    pts = as_float_array("points", points)
    if pts.ndim != 2 or pts.shape[1] != 3 or pts.shape[0] == 0:
        raise ValueError(f"points must be [P, 3], got shape {pts.shape}")
    if not np.allclose(np.linalg.norm(pts, axis=1), 1.0, atol=1e-8):
        raise ValueError("points must be unit vectors, got norms different from 1")
    if arr.ndim != 2 or arr.shape[1] != pts.shape[0]:
        raise ValueError(f"x must be [N, {pts.shape[0]}] (one column per point), got {arr.shape}")
    if not np.isin(arr, (0.0, 1.0)).all():
        raise ValueError("x must hold binary values in {0, 1}")
    return arr, pts


@dataclass(frozen=True)
class TwelveBitTask:
    """The 12-bit task: every input once.

    Attributes:
        x: ``[4096, 12]`` float32 binary inputs (all patterns, X uniform over them).
        y: ``[4096]`` int64 labels 0/1.
        f: ``[4096]`` float64 values of the invariant function the labels threshold.
        threshold: ``theta`` (``y = f > theta``).
        points: ``[12, 3]`` the sphere points (icosahedron vertices; row ``i`` is bit ``i``).
    """

    x: torch.Tensor
    y: torch.Tensor
    f: np.ndarray
    threshold: float
    points: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def split(self, train_fraction: float = 0.8, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """A random train/test split of the 4096 indices.

        Args:
            train_fraction: share of inputs used for training (the paper: 0.8), in (0, 1).
            seed: permutation seed.

        Returns:
            ``(train_idx, test_idx)`` sorted int64 index arrays covering ``0 .. 4095`` once.
        """
        check_number("train_fraction", train_fraction, gt=0.0, lt=1.0)
        check_seed(seed)
        n = len(self)
        perm = np.random.default_rng(seed).permutation(n)
        n_train = min(max(round(train_fraction * n), 1), n - 1)
        return np.sort(perm[:n_train]), np.sort(perm[n_train:])


def twelve_bit_task(degrees: Sequence[int] | None = None) -> TwelveBitTask:
    """Build the 12-bit task (deterministic: no randomness is involved).

    Args:
        degrees: ``None`` (default): the authors' labels, ``f`` = :func:`charge_dipole` with
            the bits at the vertices in :data:`REFERENCE_VERTEX_ORDER`; else the Legendre
            degrees of the angular power ``f`` (see :func:`spherical_power`; ``(1,)``
            thresholds the squared dipole moment) with the vertices in their default order.

    Returns:
        :class:`TwelveBitTask` with labels ``y = 1[f > theta]``, ``theta`` the cut between
        distinct values of ``f`` that best balances the classes.
    """
    x = all_binary_inputs(12)
    if degrees is None:
        points = icosahedron_vertices()[list(REFERENCE_VERTEX_ORDER)]
        f = charge_dipole(x, points)
    else:
        points = icosahedron_vertices()
        f = spherical_power(x, points, degrees)
    # f takes few distinct values: move the cut to the nearest gap that best balances classes
    values = np.unique(np.round(f, 10))
    cuts = (values[:-1] + values[1:]) / 2.0
    if cuts.size == 0:
        raise ValueError(f"degrees={list(degrees or [])} give a constant f; choose other degrees")
    balance = np.abs((f[:, None] > cuts[None, :]).mean(0) - 0.5)
    theta = float(cuts[int(np.argmin(balance))])
    y = (f > theta).astype(np.int64)
    return TwelveBitTask(
        x=torch.as_tensor(x, dtype=torch.float32),
        y=torch.as_tensor(y),
        f=f,
        threshold=theta,
        points=points,
    )
