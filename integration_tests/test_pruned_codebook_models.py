"""A model with neuronkit-interpretability codebooks, trained a step, then pruned by
neuronkit-pruning: the pruned copy owns its codebooks and equals the soft-pruning oracle."""

from __future__ import annotations

import torch
from torch import nn

from neuronkit.interpretability import insert_codebooks
from neuronkit.pruning import DependencyGraph, plan_pruning, prune, soft_prune


def test_a_pruned_codebook_model_owns_its_codebooks() -> None:
    torch.manual_seed(0)
    x = torch.randn(5, 16)
    mlp = nn.Sequential(
        nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 24), nn.ReLU(), nn.Linear(24, 4)
    )
    coded = insert_codebooks(mlp, {"1": 32}, num_codes=64, k=2)
    (coded(x).sum() + coded.codebook_loss()).backward()  # the layer caches this step's graph
    coded.eval()
    graph = DependencyGraph(coded, x)
    plan = plan_pruning(graph, "l2", 0.5)
    small = prune(graph, plan)  # deep-copies the model: 0.5.18 failed here
    with small.record_codes() as mine, coded.record_codes() as original:
        small(x)
    assert (len(mine["1"]), len(original["1"])) == (1, 0)
    with torch.no_grad():
        torch.testing.assert_close(small(x), soft_prune(graph, plan)(x), atol=1e-6, rtol=0)
        before = small(x)
        coded.codebooks["1"].codebook.mul_(-1)  # the original's codebook is not the copy's
        torch.testing.assert_close(small(x), before)
