"""The RNN experiment of Liu et al. (2024, Fig. 1): task, network, training and measures."""

import copy
import math

import pytest
import torch

from neuronkit.theory.lazy_rich import (
    ReluRNN,
    perceptual_decision_trials,
    train_recurrent_rich_lazy,
    truncated_rank_weight,
)
from neuronkit.theory.measures import effective_rank

F64 = torch.float64


def _net(hidden: int, rank: int, seed: int = 0) -> ReluRNN:
    g = torch.Generator().manual_seed(seed)
    w0 = 1.25 * torch.randn(hidden, hidden, generator=g, dtype=F64) / math.sqrt(hidden)
    w_ih = (2 * torch.rand(hidden, 3, generator=g, dtype=F64) - 1) / math.sqrt(3)
    w_ho = (2 * torch.rand(3, hidden, generator=g, dtype=F64) - 1) / math.sqrt(hidden)
    return ReluRNN(w_ih, truncated_rank_weight(w0, rank), w_ho)


def _reference_kernel(model: ReluRNN, x: torch.Tensor) -> torch.Tensor:
    """The reference's loop (BioRNN_RichLazy main.py): one gradient of W_hh per output entry."""
    out = model(x)
    rows = []
    for b in range(out.shape[0]):
        for t in range(out.shape[1]):
            for k in range(out.shape[2]):
                (g,) = torch.autograd.grad(out[b, t, k], model.weight_hh, retain_graph=True)
                rows.append(g.reshape(-1))
    j = torch.stack(rows)
    return j @ j.T


@pytest.mark.parametrize("rank", [1, 4, 12])
def test_truncated_rank_weight_keeps_top_singular_triplets_and_norm(rank: int) -> None:
    g = torch.randn(12, 9, generator=torch.Generator().manual_seed(0), dtype=F64)
    w = truncated_rank_weight(g, min(rank, 9))
    r = min(rank, 9)
    assert float(torch.linalg.norm(w)) == pytest.approx(float(torch.linalg.norm(g)))
    assert int(torch.linalg.matrix_rank(w)) == r
    _, s, vh = torch.linalg.svd(g, full_matrices=False)
    _, sw, vhw = torch.linalg.svd(w, full_matrices=False)
    # the kept singular values keep their proportions (not made equal) ...
    ratio = sw[:r] / s[:r]
    assert torch.allclose(ratio, ratio[0].expand(r))
    # ... and their singular subspaces
    assert torch.allclose(vhw[:r].T @ vhw[:r], vh[:r].T @ vh[:r], atol=1e-10)
    if r == 9:
        assert torch.allclose(w, g)
    if r > 1:
        assert effective_rank(w) < r  # unequal singular values: effective rank below the rank


def test_truncated_rank_weight_rejects_bad_rank() -> None:
    with pytest.raises(ValueError, match="rank"):
        truncated_rank_weight(torch.ones(3, 2), 3)
    with pytest.raises(ValueError, match="weight"):
        truncated_rank_weight(torch.zeros(3, 2), 1)


@pytest.mark.parametrize("scale", [1e-200, 1e200])
def test_truncated_rank_weight_extreme_magnitudes(scale: float) -> None:
    # the Frobenius norms used to underflow to 0 ("all zeros") or overflow to inf (NaN output)
    g = torch.randn(5, 4, generator=torch.Generator().manual_seed(0), dtype=F64)
    ref = truncated_rank_weight(g, 2)
    out = truncated_rank_weight(g * scale, 2)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out / scale, ref, rtol=1e-12, atol=1e-12)


def test_perceptual_decision_trials_follow_neurogym() -> None:
    x, y = perceptual_decision_trials(400, sigma=0.0, coherences=[51.2], seed=0)
    assert x.shape == (400, 8, 3)
    assert y.shape == (400, 8)
    assert torch.all(x[:, :7, 0] == 1)
    assert torch.all(x[:, 7] == 0)
    assert torch.all(y[:, :7] == 0)
    choice = y[:, 7] - 1
    assert set(choice.tolist()) == {0, 1}
    strong = x[torch.arange(400), 0, 1 + choice]
    weak = x[torch.arange(400), 0, 2 - choice]
    assert torch.allclose(strong, torch.full_like(strong, 0.5 + 0.256))
    assert torch.allclose(weak, torch.full_like(weak, 0.5 - 0.256))
    noisy, _ = perceptual_decision_trials(2000, coherences=[0.0], seed=1)
    assert float(noisy[:, :7, 1:].std()) == pytest.approx(0.1, rel=0.05)


def test_relu_rnn_is_the_reference_recurrence() -> None:
    net = _net(6, 6)
    x, _ = perceptual_decision_trials(4, seed=2)
    h = torch.zeros(4, 6, dtype=F64)
    outs = []
    for t in range(x.shape[1]):
        h = torch.relu(x[:, t] @ net.weight_ih.T + h @ net.weight_hh.T)
        outs.append(h @ net.weight_ho.T)
    assert torch.allclose(net(x), torch.stack(outs, dim=1))


def test_kernel_alignment_is_the_references_on_the_recurrent_weights() -> None:
    net = _net(10, 3)
    before = copy.deepcopy(net)
    res = train_recurrent_rich_lazy(net, iterations=20, lr=0.05, kernel_trials=4, seed=3)
    xk, _ = perceptual_decision_trials(4, seed=torch.Generator().manual_seed(3))
    k0, kt = _reference_kernel(before, xk), _reference_kernel(net, xk)
    ka = float((k0 * kt).sum() / (k0.norm() * kt.norm()))
    assert res.kernel_alignment == pytest.approx(ka, rel=1e-9)
    assert res.kernel_distance == pytest.approx(1 - ka, rel=1e-9)
    with torch.no_grad():
        dw = float((net.weight_hh - before.weight_hh).norm() / before.weight_hh.norm())
    assert res.weight_change == pytest.approx(dw, rel=1e-9)
    assert 1.0 < res.effective_rank_init <= 3.0


def test_training_learns_the_decision_task() -> None:
    res = train_recurrent_rich_lazy(_net(40, 40), iterations=400, seed=4)
    assert res.accuracy > 0.65  # chance is 0.5; zero-coherence trials cap it near 0.9
    assert res.final_loss < 0.1  # log(3) = 1.1 at a uniform output


def test_bad_inputs_name_the_argument() -> None:
    with pytest.raises(ValueError, match="weight_hh"):
        ReluRNN(torch.ones(4, 3), torch.ones(4, 5), torch.ones(3, 4))
    with pytest.raises(ValueError, match="weight_ho"):
        ReluRNN(torch.ones(4, 3), torch.ones(4, 4), torch.ones(3, 5))
    with pytest.raises(TypeError, match="dtype"):
        ReluRNN(torch.ones(4, 3), torch.ones(4, 4), torch.ones(3, 4), dtype=torch.int64)
    with pytest.raises(ValueError, match="model"):
        train_recurrent_rich_lazy(ReluRNN(torch.ones(4, 2), torch.ones(4, 4), torch.ones(3, 4)))
    with pytest.raises(ValueError, match="momentum"):
        train_recurrent_rich_lazy(_net(4, 4), momentum=1.0)
    with pytest.raises(ValueError, match="coherences"):
        perceptual_decision_trials(3, coherences=[])
    with pytest.raises(TypeError, match="dtype"):
        perceptual_decision_trials(3, dtype=torch.int64)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_weights_are_copied_not_shared(dtype: torch.dtype) -> None:
    w_ih, w_hh, w_ho = torch.ones(4, 3, dtype=dtype), torch.eye(4, dtype=dtype), torch.ones(3, 4)
    saved = [w.clone() for w in (w_ih, w_hh, w_ho)]
    model = ReluRNN(w_ih, w_hh, w_ho, dtype=dtype)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    for given, before in zip((w_ih, w_hh, w_ho), saved, strict=True):
        assert torch.equal(given, before)


def test_hidden_states_and_gradients_are_the_update_loop() -> None:
    # h_t = relu(W_ih x_t + W_hh h_{t-1}), h_0 = 0: the buffered recurrence and its hand-written
    # backward against the loop written out in autograd ops
    model = _net(16, 16, seed=3)
    x = torch.randn(5, 8, 3, generator=torch.Generator().manual_seed(4), dtype=F64)
    x.requires_grad_()
    h = torch.zeros(5, 16, dtype=F64)
    ref = []
    for t in range(8):
        h = torch.relu(x[:, t] @ model.weight_ih.T + h @ model.weight_hh.T)
        ref.append(h)
    ref_states = torch.stack(ref, dim=1)
    weights = torch.randn(5, 8, 3, generator=torch.Generator().manual_seed(5), dtype=F64)
    inputs = [x, *model.parameters()]
    ref_grads = torch.autograd.grad((ref_states @ model.weight_ho.T * weights).sum(), inputs)
    states = model.hidden_states(x)
    torch.testing.assert_close(states, ref_states)
    grads = torch.autograd.grad((model(x) * weights).sum(), inputs)
    for a, b in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b)
    with torch.no_grad():
        torch.testing.assert_close(model.hidden_states(x), ref_states)
