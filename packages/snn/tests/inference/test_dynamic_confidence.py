"""Dynamic Confidence: early exit on recorded outputs, sweep, Pareto front, oracle, runner."""

import numpy as np
import pytest
import torch
from torch import nn

from neuronkit.snn import LIF
from neuronkit.snn.inference import (
    accumulated_confidence,
    calibrate_threshold,
    confidence_sweep,
    dynamic_confidence,
    oracle_exit,
    pareto_front,
    run_dynamic_confidence,
    stepwise_accuracy,
)


def _loop_reference(outputs, threshold, scale):
    """The reference code's per-sample loop: accumulate out/30, softmax, break if > 0.6."""
    T, B, _ = outputs.shape
    preds, steps = [], []
    for b in range(B):
        acc = None
        for t in range(T):
            acc = outputs[t, b] * scale if acc is None else acc + outputs[t, b] * scale
            conf, pred = torch.softmax(acc.double(), 0).max(0)
            if conf > threshold:
                break
        preds.append(int(pred))
        steps.append(t + 1)
    return torch.tensor(preds), torch.tensor(steps)


def test_matches_the_reference_loop() -> None:
    g = torch.Generator().manual_seed(0)
    out = torch.randn(12, 40, 5, generator=g) * 4 + torch.randn(1, 40, 5, generator=g) * 3
    for th in (0.3, 0.6, 0.9):
        res = dynamic_confidence(out, threshold=th, scale=1 / 30)
        pred, steps = _loop_reference(out, th, 1 / 30)
        assert torch.equal(res.prediction, pred)
        assert torch.equal(res.exit_step, steps)
        assert torch.all(res.exited == (res.confidence > th))


def test_threshold_monotone_latency_and_extremes() -> None:
    g = torch.Generator().manual_seed(1)
    out = torch.randn(10, 64, 4, generator=g) + 2.0 * torch.eye(4)[torch.arange(64) % 4]
    targets = torch.arange(64) % 4
    lat = [dynamic_confidence(out, threshold=t, scale=0.5).mean_latency() for t in (0.3, 0.6, 0.9)]
    assert lat[0] <= lat[1] <= lat[2]
    never = dynamic_confidence(out, threshold=1.0)
    assert torch.all(never.exit_step == 10)
    assert not never.exited.any()
    full = stepwise_accuracy(out, targets)[-1].item()
    assert never.accuracy(targets) == pytest.approx(full)
    assert dynamic_confidence(out, threshold=0.0).mean_latency() == 1.0
    assert torch.all(dynamic_confidence(out, threshold=0.0, min_steps=3).exit_step == 3)


def test_accumulated_confidence_is_softmax_of_scaled_cumsum() -> None:
    out = torch.tensor([[[1.0, 0.0]], [[2.0, 1.0]]])
    p = accumulated_confidence(out, scale=0.5)
    torch.testing.assert_close(p[1, 0], torch.softmax(torch.tensor([1.5, 0.5]).double(), 0))


def test_oracle_is_earliest_correct_step_and_bounds_every_threshold() -> None:
    # sample 0: correct from step 2; sample 1: never correct; sample 2: tie at step 1, then right
    out = torch.tensor(
        [
            [[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]],
            [[2.0, 0.0], [1.0, 0.0], [0.0, 1.0]],
            [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]],
        ]
    )
    targets = torch.tensor([0, 1, 1])
    orc = oracle_exit(out, targets)
    assert orc.exit_step.tolist() == [2, 1, 2]
    assert orc.correct.tolist() == [True, False, True]
    assert orc.accuracy == pytest.approx(2 / 3)
    assert oracle_exit(out, targets, never_correct="last").exit_step.tolist() == [2, 3, 2]
    g = torch.Generator().manual_seed(2)
    rnd = torch.randn(8, 100, 3, generator=g) + torch.eye(3)[torch.arange(100) % 3]
    y = torch.arange(100) % 3
    orc = oracle_exit(rnd, y)
    sweep = confidence_sweep(rnd, y, scale=1.0)
    assert orc.accuracy >= sweep.accuracy.max().item()
    # at the oracle's accuracy or above, no threshold is faster
    ok = sweep.accuracy >= orc.accuracy
    assert not ok.any() or sweep.mean_latency[ok].min().item() >= orc.mean_latency


def test_sweep_front_and_calibration() -> None:
    g = torch.Generator().manual_seed(3)
    out = torch.randn(16, 200, 10, generator=g) + 1.5 * torch.eye(10)[torch.arange(200) % 10]
    y = torch.arange(200) % 10
    sweep = confidence_sweep(out, y, scale=1.0)
    assert sweep.thresholds.shape == sweep.accuracy.shape == sweep.mean_latency.shape
    front = pareto_front(sweep.accuracy, sweep.mean_latency)
    a, lat = sweep.accuracy[front], sweep.mean_latency[front]
    assert torch.all(lat[1:] >= lat[:-1])
    assert torch.all(a[1:] > a[:-1])
    th = calibrate_threshold(out, y, max_drop=0.0, scale=1.0)
    res = dynamic_confidence(out, threshold=th, scale=1.0)
    assert res.accuracy(y) >= sweep.full_accuracy - 1e-12
    assert res.mean_latency() <= 16
    loose = calibrate_threshold(out, y, max_drop=0.05, scale=1.0)
    assert dynamic_confidence(out, threshold=loose, scale=1.0).mean_latency() <= res.mean_latency()
    assert pareto_front(torch.tensor([0.5, 0.9, 0.8]), torch.tensor([1.0, 2.0, 3.0])).tolist() == [
        0,
        1,
    ]


def test_calibration_accepts_a_tie_with_the_full_T_accuracy() -> None:
    # 263 of 269 samples right at every step, the rest never: every threshold ties the full-T
    # accuracy 263/269, whose float32 rounding lies below its float64 value. The zero-drop
    # calibration must take the fastest threshold (exit at step 1), not fall back to 1.
    B, right = 269, 263
    out = torch.zeros(4, B, 2)
    out[:, :, 0] = 5.0
    y = torch.zeros(B, dtype=torch.long)
    y[right:] = 1
    assert float(torch.tensor(right / B, dtype=torch.float32)) < right / B
    th = calibrate_threshold(out, y, max_drop=0.0, scale=1.0)
    res = dynamic_confidence(out, threshold=th, scale=1.0)
    assert th < 1.0
    assert res.mean_latency() == 1.0
    assert res.accuracy(y) == stepwise_accuracy(out, y)[-1].item() == right / B


class _TinySNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc1, self.fc2, self.lif = nn.Linear(6, 12), nn.Linear(12, 3), LIF(tau=2.0)
        with torch.no_grad():
            self.fc1.weight.mul_(4)

    def forward(self, x):  # [T, B, 6] -> [T, B, 3]
        return self.fc2(self.lif(self.fc1(x)))

    def step(self, x_t, state):
        s, state = self.lif.step(self.fc1(x_t), state)
        return self.fc2(s), state


def test_runner_equals_recorded_and_skips_exited_samples() -> None:
    model = _TinySNN()
    x = torch.rand(10, 30, 6)
    with torch.no_grad():
        out = model(x)
    rec = dynamic_confidence(out, threshold=0.5, scale=0.5)
    run = run_dynamic_confidence(model.step, x, threshold=0.5, scale=0.5)
    assert torch.equal(run.exit_step, rec.exit_step)
    assert torch.equal(run.prediction, rec.prediction)
    assert torch.equal(run.exited, rec.exited)
    assert run.sample_steps == int(rec.exit_step.sum())
    for kw in ({"threshold": 0.4, "scale": 0.2, "min_steps": 3}, {"min_steps": 12}):
        a = dynamic_confidence(out, **kw)
        b = run_dynamic_confidence(model.step, x, **kw)
        assert torch.equal(a.exit_step, b.exit_step)
        assert torch.equal(a.exited, b.exited)
        assert torch.equal(a.prediction, b.prediction)
    assert run.sample_steps < 10 * 30 or bool((rec.exit_step == 10).all())


def test_bad_inputs() -> None:
    out = torch.randn(4, 3, 5)
    with pytest.raises(ValueError, match="outputs must have shape"):
        dynamic_confidence(torch.randn(4, 5))
    with pytest.raises(TypeError, match="floating-point"):
        dynamic_confidence(torch.ones(4, 3, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="threshold"):
        dynamic_confidence(out, threshold=1.5)
    with pytest.raises(ValueError, match="scale"):
        dynamic_confidence(out, scale=0.0)
    with pytest.raises(ValueError, match="finite"):
        dynamic_confidence(torch.full((2, 2, 3), float("nan")))
    with pytest.raises(ValueError, match="targets"):
        oracle_exit(out, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="class indices"):
        oracle_exit(out, torch.tensor([0, 1, 7]))
    with pytest.raises(ValueError, match="never_correct"):
        oracle_exit(out, torch.tensor([0, 1, 2]), never_correct="middle")
    with pytest.raises(ValueError, match="thresholds"):
        confidence_sweep(out, torch.tensor([0, 1, 2]), [2.0])
    for bad in ("0.5", [0.5, None]):  # were torch's "new(): invalid data type 'str'", ...
        with pytest.raises(TypeError, match=r"^thresholds must be None or a list or tensor"):
            confidence_sweep(out, torch.tensor([0, 1, 2]), bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^thresholds must be None or a list or tensor"):
            calibrate_threshold(out, torch.tensor([0, 1, 2]), thresholds=bad)  # type: ignore
    with pytest.raises(TypeError, match="step must be callable"):
        run_dynamic_confidence(None, torch.rand(3, 2, 4))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="step must return"):
        run_dynamic_confidence(lambda x, s: (x.sum(), s), torch.rand(3, 2, 4))


def test_run_confidence_keeps_the_outputs_dtype_for_binary_inputs() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(6, 4)
    x = torch.rand(5, 3, 6) < 0.5  # event input stored as bool; the step casts it

    def step(xt: torch.Tensor, state: None) -> tuple[torch.Tensor, None]:
        return lin(xt.float()).detach(), state

    run = run_dynamic_confidence(step, x, threshold=0.3, scale=1.0)
    outputs = torch.stack([lin(x[t].float()).detach() for t in range(5)])
    ref = dynamic_confidence(outputs, threshold=0.3, scale=1.0)
    assert run.confidence.dtype == torch.float32
    assert torch.allclose(run.confidence, ref.confidence)


def test_sweep_copies_read_only_thresholds() -> None:
    """A read-only numpy array was wrapped as is: torch warned of undefined behaviour, and the
    sweep's ``thresholds`` tensor wrote through to the caller's read-only array."""
    g = torch.Generator().manual_seed(0)
    out, y = torch.randn(4, 6, 3, generator=g), torch.arange(6) % 3
    th = np.array([0.0, 0.5, 0.9])
    th.setflags(write=False)
    sweep = confidence_sweep(out, y, th, scale=1.0)
    assert sweep.thresholds.tolist() == th.tolist()
    assert not np.shares_memory(sweep.thresholds.numpy(), th)
