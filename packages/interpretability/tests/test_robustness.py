"""PGD / FGSM attacks, accuracy and the training loop (including its optimizers)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuronkit.interpretability import accuracy, fgsm_attack, pgd_attack, train_classifier


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))


def _data(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 6, generator=gen)
    y = (x[:, 0] * 3).long().clamp(max=2)
    return x, y


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_stays_in_the_ball_and_bounds_and_raises_the_loss(norm) -> None:
    model, (x, y) = _model(), _data()
    adv = pgd_attack(model, x, y, eps=0.1, n_steps=10, norm=norm, clamp=(0.0, 1.0))
    delta = (adv - x).reshape(len(x), -1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert torch.all(size <= 0.1 + 1e-6)
    assert adv.min() >= 0
    assert adv.max() <= 1
    with torch.no_grad():
        assert F.cross_entropy(model(adv), y) > F.cross_entropy(model(x), y)


def test_random_start_is_seeded_and_fgsm_is_one_sign_step() -> None:
    model, (x, y) = _model(), _data(8)
    a = pgd_attack(model, x, y, eps=0.05, random_start=True, seed=1)
    b = pgd_attack(model, x, y, eps=0.05, random_start=True, seed=1)
    torch.testing.assert_close(a, b)
    xr = x.clone().requires_grad_(True)
    F.cross_entropy(model(xr), y, reduction="sum").backward()
    torch.testing.assert_close(fgsm_attack(model, x, y, eps=0.03), x + 0.03 * xr.grad.sign())
    torch.testing.assert_close(pgd_attack(model, x, y, eps=0.0), x)
    starts = []
    for _ in range(2):  # seed=None draws from the global RNG (it took OS entropy)
        torch.manual_seed(3)
        starts.append(pgd_attack(model, x, y, eps=0.05, n_steps=1, random_start=True))
    torch.testing.assert_close(starts[0], starts[1])


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_confidently_classified_examples_still_move(norm) -> None:
    # logit margins in the hundreds: float32's cross-entropy gradient is exactly 0 there
    model, (x, _) = _model(), _data(16)
    with torch.no_grad():
        model[2].weight.mul_(1000.0)
        y = model(x).argmax(1)
    xr = x.clone().requires_grad_(True)
    F.cross_entropy(model(xr), y, reduction="sum").backward()
    assert (xr.grad.abs().sum(1) == 0).any()  # the situation the test is about
    eps = 0.05
    delta = (pgd_attack(model, x, y, eps=eps, n_steps=3, norm=norm) - x).reshape(len(x), -1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    torch.testing.assert_close(size, torch.full_like(size, eps))
    # the cross-entropy gradient is sum_j p_j grad(l_j - l_y) over the wrong classes j: in
    # float64 with weights p_j / max p (exact from logit differences), its sign is FGSM's step
    x64 = x.double().requires_grad_(True)
    logits = model.double()(x64)
    margins = logits - logits.gather(1, y[:, None])
    weights = torch.exp(margins - margins.scatter(1, y[:, None], -1e300).amax(1, keepdim=True))
    (weights.detach().scatter(1, y[:, None], 0.0) * margins).sum().backward()
    model.float()
    torch.testing.assert_close(fgsm_attack(model, x, y, eps=eps) - x, eps * x64.grad.sign().float())


def test_l2_steps_have_their_size_for_gradients_of_any_size() -> None:
    # first-layer weights of 1e-20 give input gradients of ~1e-20: the step keeps its size
    model, (x, y) = _model(), _data(8)
    with torch.no_grad():
        model[0].weight.mul_(1e-20)
        model[0].bias.mul_(1e-20)
    delta = pgd_attack(model, x, y, eps=0.1, n_steps=1, norm="l2") - x
    torch.testing.assert_close(delta.norm(dim=1), torch.full((8,), 0.1))


def test_attacks_do_not_touch_inputs_parameters_or_mode() -> None:
    model, (x, y) = _model(), _data(8)
    model.eval()
    x0 = x.clone()
    pgd_attack(model, x, y, eps=0.1)
    torch.testing.assert_close(x, x0)
    assert all(p.grad is None for p in model.parameters())
    assert not model.training


def test_training_learns_and_adversarial_training_helps_robustness() -> None:
    x, y = _data(256)
    xt, yt = _data(128)
    std = _model(1)
    losses = train_classifier(std, x, y, epochs=40, batch_size=64, lr=1e-2, seed=0)
    assert losses[-1] < losses[0]
    assert accuracy(std, xt, yt) > 0.8
    attack = functools.partial(pgd_attack, eps=0.1, n_steps=5)
    rob = _model(1)
    train_classifier(rob, x, y, epochs=40, batch_size=64, lr=1e-2, adversary=attack, seed=0)
    assert accuracy(rob, attack(rob, xt, yt), yt) >= accuracy(std, attack(std, xt, yt), yt)


def test_training_is_deterministic_given_the_seed() -> None:
    x, y = _data()
    a, b = _model(2), _model(2)
    train_classifier(a, x, y, epochs=3, seed=7, optimizer="sgd", lr=0.1, momentum=0.9)
    train_classifier(b, x, y, epochs=3, seed=7, optimizer="sgd", lr=0.1, momentum=0.9)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q)


def test_the_seed_also_covers_dropout_and_keeps_the_global_rng() -> None:
    x, y = _data()
    weights = []
    for global_seed in (0, 1):  # dropout drew from the global RNG: different weights
        torch.manual_seed(5)
        net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
        torch.manual_seed(global_seed)
        state = torch.get_rng_state()
        train_classifier(net, x, y, epochs=2, seed=7)
        assert torch.equal(torch.get_rng_state(), state)
        weights.append(net[0].weight.detach())
    assert torch.equal(weights[0], weights[1])


BAD = [
    (lambda m, x, y: pgd_attack(m, x, y, eps=-1.0), ValueError, "eps"),
    (lambda m, x, y: pgd_attack(m, x, y, eps=0.1, norm="l1"), ValueError, "norm"),
    (lambda m, x, y: pgd_attack(m, x, y, eps=0.1, n_steps=0), ValueError, "n_steps"),
    (lambda m, x, y: pgd_attack(m, x, y, eps=0.1, clamp=(1.0, 0.0)), ValueError, "clamp"),
    (lambda m, x, y: pgd_attack(m, x.long(), y, eps=0.1), TypeError, "floating"),
    (lambda m, x, y: pgd_attack(m, x, y.float(), eps=0.1), TypeError, "labels"),
    (lambda m, x, y: pgd_attack(m, x, y[:3], eps=0.1), ValueError, "labels"),
    (lambda m, x, y: pgd_attack("m", x, y, eps=0.1), TypeError, "model"),
    (lambda m, x, y: accuracy(m, x[:, :, None] * float("nan"), y), ValueError, "finite"),
    (lambda m, x, y: train_classifier(m, x, y, epochs=0), ValueError, "epochs"),
    (lambda m, x, y: train_classifier(m, x, y, epochs=1, lr=0), ValueError, "lr"),
    (
        lambda m, x, y: train_classifier(m, x, y, epochs=1, optimizer="lbfgs"),
        ValueError,
        "optimizer",
    ),
    (lambda m, x, y: train_classifier(m, x, y, epochs=1, adversary=3), TypeError, "adversary"),
    (lambda m, x, y: train_classifier(m, x, y, epochs=1, momentum=1.0), ValueError, "momentum"),
    (lambda m, x, y: fgsm_attack(m, x, y, eps=-0.1), ValueError, "eps"),
    (lambda m, x, y: accuracy(m, x, y, batch_size=0), ValueError, "batch_size"),
    (lambda m, x, y: pgd_attack(m, x, y, eps=0.1, random_start=True, seed=-1), ValueError, "seed"),
]


@pytest.mark.parametrize(("call", "error", "match"), BAD)
def test_bad_inputs(call, error, match) -> None:
    x, y = _data(8)
    with pytest.raises(error, match=match):
        call(_model(), x, y)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.uint8])
def test_any_integer_label_dtype_gives_the_int64_results(dtype) -> None:
    model, (x, y) = _model(), _data(8)
    torch.testing.assert_close(
        pgd_attack(model, x, y.to(dtype), eps=0.1), pgd_attack(model, x, y, eps=0.1)
    )
    assert accuracy(model, x, y.to(dtype)) == accuracy(model, x, y)
    a, b = _model(3), _model(3)
    assert train_classifier(a, x, y.to(dtype), epochs=1, seed=0) == train_classifier(
        b, x, y, epochs=1, seed=0
    )


@pytest.mark.parametrize("bad", [[0, 7], [0, -1], [3, 0]])
def test_labels_outside_the_model_classes_are_rejected(bad) -> None:
    model, (x, _) = _model(), _data(2)
    labels = torch.tensor(bad)
    for call in (
        lambda: accuracy(model, x, labels),  # was 0.0: counted as misses
        lambda: pgd_attack(model, x, labels, eps=0.1),
        lambda: fgsm_attack(model, x, labels, eps=0.1),
        lambda: train_classifier(model, x, labels, epochs=1),
    ):
        with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\]"):
            call()


def test_clamp_seed_and_input_dtype_errors_name_the_argument() -> None:
    model, (x, y) = _model(), _data(2)
    with pytest.raises(TypeError, match="clamp must be a"):
        fgsm_attack(model, x, y, eps=0.1, clamp=1.0)
    with pytest.raises(TypeError, match=r"clamp\[1\]"):
        fgsm_attack(model, x, y, eps=0.1, clamp=(0, "a"))
    with pytest.raises(ValueError, match=r"clamp\[0\] must be finite"):
        fgsm_attack(model, x, y, eps=0.1, clamp=(float("nan"), 1.0))
    with pytest.raises(ValueError, match="seed"):
        pgd_attack(model, x, y, eps=0.1, random_start=True, seed=2**70)
    with pytest.raises(ValueError, match="seed"):
        train_classifier(model, x, y, epochs=1, seed=2**64)
    for call in (
        lambda: fgsm_attack(model, x.double(), y, eps=0.1),
        lambda: accuracy(model, x.double(), y),
        lambda: train_classifier(model, x.double(), y, epochs=1),
    ):
        with pytest.raises(TypeError, match=r"inputs must have the model's parameter dtype"):
            call()


def test_an_attack_on_a_detached_model_output_is_refused() -> None:
    model, (x, y) = _model(), _data(2)

    class Detached(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return self.inner(z).detach()

    with pytest.raises(ValueError, match="detached from its input"):
        pgd_attack(Detached(), x, y, eps=0.1)


def test_clamp_bounds_may_be_tensors_or_arrays() -> None:
    # (x.min(), x.max()) worked before the clamp check and was refused by its first version
    x, y = torch.rand(4, 6), torch.tensor([0, 1, 2, 0])
    model = _model()
    ref = pgd_attack(model, x, y, eps=0.1, n_steps=2, clamp=(0.0, 1.0), seed=0)
    for clamp in ((x.min(), x.max()), np.array([0.0, 1.0]), torch.tensor([0.0, 1.0])):
        out = pgd_attack(model, x, y, eps=0.1, n_steps=2, clamp=clamp, seed=0)
        assert out.shape == ref.shape
    torch.testing.assert_close(
        pgd_attack(model, x, y, eps=0.1, n_steps=2, clamp=np.array([0.0, 1.0]), seed=0), ref
    )


def _bn_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3)
    )


def test_attacks_and_accuracy_run_in_eval_mode_and_restore_each_module_mode() -> None:
    model, (x, y) = _bn_model(), _data(16)
    model.train()
    model[3].eval()  # mixed modes are restored module by module
    bn_state = {k: v.clone() for k, v in model[1].state_dict().items()}
    modes = [m.training for m in model.modules()]
    adv = pgd_attack(model, x, y, eps=0.1, n_steps=3)
    accs = [accuracy(model, x, y, batch_size=b) for b in (16, 4, 1)]
    for key, value in model[1].state_dict().items():  # running statistics untouched
        torch.testing.assert_close(value, bn_state[key])
    assert [m.training for m in model.modules()] == modes
    model.eval()
    assert accs == [accuracy(model, x, y)] * 3  # eval-mode answers, whatever the batch size
    expected = pgd_attack(model, x, y, eps=0.1, n_steps=3)
    torch.testing.assert_close(adv, expected)
    model.train()
    with pytest.raises(ValueError, match="labels"):  # raised inside the attack's forward loop
        pgd_attack(model, x, torch.full_like(y, 7), eps=0.1)
    assert all(m.training for m in model.modules())


def test_training_a_batchnorm_model_skips_a_last_batch_of_one_example() -> None:
    x, y = _data(9)
    model = _bn_model()
    losses = train_classifier(model, x, y, epochs=2, batch_size=4)  # batches 4, 4 (and 1)
    assert len(losses) == 2
    assert all(np.isfinite(losses))
    assert int(model[1].num_batches_tracked) == 4
    with pytest.raises(ValueError, match=r"batch_size.*BatchNorm"):
        train_classifier(_bn_model(), x, y, epochs=1, batch_size=1)


def test_training_arguments_are_checked_before_the_model_changes() -> None:
    """Out-of-range labels (found from the model's class count) and a batch of one for a
    BatchNorm model raise with the model untouched: still in eval mode, same running stats."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3)).eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(8, 4)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\]"):
        train_classifier(model, x, torch.tensor([0, 1, 2, 7, 0, 1, 2, 0]), epochs=1, batch_size=4)
    with pytest.raises(ValueError, match="batches of >= 2 examples"):
        train_classifier(model, x[:1], torch.tensor([0]), epochs=1, batch_size=4)
    assert not model.training
    assert not model[1].training
    for name, value in model.state_dict().items():
        assert torch.equal(value, state[name]), name


@pytest.mark.parametrize(
    ("name", "call"),
    [
        ("pgd_attack", lambda m, x, y: pgd_attack(m, x, y, eps=0.1, n_steps=1)),
        ("fgsm_attack", lambda m, x, y: fgsm_attack(m, x, y, eps=0.1)),
        ("train_classifier", lambda m, x, y: train_classifier(m, x, y, epochs=1)),
    ],
)
def test_inference_mode_is_named_not_blamed_on_the_model(name, call) -> None:
    model, (x, y) = _model(), _data(8)
    with (
        torch.inference_mode(),
        pytest.raises(RuntimeError, match=rf"{name} needs autograd: call it outside"),
    ):
        call(model, x, y)


def test_attacks_and_training_work_under_no_grad_and_on_inference_tensors() -> None:
    (x, y) = _data(16)
    with torch.inference_mode():
        xi, yi = x.clone(), y.clone()
    expected = pgd_attack(_model(), x, y, eps=0.1, n_steps=3)
    with torch.no_grad():
        torch.testing.assert_close(pgd_attack(_model(), x, y, eps=0.1, n_steps=3), expected)
    torch.testing.assert_close(pgd_attack(_model(), xi, yi, eps=0.1, n_steps=3), expected)
    losses = train_classifier(_model(), x, y, epochs=2, batch_size=8)
    with torch.no_grad():
        assert train_classifier(_model(), x, y, epochs=2, batch_size=8) == losses
    assert train_classifier(_model(), xi, yi, epochs=2, batch_size=8) == losses


def test_training_leaves_the_inputs_graph_and_grad_alone() -> None:
    (x, y) = _data(16)
    xg = x.clone().requires_grad_(True)
    losses = train_classifier(_model(), xg, y, epochs=2, batch_size=8)  # two batches
    assert xg.grad is None
    assert losses == train_classifier(_model(), x, y, epochs=2, batch_size=8)


def test_an_adversary_switching_to_eval_mode_does_not_stop_training() -> None:
    model, (x, y) = _bn_model(), _data(16)

    def adversary(net: nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        net.eval()  # as attack code often does, without restoring the mode
        return xb + 0.01

    before = int(model[1].num_batches_tracked)
    train_classifier(model, x, y, epochs=2, batch_size=8, adversary=adversary)
    assert int(model[1].num_batches_tracked) - before == 4  # every update in train mode
    assert all(m.training for m in model.modules())  # left in train mode, as documented


def test_training_keeps_learning_inside_an_outer_autocast() -> None:
    """An outer ``torch.autocast`` caches the bf16 copy of every parameter until it exits:
    every forward after the first update reused the first weights, so the loss never moved."""
    model, (x, y) = _model(), _data()
    losses, params = [], []
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for _ in range(3):
            losses += train_classifier(model, x, y, epochs=1, batch_size=64, lr=1e-2, seed=0)
            params.append([p.detach().clone() for p in model.parameters()])
    assert any(not torch.equal(a, b) for a, b in zip(params[0], params[1]))
    assert len(set(losses)) > 1, losses


def test_pgd_random_start_must_be_a_bool() -> None:
    model = nn.Sequential(nn.Linear(4, 3))
    x, y = torch.randn(3, 4), torch.tensor([0, 1, 2])
    with pytest.raises(TypeError, match="random_start must be bool"):
        pgd_attack(model, x, y, eps=0.1, random_start="no")
