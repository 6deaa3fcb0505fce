"""Most Discriminative Stimuli clustering (Burg et al., ICLR 2024)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from neuronkit.interpretability.data.cell_types import on_off_population
from neuronkit.interpretability.stimuli import (
    MDSClustering,
    assign_to_stimuli,
    cluster_mean_responses,
    contrastive_objective,
    laplace_penalty,
    mds_clustering,
    optimize_stimuli,
    project_to_norm,
    response_statistics,
)


def test_contrastive_objective_is_shifted_log_softmax() -> None:
    m = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    on = torch.tensor([0, 1, 2, 3, 1])
    for t in (0.5, 1.0, 3.0):
        ref = torch.log_softmax(m / t, dim=1)[torch.arange(5), on] + math.log(4)
        torch.testing.assert_close(contrastive_objective(m, on, t), ref)
    assert (contrastive_objective(m, on) <= math.log(4) + 1e-6).all()
    flat = contrastive_objective(torch.ones(3, 4), torch.tensor([0, 1, 2]))
    torch.testing.assert_close(flat, torch.zeros(3))


def test_cluster_means_and_projection() -> None:
    r = torch.arange(12.0).reshape(2, 6)
    labels = torch.tensor([0, 1, 0, 2, 1, 2])
    means = cluster_mean_responses(r, labels)
    torch.testing.assert_close(means[0], torch.tensor([1.0, 2.5, 4.0]))
    with pytest.raises(ValueError, match="at least one neuron"):
        cluster_mean_responses(r, torch.tensor([0, 0, 0, 2, 2, 2]))
    x = torch.randn(3, 4, 5)
    frozen = x.clone()
    y = project_to_norm(x, 2.5)
    torch.testing.assert_close(y.flatten(1).norm(dim=1), torch.full((3,), 2.5))
    torch.testing.assert_close(x, frozen)
    for scale in (1e-30, 1e30):  # the norm is taken without under- or overflow
        torch.testing.assert_close(project_to_norm(x * scale, 2.5), y)
    assert torch.equal(project_to_norm(torch.zeros(2, 3), 2.5), torch.zeros(2, 3))


def test_laplace_penalty() -> None:
    ramp = torch.arange(10.0)[None].repeat(2, 1)
    assert float(laplace_penalty(ramp)) == pytest.approx(0.0)
    plane = torch.arange(8.0)[:, None] + 2 * torch.arange(8.0)[None, :]
    assert float(laplace_penalty(plane[None])) == pytest.approx(0.0)
    assert float(laplace_penalty(torch.randn(2, 8, 8))) > 0.1


def _linear_model(filters: torch.Tensor):
    return lambda x: x.flatten(1) @ filters.T


def test_optimize_stimuli_finds_the_discriminative_direction() -> None:
    # two clusters with filters e0 and e1: the MDS of cluster 0 is e0 - e1 (normalized)
    d = 6
    filters = torch.zeros(4, d)
    filters[:2, 0] = 1.0
    filters[2:, 1] = 1.0
    labels = torch.tensor([0, 0, 1, 1])
    frozen = labels.clone()
    stim, obj = optimize_stimuli(
        _linear_model(filters), labels, (d,), norm=1.0, n_steps=120, lr=0.1, seed=1
    )
    target = torch.tensor([1.0, -1.0, 0, 0, 0, 0]) / math.sqrt(2)
    assert torch.dot(stim[0], target) > 0.99
    assert torch.dot(stim[1], -target) > 0.99
    assert stim.norm(dim=1).sub(1).abs().max() < 1e-5
    _, obj0 = optimize_stimuli(_linear_model(filters), labels, (d,), n_steps=0, seed=1)
    assert (obj > obj0).all()
    assert torch.equal(labels, frozen)
    assert torch.equal(assign_to_stimuli(_linear_model(filters), stim), labels)
    model = torch.nn.Linear(d, 4)
    optimize_stimuli(model, labels, (d,), n_steps=2, seed=1)
    mds_clustering(model, (d,), 2, n_steps=2, max_iter=1, n_norm_samples=8)
    assert model.weight.grad is None  # only the stimuli's gradient: the model's .grad untouched


def test_optimize_stimuli_reaches_the_norm_constrained_optimum() -> None:
    # an ON and an OFF neuron with the same Gaussian receptive field w: under the norm
    # constraint the MDS of the ON cluster is norm * w / |w| and that of the OFF cluster its
    # negative. Adam steps followed by re-projection used to drift to norm * sign(w) / sqrt(d)
    # (a flat stimulus here, cosine 0.73 with w) because Adam rescales the radial gradient
    # per coordinate; the reference (SGD + norm re-projection) converges to w.
    d = 20
    pos = torch.arange(d, dtype=torch.float32)
    w = torch.exp(-0.5 * ((pos - 9.5) / 3.0) ** 2)
    w = w / w.norm()
    flat_cos = float(torch.ones(d) @ w / math.sqrt(d))
    assert flat_cos < 0.75
    stim, obj = optimize_stimuli(
        _linear_model(torch.stack([w, -w])), torch.tensor([0, 1]), (d,), norm=3.0,
        n_steps=300, lr=0.1, seed=0,
    )  # fmt: skip
    assert float(stim[0] @ w) / 3.0 > 0.99
    assert float(-stim[1] @ w) / 3.0 > 0.99
    _, best = optimize_stimuli(
        _linear_model(torch.stack([w, -w])), torch.tensor([0, 1]), (d,), norm=3.0, n_steps=0,
        init=torch.stack([w, -w]),
    )  # fmt: skip
    assert (obj > best - 1e-3).all()


def test_response_statistics() -> None:
    filters = torch.eye(3)
    mean, std = response_statistics(_linear_model(filters), (3,), norm=1.0, n_samples=4000)
    assert mean.abs().max() < 0.05
    torch.testing.assert_close(std, torch.full((3,), 1 / math.sqrt(3)), atol=0.03, rtol=0)


def test_mds_clustering_on_off_removes_empty_clusters() -> None:
    pop = on_off_population(12, 10, seed=3)
    res = mds_clustering(pop, pop.stimulus_shape, 4, n_steps=30, norm=2.0, seed=0)
    assert res.n_clusters == 2
    assert res.converged
    assert adjusted_rand_score(pop.labels, res.labels) == pytest.approx(1.0)
    assert sorted(res.labels.unique().tolist()) == [0, 1]
    assert sum(h["n_removed"] for h in res.history) == 2
    assert res.stimuli.shape == (2, 10)
    again = mds_clustering(pop, pop.stimulus_shape, 4, n_steps=30, norm=2.0, seed=0)
    assert torch.equal(again.labels, res.labels)
    torch.testing.assert_close(again.stimuli, res.stimuli)
    # the estimator wraps the function and types new neurons on the fly
    est = MDSClustering(4, n_steps=30, norm=2.0, seed=0).fit(pop, pop.stimulus_shape)
    assert torch.equal(est.labels_, res.labels)
    other = on_off_population(12, 10, seed=4)
    pred = est.predict(other)
    assert adjusted_rand_score(other.labels, pred) == pytest.approx(1.0)


def test_split_recovers_two_types_from_one_cluster() -> None:
    pop = on_off_population(8, 10, seed=0)
    res = mds_clustering(
        pop, pop.stimulus_shape, 1, n_steps=20, norm=2.0, split=True, max_split_rounds=1,
        split_max_iter=3, seed=0,
    )  # fmt: skip
    assert res.n_clusters >= 2
    assert any(h["phase"] == "split" for h in res.history)
    # every cluster is pure: a split never mixes ON and OFF cells
    for c in range(res.n_clusters):
        assert pop.labels[res.labels == c].unique().numel() == 1


def test_init_labels_and_params() -> None:
    pop = on_off_population(6, 8, seed=1)
    init = pop.labels.clone()
    res = mds_clustering(pop, (8,), 2, init_labels=init, n_steps=20, seed=0)
    assert torch.equal(res.labels, pop.labels)
    assert torch.equal(init, pop.labels)
    est = MDSClustering(3)
    assert est.set_params(temperature=2.0).get_params()["temperature"] == 2.0
    with pytest.raises(ValueError, match="params"):
        est.set_params(bogus=1)
    with pytest.raises(ValueError, match="fitted"):
        est.predict(pop)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (
            lambda: contrastive_objective(torch.zeros(3), torch.zeros(3, dtype=torch.long)),
            ValueError,
        ),
        (lambda: contrastive_objective(torch.zeros(2, 3), torch.tensor([0, 3])), ValueError),
        (lambda: contrastive_objective(torch.zeros(2, 3), torch.tensor([0.0, 1.0])), ValueError),
        (lambda: contrastive_objective(torch.zeros(2, 3), torch.tensor([0, 1]), 0.0), ValueError),
        (lambda: cluster_mean_responses(torch.zeros(2, 3), torch.tensor([0, 1])), ValueError),
        (lambda: project_to_norm(torch.zeros(3), 1.0), ValueError),
        (lambda: project_to_norm(torch.zeros(2, 3), -1.0), ValueError),
        (lambda: mds_clustering("model", (3,), 2), TypeError),
        (lambda: mds_clustering(lambda x: x, (3,), 0), ValueError),
        (lambda: mds_clustering(lambda x: x, 3, 2), TypeError),
        (lambda: mds_clustering(lambda x: x, (3,), 2, split=1), TypeError),
        (lambda: mds_clustering(lambda x: x, (3,), 2, init_labels=torch.zeros(2)), ValueError),
        (
            lambda: mds_clustering(lambda x: x, (3,), 2, init_labels=torch.tensor([0, 1, 5])),
            ValueError,
        ),
        (lambda: mds_clustering(lambda x: x[:, 0], (3,), 2), ValueError),
        (
            lambda: optimize_stimuli(
                lambda x: x, torch.tensor([0, 1, 1]), (3,), init=torch.zeros(3, 3)
            ),
            ValueError,
        ),
        (
            lambda: optimize_stimuli(lambda x: x, torch.tensor([0, 1, 1]), (3,), n_steps=-1),
            ValueError,
        ),
        (lambda: assign_to_stimuli(lambda x: x, torch.zeros(3)), ValueError),
    ],
)
def test_bad_inputs(call, error) -> None:
    with pytest.raises(error):
        call()


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_mds_clustering_of_a_double_or_half_precision_model(dtype: torch.dtype) -> None:
    # stimuli in the model's dtype (half precision: optimized in float32); seeded draws are
    # the float32 ones, so the clustering is that of the float32 model
    pop = on_off_population(12, 10, seed=3)
    ref = mds_clustering(pop, pop.stimulus_shape, 4, n_steps=30, norm=2.0, seed=0)
    model = on_off_population(12, 10, seed=3).to(dtype)
    res = mds_clustering(model, pop.stimulus_shape, 4, n_steps=30, norm=2.0, seed=0)
    stim_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    assert res.stimuli.dtype == res.objectives.dtype == stim_dtype
    assert torch.equal(res.labels, ref.labels)
    if dtype == torch.float64:
        torch.testing.assert_close(res.stimuli.float(), ref.stimuli, atol=1e-4, rtol=0)
    est = MDSClustering(4, n_steps=30, norm=2.0, seed=0).fit(model, pop.stimulus_shape)
    assert torch.equal(est.predict(model), ref.labels)
    mean, _ = response_statistics(model, pop.stimulus_shape, norm=1.0)
    assert mean.dtype == stim_dtype
    init = torch.randn(2, 10, dtype=torch.float64)
    stim, _ = optimize_stimuli(model, ref.labels, pop.stimulus_shape, init=init, n_steps=2)
    assert stim.dtype == stim_dtype


def test_optimize_stimuli_leaves_no_tensor_behind() -> None:
    import gc

    # the stimuli's .grad used to carry a graph back to the stimuli: a cycle through autograd
    # that the collector cannot free, one per call (per EM iteration of mds_clustering)
    model = torch.nn.Linear(6, 4)
    labels = torch.tensor([0, 0, 1, 1])

    def live_tensors() -> list[torch.Tensor]:
        gc.collect()
        with warnings.catch_warnings():  # isinstance() touches deprecated torch.distributed objects
            warnings.simplefilter("ignore", FutureWarning)
            return [o for o in gc.get_objects() if isinstance(o, torch.Tensor)]

    optimize_stimuli(model, labels, (6,), n_steps=3, seed=1)  # warm-up
    # held, so no new tensor reuses an old id; tensors of earlier tests (dynamo caches) may be
    # freed meanwhile, which a count would mistake for a change
    before = live_tensors()
    known = {id(t) for t in before}
    for _ in range(5):
        optimize_stimuli(model, labels, (6,), n_steps=3, seed=1)
    assert [tuple(t.shape) for t in live_tensors() if id(t) not in known] == []


def test_stimuli_are_optimized_under_no_grad_and_inference_mode_is_named() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    labels = torch.tensor([0, 1, 0])
    stim, obj = optimize_stimuli(model, labels, (4,), n_steps=3, seed=0)
    res = mds_clustering(model, (4,), 2, n_steps=3, max_iter=2, n_norm_samples=8)
    with torch.no_grad():
        stim_ng, obj_ng = optimize_stimuli(model, labels, (4,), n_steps=3, seed=0)
        res_ng = mds_clustering(model, (4,), 2, n_steps=3, max_iter=2, n_norm_samples=8)
    torch.testing.assert_close(stim_ng, stim)
    torch.testing.assert_close(obj_ng, obj)
    assert torch.equal(res_ng.labels, res.labels)
    torch.testing.assert_close(res_ng.stimuli, res.stimuli)
    with torch.inference_mode():
        with pytest.raises(RuntimeError, match="optimize_stimuli needs autograd"):
            optimize_stimuli(model, labels, (4,), n_steps=1)
        with pytest.raises(RuntimeError, match="mds_clustering needs autograd"):
            mds_clustering(model, (4,), 2, n_steps=1, max_iter=1, n_norm_samples=8)


def test_helpers_reject_bad_dtypes_and_out_of_range_labels() -> None:
    responses = torch.rand(10, 5)
    labels = torch.tensor([0, 1, 2, 0, 1])
    with pytest.raises(ValueError, match=r"labels must be < n_clusters \(2\), got max 2"):
        cluster_mean_responses(responses, labels, n_clusters=2)
    with pytest.raises(TypeError, match="responses must be a floating-point tensor"):
        cluster_mean_responses(responses.long(), labels)
    with pytest.raises(TypeError, match="x must be a real-valued tensor"):
        project_to_norm(torch.ones(2, 3, dtype=torch.bool), 1.0)
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        laplace_penalty(torch.ones(2, 4, 4, dtype=torch.int64))


def test_bool_labels_bad_statistics_and_too_many_clusters_are_refused_by_name() -> None:
    filters = torch.eye(6, 4)
    model = _linear_model(filters)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    for bad in (labels.bool(), labels.to(torch.complex64)):
        with pytest.raises(ValueError, match="labels must be a non-empty 1D integer tensor"):
            optimize_stimuli(model, bad, (4,), n_steps=1)
        with pytest.raises(ValueError, match="labels must be a non-empty 1D integer tensor"):
            cluster_mean_responses(torch.rand(2, 6), bad)
    with pytest.raises(ValueError, match="init_labels must be a non-empty 1D integer tensor"):
        mds_clustering(model, (4,), 3, init_labels=labels.bool(), n_steps=1, max_iter=1)
    means = torch.rand(3, 3)
    for on in (torch.tensor([True, False, True]), torch.tensor([0, 1, 2], dtype=torch.complex64)):
        with pytest.raises(ValueError, match="on_cluster must be an integer tensor"):
            contrastive_objective(means, on)
    for dtype in (torch.bool, torch.complex64):
        with pytest.raises(TypeError, match="cluster_means must be a real-valued tensor"):
            contrastive_objective(means.to(dtype), torch.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match="init must be a real-valued tensor"):
        optimize_stimuli(model, labels, (4,), init=torch.ones(3, 4, dtype=torch.complex64))
    for kw, err, match in (
        (
            dict(mean=torch.zeros(5)),
            ValueError,
            r"mean must have one entry per neuron, shape \(6,\)",
        ),
        (dict(mean=[0.0] * 6), TypeError, "mean must be Tensor"),
        (dict(mean=torch.full((6,), float("nan"))), ValueError, "mean must be finite"),
        (dict(std=torch.zeros(6)), ValueError, "std must be > 0"),
        (dict(std=-torch.ones(6)), ValueError, "std must be > 0"),
        (dict(std=torch.ones(6, dtype=torch.bool)), TypeError, "std must be a floating-point"),
    ):
        with pytest.raises(err, match=match):
            optimize_stimuli(model, labels, (4,), n_steps=1, **kw)
    with pytest.raises(ValueError, match="n_clusters must be <= the model's 6 neurons"):
        mds_clustering(model, (4,), 7, n_steps=1, max_iter=1, n_norm_samples=4)
    with pytest.raises(TypeError, match="stimuli must be a floating-point tensor"):
        assign_to_stimuli(model, torch.ones(2, 4, dtype=torch.long))
