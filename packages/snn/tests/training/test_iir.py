"""IIR-SNN: the trainable-leak neuron, readout, BN folding, ANN -> SNN and the schedule."""

import copy
from typing import Any

import pytest
import torch
from torch import nn

from neuronkit.snn import SeqDropout, SeqLinear, swap_surrogate
from neuronkit.snn.attacks import PDSG
from neuronkit.snn.training import (
    IIRLIF,
    AccumulatedReadout,
    ScaledTriangle,
    ann_to_snn,
    cnn_ann,
    fold_batchnorm,
    iir_cnn,
    iir_retrain,
    spike_counts,
    train_ann,
    train_at_latency,
)


def _reference_percentile(t: torch.Tensor, q: float) -> float:
    """The IIR-SNN reference's percentile: the k-th smallest value, k = 1 + round(q (n-1) / 100)."""
    flat = t.flatten()
    return float(flat.kthvalue(1 + round(q / 100.0 * (flat.numel() - 1))).values)


def test_iirlif_matches_reference_loop_and_learns_leak_threshold() -> None:
    torch.manual_seed(0)
    x = torch.rand(6, 3, 4) * 1.5
    n = IIRLIF(leak=0.8, threshold=0.7)
    s = n(x)
    u, prev, ref = torch.zeros(3, 4), torch.zeros(3, 4), []
    for t in range(6):
        u = 0.8 * u + x[t] - 0.7 * prev
        prev = (u >= 0.7).float()
        ref.append(prev)
    torch.testing.assert_close(s, torch.stack(ref))
    assert 0 < float(s.detach().mean()) < 1
    s.sum().backward()
    assert n.leak.grad is not None
    assert n.threshold.grad is not None
    assert torch.isfinite(n.leak.grad)
    assert float(n.threshold.grad) != 0.0


def test_a_leak_starting_at_one_gets_a_gradient() -> None:
    torch.manual_seed(0)
    x = torch.rand(6, 3, 4) * 1.5
    n = IIRLIF(leak=1.0, threshold=0.7)  # where converted networks start
    n(x).sum().backward()
    assert n.leak.grad is not None
    assert float(n.leak.grad) != 0.0
    with torch.no_grad():
        n.leak.fill_(1.3)  # beyond the bound the value stays 1
    torch.testing.assert_close(n(x), IIRLIF(leak=1.0, threshold=0.7)(x))


def _plain_iirlif(n: IIRLIF, x: torch.Tensor) -> torch.Tensor:
    """IIRLIF's update written plainly: zero state tensors, one ``x[t]`` per step."""
    lam = n.leak + (n.leak.clamp(0.0, 1.0) - n.leak).detach()
    theta = n.threshold.clamp(min=n.min_threshold)
    u, s, out = torch.zeros_like(x[0]), torch.zeros_like(x[0]), []
    for t in range(x.shape[0]):
        u = lam * u + x[t] - theta * s
        s = n.surrogate(u / theta - 1.0)
        out.append(s)
    return torch.stack(out)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("leak", [0.8, 1.0])
@pytest.mark.parametrize("T", [1, 4])
def test_iirlif_matches_the_plain_formulation(leak: float, T: int, dtype: torch.dtype) -> None:
    """The buffered forward does the plain loop's arithmetic (the same spikes, bit for bit);
    the hand-written backward gives the plain loop's gradients for the input, the leak and
    the threshold (up to rounding: it sums in another order)."""
    torch.manual_seed(T)
    x0, w = torch.rand(T, 3, 5, dtype=dtype) * 1.5, torch.randn(T, 3, 5, dtype=dtype)

    def run(forward: Any) -> list[torch.Tensor]:
        n = IIRLIF(leak=leak, threshold=0.6).to(dtype)
        x = x0.clone().requires_grad_()
        s = forward(n, x)
        (s * w).sum().backward()
        return [s.detach(), x.grad, n.leak.grad, n.threshold.grad]

    got, want = run(IIRLIF.__call__), run(_plain_iirlif)
    assert torch.equal(got[0], want[0])
    for g, r in zip(got[1:], want[1:], strict=True):
        torch.testing.assert_close(g, r)
    assert float(got[3]) != 0.0
    with torch.no_grad():  # the no-grad loop: the same spikes
        assert torch.equal(IIRLIF(leak=leak, threshold=0.6).to(dtype)(x0), want[0])


def test_iirlif_second_order_gradients_match_the_plain_formulation() -> None:
    """create_graph=True differentiates the plain recurrence: gradient penalties work."""
    torch.manual_seed(0)
    x0, w = torch.rand(4, 3, 5, dtype=torch.float64) * 1.5, torch.randn(4, 3, 5).double()

    def run(forward: Any) -> list[torch.Tensor]:
        n = IIRLIF(leak=0.8, threshold=0.6).double()
        x = x0.clone().requires_grad_()
        (gx,) = torch.autograd.grad((forward(n, x) * w).sum(), x, create_graph=True)
        gx.pow(2).sum().backward()
        return [x.grad, n.leak.grad, n.threshold.grad]

    got, want = run(IIRLIF.__call__), run(_plain_iirlif)
    for g, r in zip(got, want, strict=True):
        torch.testing.assert_close(g, r)
    assert float(got[0].abs().sum()) > 0.0


def test_iirlif_under_torch_func_runs_the_plain_loop() -> None:
    """torch.func transforms (no out= buffers there) get the plain loop's values."""
    torch.manual_seed(0)
    n = IIRLIF(leak=0.8, threshold=0.6).double()
    x, w = torch.rand(4, 3, 5, dtype=torch.float64) * 1.5, torch.randn(4, 3, 5).double()
    grad = torch.func.grad(lambda x_: (n(x_) * w).sum())(x)
    xr = x.clone().requires_grad_()
    (_plain_iirlif(n, xr) * w).sum().backward()
    torch.testing.assert_close(grad, xr.grad)
    assert float(grad.detach().abs().sum()) > 0.0


def test_iirlif_bad_inputs_and_frozen() -> None:
    with pytest.raises(ValueError, match="leak"):
        IIRLIF(leak=1.5)
    with pytest.raises(ValueError, match="threshold"):
        IIRLIF(threshold=0.0)
    with pytest.raises(ValueError, match="x"):
        IIRLIF()(torch.rand(3, 4))
    with pytest.raises(ValueError, match="T >= 1"):
        IIRLIF()(torch.rand(0, 2, 4))
    nan = torch.rand(5, 2, 4)
    nan[2, 1, 3] = float("nan")
    with pytest.raises(ValueError, match="x must be finite"):
        IIRLIF()(nan)  # as the other neurons
    with pytest.raises(ValueError, match="x must be finite"):
        IIRLIF(leak=0.0)(torch.full((3, 2, 4), float("inf")))
    frozen = IIRLIF(learn_leak=False, learn_threshold=False)
    assert list(frozen.parameters()) == []


def test_scaled_triangle() -> None:
    g = ScaledTriangle().derivative(torch.tensor([-1.5, -0.5, 0.0, 0.5]))
    torch.testing.assert_close(g, torch.tensor([0.0, 0.15, 0.3, 0.15]))


def test_accumulated_readout() -> None:
    lin = nn.Linear(4, 3)
    x = torch.rand(5, 2, 4)
    torch.testing.assert_close(AccumulatedReadout(lin)(x), lin(x.mean(0)))
    torch.testing.assert_close(AccumulatedReadout(lin, average=False)(x), lin(x).sum(0))
    with pytest.raises(ValueError, match="x"):
        AccumulatedReadout(lin)(torch.rand(2, 4))


@pytest.mark.parametrize(
    ("layer", "bn", "shape"),
    [
        (nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), (4, 2, 5, 5)),
        (nn.Linear(6, 3, bias=False), nn.BatchNorm1d(3), (4, 6)),
    ],
)
def test_fold_batchnorm(layer: nn.Module, bn: nn.Module, shape: tuple) -> None:
    torch.manual_seed(0)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    bn.eval()
    before = copy.deepcopy(layer.state_dict())
    folded = fold_batchnorm(layer, bn)
    x = torch.randn(shape)
    torch.testing.assert_close(folded(x), bn(layer(x)), atol=1e-5, rtol=1e-5)
    for k, v in layer.state_dict().items():
        assert torch.equal(v, before[k])
    with pytest.raises(ValueError, match="num_features"):
        fold_batchnorm(layer, nn.BatchNorm1d(5))
    with pytest.raises(TypeError, match="layer"):
        fold_batchnorm(nn.ReLU(), bn)


def test_ann_to_snn_thresholds_are_percentiles() -> None:
    ann = cnn_ann(seed=0)
    ann.eval()
    x = torch.rand(64, 1, 8, 8)
    snn = ann_to_snn(ann, x, percentile=90.0)
    neurons = [m for m in snn if isinstance(m, IIRLIF)]
    assert len(neurons) == 4
    assert isinstance(snn[-1], AccumulatedReadout)
    # the first neuron's threshold: 90th percentile of conv1 + BN (folded) pre-activations
    with torch.no_grad():
        pre = ann[1](ann[0](x))
    want = _reference_percentile(pre, 90.0)
    assert float(neurons[0].threshold.detach()) == pytest.approx(want, rel=1e-5)
    assert all(float(n.leak.detach()) == 1.0 for n in neurons)
    assert snn(torch.rand(3, 2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(ValueError, match=r"nn\.Linear"):
        ann_to_snn(nn.Sequential(nn.Linear(4, 4), nn.ReLU()), torch.rand(3, 4))
    with pytest.raises(TypeError, match="ann"):
        ann_to_snn(nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2)), torch.rand(3, 4))


def test_ann_to_snn_calibrates_on_spikes_like_the_reference() -> None:
    # SayeedChowdhury/IIR-SNN, find_threshold: the ANN's (BN-folded) weights are kept, and
    # each threshold is the largest per-step percentile of the current that the layers below,
    # already at their thresholds, drive into the neuron (no weight normalization)
    torch.manual_seed(0)
    ann = nn.Sequential(
        nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 3)
    )  # fmt: skip
    ann.eval()
    x = torch.rand(50, 6)
    snn = ann_to_snn(ann, x, percentile=80.0, calib_steps=7)
    lins = [m for m in snn.modules() if isinstance(m, nn.Linear)]
    for a, b in zip([ann[0], ann[2], ann[4]], lins):
        torch.testing.assert_close(b.weight, a.weight)
    with torch.no_grad():  # an IF neuron with soft reset over 7 steps of constant input
        theta1 = _reference_percentile(ann[0](x), 80.0)
        u, s, want = torch.zeros(50, 12), torch.zeros(50, 12), []
        for _ in range(7):
            u = u + ann[0](x) - theta1 * s
            s = (u >= theta1).float()
            want.append(_reference_percentile(ann[2](s), 80.0))
    thr = [float(m.threshold.detach()) for m in snn if isinstance(m, IIRLIF)]
    assert thr == pytest.approx([theta1, max(want)], rel=1e-5)
    # the ANN-statistics variant normalizes the next layer's weights by the threshold
    old = ann_to_snn(ann, x, percentile=80.0, calibration="ann")
    old_lins = [m for m in old.modules() if isinstance(m, nn.Linear)]
    torch.testing.assert_close(old_lins[1].weight, ann[2].weight * theta1)
    with pytest.raises(ValueError, match="calibration"):
        ann_to_snn(ann, x, calibration="max")


def _plain_spike_thresholds(snn: nn.Sequential, x: torch.Tensor, q: float, steps: int) -> list:
    """The spike calibration written plainly: for each neuron in turn, the whole prefix run
    from rest at every step, the percentile of every step's current, the largest kept."""
    layers = list(snn)
    thresholds = []
    with torch.no_grad():
        for j, neuron in enumerate(layers):
            if not isinstance(neuron, IIRLIF):
                continue
            state: dict = {}
            best = -float("inf")
            for _ in range(steps):
                h = x
                for k, m in enumerate(layers[:j]):
                    if isinstance(m, IIRLIF):
                        lam = float(m.leak.clamp(0.0, 1.0))
                        theta = float(m.threshold)
                        u, s = state.get(k, (torch.zeros_like(h), torch.zeros_like(h)))
                        u = lam * u + h - theta * s
                        s = (u >= theta).to(h.dtype)
                        state[k] = (u, s)
                        h = s
                    else:
                        h = m(h.unsqueeze(0)).squeeze(0)
                best = max(best, _reference_percentile(h, q))
            neuron.threshold.fill_(best)  # the layers above see it, as in the calibration
            thresholds.append(best)
    return thresholds


@pytest.mark.parametrize("leak", [0.7, 1.0])
def test_ann_to_snn_spike_calibration_matches_the_plain_loop_exactly(leak: float) -> None:
    """Running the neuron-free first layers once, updating the membranes in place and skipping
    the k-th value search when the running maximum already bounds it give the same thresholds
    to the last bit."""
    ann = cnn_ann(channels=(3, 4, 4), hidden=8, seed=0)
    ann.eval()
    x = torch.rand(40, 1, 8, 8)
    snn = ann_to_snn(ann, x, percentile=85.0, leak=leak, calib_steps=6)
    got = [float(m.threshold.detach()) for m in snn if isinstance(m, IIRLIF)]
    ref = copy.deepcopy(snn)
    assert _plain_spike_thresholds(ref, x, 85.0, 6) == got
    assert len(set(got)) == 4


def test_ann_to_snn_keeps_dropout_with_one_mask_over_time() -> None:
    ann = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 2))
    snn = ann_to_snn(ann, torch.rand(32, 4))
    drops = [m for m in snn if isinstance(m, SeqDropout)]
    assert len(drops) == 1
    assert drops[0].p == 0.5


def test_iir_cnn_shape_and_depth() -> None:
    net = iir_cnn(seed=0)
    weights = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert len(weights) >= 4
    assert net(torch.rand(2, 3, 1, 8, 8)).shape == (3, 10)
    with pytest.raises(ValueError, match="image_size"):
        iir_cnn(image_size=6, channels=(4, 4, 4))


def test_iir_retrain_and_spike_counts() -> None:
    torch.manual_seed(0)
    x = torch.rand(40, 1, 8, 8)
    y = torch.arange(40) % 10
    net = iir_cnn(channels=(4, 4), hidden=8, seed=0, threshold=0.3)
    res = iir_retrain(net, (x, y, x, y), timesteps=(3, 1), epochs_per_stage=1, batch_size=20)
    assert [s.T for s in res.stages] == [3, 1]
    assert all(0.0 <= s.accuracy <= 1.0 and len(s.thresholds) == 3 for s in res.stages)
    counts = spike_counts(net, x, 2)
    assert counts["total"] == pytest.approx(sum(v for k, v in counts.items() if k != "total"))
    assert len(res.rows()) == 2
    with pytest.raises(ValueError, match="decreasing"):
        iir_retrain(net, (x, y, x, y), timesteps=(1, 2), epochs_per_stage=0)
    with pytest.raises(ValueError, match="epochs_per_stage"):
        iir_retrain(net, (x, y, x, y), timesteps=(2, 1), epochs_per_stage=[1])
    with pytest.raises(TypeError, match="data"):
        iir_retrain(net, (x, y), timesteps=(1,))  # type: ignore[arg-type]


def test_iirlif_restarts_a_stateful_surrogate_every_sequence() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(SeqLinear(6, 8), IIRLIF(1.0, 0.5), AccumulatedReadout(nn.Linear(8, 3)))
    x = torch.rand(4, 2, 6)
    y = torch.tensor([0, 1])

    def input_grad() -> torch.Tensor:
        xg = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(nn.functional.cross_entropy(model(xg), y), xg)
        return g

    with swap_surrogate(model, PDSG()):
        first, second = input_grad(), input_grad()
    assert torch.equal(first, second)  # PDSG's statistics restart with each sequence
    assert bool(first.abs().sum() > 0)


def test_seed_range_is_checked_before_torch_sees_it() -> None:
    with pytest.raises(ValueError, match=r"seed must be < 2\*\*64"):
        iir_cnn(seed=2**64)
    with pytest.raises(ValueError, match=r"seed must be < 2\*\*64"):
        cnn_ann(seed=2**70)


def test_evaluation_checks_labels_and_keeps_each_submodules_mode() -> None:
    from neuronkit.snn.training.iir import evaluate_latency

    model = iir_cnn(seed=0)
    x, y = torch.rand(6, 1, 8, 8), torch.randint(0, 10, (6,))
    with pytest.raises(ValueError, match="matching B"):
        evaluate_latency(model, x, y.view(-1, 1), 2)
    with pytest.raises(ValueError, match=r"y must hold class labels in \[0, 9\]"):
        evaluate_latency(model, x, y + 100, 2)
    model.train()
    model[0].eval()  # a frozen submodule stays frozen
    evaluate_latency(model, x, y, 2)
    spike_counts(model, x, 2)
    assert model.training
    assert not model[0].training


def test_latency_functions_reject_a_time_major_output() -> None:
    """A model without AccumulatedReadout returns [T, B, C]: evaluate_latency counted T x B
    hits over N samples (accuracy 1.5) and train_at_latency failed in torch's cross-entropy."""
    from neuronkit.snn.training import evaluate_latency, train_at_latency

    torch.manual_seed(0)
    x, y = torch.rand(16, 10), torch.randint(0, 3, (16,))
    time_major = nn.Sequential(SeqLinear(10, 3))
    for T in (1, 4):
        with pytest.raises(ValueError, match=r"model must return logits \[B, C\].*Accumulated"):
            evaluate_latency(time_major, x, y, T)
        with pytest.raises(ValueError, match=r"model must return logits \[B, C\].*Accumulated"):
            train_at_latency(time_major, x, y, T, 1, batch_size=4, show_progress=False)
    readout = nn.Sequential(AccumulatedReadout(nn.Linear(10, 3)))
    assert 0.0 <= evaluate_latency(readout, x, y, 4) <= 1.0
    assert len(train_at_latency(readout, x, y, 2, 1, batch_size=4, show_progress=False)) == 1


def test_trainers_check_their_labels_and_inputs() -> None:
    """train_ann and train_at_latency failed in cross-entropy with float labels ("expected
    target dtype to be Long") or labels outside the classes (IndexError); train_ann trained on
    a NaN input (every weight NaN); spike_counts failed on a 0-d x with IndexError."""
    x, y = torch.rand(6, 1, 8, 8), torch.randint(0, 10, (6,))
    kw: dict[str, Any] = {"batch_size": 4, "show_progress": False}
    ann, snn = cnn_ann(channels=(2, 2, 2), hidden=4, seed=0), iir_cnn(channels=(2, 2, 2), seed=0)
    for train in (lambda y: train_ann(ann, x, y, 1, **kw),
                  lambda y: train_at_latency(snn, x, y, 1, 1, **kw)):  # fmt: skip
        with pytest.raises(TypeError, match=r"^y must hold integer class indices"):
            train(y.float())
        for bad in (y + 10, y - 10):
            with pytest.raises(ValueError, match=r"^y must hold class labels in \[0, 9\]"):
                train(bad)
        assert len(train(y.int())) == 1  # any integer labels
    with pytest.raises(ValueError, match=r"^x must be finite"):
        train_ann(ann, torch.full_like(x, float("nan")), y, 1, **kw)
    with pytest.raises(ValueError, match=r"^x must be a batch \[N, \.\.\.\]"):
        spike_counts(snn, torch.tensor(1.0), 2)


def test_calibration_inputs_must_be_non_empty_and_finite() -> None:
    ann = cnn_ann(seed=0)
    with pytest.raises(ValueError, match="x_calib must be a non-empty batch"):
        ann_to_snn(ann, torch.rand(0, 1, 8, 8))
    with pytest.raises(ValueError, match="x_calib must be finite"):
        ann_to_snn(ann, torch.full((4, 1, 8, 8), float("nan")))


def test_train_ann_runs_under_no_grad_with_an_input_that_has_a_graph() -> None:
    """Under ``torch.no_grad()`` train_ann failed with torch's "element 0 of tensors does not
    require grad"; an input with a graph failed on the second batch ("Trying to backward through
    the graph a second time"): every batch shared the graph of ``x``."""
    from neuronkit.snn.training import train_ann

    torch.manual_seed(0)
    base = torch.randn(8, 6, requires_grad=True)
    x, y = base * 1.0, torch.randint(0, 3, (8,))
    ann = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    ref = copy.deepcopy(ann)
    train_ann(ref, x.detach(), y, 1, batch_size=4)
    with torch.no_grad():
        train_ann(ann, x, y, 1, batch_size=4)  # two batches
    for p, q in zip(ann.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q)
    assert base.grad is None
    with torch.inference_mode(), pytest.raises(RuntimeError, match=r"^train_ann needs autograd"):
        train_ann(ann, x.detach(), y, 1, batch_size=4)


def test_iir_retrain_runs_under_no_grad() -> None:
    torch.manual_seed(0)
    x, y = torch.rand(8, 1, 8, 8), torch.arange(8) % 10
    net = iir_cnn(channels=(2, 2), hidden=4, seed=0, threshold=0.3)
    with torch.no_grad():
        res = iir_retrain(net, (x, y, x, y), timesteps=(2,), epochs_per_stage=1, batch_size=4)
    assert res.stages[0].losses  # was torch's "element 0 of tensors does not require grad"
    with torch.inference_mode(), pytest.raises(RuntimeError, match=r"^iir_retrain needs"):
        iir_retrain(net, (x, y, x, y), timesteps=(1,), epochs_per_stage=1, batch_size=4)


def test_trainers_adam_is_the_per_tensor_update_bitwise(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both trainers use the multi-tensor Adam update: the same arithmetic as the per-tensor
    loop (torch's CPU default), so the trained weights are the same."""
    torch.manual_seed(0)
    x, y = torch.rand(40, 1, 8, 8), torch.randint(0, 10, (40,))
    snn = iir_cnn(channels=(2, 3), hidden=8, seed=0)
    ann = cnn_ann(channels=(2, 3), hidden=8, seed=0)
    real = torch.optim.Adam
    trained = []
    for foreach in (None, False):
        if foreach is False:
            monkeypatch.setattr(
                torch.optim, "Adam", lambda params, **kw: real(params, **{**kw, "foreach": False})
            )
        a, b = copy.deepcopy(snn), copy.deepcopy(ann)
        train_at_latency(a, x, y, 2, 2, batch_size=16, weight_decay=1e-3, seed=0)
        train_ann(b, x, y, 2, batch_size=16, weight_decay=1e-3, seed=0)
        trained.append([*a.state_dict().values(), *b.state_dict().values()])
    for got, want in zip(*trained, strict=True):
        assert torch.equal(got, want)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_spike_counts_sums_half_spikes_wide(dtype: torch.dtype) -> None:
    # 300 samples x 473 always-firing neurons: a batch sum of 141900 spikes reads 142336 in
    # bfloat16 and inf in float16
    net = nn.Sequential(IIRLIF(1.0, 0.5), AccumulatedReadout(nn.Identity())).to(dtype)
    counts = spike_counts(net, torch.ones(300, 473, dtype=dtype), 1, batch_size=300)
    assert counts == {"0": 473.0, "total": 473.0}
