"""Quadratic MLP, neuron IPR, pruning and training on corrupted modular arithmetic."""

import math

import pytest
import torch

from neuronkit.theory import (
    QuadraticMLP,
    corrupted_accuracies,
    lowest_ipr_neurons,
    modular_arithmetic,
    neuron_ipr,
    prune_neurons,
    train_modular,
)


def test_model_shapes_init_and_seed() -> None:
    m = QuadraticMLP(11, 64, seed=0)
    assert m.fc1.weight.shape == (64, 22)
    assert m.fc2.weight.shape == (11, 64)
    assert m.fc1.bias is None
    assert m.fc2.bias is None
    assert float(m.fc1.weight.detach().std()) == pytest.approx(0.5 / 128 ** (1 / 3), rel=0.1)
    assert torch.equal(QuadraticMLP(11, 64, seed=0).fc1.weight, m.fc1.weight)
    x = modular_arithmetic(11, seed=0).x_train
    assert m(x).shape == (x.shape[0], 11)
    with pytest.raises(ValueError, match=r"^x "):
        m(torch.zeros(3, 11))


def test_neuron_ipr_is_one_for_fourier_neurons() -> None:
    p, width = 13, 6
    m = QuadraticMLP(p, width, seed=0)
    n = torch.arange(p, dtype=torch.float32)
    with torch.no_grad():
        for k in range(3):  # pure frequencies in U, V and W
            freq = k + 1
            m.fc1.weight[k, :p] = torch.cos(2 * math.pi * freq * n / p)
            m.fc1.weight[k, p:] = torch.cos(2 * math.pi * freq * n / p + 1.0)
            m.fc2.weight[:, k] = torch.sin(2 * math.pi * freq * n / p)
    ipr = neuron_ipr(m)
    assert ipr.shape == (width,)
    assert torch.allclose(ipr[:3], torch.ones(3, dtype=torch.float64), atol=1e-5)
    assert float(ipr[3:].max()) < 0.6


def test_pruning_removes_exactly_the_chosen_neurons() -> None:
    p, width = 7, 10
    m = QuadraticMLP(p, width, seed=1)
    keep = torch.tensor([0, 2, 3, 5, 6, 8, 9])
    drop = torch.tensor([1, 4, 7])
    pruned = prune_neurons(m, drop)
    x = modular_arithmetic(p, seed=0).x_test
    manual = ((x @ m.fc1.weight[keep].T) ** 2) @ m.fc2.weight[:, keep].T
    assert torch.allclose(pruned(x), manual, atol=1e-6)
    assert float(m.fc1.weight[1].detach().abs().sum()) > 0  # the original is untouched
    with pytest.raises(ValueError, match=r"^neurons "):
        prune_neurons(m, torch.tensor([10]))


def test_pruning_takes_a_boolean_mask_and_rejects_fractional_indices() -> None:
    m = QuadraticMLP(7, 10, seed=1)
    mask = torch.zeros(10, dtype=torch.bool)
    mask[[1, 4, 7]] = True
    by_mask = prune_neurons(m, mask)  # was read as indices 0 and 1
    by_index = prune_neurons(m, torch.tensor([1, 4, 7]))
    assert torch.equal(by_mask.fc1.weight, by_index.fc1.weight)
    assert torch.equal(prune_neurons(m, mask.numpy()).fc2.weight, by_index.fc2.weight)
    assert torch.equal(prune_neurons(m, []).fc1.weight, m.fc1.weight)
    with pytest.raises(TypeError, match=r"^neurons "):
        prune_neurons(m, torch.tensor([2.7]))  # was truncated to neuron 2
    with pytest.raises(TypeError, match=r"^neurons "):
        prune_neurons(m, [1.0, 2.0])
    with pytest.raises(ValueError, match=r"^neurons "):
        prune_neurons(m, torch.ones(9, dtype=torch.bool))


def test_lowest_ipr_selection() -> None:
    ipr = torch.tensor([0.9, 0.1, 0.5, 0.05, 0.7])
    assert lowest_ipr_neurons(ipr, fraction=0.4).tolist() == [3, 1]
    assert lowest_ipr_neurons(ipr, threshold=0.6).tolist() == [3, 1, 2]
    assert lowest_ipr_neurons(ipr, fraction=0.0).numel() == 0
    with pytest.raises(ValueError, match=r"exactly one"):
        lowest_ipr_neurons(ipr)
    with pytest.raises(ValueError, match=r"exactly one"):
        lowest_ipr_neurons(ipr, fraction=0.1, threshold=0.2)
    with pytest.raises(ValueError, match=r"^fraction "):
        lowest_ipr_neurons(ipr, fraction=1.5)
    with pytest.raises(TypeError, match=r"^ipr "):
        lowest_ipr_neurons([0.1, 0.2], fraction=0.5)


def test_training_fits_and_records_history() -> None:
    data = modular_arithmetic(11, train_fraction=0.7, corruption=0.1, seed=0)
    model = QuadraticMLP(11, 48, seed=0)
    before = corrupted_accuracies(model, data)
    hist = train_modular(model, data, steps=120, weight_decay=0.5, eval_every=40)
    assert hist.steps == [1, 40, 80, 120]
    assert len(hist.loss) == len(hist.accuracies) == len(hist.mean_ipr) == 4
    assert hist.loss[-1] < hist.loss[0]
    after = hist.accuracies[-1]
    assert set(after) == {"train", "corrupted", "clean", "corrupted_true", "test"}
    assert after["clean"] > before["clean"]
    assert after["clean"] > 0.9
    assert hist.series("test") == [a["test"] for a in hist.accuracies]


def test_cross_entropy_option_and_callback() -> None:
    data = modular_arithmetic(7, seed=0)
    seen = []
    train_modular(
        QuadraticMLP(7, 16, seed=0),
        data,
        steps=4,
        loss="ce",
        eval_every=2,
        callback=lambda s, h: seen.append(s),
    )
    assert seen == [1, 2, 4]


@pytest.mark.parametrize(
    ("call", "exc", "name"),
    [
        (lambda m, d: QuadraticMLP(1, 8), ValueError, "p"),
        (lambda m, d: QuadraticMLP(7, 0), ValueError, "width"),
        (
            lambda m, d: train_modular(m, modular_arithmetic(5, seed=0), steps=1),
            ValueError,
            "data.p",
        ),
        (lambda m, d: train_modular(m, d, steps=0), ValueError, "steps"),
        (lambda m, d: train_modular(m, d, steps=1, lr=0.0), ValueError, "lr"),
        (lambda m, d: train_modular(m, d, steps=1, weight_decay=-1.0), ValueError, "weight_decay"),
        (lambda m, d: train_modular(m, d, steps=1, loss="l1"), ValueError, "loss"),
        # bad betas failed inside AdamW (IndexError, or a message naming no argument)
        (lambda m, d: train_modular(m, d, steps=1, betas=(0.9,)), TypeError, "betas"),
        (lambda m, d: train_modular(m, d, steps=1, betas=(1.0, 0.98)), ValueError, r"betas\[0\]"),
        # NaN IPRs were sorted last and silently kept
        (
            lambda m, d: lowest_ipr_neurons(torch.tensor([math.nan, 1.0]), fraction=0.5),
            ValueError,
            "ipr",
        ),
        (lambda m, d: train_modular(torch.nn.Linear(2, 2), d, steps=1), TypeError, "model"),
        (lambda m, d: train_modular(m, "data", steps=1), TypeError, "data"),
        (lambda m, d: neuron_ipr(torch.nn.Linear(2, 2)), TypeError, "model"),
        (lambda m, d: corrupted_accuracies(m, None), TypeError, "data"),
    ],
)
def test_bad_inputs_name_the_argument(call, exc: type, name: str) -> None:
    model, data = QuadraticMLP(7, 8, seed=0), modular_arithmetic(7, seed=0)
    with pytest.raises(exc, match=rf"^{name} "):
        call(model, data)


def test_recorded_loss_is_that_of_the_model_the_accuracies_measure() -> None:
    data = modular_arithmetic(13, seed=0)
    model = QuadraticMLP(13, 64, seed=0)
    hist = train_modular(model, data, steps=5, lr=5e-2, eval_every=5)
    with torch.no_grad():
        out = model(data.x_train)
        target = torch.nn.functional.one_hot(data.train_labels, 13).float()
        assert hist.loss[-1] == pytest.approx(float(torch.nn.functional.mse_loss(out, target)))


def test_corrupted_accuracies_needs_one_logit_per_residue() -> None:
    """A model with fewer outputs than p could never predict the top residues, and still got
    accuracies (0.21 on train) without an error."""
    data = modular_arithmetic(7, seed=0)
    for model in (torch.nn.Linear(14, 5), torch.nn.Sequential(torch.nn.Linear(14, 1))):
        with pytest.raises(ValueError, match=r"^model must return logits \[n, p\] = \[\d+, 7\]"):
            corrupted_accuracies(model, data)
    acc = corrupted_accuracies(torch.nn.Linear(14, 7), data)
    assert 0.0 <= acc["train"] <= 1.0
