"""The theory.mpnp reproduction's held-out evaluation follows the BNP/TNP reference code."""

import torch

from neuronkit.theory.data.gp import sample_gp_tasks
from neuronkit.theory.processes import ConditionalNeuralProcess
from neuronkit.theory.reproductions.mpnp import EVAL_BATCH, _evaluate, _test_batches


def test_held_out_tasks_come_in_reference_sized_batches() -> None:
    # the reference evaluates batches of 16 tasks, each with its own context size
    assert EVAL_BATCH == 16
    batches = _test_batches("rbf", 256, seed=5)
    assert len(batches) == 16
    assert all(b.batch_size == 16 for b in batches)
    assert len({b.num_context for b in batches}) > 4


def test_log_likelihood_is_the_mean_of_per_batch_means() -> None:
    # two batches with very different numbers of targets: pooling all points would weight the
    # second batch 10x more; the reference averages the per-batch means
    batches = [
        sample_gp_tasks(4, num_context=5, num_target=2, seed=0),
        sample_gp_tasks(4, num_context=3, num_target=20, seed=1),
    ]
    model = ConditionalNeuralProcess(hidden=8, seed=0)
    res = _evaluate({"CNP": model}, batches, 1, seed=0)
    with torch.no_grad():
        per_batch = [model(b.xc, b.yc, b.x).log_likelihood(b.y) for b in batches]
    tar = [float(ll[:, b.num_context :].mean()) for ll, b in zip(per_batch, batches, strict=True)]
    ctx = [float(ll[:, : b.num_context].mean()) for ll, b in zip(per_batch, batches, strict=True)]
    assert abs(tar[0] - tar[1]) > 1e-3  # the weighting matters for this pair
    assert abs(res["CNP"]["target_ll"] - (tar[0] + tar[1]) / 2) < 1e-5
    assert abs(res["CNP"]["context_ll"] - (ctx[0] + ctx[1]) / 2) < 1e-5
