"""``trace_model`` leaves the model as it found it, as ``DependencyGraph`` does."""

import torch
from torch import nn

from neuronkit.pruning import DependencyGraph, trace_model


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Flatten(),
        nn.Linear(64, 3),
    )
    model[3].eval()  # a submodule in its own mode keeps it
    return model


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_trace_model_of_a_training_model_changes_nothing(one_thread) -> None:
    model = _model()  # train mode: BatchNorm would update its statistics, Dropout draw
    x = torch.randn(2, 1, 6, 6)
    before, flags = _state(model), [m.training for m in model.modules()]
    rng = torch.get_rng_state()
    gm = trace_model(model, x)
    assert torch.equal(torch.get_rng_state(), rng), "the global random state advanced"
    after = model.state_dict()
    for k, v in before.items():  # running_mean / running_var / num_batches_tracked too
        assert torch.equal(after[k], v), k
    assert [m.training for m in model.modules()] == flags
    assert flags[0]
    assert not flags[4]
    assert gm.graph.find_nodes(op="call_module", target="1")[0].meta["nk_shape"] == (2, 4, 4, 4)


def test_trace_model_and_dependency_graph_agree_on_state(one_thread) -> None:
    a, b = _model(), _model()
    x = torch.randn(2, 1, 6, 6)
    trace_model(a, x)
    DependencyGraph(b, x)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k


class _CachedIndices(nn.Module):
    """timm's ConViT: a non-persistent buffer that ``forward`` replaces when the input size
    changes (``self.rel_indices = self.get_rel_indices(N)``)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.register_buffer("cache", torch.zeros(1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, N, 4]
        if self.cache.shape[1] != x.shape[1]:
            self.cache = torch.ones(1, x.shape[1])
        return self.fc(x) * self.cache[..., None]


def test_a_buffer_assigned_in_forward_is_put_back(one_thread) -> None:
    """Before 0.5.48 the traced value stayed in the model's buffer, so the model (and every
    pruned copy) failed on its next call ("symbolically traced variables cannot be used as
    inputs to control flow")."""
    model, x = _CachedIndices(), torch.randn(2, 3, 4)
    cache = model.cache
    DependencyGraph(model, x)
    assert model.cache is cache
    assert model(x).shape == (2, 3, 4)
