"""DiffROAR: masks, masking, retraining protocol, signal mass."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neuronkit.interpretability import (
    DiffROARResult,
    diffroar,
    keep_mask,
    mask_inputs,
    roar_accuracy,
    signal_mass,
    train_classifier,
)
from neuronkit.interpretability.data import signal_coordinate_data


def test_keep_mask_top_and_bottom_with_stable_ties() -> None:
    a = torch.tensor([[0.1, -3.0, 2.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    top = keep_mask(a, 2)
    bottom = keep_mask(a, 2, largest=False)
    assert top.tolist() == [[False, True, True, False], [False, False, True, True]]
    assert bottom.tolist() == [[True, False, False, True], [True, True, False, False]]
    assert keep_mask(a, 0.5).equal(top)
    assert keep_mask(a[:, None, :], 1).shape == (2, 1, 4)


def test_mask_inputs_fills_with_scalar_or_mean() -> None:
    x = torch.arange(8.0).reshape(2, 4)
    keep = torch.tensor([[True, False, False, True], [False, True, False, False]])
    mean = x.mean(0)
    out = mask_inputs(x, keep, mean)
    assert out[0].tolist() == [0.0, mean[1].item(), mean[2].item(), 3.0]
    assert mask_inputs(x, keep, -1.0)[1].tolist() == [-1.0, 5.0, -1.0, -1.0]
    assert x.tolist() == torch.arange(8.0).reshape(2, 4).tolist()


def _trainer(x: torch.Tensor, y: torch.Tensor) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(x.shape[1], 32), nn.ReLU(), nn.Linear(32, 2))
    train_classifier(model, x, y, epochs=15, batch_size=100, lr=1e-2, seed=0)
    return model


def test_oracle_attribution_gives_positive_and_inverted_gives_negative_diffroar() -> None:
    train = signal_coordinate_data(600, 6, seed=0)
    test = signal_coordinate_data(300, 6, seed=1)
    oracle_train = (train.x != 0).float()
    oracle_test = (test.x != 0).float()
    good = diffroar(
        train.x, train.y, test.x, test.y, oracle_train, oracle_test, k=1, trainer=_trainer
    )
    assert isinstance(good, DiffROARResult)
    assert good.top_accuracy > 0.95
    assert good.diffroar > 0.3
    bad = diffroar(
        train.x, train.y, test.x, test.y, 1 - oracle_train, 1 - oracle_test, k=1, trainer=_trainer
    )
    assert bad.diffroar < -0.3
    assert bad.diffroar == pytest.approx(bad.top_accuracy - bad.bottom_accuracy)


def test_default_fill_is_the_scalar_training_mean() -> None:
    # The authors mask with one value, the dataset mean (mask_val = X.mean() in
    # harshays/inputgradients, 01_fig_in_real_data.ipynb and misc_utils.get_masked_data).
    train = signal_coordinate_data(200, 5, seed=0)
    attr = torch.randn(train.x.shape, generator=torch.Generator().manual_seed(0))
    seen = []

    def trainer(x, y):
        seen.append(x)
        return _trainer(x, y)

    roar_accuracy(
        train.x, train.y, train.x, train.y, attr, attr, k=2, largest=True, trainer=trainer
    )
    removed = ~keep_mask(attr, 2)
    expected = torch.full_like(train.x, float(train.x.mean()))
    torch.testing.assert_close(seen[0][removed], expected[removed])


def _leaky_split(pairs: list[tuple[int, int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    rows, labels = [], []
    for coordinate, label, count in pairs:
        for _ in range(count):
            x = torch.zeros(4)
            x[coordinate] = 1.0 if label == 1 else -1.0
            rows.append(x)
            labels.append(label)
    return torch.stack(rows), torch.tensor(labels)


def test_default_fill_does_not_leak_labels_through_the_mask_pattern() -> None:
    # x = y * e_j data whose coordinates 2 and 3 have means +0.25 and -0.25 (cancelling
    # overall). Examples with the signal on coordinate 0 or 1 keep coordinate 2 when y = 1 and
    # 3 when y = 0 (the others keep coordinate 0): no kept value carries the label. Filling
    # with per-coordinate means would mark the kept coordinate (0 among +-0.25): 100% accuracy.
    x_train, y_train = _leaky_split(
        [(0, 1, 100), (0, 0, 100), (1, 1, 100), (1, 0, 100), (2, 1, 200), (3, 0, 200)]
    )
    x_test, y_test = _leaky_split([(0, 1, 50), (0, 0, 50), (1, 1, 50), (1, 0, 50)])

    def label_attribution(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        kept = torch.where(y == 1, 2, 3)
        kept = torch.where(x.abs().argmax(1) >= 2, torch.zeros_like(kept), kept)
        a = torch.zeros(len(y), 4)
        a[torch.arange(len(y)), kept] = 1.0
        return a

    acc = roar_accuracy(
        x_train,
        y_train,
        x_test,
        y_test,
        label_attribution(x_train, y_train),
        label_attribution(x_test, y_test),
        k=1,
        largest=True,
        trainer=_trainer,
    )
    assert acc == pytest.approx(0.5)


def test_roar_accuracy_restores_training_mode() -> None:
    train = signal_coordinate_data(100, 4, seed=0)
    models = []

    def trainer(x, y):
        models.append(_trainer(x, y))
        return models[-1]

    roar_accuracy(
        train.x, train.y, train.x, train.y, train.x, train.x, k=2, largest=True, trainer=trainer
    )
    assert models[0].training


def test_signal_mass() -> None:
    a = torch.tensor([[1.0, 3.0], [0.0, 0.0], [-2.0, 2.0]])
    mask = torch.tensor([[False, True], [True, False], [True, False]])
    torch.testing.assert_close(signal_mass(a, mask), torch.tensor([0.75, 0.5, 0.5]))


def test_inputs_are_not_mutated() -> None:
    train = signal_coordinate_data(100, 4, seed=0)
    x0, a0 = train.x.clone(), train.x.clone() * 2
    attr = a0.clone()
    roar_accuracy(
        train.x, train.y, train.x, train.y, attr, attr, k=1, largest=False, trainer=_trainer
    )
    torch.testing.assert_close(train.x, x0)
    torch.testing.assert_close(attr, a0)


BAD = [
    (lambda: keep_mask(torch.ones(4), 1), ValueError, "attributions"),
    (lambda: keep_mask(torch.ones(2, 4), 5), ValueError, "k"),
    (lambda: keep_mask(torch.ones(2, 4), 0.0), ValueError, "k"),
    (lambda: keep_mask(torch.ones(2, 4), True), TypeError, "k"),
    (lambda: keep_mask(torch.full((2, 4), float("nan")), 1), ValueError, "finite"),
    (lambda: keep_mask(torch.ones(2, 4), 1, largest=1), TypeError, "largest"),
    (lambda: mask_inputs(torch.ones(2, 4), torch.ones(2, 4), 0.0), TypeError, "keep"),
    (
        lambda: mask_inputs(torch.ones(2, 4), torch.ones(2, 3, dtype=torch.bool), 0.0),
        ValueError,
        "keep",
    ),
    (
        lambda: mask_inputs(torch.ones(2, 4), torch.ones(2, 4, dtype=torch.bool), torch.ones(3)),
        ValueError,
        "fill",
    ),
    (lambda: signal_mass(torch.ones(2, 4), torch.ones(2, 4)), TypeError, "signal_mask"),
    (
        lambda: signal_mass(torch.ones(2, 4), torch.ones(2, 3, dtype=torch.bool)),
        ValueError,
        "signal_mask",
    ),
    (
        lambda: roar_accuracy(
            torch.ones(4, 2),
            torch.zeros(4, dtype=torch.long),
            torch.ones(3, 2),
            torch.zeros(3, dtype=torch.long),
            torch.ones(4, 2),
            torch.ones(2, 2),
            k=1,
            largest=True,
            trainer=_trainer,
        ),
        ValueError,
        "test_attributions",
    ),
    (
        lambda: roar_accuracy(
            torch.ones(4, 2),
            torch.zeros(3, dtype=torch.long),
            torch.ones(3, 2),
            torch.zeros(3, dtype=torch.long),
            torch.ones(4, 2),
            torch.ones(3, 2),
            k=1,
            largest=True,
            trainer=_trainer,
        ),
        ValueError,
        "train_labels",
    ),
    (
        lambda: roar_accuracy(
            torch.ones(4, 2),
            torch.zeros(4, dtype=torch.long),
            torch.ones(3, 3),
            torch.zeros(3, dtype=torch.long),
            torch.ones(4, 2),
            torch.ones(3, 3),
            k=1,
            largest=True,
            trainer=_trainer,
        ),
        ValueError,
        "test_inputs",
    ),
    (
        lambda: roar_accuracy(
            torch.ones(4, 2),
            torch.zeros(4, dtype=torch.long),
            torch.ones(3, 2),
            torch.zeros(3, dtype=torch.long),
            torch.ones(4, 2),
            torch.ones(3, 2),
            k=1,
            largest=True,
            trainer=None,
        ),
        TypeError,
        "trainer",
    ),
    (
        lambda: roar_accuracy(
            torch.ones(4, 2),
            torch.zeros(4, dtype=torch.long),
            torch.ones(3, 2),
            torch.zeros(3, dtype=torch.long),
            torch.ones(4, 2),
            torch.ones(3, 2),
            k=1,
            largest=True,
            trainer=lambda x, y: "model",
        ),
        TypeError,
        "nn.Module",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), BAD)
def test_bad_inputs(call, error, match) -> None:
    with pytest.raises(error, match=match):
        call()


def test_keep_mask_reads_numpy_integers_as_counts() -> None:
    import numpy as np

    a = torch.rand(2, 4)
    assert keep_mask(a, np.int64(1)).sum(1).tolist() == [1, 1]  # a count, not the fraction 1.0
    assert keep_mask(a, np.int32(2)).equal(keep_mask(a, 2))
    assert keep_mask(a, np.float64(0.5)).equal(keep_mask(a, 0.5))
    with pytest.raises(ValueError, match="k must be <= 4"):
        keep_mask(a, np.int64(5))


def test_mask_inputs_rejects_non_finite_values_and_truncated_fills() -> None:
    x = torch.rand(2, 4)
    keep = torch.zeros(2, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match="fill must be finite"):
        mask_inputs(x, keep, float("nan"))
    with pytest.raises(ValueError, match="fill must be finite"):
        mask_inputs(x, keep, torch.full((4,), float("inf")))
    with pytest.raises(ValueError, match="inputs must be finite"):
        mask_inputs(torch.full((2, 4), float("nan")), keep, 0.0)
    with pytest.raises(TypeError, match="fill must be a real number or a tensor"):
        mask_inputs(x, keep, "a")
    ints = torch.ones(2, 4, dtype=torch.long)
    with pytest.raises(TypeError, match="fill must be an integer"):
        mask_inputs(ints, keep, 0.5)  # was truncated to 0
    with pytest.raises(TypeError, match="fill must be an integer"):
        mask_inputs(ints, keep, torch.tensor(0.5))
    assert mask_inputs(ints, keep, 7).eq(7).all()


def test_fill_may_be_a_nested_list() -> None:
    x = torch.rand(2, 2, 3)
    keep = torch.rand(2, 2, 3) > 0.5
    means = [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]
    torch.testing.assert_close(
        mask_inputs(x, keep, means), mask_inputs(x, keep, torch.tensor(means))
    )


def test_integer_inputs_need_an_explicit_fill() -> None:
    x = torch.randint(0, 5, (12, 4))
    y = torch.randint(0, 2, (12,))
    att = torch.rand(12, 4)
    with pytest.raises(TypeError, match="fill is required for integer train_inputs"):
        roar_accuracy(x, y, x, y, att, att, k=0.5, largest=True, trainer=_trainer)


def test_bad_dtypes_and_non_finite_values_are_named_by_their_argument() -> None:
    x = torch.randn(6, 4)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    a = torch.randn(6, 4)
    with pytest.raises(TypeError, match="attributions must be real numbers"):
        keep_mask(a > 0, 0.5)
    with pytest.raises(TypeError, match="attributions must be real numbers"):
        signal_mass(a > 0, a > 0)

    def trainer(inputs: torch.Tensor, labels: torch.Tensor) -> nn.Module:
        return nn.Linear(4, 3)

    nan = x.clone()
    nan[0, 0] = float("nan")
    data = dict(
        train_inputs=x, train_labels=y, test_inputs=x, test_labels=y,
        train_attributions=a, test_attributions=a,
    )  # fmt: skip
    for name, bad, error, match in [
        ("test_inputs", nan, ValueError, "test_inputs must be finite"),
        ("train_attributions", nan, ValueError, "train_attributions must be finite"),
        ("test_attributions", a > 0, TypeError, "test_attributions must be real numbers"),
        ("train_labels", y.float(), TypeError, "train_labels must be an integer tensor"),
        ("test_labels", y > 0, TypeError, "test_labels must be an integer tensor"),
    ]:
        with pytest.raises(error, match=match):
            roar_accuracy(**{**data, name: bad}, k=0.5, largest=True, trainer=trainer)


@pytest.mark.parametrize(
    ("scale", "dtype"),
    [
        (1e-35, torch.float32),
        (1e-300, torch.float64),
        (1e300, torch.float64),
        (2.0**14, torch.float16),
        (2.0**-20, torch.float16),
        (2.0**126, torch.bfloat16),
    ],
)
def test_signal_mass_does_not_depend_on_the_attributions_scale(scale, dtype) -> None:
    """A share of |a|: tiny attributions read ~1e-5 of it (a total clamped to 1e-30), and sums
    in float16 overflowed (0)."""
    a = torch.tensor([[1.0, 3.0, 0.0, 0.0], [2.0, 2.0, 2.0, 2.0]], dtype=torch.float64)
    mask = torch.tensor([[True, False, False, False], [True, True, True, False]])
    got = signal_mass((a * scale).to(dtype), mask)
    torch.testing.assert_close(got.double(), torch.tensor([0.25, 0.75], dtype=torch.float64))
