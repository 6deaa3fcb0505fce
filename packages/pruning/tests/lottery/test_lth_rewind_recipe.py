"""Tests of the recipe of the pruning.lth_rewind reproduction (open_lth's small-model recipe)."""

import math

import pytest
import torch
from torch import nn

from neuronkit.pruning.lottery import (
    global_magnitude_prune,
    ones_masks,
    prunable_weights,
    reinitialize,
)
from neuronkit.pruning.reproductions import lth_rewind


def test_lenet_is_kaiming_normal_initialized_like_open_lth() -> None:
    # open_lth models/initializers.py kaiming_normal, applied by every model's constructor
    torch.manual_seed(0)
    stds = {n: [] for n in ("0", "3", "7", "9")}
    for _ in range(20):
        net = lth_rewind._lenet()
        for n in stds:
            stds[n].append(float(dict(net.named_parameters())[f"{n}.weight"].detach().std()))
    fan_in = {"0": 9, "3": 72, "7": 64, "9": 32}
    for n, values in stds.items():
        assert sum(values) / len(values) == pytest.approx(math.sqrt(2.0 / fan_in[n]), rel=0.1)


def test_reinit_control_redraws_from_the_same_initializer() -> None:
    torch.manual_seed(1)
    model = lth_rewind._lenet()
    fresh = reinitialize(model, seed=5, init=lth_rewind._kaiming_normal)
    w0, w1 = model[7].weight.detach(), fresh[7].weight.detach()
    assert not torch.equal(w0, w1)
    assert float(w1.std()) == pytest.approx(math.sqrt(2.0 / 64), rel=0.1)


def test_output_layer_dense_and_sparsity_counts_it() -> None:
    # open_lth mnist_lenet: pruning_layers_to_ignore='fc.weight'; its Mask keeps the ignored
    # layer (all ones), so the reported sparsity counts the dense output layer
    torch.manual_seed(2)
    net = lth_rewind._lenet()
    assert prunable_weights(net)[-1] == lth_rewind.OUTPUT_LAYER
    masks = ones_masks(net, ignore=(lth_rewind.OUTPUT_LAYER,))
    assert lth_rewind.OUTPUT_LAYER not in masks
    params = dict(net.named_parameters())
    n_weights = sum(params[n].numel() for n in prunable_weights(net))
    n_prunable = sum(m.numel() for m in masks.values())
    assert (n_weights, n_prunable) == (3592, 3272)
    check_round = lth_rewind._rounds_to_reach(0.85, n_prunable, n_weights, 0.2)
    sparsities = [lth_rewind._network_sparsity(masks, n_weights)]
    for _ in range(check_round):
        masks = global_magnitude_prune(net, masks, 0.2)
        sparsities.append(lth_rewind._network_sparsity(masks, n_weights))
    assert sparsities[check_round] >= 0.85 > sparsities[check_round - 1]
    assert check_round == 13
    pruned_prunable = sum(int((~m).sum()) for m in masks.values()) / n_prunable
    assert pruned_prunable > sparsities[check_round]  # the dense layer dilutes the sparsity


def test_training_recipe_is_open_lth_mnist_lenet() -> None:
    # models/mnist_lenet.py default_hparams: sgd, lr 0.1, batch 128, 40ep; momentum,
    # weight decay, milestones and warmup are TrainingHparams defaults (0 / None)
    assert lth_rewind.EPOCHS == 40
    cfg = lth_rewind._train_config(440)
    assert (cfg.optimizer, cfg.lr, cfg.batch_size) == ("sgd", 0.1, 128)
    assert (cfg.momentum, cfg.weight_decay, cfg.milestones, cfg.warmup) == (0.0, 0.0, (), 0)
    assert isinstance(lth_rewind._lenet()[9], nn.Linear)
