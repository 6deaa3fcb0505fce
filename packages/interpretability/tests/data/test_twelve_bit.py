"""Tests of the 12-bit task (Shwartz-Ziv & Tishby 2017)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from neuronkit.interpretability.data.twelve_bit import (
    REFERENCE_VERTEX_ORDER,
    all_binary_inputs,
    charge_dipole,
    icosahedron_vertices,
    spherical_power,
    twelve_bit_task,
)


def _random_orthogonal(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def test_icosahedron_is_regular() -> None:
    p = icosahedron_vertices()
    assert p.shape == (12, 3)
    np.testing.assert_allclose(np.linalg.norm(p, axis=1), 1.0)
    np.testing.assert_allclose(p.sum(0), 0.0, atol=1e-12)
    d = np.linalg.norm(p[:, None] - p[None], axis=-1)
    for i in range(12):
        others = np.sort(d[i][np.arange(12) != i])
        np.testing.assert_allclose(others[:5], others[0])  # 5 equidistant neighbours
        assert others[5] > others[0] + 0.1


def test_all_binary_inputs_enumerates_every_pattern() -> None:
    x = all_binary_inputs(12)
    assert x.shape == (4096, 12)
    assert len(np.unique(x, axis=0)) == 4096
    assert x[5].tolist() == [0] * 9 + [1, 0, 1]


@pytest.mark.parametrize("degrees", [(1,), (2,), (1, 3)])
def test_spherical_power_is_rotation_invariant(degrees: tuple[int, ...]) -> None:
    p = icosahedron_vertices()
    x = all_binary_inputs(12)[::37]
    f = spherical_power(x, p, degrees)
    for seed in range(3):
        rot = _random_orthogonal(seed)
        if seed == 2:
            rot = -rot  # an improper rotation (O(3), not SO(3))
        np.testing.assert_allclose(spherical_power(x, p @ rot.T, degrees), f, atol=1e-9)


def test_dipole_power_is_squared_dipole_moment() -> None:
    p = icosahedron_vertices()
    x = all_binary_inputs(12)[::11]
    s = 2 * x - 1
    np.testing.assert_allclose(
        spherical_power(x, p, (1,)), np.linalg.norm(s @ p, axis=1) ** 2, atol=1e-9
    )


# sha256 of np.packbits of the 4096 labels in ravidziv/IDNNs data/var_u.mat (field y, rows in
# binary-counting order), and how many of them are 1 for each number of active bits
_VAR_U_SHA256 = "371b2b46a5052b4f69f7991ca141fb5afa1ac364ef7beb81ec900eecac2f86d9"
_VAR_U_ONES_BY_COUNT = [0, 0, 0, 0, 0, 60, 532, 732, 495, 220, 66, 12, 1]


def test_default_labels_are_the_authors_var_u_labels() -> None:
    task = twelve_bit_task()
    y = task.y.numpy()
    digest = hashlib.sha256(np.packbits(y.astype(np.uint8)).tobytes()).hexdigest()
    assert digest == _VAR_U_SHA256
    counts = task.x.numpy().sum(1).astype(int)
    assert [int(y[counts == c].sum()) for c in range(13)] == _VAR_U_ONES_BY_COUNT
    assert int(y.sum()) == 2118
    np.testing.assert_allclose(task.points, icosahedron_vertices()[list(REFERENCE_VERTEX_ORDER)])
    np.testing.assert_allclose(task.f, charge_dipole(task.x.numpy(), task.points))


def test_charge_dipole_is_rotation_invariant() -> None:
    p = icosahedron_vertices()
    x = all_binary_inputs(12)[::37]
    f = charge_dipole(x, p)
    s = 2 * x - 1
    np.testing.assert_allclose(f, s.sum(1) + np.linalg.norm(s @ p, axis=1))
    rot = -_random_orthogonal(5)
    np.testing.assert_allclose(charge_dipole(x, p @ rot.T), f, atol=1e-9)


@pytest.mark.parametrize("degrees", [None, (1,)])
def test_task_labels_threshold_f_and_are_balanced(degrees: tuple[int, ...] | None) -> None:
    task = twelve_bit_task(degrees)
    assert len(task) == 4096
    assert task.x.shape == (4096, 12)
    y = task.y.numpy()
    np.testing.assert_array_equal(y, (task.f > task.threshold).astype(np.int64))
    assert abs(y.mean() - 0.5) < 0.02
    # labels depend only on the invariant: a symmetry of the icosahedron permutes the bits
    # and keeps every label (here the point reflection p -> -p)
    p = task.points
    perm = [int(np.argmin(np.linalg.norm(p + p[i], axis=1))) for i in range(12)]
    x = task.x.numpy()
    index = (x[:, perm] @ (2 ** np.arange(11, -1, -1))).astype(int)
    np.testing.assert_array_equal(y[index], y)
    again = twelve_bit_task(degrees)
    np.testing.assert_array_equal(again.y.numpy(), y)


def test_split_is_a_disjoint_cover_and_seeded() -> None:
    task = twelve_bit_task()
    tr, te = task.split(0.8, seed=3)
    assert len(tr) == round(0.8 * 4096)
    assert np.intersect1d(tr, te).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([tr, te])), np.arange(4096))
    np.testing.assert_array_equal(task.split(0.8, seed=3)[0], tr)
    assert not np.array_equal(task.split(0.8, seed=4)[0], tr)


def test_bad_inputs() -> None:
    p = icosahedron_vertices()
    x = all_binary_inputs(12)[:4]
    with pytest.raises(ValueError, match="points"):
        spherical_power(x, 2 * p)
    with pytest.raises(ValueError, match="points"):
        spherical_power(x, p[:, :2])
    with pytest.raises(ValueError, match="x must"):
        spherical_power(x[:, :5], p)
    with pytest.raises(ValueError, match="binary"):
        spherical_power(x * 0.5, p)
    with pytest.raises(ValueError, match="degrees"):
        spherical_power(x, p, ())
    with pytest.raises(ValueError, match="degrees"):
        spherical_power(x, p, (0,))
    with pytest.raises(ValueError, match="binary"):
        charge_dipole(x * 0.5, p)
    with pytest.raises(ValueError, match="n_bits"):
        all_binary_inputs(0)
    with pytest.raises(ValueError, match="train_fraction"):
        twelve_bit_task().split(1.0)
