import numpy as np
import pytest
import torch

from neuronkit.common import new_figure
from neuronkit.snn import LIF, plot


@pytest.fixture
def run():  # [T=30, B=3, 2, 5]: a batch of 10 neurons per sample
    torch.manual_seed(0)
    return LIF(2.0).run(torch.rand(30, 3, 2, 5) * 1.6)


def test_raster_draws_one_tick_per_spike_of_the_chosen_sample_and_neurons(run):
    spikes = run.spikes
    ax = plot.raster(spikes, sample=2, neurons=[7, 1], dt=0.5)
    ticks = ax.collections[0].get_offsets()
    flat = spikes[:, 2].reshape(30, 10)[:, [7, 1]]
    t, row = np.nonzero(flat.numpy())
    assert len(ticks) == len(t) > 0
    np.testing.assert_array_equal(ticks, np.stack([t * 0.5, row], axis=1))
    assert [label.get_text() for label in ax.get_yticklabels()] == ["7", "1"]
    assert ax.get_title().startswith(f"{len(t)} spikes")


def test_raster_reads_booleans_arrays_lists_and_graph_tensors():
    pattern = [[0, 1], [1, 1], [0, 0]]  # [T=3, N=2]: 3 spikes
    x = torch.tensor(pattern, dtype=torch.float32, requires_grad=True)
    for spikes in (pattern, np.array(pattern, dtype=bool), x, x.bool()):
        assert len(plot.raster(spikes).collections[0].get_offsets()) == 3


def test_raster_draws_on_the_axes_given():
    _, axes = new_figure(1, 2)
    assert plot.raster(torch.eye(4), ax=axes[1]) is axes[1]
    assert not axes[0].collections
    assert axes[1].collections


def test_traces_offsets_each_neuron_and_marks_spikes_at_the_threshold(run):
    ax = plot.traces(run.v, spikes=run.spikes, threshold=1.0, sample=0, neurons=[3, 4])
    v = run.v[:, 0].reshape(30, 10)[:, [3, 4]].numpy()
    s = run.spikes[:, 0].reshape(30, 10)[:, [3, 4]].numpy()
    spacing = 1.2 * (max(v.max(), 1.0) - min(v.min(), 1.0))
    membranes = [line for line in ax.lines if line.get_linestyle() == "-"]
    markers = [line for line in ax.lines if line.get_marker() == "o"]
    thresholds = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(membranes) == len(markers) == len(thresholds) == 2
    for k in range(2):
        np.testing.assert_allclose(membranes[k].get_ydata(), v[:, k] - k * spacing, atol=1e-6)
        fired = np.nonzero(s[:, k])[0]
        np.testing.assert_array_equal(markers[k].get_xdata(), fired)
        np.testing.assert_allclose(markers[k].get_ydata(), 1.0 - k * spacing, atol=1e-6)
        np.testing.assert_allclose(thresholds[k].get_ydata(), 1.0 - k * spacing, atol=1e-6)
    assert [label.get_text() for label in ax.get_yticklabels()] == ["3", "4"]


def test_traces_default_to_the_first_five_neurons(run):
    ax = plot.traces(run.v)
    assert len(ax.lines) == 5


def test_population_rate_is_the_mean_over_neurons_with_a_band_across_samples(run):
    ax = plot.population_rate(run.spikes, dt=2.0, label="LIF")
    rates = run.spikes.reshape(30, 3, 10).mean(dim=2) / 2.0  # [T, B]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), rates.mean(dim=1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(ax.lines[0].get_xdata(), np.arange(30) * 2.0)
    assert len(ax.collections) == 1  # the +- sd band
    assert ax.get_legend().get_texts()[0].get_text() == "LIF"
    single = plot.population_rate(run.spikes[:, 0].reshape(30, 10))
    assert not single.collections  # one sample: no band


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: plot.raster(torch.ones(5)), ValueError, r"spikes must be time-major"),
        (lambda: plot.raster(torch.ones(0, 3)), ValueError, r"T >= 1"),
        (lambda: plot.raster("spikes"), TypeError, r"spikes must be a real array"),
        (lambda: plot.raster(torch.ones(4, 3), sample=1), ValueError, r"sample must be 0"),
        (lambda: plot.raster(torch.ones(4, 2, 3), sample=2), ValueError, r"size 2\), got 2"),
        (lambda: plot.raster(torch.ones(4, 2, 3), sample=0.5), TypeError, r"sample must be"),
        (lambda: plot.raster(torch.ones(4, 3), neurons=[0, 3]), ValueError, r"\[0, 2\]"),
        (lambda: plot.raster(torch.ones(4, 3), neurons=[0.5]), ValueError, r"integers"),
        (lambda: plot.raster(torch.ones(4, 3), neurons=2), TypeError, r"neurons must be"),
        (lambda: plot.raster(torch.ones(4, 3), dt=0.0), ValueError, r"dt must be > 0"),
        (lambda: plot.raster(torch.ones(4, 3), ax="left"), TypeError, r"ax must be"),
        (
            lambda: plot.traces(torch.ones(4, 3), spikes=torch.ones(4, 2)),
            ValueError,
            r"spikes must have the membrane's shape",
        ),
        (
            lambda: plot.traces(torch.tensor([[0.0], [float("nan")]])),
            ValueError,
            r"membrane must be finite",
        ),
        (lambda: plot.traces(torch.ones(4, 3), threshold="1"), TypeError, r"threshold"),
        (lambda: plot.population_rate(torch.ones(4, 0)), ValueError, r"at least one neuron"),
        (lambda: plot.population_rate(torch.ones(4, 2), label=3), TypeError, r"label"),
    ],
)
def test_bad_arguments_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
