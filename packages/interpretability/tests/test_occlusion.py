import itertools
import math

import pytest
import torch
from torch import nn

from neuronkit.interpretability import occlusion


def _loop_oracle(model, x, window, strides, baseline, target):
    """Occlusion one window position at a time, by slicing (no masks)."""
    shape = x.shape[1:]
    starts = [
        range(0, (math.ceil((n - w) / s) + 1) * s, s)
        for n, w, s in zip(shape, window, strides, strict=True)
    ]
    with torch.no_grad():
        initial = model(x)[torch.arange(len(x)), target]
        total, count = torch.zeros_like(x), torch.zeros(shape, dtype=x.dtype)
        for corner in itertools.product(*starts):
            region = tuple(slice(c, c + w) for c, w in zip(corner, window, strict=True))
            occluded = x.clone()
            base = (
                baseline
                if isinstance(baseline, float)
                else baseline.expand_as(x)[(slice(None), *region)]
            )
            occluded[(slice(None), *region)] = base
            drop = initial - model(occluded)[torch.arange(len(x)), target]
            total[(slice(None), *region)] += drop.view(-1, *([1] * len(shape)))
            count[region] += 1
    return total / count


def _cnn():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 5, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(5 * 7 * 6, 4)
    ).double()


@pytest.mark.parametrize(
    ("window", "strides"),
    [((1, 2, 2), 1), ((2, 3, 4), (1, 3, 2)), ((2, 7, 6), 1), ((1, 1, 1), 1)],
)
@pytest.mark.parametrize("batch_size", [1, 9, 10_000])
def test_occlusion_equals_a_window_by_window_loop(window, strides, batch_size):
    model = _cnn()
    x = torch.randn(3, 2, 7, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    target = torch.tensor([0, 3, 2])
    per_dim = strides if isinstance(strides, tuple) else (strides,) * 3
    expected = _loop_oracle(model, x, window, per_dim, 0.25, target)
    got = occlusion(
        model, x, window, target, strides=strides, baselines=0.25, batch_size=batch_size
    )
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)


def test_a_baseline_image_and_one_dimensional_inputs():
    torch.manual_seed(2)
    mlp = nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 1)).double()
    x = torch.randn(4, 10, dtype=torch.float64)
    baseline = torch.randn(10, dtype=torch.float64)
    got = occlusion(mlp, x, 3, strides=2, baselines=baseline)  # one output: target None

    def model(v):
        return torch.cat([mlp(v), mlp(v)], dim=1)  # the oracle selects column 0

    expected = _loop_oracle(model, x, (3,), (2,), baseline, torch.zeros(4, dtype=torch.long))
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)


def test_the_model_runs_in_eval_mode_and_is_restored():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(6, 6), nn.Dropout(0.5), nn.Linear(6, 2)).train()
    x = torch.randn(2, 6)
    before = x.clone()
    first = occlusion(model, x, 2, 1)
    assert model.training
    torch.testing.assert_close(occlusion(model, x, 2, 1), first)  # dropout was off
    torch.testing.assert_close(x, before)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"window": (1, 8, 2)}, ValueError, r"window\[1\] = 8 exceeds the input's size 7"),
        ({"window": (1, 2, 2), "strides": (1, 3, 1)}, ValueError, r"strides\[1\] = 3 must be"),
        ({"window": (2, 2)}, ValueError, r"window must give one size per non-batch dimension"),
        ({"window": (1, 0, 2)}, ValueError, r"window\[1\] must be >= 1"),
        ({"window": "2"}, TypeError, r"window must be an int or a tuple"),
        ({"window": 1, "baselines": torch.zeros(3, 7)}, ValueError, r"baselines must broadcast"),
        ({"window": 1, "baselines": torch.zeros(1, dtype=torch.long)}, TypeError, r"baselines"),
        ({"window": 1, "baselines": float("nan")}, ValueError, r"baselines must be finite"),
        ({"window": 1, "batch_size": 0}, ValueError, r"batch_size must be >= 1"),
        ({"window": 1, "target": 4}, ValueError, r"target must be in \[0, 4\)"),
        ({"window": 1, "target": None}, ValueError, r"target must be given"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, match):
    x = torch.randn(2, 2, 7, 6, dtype=torch.float64)
    kwargs = {"target": 0, **kwargs}
    with pytest.raises(error, match=match):
        occlusion(_cnn(), x, **kwargs)


def test_inputs_without_non_batch_dimensions_are_refused():
    with pytest.raises(ValueError, match="at least one non-batch dimension"):
        occlusion(lambda v: v, torch.randn(4), 1)
