"""Level Set Traversal and path / triangle-hull confidence (Balasubramanian et al. 2023)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neuronkit.interpretability.geometry.level_sets import (
    LevelSetTraversal,
    barycentric_grid,
    class_confidence,
    level_set_traversal,
    line_confidence,
    orthogonal_component,
    relative_distance,
    triangle_confidence,
)


def _linear(n_classes: int = 2, d: int = 6, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(d, n_classes)).double()
    model.eval()
    return model


def _images(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 2, 3, generator=g, dtype=torch.float64)


def test_orthogonal_component_is_orthogonal_and_complements() -> None:
    g = torch.Generator().manual_seed(1)
    d = torch.randn(5, 2, 3, 4, generator=g)
    grad = torch.randn(5, 2, 3, 4, generator=g)
    grad[2] = 0.0
    perp = orthogonal_component(d, grad)
    assert perp.shape == d.shape
    dots = (perp * grad).flatten(1).sum(1)
    assert torch.allclose(dots, torch.zeros(5), atol=1e-4)
    assert torch.equal(perp[2], d[2])  # zero gradient: the direction itself
    parallel = d - perp
    cos = torch.nn.functional.cosine_similarity(parallel.flatten(1), grad.flatten(1), dim=1)
    keep = torch.tensor([0, 1, 3, 4])
    assert torch.allclose(cos[keep].abs(), torch.ones(4), atol=1e-4)


@pytest.mark.parametrize("scale", [1e-20, 1e20])
def test_orthogonal_component_does_not_depend_on_the_gradients_size(scale) -> None:
    # a saturated classifier's gradient can be tiny: <g, g> underflows float32 below ~1e-19
    g = torch.Generator().manual_seed(2)
    d, grad = torch.randn(4, 10, generator=g), torch.randn(4, 10, generator=g)
    torch.testing.assert_close(orthogonal_component(d, grad * scale), orthogonal_component(d, grad))


def test_relative_distance_matches_reference() -> None:
    x, r = _images(4, 1), _images(4, 2)
    expected = torch.stack([(x[i] - r[i]).norm() / r[i].norm() for i in range(4)])
    assert torch.allclose(relative_distance(x, r), expected)
    with pytest.raises(ValueError, match="reference"):
        relative_distance(x, torch.zeros_like(x))
    with pytest.raises(ValueError, match="share a shape"):
        relative_distance(x, r[:2])


def test_class_confidence_is_softmax_of_label() -> None:
    model = _linear(3)
    x = _images(7, 3)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    expected = model(x).softmax(1)[torch.arange(7), y]
    assert torch.allclose(class_confidence(model, x, y, batch_size=3), expected.detach())
    with pytest.raises(ValueError, match="labels must lie"):
        class_confidence(model, x, torch.full((7,), 3))


def test_lst_on_linear_model_matches_closed_form() -> None:
    """Two classes, linear logits: the CE gradient always points along w_c - w_o, so the
    orthogonal steps keep the logit margin (the confidence) exactly and contract the
    component of x - x_t orthogonal to it by (1 - eta) per step."""
    model = _linear(2)
    src, trg = _images(3, 4), _images(3, 5)
    labels = model(src).argmax(1)
    eta, steps = 0.1, 30
    out = level_set_traversal(
        model,
        src,
        trg,
        labels,
        n_iterations=steps,
        step_size=eta,
        adv_step_size=0.0,
        max_drop=0.01,
        clamp=None,
        init_noise=0.0,
        record_every=7,
    )
    w = model[1].weight.detach()
    u = (w[1] - w[0]) / (w[1] - w[0]).norm()
    diff = (src - trg).flatten(1)
    par = (diff @ u)[:, None] * u
    expected = trg.flatten(1) + par + (1 - eta) ** steps * (diff - par)
    assert torch.allclose(out.final.flatten(1), expected, atol=1e-10)
    assert torch.allclose(out.confidences, out.initial_confidence[:, None].expand(-1, 6))
    assert out.accepted.tolist() == [steps] * 3
    assert out.path_steps.tolist() == [0, 7, 14, 21, 28, 30]
    assert out.path.shape == (3, 6, 1, 2, 3)
    assert torch.equal(out.path[:, -1], out.final)
    assert torch.equal(out.path[:, 0], src)
    assert isinstance(out, LevelSetTraversal)


def test_guard_rejects_steps_that_drop_confidence() -> None:
    model = _linear(3)
    src, trg = _images(4, 6), _images(1, 7)[0]
    conf0 = class_confidence(model, src, model(src).argmax(1))
    # a floor above every source's confidence: nothing is ever accepted; without a correction
    # the first rejection is a fixed point and the loop stops there
    floor = float(conf0.max()) + 1e-3
    out = level_set_traversal(
        model, src, trg, min_confidence=floor, adv_step_size=0.0, init_noise=0.0
    )
    assert out.n_iterations == 1
    assert out.accepted.tolist() == [0, 0, 0, 0]
    assert torch.equal(out.final, src)
    # with one, proposals change until the correction saturates, and are still all rejected
    out = level_set_traversal(model, src, trg, min_confidence=floor, init_noise=0.0)
    assert 1 < out.n_iterations < 1000
    assert out.accepted.tolist() == [0, 0, 0, 0]
    assert torch.equal(out.final, src)
    assert out.targets.shape == src.shape  # one shared target is broadcast
    # a normal run keeps every recorded iterate above the guard's floor and inside [0, 1]
    run = level_set_traversal(
        model, src, trg, n_iterations=40, step_size=0.2, max_drop=0.05, record_every=1
    )
    floor = run.initial_confidence - 0.05
    assert bool((run.confidences[:, 1:] >= floor[:, None] - 1e-12).all())
    assert float(run.path.min()) >= 0.0
    assert float(run.path.max()) <= 1.0


def test_each_path_is_the_one_it_follows_alone() -> None:
    # steep tanh net: some sources reject early steps and pass later ones (the correction
    # accumulates), so stopping when the whole batch rejects would change their paths; in
    # float64, as float32 rounding (batched and single matrix products differ) grows over the
    # accept/reject steps to ~1e-4
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 3))
    model = model.double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(6.0)
    src, trg = torch.rand(8, 1, 4, 4).double(), torch.rand(8, 1, 4, 4).double()
    kwargs = dict(n_iterations=60, step_size=0.5, adv_step_size=0.05, max_drop=0.02)
    batch = level_set_traversal(model, src, trg, init_noise=0.0, **kwargs)
    for i in range(8):
        alone = level_set_traversal(model, src[i : i + 1], trg[i : i + 1], init_noise=0.0, **kwargs)
        torch.testing.assert_close(alone.final[0], batch.final[i], atol=1e-9, rtol=0)
        assert int(alone.accepted[0]) == int(batch.accepted[i])


def test_lst_is_deterministic_and_does_not_mutate() -> None:
    model = _linear(3)
    src, trg = _images(4, 8), _images(4, 9)
    src0, trg0 = src.clone(), trg.clone()
    a = level_set_traversal(model, src, trg, n_iterations=15, seed=3)
    b = level_set_traversal(model, src, trg, n_iterations=15, seed=3)
    assert torch.equal(a.final, b.final)
    assert torch.equal(src, src0)
    assert torch.equal(trg, trg0)
    assert not any(p.grad is not None for p in model.parameters())


def test_line_confidence_endpoints_and_monotone_margin() -> None:
    model = _linear(2)
    a, b = _images(3, 10), _images(3, 11)
    y = torch.tensor([0, 1, 0])
    line = line_confidence(model, a, b, y, n_points=11)
    assert line.shape == (3, 11)
    assert torch.allclose(line[:, 0], class_confidence(model, a, y))
    assert torch.allclose(line[:, -1], class_confidence(model, b, y))
    # linear logits: the confidence is monotone along a straight segment
    steps = line.diff(dim=1)
    assert bool(((steps >= -1e-12).all(1) | (steps <= 1e-12).all(1)).all())


def test_barycentric_grid() -> None:
    w = barycentric_grid(4)
    assert w.shape == (15, 3)
    assert torch.allclose(w.sum(1), torch.ones(15, dtype=w.dtype))
    assert bool((w >= 0).all())
    assert w[0].tolist() == [1.0, 0.0, 0.0]
    assert len({tuple(r) for r in w.tolist()}) == 15
    with pytest.raises(ValueError, match="n_interps"):
        barycentric_grid(0)


def test_triangle_confidence_statistics() -> None:
    model = _linear(3)
    x0, x1, x2 = _images(2, 12), _images(2, 13), _images(2, 14)
    y = torch.tensor([1, 2])
    tri = triangle_confidence(model, x0, x1, x2, y, n_interps=5)
    assert tri.confidences.shape == (2, 21)
    assert torch.allclose(tri.vertex_confidence, class_confidence(model, x0, y))
    corner = (tri.weights[:, 1] == 1).nonzero()[0, 0]
    assert torch.allclose(tri.confidences[:, corner], class_confidence(model, x1, y))
    assert torch.allclose(tri.mean, tri.confidences.mean(1))
    # a degenerate triangle is one point: every statistic reduces to the vertex
    same = triangle_confidence(model, x0, x0, x0, y, n_interps=3)
    assert torch.allclose(same.confidences, same.vertex_confidence[:, None].expand(-1, 10))
    assert torch.allclose(same.edge_min, torch.zeros(2, dtype=same.edge_min.dtype), atol=1e-12)
    assert same.fraction_above(0.1).tolist() == [1.0, 1.0]


def test_bad_inputs_raise() -> None:
    model = _linear(2)
    src, trg = _images(2, 15), _images(2, 16)
    with pytest.raises(TypeError, match="model"):
        level_set_traversal("model", src, trg)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="sources"):
        level_set_traversal(model, src.long(), trg)
    with pytest.raises(ValueError, match="targets"):
        level_set_traversal(model, src, trg[:, :, :1])
    with pytest.raises(ValueError, match="sources"):
        level_set_traversal(model, src * float("nan"), trg)
    with pytest.raises(ValueError, match="labels"):
        level_set_traversal(model, src, trg, torch.tensor([0]))
    with pytest.raises(ValueError, match="step_size"):
        level_set_traversal(model, src, trg, step_size=0.0)
    with pytest.raises(ValueError, match="max_drop"):
        level_set_traversal(model, src, trg, max_drop=-0.1)
    with pytest.raises(ValueError, match="clamp"):
        level_set_traversal(model, src, trg, clamp=(1.0, 0.0))
    with pytest.raises(ValueError, match="n_points"):
        line_confidence(model, src, trg, torch.tensor([0, 1]), n_points=1)
    with pytest.raises(ValueError, match="x2"):
        triangle_confidence(model, src, trg, trg[:1], torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="direction and gradient"):
        orthogonal_component(src, trg[:1])


def test_adversarial_correction_raises_confidence() -> None:
    """The accumulated correction moves against the loss gradient: more source confidence."""
    model = _linear(2)
    src, trg = _images(3, 17), _images(3, 18)
    kwargs = dict(n_iterations=20, step_size=0.1, max_drop=0.5, clamp=None, init_noise=0.0)
    plain = level_set_traversal(model, src, trg, adv_step_size=0.0, **kwargs)  # type: ignore[arg-type]
    adv = level_set_traversal(model, src, trg, adv_step_size=0.05, **kwargs)  # type: ignore[arg-type]
    assert bool((adv.confidences[:, -1] > plain.confidences[:, -1]).all())


def test_confidence_runs_in_eval_mode_and_restores_it() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 2))
    model.train()
    x, labels = torch.randn(5, 6), torch.zeros(5, dtype=torch.long)
    running = model[1].running_mean.clone()
    first = class_confidence(model, x, labels)
    torch.testing.assert_close(class_confidence(model, x, labels), first, rtol=0, atol=0)
    torch.testing.assert_close(model[1].running_mean, running, rtol=0, atol=0)
    assert model.training
    assert model[2].training
    level_set_traversal(model, x[:2], x[2:4], n_iterations=3)
    torch.testing.assert_close(model[1].running_mean, running, rtol=0, atol=0)
    assert model.training


def test_a_dtype_mismatch_names_the_argument() -> None:
    model, x = _linear(), _images(4, 0)  # a float64 model
    with pytest.raises(TypeError, match="inputs must have the model's parameter dtype"):
        class_confidence(model, x.float(), torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match="sources must have the model's parameter dtype"):
        level_set_traversal(model, x[:2].float(), x[2:].float())


def test_lst_names_inference_mode_and_works_under_no_grad() -> None:
    model, src, trg = _linear(), _images(3, 0), _images(3, 1)
    expected = level_set_traversal(model, src, trg, n_iterations=5)
    with torch.no_grad():
        out = level_set_traversal(model, src, trg, n_iterations=5)
    torch.testing.assert_close(out.final, expected.final)
    with (
        torch.inference_mode(),
        pytest.raises(RuntimeError, match="level_set_traversal needs autograd"),
    ):
        level_set_traversal(model, src, trg, n_iterations=5)


def test_a_tensor_given_as_clamp_gives_a_short_message() -> None:
    model, src = _linear(), _images(3, 0)
    with pytest.raises(ValueError, match="clamp must be a") as info:
        level_set_traversal(model, src, src, clamp=torch.rand(64, 3, 8, 8))
    assert len(str(info.value)) < 200


def test_helpers_reject_bool_and_integer_tensors_by_name() -> None:
    x = torch.randn(3, 4)
    with pytest.raises(TypeError, match="direction must be a real-valued tensor"):
        orthogonal_component(x > 0, x)
    with pytest.raises(TypeError, match="gradient must be a real-valued tensor"):
        orthogonal_component(x, x > 0)
    with pytest.raises(TypeError, match="x must be a real-valued tensor"):
        relative_distance(x > 0, x)
    with pytest.raises(TypeError, match="reference must be a floating-point tensor"):
        relative_distance(x, torch.ones(3, 4, dtype=torch.int64))
