"""FGSM and PGD on SNNs (time-major or directly encoded static inputs)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuronkit.snn import LIF, SeqFlatten, SeqLinear
from neuronkit.snn.attacks import attack_success, fgsm, pgd, snn_logits

F64 = torch.float64


class TimeLinear(nn.Module):
    """Outputs ``[T, B, K]`` linear in x: a closed-form gradient to compare against."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2) @ self.w


def _setup() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    model = TimeLinear(torch.randn(6, 3, generator=gen, dtype=F64))
    x = torch.rand(5, 6, generator=gen, dtype=F64) * 0.8 + 0.1
    y = torch.tensor([0, 1, 2, 0, 1])
    return model, x, y


def test_fgsm_matches_closed_form_sign_gradient() -> None:
    model, x, y = _setup()
    logits = x @ model.w.detach()  # direct encoding: mean over time is x @ w
    p = logits.softmax(1)
    grad = (p - F.one_hot(y, 3).to(F64)) @ model.w.detach().T / len(y)
    expected = (x + 0.05 * grad.sign()).clamp(0, 1)
    torch.testing.assert_close(fgsm(model, x, y, eps=0.05, T=4), expected)
    targeted = fgsm(model, x, y, eps=0.05, T=4, targeted=True)
    torch.testing.assert_close(targeted, (x - 0.05 * grad.sign()).clamp(0, 1))


def test_time_major_input_equals_direct_encoding() -> None:
    model, x, y = _setup()
    xt = x.unsqueeze(0).repeat(4, 1, 1)  # [T, B, 6]
    static = fgsm(model, x, y, eps=0.1, T=4)
    timed = fgsm(model, xt, y, eps=0.1)
    assert timed.shape == xt.shape
    torch.testing.assert_close(snn_logits(model, xt), snn_logits(model, x, T=4))
    torch.testing.assert_close(timed.mean(0), static)  # same per-step gradient sign


def test_pgd_respects_ball_range_and_is_seeded() -> None:
    model, x, y = _setup()
    x_in = x.clone()
    a = pgd(model, x, y, eps=0.07, steps=5, T=3, seed=1)
    b = pgd(model, x, y, eps=0.07, steps=5, T=3, seed=1)
    c = pgd(model, x, y, eps=0.07, steps=5, T=3, seed=2)
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, c)
    assert (a - x).abs().max() <= 0.07 + 1e-12
    assert a.min() >= 0
    assert a.max() <= 1
    torch.testing.assert_close(x, x_in)  # input untouched
    assert model.w.grad is None  # model untouched
    loss = F.cross_entropy(snn_logits(model, a, T=3), y)
    assert loss > F.cross_entropy(snn_logits(model, x, T=3), y)
    free = pgd(model, x * 10, y, eps=0.5, steps=2, T=3, clamp=None, random_start=False)
    assert free.max() > 1  # no clipping asked


def test_pgd_targeted_moves_towards_target_on_a_spiking_net() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(SeqFlatten(), SeqLinear(6, 16), LIF(), SeqLinear(16, 3))
    x = torch.rand(8, 6)
    target = torch.full((8,), 2)
    adv = pgd(net, x, target, eps=0.5, steps=10, T=4, targeted=True, seed=0)
    before = F.cross_entropy(snn_logits(net, x, T=4), target)
    after = F.cross_entropy(snn_logits(net, adv, T=4), target)
    assert after < before
    ok = attack_success(net, adv, target, T=4, targeted=True)
    assert ok.dtype == torch.bool
    assert ok.shape == (8,)


def test_bad_inputs() -> None:
    model, x, y = _setup()
    with pytest.raises(ValueError, match="eps"):
        fgsm(model, x, y, eps=0.0, T=2)
    with pytest.raises(ValueError, match="y must"):
        pgd(model, x, y[:3], eps=0.1, T=2)
    with pytest.raises(TypeError, match="x must"):
        pgd(model, x.long(), y, eps=0.1, T=2)
    with pytest.raises(ValueError, match="x must"):
        pgd(model, x, y, eps=0.1)  # 2-D without T is not time-major
    with pytest.raises(ValueError, match="clamp"):
        pgd(model, x, y, eps=0.1, T=2, clamp=(1.0, 0.0))
    with pytest.raises(ValueError, match="seed or generator"):
        pgd(model, x, y, eps=0.1, T=2, seed=0, generator=torch.Generator())
    with pytest.raises(ValueError, match="steps"):
        pgd(model, x, y, eps=0.1, T=2, steps=0)
    with pytest.raises(ValueError, match="finite"):
        pgd(model, x * float("nan"), y, eps=0.1, T=2)
    with pytest.raises(TypeError, match="model"):
        fgsm(3, x, y, eps=0.1, T=2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="model must return"):
        snn_logits(lambda t: t.sum(), x, T=2)


def test_attack_success_names_x_adv() -> None:
    """Its bad input was named x, the name of the attacks' argument."""
    model, x, y = _setup()
    with pytest.raises(TypeError, match=r"^x_adv must be Tensor, got list"):
        attack_success(model, x.tolist(), y, T=2)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^x_adv must be a floating-point tensor"):
        attack_success(model, x.long(), y, T=2)
    with pytest.raises(ValueError, match=r"^x_adv must be finite"):
        attack_success(model, x * float("nan"), y, T=2)
    with pytest.raises(ValueError, match=r"^x_adv must be time-major \[T, B, \.\.\.\]"):
        attack_success(model, x, y)


def test_labels_outside_the_models_classes_are_refused() -> None:
    """attack_success counted a label >= K as a success (argmax never equals it); fgsm and pgd
    failed in torch's cross-entropy with "IndexError: Target 3 is out of bounds"."""
    model, x, y = _setup()  # 3 classes
    bad = torch.full_like(y, 3)
    msg = r"^y must hold class labels in \[0, 2\] \(the model has 3 outputs\)"
    for targeted in (False, True):
        with pytest.raises(ValueError, match=msg):
            attack_success(model, x, bad, T=2, targeted=targeted)
        with pytest.raises(ValueError, match=msg):
            fgsm(model, x, bad, eps=0.1, T=2, targeted=targeted)
        with pytest.raises(ValueError, match=msg):
            pgd(model, x, y - 1, eps=0.1, T=2, steps=2, targeted=targeted, seed=0)
    with pytest.raises(ValueError, match=msg):
        attack_success(model, x.expand(2, -1, -1), bad)  # time-major [T, B, ...]


def test_inputs_outside_the_clamp_range_are_refused() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(SeqLinear(20, 32), LIF(threshold=0.5), SeqLinear(32, 5)).eval()
    x, y = torch.rand(8, 20) * 255, torch.randint(0, 5, (8,))  # raw pixels, clamp (0, 1)
    for attack in (fgsm, pgd):
        with pytest.raises(ValueError, match=r"x must lie within clamp \(0.0, 1.0\)"):
            attack(model, x, y, eps=2.0, T=4)
    x_adv = fgsm(model, x, y, eps=2.0, T=4, clamp=(0.0, 255.0))
    assert float((x_adv - x).abs().max()) <= 2.0 + 1e-5


def test_attacks_run_under_no_grad_and_refuse_inference_mode_by_name() -> None:
    """A surrounding ``torch.no_grad()`` broke the attacks with torch's "element 0 of tensors
    does not require grad"; under ``torch.inference_mode()`` they now say what is wrong."""
    model, x, y = _setup()
    expected = (fgsm(model, x, y, eps=0.05, T=3), pgd(model, x, y, eps=0.05, T=3, seed=0))
    with torch.no_grad():
        got = (fgsm(model, x, y, eps=0.05, T=3), pgd(model, x, y, eps=0.05, T=3, seed=0))
    torch.testing.assert_close(got, expected)
    for name, attack in (("fgsm", fgsm), ("pgd", pgd)):
        with torch.inference_mode(), pytest.raises(RuntimeError, match=rf"^{name} needs autograd"):
            attack(model, x, y, eps=0.05, T=3)


def test_attacks_take_inference_tensors_and_leave_the_callers_graph_alone() -> None:
    """An input made under ``torch.inference_mode()`` failed with "Setting requires_grad=True on
    inference tensor outside InferenceMode"; an input requiring grad kept its ``.grad`` empty."""
    model, x, y = _setup()
    expected = fgsm(model, x, y, eps=0.05, T=3)
    with torch.inference_mode():
        xi = x.clone()
    torch.testing.assert_close(fgsm(model, xi, y, eps=0.05, T=3), expected)
    torch.testing.assert_close(
        pgd(model, xi, y, eps=0.05, T=3, seed=0), pgd(model, x, y, eps=0.05, T=3, seed=0)
    )
    leaf = x.clone().requires_grad_(True)
    out = fgsm(model, leaf, y, eps=0.05, T=3)
    assert leaf.grad is None
    assert not out.requires_grad


def test_clamp_given_a_tensor_gets_a_short_message() -> None:
    model, x, y = _setup()
    with pytest.raises(TypeError, match=r"^clamp must be None or a pair") as err:
        fgsm(model, x, y, eps=0.1, T=2, clamp=torch.rand(64, 64))  # type: ignore[arg-type]
    assert len(str(err.value)) < 200  # was the whole tensor, thousands of characters
