"""Tests of neuronkit.pruning.lottery.rewind (IMP with rewinding and its controls)."""

import copy

import pytest
import torch
from torch import nn

from neuronkit.pruning.lottery import (
    TrainConfig,
    accuracy,
    clone_state,
    iterative_magnitude_pruning,
    ones_masks,
    random_masks_like,
    reinitialize,
    sparsity,
    train,
    train_from,
)


def _data(n: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 6, generator=gen)
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    return x, y


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))


CFG = TrainConfig(iterations=24, batch_size=16, lr=0.1, momentum=0.9, milestones=(18,))


def _same(a: dict, b: dict) -> bool:
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_dropout_follows_the_data_seed_and_the_global_rng_is_kept() -> None:
    """Step t's dropout masks come from (data_seed, t): the same network whatever the global
    RNG holds, also when resumed at k; the caller's RNG state is restored."""
    x, y = _data()
    runs = []
    for global_seed in (0, 1):
        torch.manual_seed(3)
        net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
        torch.manual_seed(global_seed)
        state = torch.get_rng_state()
        saved = train(net, x, y, CFG, data_seed=2, checkpoints=(6,))
        assert torch.equal(torch.get_rng_state(), state)
        runs.append((net.state_dict(), saved[6]))
    assert _same(runs[0][0], runs[1][0])
    torch.manual_seed(3)
    resumed = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
    resumed.load_state_dict(runs[0][1])
    train(resumed, x, y, CFG, data_seed=2, start_iteration=6)  # SGD momentum restarts at 0
    full = copy.deepcopy(resumed)
    full.load_state_dict(runs[0][1])
    train(full, x, y, CFG, data_seed=2, start_iteration=6)
    assert _same(resumed.state_dict(), full.state_dict())


def test_training_on_the_cpu_seeds_only_the_cpu_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-step seed goes to the CPU generator alone: torch.manual_seed would also queue a
    reseed of every accelerator not yet started, recording stack traces, on every step."""
    x, y = _data()

    def refuse(seed: int) -> None:
        raise AssertionError("torch.manual_seed called while training on the CPU")

    monkeypatch.setattr(torch, "manual_seed", refuse)
    net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
    twin = copy.deepcopy(net)
    train(net, x, y, CFG, data_seed=2)
    train(twin, x, y, CFG, data_seed=2)
    assert _same(net.state_dict(), twin.state_dict())  # dropout still follows the data seed


def test_lr_schedule_warmup_and_steps() -> None:
    cfg = TrainConfig(iterations=100, lr=1.0, warmup=4, milestones=(50, 80), gamma=0.5)
    assert [cfg.lr_at(i) for i in range(5)] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0])
    assert cfg.lr_at(49) == 1.0
    assert cfg.lr_at(50) == 0.5
    assert cfg.lr_at(80) == 0.25


def test_training_is_deterministic_and_learns() -> None:
    x, y = _data()
    a, b = _net(), _net()
    before = accuracy(a, x, y)
    train(a, x, y, CFG, data_seed=3)
    train(b, x, y, CFG, data_seed=3)
    assert _same(a.state_dict(), b.state_dict())
    assert accuracy(a, x, y) > before
    c = _net()
    train(c, x, y, CFG, data_seed=4)  # a different data order gives a different network
    assert not _same(a.state_dict(), c.state_dict())


def test_resuming_at_k_equals_uninterrupted_training_for_plain_sgd() -> None:
    # without momentum the optimizer has no state, so rewinding's "restart at k" must
    # reproduce the uninterrupted run exactly: same schedule and same minibatches after k
    x, y = _data()
    cfg = TrainConfig(iterations=20, batch_size=16, lr=0.1, momentum=0.0, milestones=(13,))
    full = _net()
    saved = train(full, x, y, cfg, data_seed=5, checkpoints=(0, 7, 20))
    assert _same(saved[20], full.state_dict())
    assert _same(saved[0], _net().state_dict())
    resumed = _net()
    resumed.load_state_dict(saved[7])
    train(resumed, x, y, cfg, data_seed=5, start_iteration=7)
    for k, v in full.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[k], v)


def test_masked_training_keeps_zeros_and_does_not_touch_inputs() -> None:
    x, y = _data()
    net = _net()
    masks = random_masks_like(
        {k: torch.rand(v.shape) > 0.5 for k, v in ones_masks(net).items()}, seed=0
    )
    x0 = x.clone()
    trained = train_from(net, net.state_dict(), x, y, CFG, masks=masks, data_seed=1)
    assert torch.equal(x, x0)
    assert _same(net.state_dict(), _net().state_dict())  # the given model is untouched
    params = dict(trained.named_parameters())
    for k, m in masks.items():
        assert bool((params[k].detach()[~m] == 0).all())


def test_imp_rounds_nested_masks_and_rewind_points() -> None:
    x, y = _data()
    model = _net()
    w0 = clone_state(model)
    res = iterative_magnitude_pruning(
        model, x, y, CFG, rounds=4, rewind_iteration=6, x_eval=x, y_eval=y, data_seed=2
    )
    assert _same(clone_state(model), w0)  # not modified
    assert _same(res.init_state, w0)
    assert len(res.masks) == len(res.sparsities) == len(res.accuracies) == 5
    assert res.sparsities[0] == 0.0
    for r in range(1, 5):
        assert res.sparsities[r] == pytest.approx(1 - 0.8**r, abs=0.01)
        assert all(bool((res.masks[r][k] <= res.masks[r - 1][k]).all()) for k in res.masks[r])
    # W_k is the dense run's state after 6 iterations with the same data order
    ref = _net()
    saved = train(ref, x, y, CFG, data_seed=2, checkpoints=(6,))
    assert _same(res.rewind_state, saved[6])
    assert _same(res.trained_states[0], ref.state_dict())
    # round r is the rewound W_k with the round's mask trained from k
    again = train_from(
        model, saved[6], x, y, CFG, masks=res.masks[2], start_iteration=6, data_seed=2
    )
    assert _same(res.trained_states[2], again.state_dict())
    assert sparsity(res.final_masks) == res.sparsities[-1]


def test_imp_k0_rewinds_to_init_and_shared_dense_run_is_identical() -> None:
    x, y = _data()
    model = _net()
    res = iterative_magnitude_pruning(model, x, y, CFG, rounds=2, rewind_iteration=0)
    assert _same(res.rewind_state, clone_state(model))
    dense = copy.deepcopy(model)
    saved = train(dense, x, y, CFG, checkpoints=(0, CFG.iterations))
    shared = iterative_magnitude_pruning(
        model, x, y, CFG, rounds=2, rewind_iteration=0, dense=(saved[CFG.iterations], saved[0])
    )
    for a, b in zip(res.trained_states, shared.trained_states, strict=True):
        assert _same(a, b)


def test_reinitialize_is_seeded_and_leaves_global_rng_alone() -> None:
    model = _net()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = reinitialize(model, seed=7)
    after = torch.rand(3)
    assert torch.equal(after, expected)
    b = reinitialize(model, seed=7)
    c = reinitialize(model, seed=8)
    assert _same(a.state_dict(), b.state_dict())
    assert not _same(a.state_dict(), c.state_dict())
    assert not _same(a.state_dict(), model.state_dict())


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"iterations": 0}, ValueError, "iterations"),
        ({"iterations": 10, "lr": 0.0}, ValueError, "lr"),
        ({"iterations": 10, "optimizer": "rmsprop"}, ValueError, "optimizer"),
        ({"iterations": 10, "momentum": 1.0}, ValueError, "momentum"),
        ({"iterations": 10, "milestones": [5]}, TypeError, "milestones"),
        ({"iterations": 10, "gamma": 2.0}, ValueError, "gamma"),
    ],
)
def test_bad_config(kwargs: dict, err: type[Exception], match: str) -> None:
    with pytest.raises(err, match=match):
        TrainConfig(**kwargs)


def test_bad_inputs() -> None:
    x, y = _data()
    net = _net()
    with pytest.raises(ValueError, match="y"):
        train(net, x, y[:-1], CFG)
    with pytest.raises(TypeError, match="y"):
        train(net, x, y.float(), CFG)
    with pytest.raises(ValueError, match="x"):
        train(net, torch.full_like(x, float("nan")), y, CFG)
    with pytest.raises(ValueError, match="start_iteration"):
        train(net, x, y, CFG, start_iteration=CFG.iterations + 1)
    with pytest.raises(ValueError, match="checkpoints"):
        train(net, x, y, CFG, start_iteration=5, checkpoints=(2,))
    with pytest.raises(TypeError, match="config"):
        train(net, x, y, {"iterations": 3})
    with pytest.raises(ValueError, match="rewind_iteration"):
        iterative_magnitude_pruning(net, x, y, CFG, rounds=1, rewind_iteration=99)
    with pytest.raises(ValueError, match="fraction"):
        iterative_magnitude_pruning(net, x, y, CFG, rounds=1, fraction=1.0)
    with pytest.raises(ValueError, match="x_eval"):
        iterative_magnitude_pruning(net, x, y, CFG, rounds=1, x_eval=x)
    with pytest.raises(ValueError, match="seed"):
        reinitialize(net, seed=-2)
    with pytest.raises(TypeError, match="state"):
        train_from(net, [1, 2], x, y, CFG)


def test_bad_arguments_are_named_as_the_caller_passed_them() -> None:
    """clone_state of lists failed with "'list' object has no attribute 'detach'"; a callback
    or checkpoints of the wrong type failed with "'int' object is not callable / iterable"
    (the callback after a training step); a state that does not fit the model raised torch's
    RuntimeError; IMP named bad y_eval labels "y" and layer_types matching no layer "masks"."""
    x, y = _data()
    net = _net()
    with pytest.raises(TypeError, match=r"model_or_state\['w'\] must be Tensor, got list"):
        clone_state({"w": [1.0, 2.0]})
    with pytest.raises(TypeError, match="callback must be a callable"):
        train(net, x, y, CFG, callback=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="checkpoints must be an iterable"):
        train(net, x, y, CFG, checkpoints=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="state must be a state_dict of the model"):
        train_from(net, {"w": torch.ones(1)}, x, y, CFG)
    small = TrainConfig(iterations=2, batch_size=16)
    with pytest.raises(ValueError, match=r"y_eval must hold class labels in \[0, 2\]"):
        iterative_magnitude_pruning(net, x, y, small, rounds=1, x_eval=x, y_eval=y + 5)
    with pytest.raises(ValueError, match="layer_types: the model has no prunable weight"):
        iterative_magnitude_pruning(net, x, y, small, rounds=1, layer_types=(nn.Conv2d,))


def test_reinitialize_redraws_attention_and_refuses_bare_parameters() -> None:
    attn = nn.Sequential(nn.Linear(4, 8), nn.MultiheadAttention(8, 2, batch_first=True))
    fresh = reinitialize(attn, seed=1)
    assert not torch.equal(fresh[1].in_proj_weight, attn[1].in_proj_weight)

    class WithEmbedding(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)
            self.pos = nn.Parameter(torch.randn(3, 4))

    with pytest.raises(ValueError, match=r"no reset_parameters re-draws \['pos'\]"):
        reinitialize(WithEmbedding(), seed=1)


def _kaiming(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.kaiming_normal_(module.weight)


def test_reinitialize_redraws_with_the_models_own_initializer() -> None:
    # open_lth's randomly_reinitialize builds a new model with the experiment's initializer;
    # PyTorch's reset_parameters alone draws Linear weights with 1/6 of kaiming-normal's
    # variance, which made the reinit control start at the wrong scale
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(400, 300), nn.ReLU(), nn.Linear(300, 200))
    model.apply(_kaiming)
    fresh = reinitialize(model, seed=3, init=_kaiming)
    for i, fan_in in ((0, 400), (2, 300)):
        w, w0 = fresh[i].weight.detach(), model[i].weight.detach()
        assert not torch.equal(w, w0)
        expected = (2.0 / fan_in) ** 0.5
        assert float(w.std()) == pytest.approx(expected, rel=0.05)
        assert float(w.std()) == pytest.approx(float(w0.std()), rel=0.05)
        assert float(fresh[i].bias.detach().abs().max()) <= fan_in**-0.5  # default bias draw
        assert not torch.equal(fresh[i].bias, model[i].bias)
    again = reinitialize(model, seed=3, init=_kaiming)
    assert _same(fresh.state_dict(), again.state_dict())
    default = reinitialize(model, seed=3)  # without init: PyTorch's default scale
    default_std = float(default[0].weight.detach().std())
    assert default_std < 0.5 * float(fresh[0].weight.detach().std())
    with pytest.raises(TypeError, match="init"):
        reinitialize(model, seed=3, init="kaiming_normal")


def test_labels_beyond_the_models_classes_are_named() -> None:
    x, y = _data()
    net = _net()  # 3 classes
    with pytest.raises(ValueError, match=r"y must hold class labels in \[0, 2\]"):
        train(net, x, torch.full_like(y, 7), CFG)
    with pytest.raises(ValueError, match=r"got range \[-1, 2\]"):
        accuracy(net, x, torch.where(y == 0, -1, y))
    net.train()

    def broken(_module: nn.Module, _inputs: tuple, _output: torch.Tensor) -> None:
        raise RuntimeError("boom")

    handle = net[0].register_forward_hook(broken)
    with pytest.raises(RuntimeError, match="boom"):
        accuracy(net, x, y)
    handle.remove()
    assert net.training  # the mode comes back after an exception too


def test_a_model_without_trainable_parameters_is_refused_before_the_masks_are_attached() -> None:
    """The optimizer cannot be built: a ValueError naming ``model``, and the model keeps its
    weights (no mask applied) and gets no forward pre-hook."""
    x, y = _data()
    model = _net().requires_grad_(False)
    masks = {k: torch.rand(v.shape) > 0.5 for k, v in ones_masks(model).items()}
    before = clone_state(model)
    with pytest.raises(ValueError, match="model: has no trainable parameters"):
        train(model, x, y, CFG, masks=masks)
    assert not model._forward_pre_hooks
    assert _same(clone_state(model), before)


def test_training_ignores_the_callers_grad_mode_and_leaves_their_inputs_alone() -> None:
    """Under torch.no_grad() training failed with torch's "element 0 of tensors does not
    require grad"; inputs that require grad got their ``.grad`` filled; inference tensors
    could not be saved for backward. Now the same result in every case, and a clear error
    under torch.inference_mode()."""
    x, y = _data()
    cfg = TrainConfig(iterations=4, batch_size=16, lr=0.1)
    ref = _net()
    train(ref, x, y, cfg)
    imp = iterative_magnitude_pruning(_net(), x, y, cfg, rounds=1)
    leaf = x.clone().requires_grad_(True)
    with torch.inference_mode():
        xi, yi = x.clone(), y.clone()
    for xs, ys, grad_mode in (
        (x, y, torch.no_grad),
        (leaf, y, torch.enable_grad),
        (xi, yi, torch.no_grad),
    ):
        net = _net()
        with grad_mode():
            train(net, xs, ys, cfg)
            again = iterative_magnitude_pruning(_net(), xs, ys, cfg, rounds=1)
        assert _same(clone_state(net), clone_state(ref))
        assert _same(again.trained_states[-1], imp.trained_states[-1])
    assert leaf.grad is None
    with torch.inference_mode():
        with pytest.raises(RuntimeError, match=r"^train needs autograd"):
            train(_net(), x, y, cfg)
        with pytest.raises(RuntimeError, match=r"^iterative_magnitude_pruning needs autograd"):
            iterative_magnitude_pruning(_net(), x, y, cfg, rounds=1)
        with pytest.raises(RuntimeError, match=r"^train_from needs autograd"):
            train_from(_net(), clone_state(ref), x, y, cfg)


def test_training_keeps_learning_inside_an_outer_autocast() -> None:
    """An outer ``torch.autocast`` caches the bf16 copy of every parameter until it exits:
    every forward after the first step reused the initial weights, so the loss never moved."""
    x, y = _data()
    net = _net()
    losses: list[float] = []

    def record(t: int, model: nn.Module) -> None:
        with torch.no_grad():
            losses.append(float(nn.functional.cross_entropy(model(x), y)))

    cfg = TrainConfig(iterations=3, batch_size=96, lr=0.1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        saved = train(net, x, y, cfg, checkpoints=(1, 2), callback=record)
    assert not _same(saved[1], saved[2])
    assert len(set(losses)) > 1, losses
