"""The snn.delays reproduction's protocol follows the reference (Thvnvtos/SNN-delays).

Fast checks of the pieces, not the claim (the quick run is in test_reproductions.py): every
variant gets the same training (the reference trains once and never calls its fine_tune), the
delayed layers' outputs run (max_delay - 1) // 2 steps past their input (its right padding),
accuracy is read out as argmax sum_t softmax(out_t) (its loss = 'sum'), and the hidden
neurons use its ATan surrogate with alpha 5.
"""

import pytest
import torch
from torch import nn

from neuronkit.snn import ATan
from neuronkit.snn.data.spike_timing import spike_timing_dataset
from neuronkit.snn.reproductions.delays import VARIANTS, DelaySNN, _accuracy, _train

C, H, K, D = 8, 4, 3, 6


def _tiny_data():
    return spike_timing_dataset(
        n_classes=K, n_groups=4, channels_per_group=2, spacing=2, T=12, n_train=16, n_test=8,
        jitter=0.0, seed=0,
    )  # fmt: skip


def test_every_variant_gets_the_same_training() -> None:
    data = _tiny_data()
    # old keys included: a protocol that fine-tunes only the learned network would use them
    cfg = dict(epochs=2, batch_size=8, lr=1e-2, lr_delays=0.3, finetune_epochs=2,
               finetune_lr=0.5)  # fmt: skip
    batches = {}
    for v in VARIANTS:
        model = DelaySNN(C, H, K, D, v, seed=0)
        seen = []
        model.register_forward_hook(lambda m, i, o, seen=seen: seen.append(m.training))
        _train(model, data, cfg, seed=0)
        batches[v] = sum(seen)  # training-mode forwards = optimizer steps
    assert batches == {v: 2 * 2 for v in VARIANTS}


@pytest.mark.parametrize("variant", VARIANTS)
def test_delayed_layers_run_past_the_input_like_the_reference_padding(variant: str) -> None:
    model = DelaySNN(C, H, K, D, variant, seed=0).eval()
    T = 10
    out = model(torch.zeros(T, 2, C))
    tail = 0 if variant == "none" else (D - 1) // 2
    assert out.shape == (T + 2 * tail, 2, K)
    assert model.lif.surrogate == ATan(alpha=5.0)  # the reference's config.alpha


def test_a_spike_delayed_past_the_last_step_still_reaches_the_output() -> None:
    model = DelaySNN(1, 1, 1, D, "learned", seed=0).eval()
    with torch.no_grad():
        model.syn1.weight.fill_(1.0)
        model.syn2.weight.fill_(1.0)
        model.bn.weight.fill_(1.0)
        model.bn.bias.zero_()
        model.bn.running_mean.zero_()
        model.bn.running_var.fill_(1.0)
    model.syn1.positions.data.fill_(2.0)
    model.syn2.positions.data.zero_()
    model.syn1.round_delays()
    model.syn2.round_delays()
    T = 5
    x = torch.zeros(T, 1, 1)
    x[-1] = 2.0  # fires the hidden neuron 2 steps after the input ends
    out = model(x)
    assert out[T - 1 + 2, 0, 0] > 0


def test_accuracy_reads_summed_step_probabilities() -> None:
    class Fixed(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.tensor([[[10.0, 0.0]], [[0.0, 3.0]], [[0.0, 3.0]]])

    # the mean membrane would say class 0; the reference's readout says class 1
    assert _accuracy(Fixed(), torch.zeros(3, 1, 1), torch.tensor([1])) == 1.0


def test_hidden_neurons_reset_to_zero_like_the_reference_lifnode() -> None:
    # the reference's neuron.LIFNode keeps SpikingJelly's default v_reset = 0.0: a hard reset
    model = DelaySNN(C, H, K, D, "none", seed=0)
    x = torch.tensor([[[3.0]]])
    v = model.lif.run(x).v
    assert float(v[0, 0, 0]) == 0.0  # a subtractive reset would leave 3 - 1 = 2
