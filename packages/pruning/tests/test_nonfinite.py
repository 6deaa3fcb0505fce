"""NaN / inf weights or calibration data raise instead of silently giving a wrong plan."""

import pytest
import torch
from torch import nn

from neuronkit.pruning import (
    DependencyGraph,
    GroupImportance,
    MagnitudeImportance,
    OBSImportance,
    SNIPImportance,
    TaylorImportance,
    layer_hessians,
    obspa_prune,
    plan_pruning,
)
from neuronkit.pruning.federated import synflow_prune, synflow_scores

X = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
Y = torch.arange(16) % 2


def _model(bad: tuple[int, tuple[int, int]] | None = None, value: float = float("nan")):
    """Channels 0 and 1 of layer 0 dominate; ``bad = (layer, index)`` gets ``value``."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).eval()
    with torch.no_grad():
        m[0].weight.mul_(0.01)
        m[0].weight[0:2] = 5.0
        m[2].weight[:, 0:2] = 5.0
        if bad is not None:
            m[bad[0]].weight[bad[1]] = value
    return m


IMPORTANCES = {
    "l1": lambda: "l1",
    "l2": lambda: "l2",
    "synflow": lambda: "synflow",
    "taylor": lambda: TaylorImportance(X, Y),
    "snip": lambda: SNIPImportance(X, Y),
    "obs": lambda: OBSImportance(),
}


@pytest.mark.parametrize("scope", ["local", "global"])
@pytest.mark.parametrize("name", list(IMPORTANCES))
def test_plan_pruning_rejects_nan_weight(name: str, scope: str) -> None:
    graph = DependencyGraph(_model((0, (5, 0))), X[:2])
    with pytest.raises(ValueError, match=r"importance scores of group '0' must be finite"):
        plan_pruning(graph, IMPORTANCES[name](), 0.5, scope=scope)


@pytest.mark.parametrize("value", [float("inf"), float("-inf")])
def test_plan_pruning_rejects_inf_weight(value: float) -> None:
    graph = DependencyGraph(_model((0, (5, 0)), value), X[:2])
    with pytest.raises(ValueError, match=r"group '0'.*NaN or inf in its layers' weights"):
        plan_pruning(graph, "l2", 0.5)


def test_plan_pruning_rejects_nan_calibration_inputs() -> None:
    graph = DependencyGraph(_model(), X[:2])
    x = X.clone()
    x[3, 1] = float("nan")
    with pytest.raises(ValueError, match=r"group '0'.*calibration data"):
        plan_pruning(graph, TaylorImportance(x, Y), 0.5)


def test_plan_pruning_rejects_nan_scores_of_a_user_importance() -> None:
    class Broken(GroupImportance):
        def __call__(self, graph: DependencyGraph) -> dict[int, torch.Tensor]:
            return {g.index: torch.full((g.size,), float("nan")) for g in graph.groups}

    with pytest.raises(ValueError, match="group '0' must be finite"):
        plan_pruning(DependencyGraph(_model(), X[:2]), Broken(), 0.5, scope="global")


def test_finite_scores_from_an_inf_weight_are_ranked_as_before() -> None:
    """An inf weight that no score reads (a consumer, scored by producer rows only) is fine."""
    imp = MagnitudeImportance(roles=("out",))
    clean = plan_pruning(DependencyGraph(_model(), X[:2]), imp, 0.5).removed
    inf = plan_pruning(DependencyGraph(_model((2, (1, 5)), float("inf")), X[:2]), imp, 0.5)
    assert clean.keys() == inf.removed.keys() == {0}
    assert torch.equal(clean[0], inf.removed[0])
    assert not {0, 1} & set(clean[0].tolist())  # the dominant channels are kept


def test_obspa_rejects_nan_calibration_inputs() -> None:
    graph = DependencyGraph(_model(), X[:2])
    x = X.clone()
    x[3, 1] = float("nan")
    with pytest.raises(ValueError, match="inputs must be finite"):
        layer_hessians(graph, inputs=x)
    with pytest.raises(ValueError, match="inputs must be finite"):
        obspa_prune(graph, 0.5, inputs=x)
    with pytest.raises(ValueError, match="inputs must be finite"):
        obspa_prune(graph, 0.5, inputs={"input": x})


@pytest.mark.parametrize("bad", [(2, (1, 5)), (0, (5, 0))])  # consumer, producer weight
def test_obspa_rejects_nan_saliencies(bad: tuple[int, tuple[int, int]]) -> None:
    graph = DependencyGraph(_model(bad), X[:2])
    with pytest.raises(ValueError, match=r"OBS saliencies of group '0' \(layers \['2'\]\)"):
        obspa_prune(graph, 0.5, inputs=X if bad[0] == 2 else None)


def test_obspa_rejects_nan_scores_without_obs_consumers() -> None:
    graph = DependencyGraph(_model((0, (5, 0))), X[:2])
    with pytest.raises(ValueError, match="importance scores of group '0' must be finite"):
        obspa_prune(graph, 0.5, hessians={})  # magnitude order for every group


@pytest.mark.parametrize("damp", [-1.0, -0.5, float("nan"), float("inf")])
def test_obs_damp_must_be_finite_and_nonnegative(damp: float) -> None:
    with pytest.raises(ValueError, match="damp"):
        OBSImportance(damp=damp)
    with pytest.raises(ValueError, match="damp"):
        obspa_prune(DependencyGraph(_model(), X[:2]), 0.5, damp=damp)


def test_obs_importance_accepts_zero_damp() -> None:
    torch.manual_seed(0)
    graph = DependencyGraph(nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2)), X[:2])
    scores = OBSImportance(layer_hessians(graph, inputs=X), damp=0.0)(graph)[0]
    assert bool(scores.isfinite().all())


def test_synflow_rejects_nan_weight() -> None:
    model = _model((2, (1, 2)))
    with pytest.raises(ValueError, match=r"synflow scores of \[.*'2\.weight'.*\] must be finite"):
        synflow_scores(model, (4,))
    with pytest.raises(ValueError, match=r"'2\.weight'.*NaN or inf in the model's parameters"):
        synflow_prune(model, 0.5, (4,), iterations=3)


def test_a_masked_nan_weight_counts_as_zero_in_synflow() -> None:
    model = _model((2, (1, 2)))
    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in model.named_parameters()}
    masks["2.weight"][1, 2] = False
    scores = synflow_scores(model, (4,), masks=masks)
    assert all(bool(s.isfinite().all()) for s in scores.values())
    assert float(scores["2.weight"][1, 2]) == 0.0
