"""The Scaling-MLPs training recipe: Lion, MixUp, random crops, checkpointed training."""

import pytest
import torch
import torch.nn as nn

from neuronkit.theory.scaling import (
    BottleneckMLP,
    Lion,
    forward_flops,
    mixup,
    random_translate,
    train_classifier,
)


def test_lion_step_matches_the_update_rule() -> None:
    p = nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    opt = Lion([p], lr=0.1, betas=(0.9, 0.99), weight_decay=0.5)
    g1, g2 = torch.tensor([0.3, -0.1, 0.0]), torch.tensor([-1.0, 0.2, 0.4])
    w, m = p.detach().clone(), torch.zeros(3)
    for g in (g1, g2):
        p.grad = g.clone()
        opt.step()
        w = w * (1 - 0.1 * 0.5) - 0.1 * torch.sign(0.9 * m + 0.1 * g)
        m = 0.99 * m + 0.01 * g
    assert torch.allclose(p.detach(), w)


def test_random_translate_shifts_images() -> None:
    gen = torch.Generator().manual_seed(0)
    images = torch.zeros(50, 1, 6, 6)
    images[:, :, 1:5, 1:5] = torch.rand(50, 1, 4, 4, generator=gen)  # a blank border
    copy = images.clone()
    out = random_translate(images, 1, seed=1)
    assert torch.equal(images, copy)  # input untouched
    assert out.shape == images.shape
    assert torch.allclose(out.sum((1, 2, 3)), images.sum((1, 2, 3)))  # content only moves
    assert not torch.equal(out, images)
    for i in range(50):  # each output is the input shifted by some (dy, dx) in {-1, 0, 1}^2
        shifted = [
            torch.roll(images[i], (dy, dx), dims=(1, 2)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
        ]
        assert any(torch.equal(out[i], s) for s in shifted)
    assert torch.equal(random_translate(images, 1, seed=1), out)
    assert torch.equal(random_translate(images[:, 0], 0), images[:, 0])
    filled = random_translate(torch.zeros(20, 4, 4), 2, fill=-1.0, seed=0)
    assert (filled == -1.0).any()


def test_mixup_is_a_convex_combination() -> None:
    x = torch.randn(16, 3)
    y = torch.arange(16)
    xm, ya, yb, lam = mixup(x, y, 0.8, seed=0)
    assert 0.0 <= lam <= 1.0
    assert torch.equal(ya, y)
    assert torch.allclose(xm, lam * x + (1 - lam) * x[yb])  # labels are indices here
    again = mixup(x, y, 0.8, seed=0)
    assert torch.equal(again[0], xm)
    assert again[3] == lam


def _blobs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=gen)
    centres = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.0]])
    return centres[y] + 0.3 * torch.randn(n, 2, generator=gen), y


def test_train_classifier_learns_and_accounts_compute() -> None:
    x, y = _blobs(256, 0)
    xt, yt = _blobs(128, 1)
    model = BottleneckMLP(2, 3, 8, 1, seed=0)
    rec = train_classifier(
        model, x, y, xt, yt, epochs=6, batch_size=32, lr=3e-3, eval_every=2, seed=0
    )
    assert rec.epochs == [0, 2, 4, 6]
    assert rec.examples_seen == [0, 512, 1024, 1536]
    flops = forward_flops(model, (2,))
    assert rec.flops_per_example == flops
    assert rec.compute[-1] == 3 * flops * 1536
    assert rec.final_test_error < 0.1 < rec.test_error[0]
    rec2 = train_classifier(
        BottleneckMLP(2, 3, 8, 1, seed=0),
        x,
        y,
        xt,
        yt,
        epochs=6,
        batch_size=32,
        lr=3e-3,
        eval_every=2,
        seed=0,
    )
    assert rec2.test_error == rec.test_error  # deterministic under a seed


def test_bad_inputs() -> None:
    x, y = _blobs(32, 0)
    model = BottleneckMLP(2, 3, 4, 1)
    with pytest.raises(ValueError, match="lr"):
        Lion(model.parameters(), lr=0.0)
    with pytest.raises(ValueError, match="betas"):
        Lion(model.parameters(), betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="x_train"):
        train_classifier(model, x, y[:10], x, y, epochs=1, batch_size=8)
    with pytest.raises(TypeError, match="y_test"):
        train_classifier(model, x, y, x, y.float(), epochs=1, batch_size=8)
    with pytest.raises(ValueError, match="optimizer"):
        train_classifier(model, x, y, x, y, epochs=1, batch_size=8, optimizer="adam")
    with pytest.raises(ValueError, match="images"):
        train_classifier(model, x, y, x, y, epochs=1, batch_size=8, max_shift=1)
    with pytest.raises(ValueError, match="batch_size"):
        train_classifier(model, x, y, x, y, epochs=1, batch_size=64)
    with pytest.raises(ValueError, match="images must have 3 or 4"):
        random_translate(torch.zeros(4, 4), 1)
    with pytest.raises(ValueError, match="alpha"):
        mixup(x, y, 0.0)
    with pytest.raises(ValueError, match="same B"):
        mixup(x, y[:3], 0.5)


def test_labels_beyond_the_model_logits_name_the_labels() -> None:
    x, y = _blobs(32, 0)
    model = BottleneckMLP(2, 3, 4, 1)  # 3 logits
    with pytest.raises(ValueError, match=r"^y_train must hold class labels in 0\.\.2 .* 5\.\.7"):
        train_classifier(model, x, y + 5, x, y, epochs=1, batch_size=8)
    with pytest.raises(ValueError, match=r"^y_test must hold class labels in 0\.\.2"):
        train_classifier(model, x, y, x, y - 1, epochs=1, batch_size=8)


def _modes(model: nn.Module) -> dict[str, bool]:
    return {name: m.training for name, m in model.named_modules()}


def test_refused_labels_leave_every_submodule_mode_as_it_was() -> None:
    # the label range is known after one forward; _error ended with model.train(): a model in
    # eval mode (one BatchNorm kept in train mode) came back with every submodule in train mode
    x, y = _blobs(32, 0)
    model = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.Dropout(0.1), nn.Linear(8, 3))
    model.eval()
    model[1].train()
    modes = _modes(model)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for y_train, y_test, name in ((y + 5, y, "y_train"), (y, y - 1, "y_test")):
        with pytest.raises(ValueError, match=rf"^{name} must hold class labels in 0\.\.2"):
            train_classifier(model, x, y_train, x, y_test, epochs=1, batch_size=8)
        assert _modes(model) == modes
        assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_interrupted_training_leaves_the_model_in_eval_mode_like_a_complete_run() -> None:
    x, y = _blobs(32, 0)
    model = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    calls = []

    def interrupt(module: nn.Module, args: object, out: torch.Tensor) -> None:
        calls.append(module.training)
        if calls.count(True) == 2:  # the second training step
            raise KeyboardInterrupt

    handle = model[3].register_forward_hook(interrupt)
    with pytest.raises(KeyboardInterrupt):
        train_classifier(model, x, y, x, y, epochs=2, batch_size=8, seed=0)
    handle.remove()
    assert calls[-2:] == [True, True]
    assert not any(calls[:-2])  # the FLOPs count and checkpoint 0 run in eval mode
    assert not any(_modes(model).values())
    train_classifier(model, x, y, x, y, epochs=1, batch_size=8, seed=0)
    assert not any(_modes(model).values())
