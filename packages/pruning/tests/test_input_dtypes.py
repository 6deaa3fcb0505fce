"""Data of another dtype than the model's, and class labels of any integer dtype.

A float32 model given float64 data (``torch.from_numpy`` of a numpy array), integer images
(``uint8``) or a float64 model given float32 data failed deep inside torch ("mat1 and mat2
must have the same dtype", "Input type (double) and bias type (float) should be the same")
in every function that runs a model on the caller's data; each now raises a ``TypeError``
naming the argument. Class labels of any integer dtype are read as int64 everywhere (int32
labels were refused by the lottery, federated, FTWT and NAS-search loops but taken by
``evaluate_architectures`` and ``DynamicCNN.evaluate``, and failed in Taylor / SNIP).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neuronkit.pruning import (
    DependencyGraph,
    SNIPImportance,
    TaylorImportance,
    count_macs,
    layer_hessians,
    obspa_prune,
    plan_pruning,
    prune_model,
)
from neuronkit.pruning.dynamic import DynamicCNN, FTWTConfig, estimate_flops, train_ftwt
from neuronkit.pruning.federated import LocalConfig, run_fedavg
from neuronkit.pruning.lottery import (
    TrainConfig,
    accuracy,
    clone_state,
    iterative_magnitude_pruning,
    linear_mode_connectivity,
    train,
)
from neuronkit.pruning.nas import (
    CellSpace,
    SearchConfig,
    WeightSharingSupernet,
    evaluate_architectures,
    random_architectures,
    random_search,
)

MISMATCH = r"must have the model's parameter dtype torch\.float32, got dtype torch\.float64"


def _mlp(dtype: torch.dtype = torch.float32) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)).to(dtype)


def _data(n: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(n, 8, generator=gen), torch.randint(0, 3, (n,), generator=gen)


def _cnn() -> DynamicCNN:
    torch.manual_seed(0)
    features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))
    return DynamicCNN.from_sequential(features, head)


def test_graph_and_macs_name_example_inputs_of_another_dtype() -> None:
    x, _ = _data(2)
    with pytest.raises(TypeError, match="example_inputs " + MISMATCH):
        DependencyGraph(_mlp(), x.double())
    with pytest.raises(TypeError, match="example_inputs " + MISMATCH):
        prune_model(_mlp(), x.double(), 0.5)
    with pytest.raises(TypeError, match=r"example_inputs must .*float64, got dtype torch\.float32"):
        DependencyGraph(_mlp(torch.float64), x)
    with pytest.raises(TypeError, match="example_inputs " + MISMATCH):
        count_macs(_mlp(), x.double())
    with pytest.raises(TypeError, match=r"example_inputs\['input'\] " + MISMATCH):
        count_macs(_mlp(), {"input": x.double()})
    images = torch.randint(0, 256, (1, 3, 8, 8), dtype=torch.uint8)
    with pytest.raises(TypeError, match=r"example_inputs must .*, got dtype torch\.uint8"):
        count_macs(nn.Conv2d(3, 4, 3), images)


def test_models_that_take_the_dtype_still_run() -> None:
    """Nothing is cast or refused beforehand: integer token ids, or a model casting its input."""

    class Casting(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x.float())

    x, _ = _data(2)
    assert count_macs(Casting(), x.double()) == count_macs(Casting(), x) == 2 * 8 * 3
    ids = torch.randint(0, 10, (2, 5), dtype=torch.int32)
    assert count_macs(nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 2)), ids) == 2 * 5 * 4 * 2


@pytest.mark.parametrize("importance", [TaylorImportance, SNIPImportance])
def test_gradient_importances(importance: type) -> None:
    x, y = _data()
    graph = DependencyGraph(_mlp(), x[:2])
    with pytest.raises(TypeError, match="inputs " + MISMATCH):
        plan_pruning(graph, importance(x.double(), y), 0.5)
    reference = plan_pruning(graph, importance(x, y), 0.5).removed
    for dtype in (torch.int32, torch.uint8):  # int32 failed in the cross-entropy
        got = plan_pruning(graph, importance(x, y.to(dtype)), 0.5).removed
        assert all(torch.equal(got[g], reference[g]) for g in reference)


def test_obs_calibration_inputs() -> None:
    x, _ = _data()
    graph = DependencyGraph(_mlp(), x[:2])
    with pytest.raises(TypeError, match="inputs " + MISMATCH):
        layer_hessians(graph, inputs=x.double())
    with pytest.raises(TypeError, match="inputs " + MISMATCH):
        obspa_prune(graph, 0.5, inputs=x.double())


def test_lottery_loops() -> None:
    x, y = _data()
    config = TrainConfig(iterations=4, batch_size=8)
    with pytest.raises(TypeError, match="^x " + MISMATCH):
        train(_mlp(), x.double(), y, config)
    with pytest.raises(TypeError, match="^x " + MISMATCH):
        accuracy(_mlp(), x.double(), y)
    with pytest.raises(TypeError, match="^x " + MISMATCH):
        iterative_magnitude_pruning(_mlp(), x.double(), y, config, rounds=1)
    with pytest.raises(TypeError, match="^x_eval " + MISMATCH):
        iterative_magnitude_pruning(_mlp(), x, y, config, rounds=1, x_eval=x.double(), y_eval=y)
    model = _mlp()
    with pytest.raises(TypeError, match="^x_eval " + MISMATCH):
        linear_mode_connectivity(model, clone_state(model), x, y, x.double(), y, config, points=2)
    with pytest.raises(TypeError, match=r"^x must .*, got dtype torch\.uint8"):
        accuracy(_mlp(), (x * 10).abs().to(torch.uint8), y)
    # int32 labels (refused before) train and score as int64 ones; floats stay refused
    a, b = _mlp(), _mlp()
    train(a, x, y, config)
    train(b, x, y.int(), config)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert accuracy(a, x, y.to(torch.int16)) == accuracy(a, x, y)
    with pytest.raises(TypeError, match="y must be integer class labels"):
        accuracy(a, x, y.float())


def test_federated_names_the_test_set_and_takes_int32_labels() -> None:
    x, y = _data()
    local = LocalConfig(epochs=1, batch_size=8)
    with pytest.raises(TypeError, match="^x_test " + MISMATCH):
        run_fedavg(_mlp(), [(x, y)], x.double(), y, rounds=1, local=local)
    ref = run_fedavg(_mlp(), [(x, y)], x, y, rounds=1, local=local).accuracy
    assert run_fedavg(_mlp(), [(x, y.int())], x, y.int(), rounds=1, local=local).accuracy == ref


def test_ftwt() -> None:
    gen = torch.Generator().manual_seed(2)
    x, y = torch.randn(6, 3, 8, 8, generator=gen), torch.randint(0, 3, (6,), generator=gen)
    net = _cnn()
    with pytest.raises(TypeError, match="^x " + MISMATCH):
        estimate_flops(net, x.double(), 0.5)
    with pytest.raises(TypeError, match="^x " + MISMATCH):
        net.evaluate(x.double(), y)
    with pytest.raises(TypeError, match="^x " + MISMATCH):
        train_ftwt(net, x.double(), y, FTWTConfig(epochs=1))
    a, b = _cnn(), _cnn()
    config = FTWTConfig(epochs=1)
    assert train_ftwt(a, x, y, config) == train_ftwt(b, x, y.int(), config)


def test_nas() -> None:
    x, y = _data()
    space = CellSpace(num_nodes=3)
    supernet = WeightSharingSupernet(space, 8, num_classes=3)
    archs = random_architectures(space, 2, seed=0)
    with pytest.raises(TypeError, match="^x " + MISMATCH):
        evaluate_architectures(supernet, archs, x.double(), y)
    config = SearchConfig(
        epochs=1,
        shared_steps=2,
        batch_size=8,
        hidden=4,
        controller_hidden=4,
        controller_steps=1,
        controller_batch=2,
        reward_batch=8,
        num_candidates=2,
    )
    ref = random_search(space, x, y, x, y, config, seed=0)
    got = random_search(space, x, y.int(), x, y.int(), config, seed=0)
    assert got.best == ref.best
    assert torch.equal(got.scores, ref.scores)
