"""Reusing what a call leaves on a model, and what a call is given back.

- ``lottery.attach_masks`` twice on one model: two pre-hooks enforced the intersection of the
  two mask sets, silently; the second call is refused.
- ``lottery.train`` / ``lottery.accuracy`` with a model that returns a tuple failed with
  ``'tuple' object has no attribute 'ndim'``.
- ``send.NeuronDropout`` after ``remove()`` (or its ``with`` block) dropped nothing, silently,
  when entered again or ``set``; two droppers on one module both hooked it.
- ``sync_hf_config`` proved a ViT config holding the ``head_dim`` that the known module names
  give, then wrote it without that field (the original config has none): the written config
  built other shapes, and ``from_pretrained`` failed.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
from torch import nn

from neuronkit.pruning.lottery import (
    TrainConfig,
    accuracy,
    attach_masks,
    detach_masks,
    global_magnitude_prune,
    ones_masks,
    random_masks_like,
    sparsity,
    train,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors


# ---- attach_masks twice ------------------------------------------------------------------


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def test_attach_masks_refuses_a_model_that_already_carries_masks() -> None:
    net = _net()
    first = global_magnitude_prune(net, ones_masks(net), 0.5)
    handle = attach_masks(net, first)
    other = random_masks_like(first, seed=1)
    with pytest.raises(ValueError, match=r"model already carries lottery masks.*remove\(\)"):
        attach_masks(net, other)
    assert len(net._forward_pre_hooks) == 1  # nothing added
    handle.remove()
    second = attach_masks(net, other)  # after remove(): allowed, and only these masks hold
    # the weights the first masks zeroed stay zero; re-grow them to see what the hook enforces
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    net(torch.randn(2, 4))
    kept = {n: p != 0 for n, p in net.named_parameters() if n in other}
    assert sparsity(kept) == pytest.approx(sparsity(other))
    second.remove()


def test_attach_masks_refuses_a_copy_that_carries_the_hook() -> None:
    import copy

    net = _net()
    handle = attach_masks(net, ones_masks(net))
    twin = copy.deepcopy(net)
    with pytest.raises(ValueError, match="model already carries lottery masks"):
        attach_masks(twin, ones_masks(twin))
    handle.remove()
    attach_masks(copy.deepcopy(net), ones_masks(net)).remove()  # copied after remove(): fine


def test_detach_masks_frees_a_copy_and_returns_its_masks() -> None:
    import copy

    net = _net()
    masks = global_magnitude_prune(net, ones_masks(net), 0.5)
    handle = attach_masks(net, masks)
    twin = copy.deepcopy(net)
    freed = detach_masks(twin)
    assert freed is not None
    assert freed.keys() == masks.keys()
    assert all(torch.equal(freed[n], masks[n]) for n in masks)
    assert not twin._forward_pre_hooks
    assert len(net._forward_pre_hooks) == 1
    with torch.no_grad():  # the copy's pruned weights can grow again
        for p in twin.parameters():
            p.add_(1.0)
    twin(torch.randn(2, 4))
    assert all(bool((p != 0).all()) for n, p in twin.named_parameters() if n in masks)
    attach_masks(twin, ones_masks(twin)).remove()  # and other masks can be attached
    assert detach_masks(twin) is None  # nothing left to detach
    assert detach_masks(net) is not None
    assert not net._forward_pre_hooks
    handle.remove()  # after detach_masks: a no-op, not an error
    with pytest.raises(TypeError, match="model"):
        detach_masks(masks)  # type: ignore[arg-type]


# ---- a model that returns a tuple --------------------------------------------------------


class _TupleNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.fc(x), x


def test_train_and_accuracy_name_a_model_that_returns_no_tensor() -> None:
    torch.manual_seed(0)
    net = _TupleNet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    match = "model must return a tensor of class logits \\[B, C\\], got tuple"
    with pytest.raises(TypeError, match=match):
        train(net, x, y, TrainConfig(iterations=2, batch_size=4))
    with pytest.raises(TypeError, match=match):
        train(net, x, y, TrainConfig(iterations=2, batch_size=4), masks=ones_masks(net))
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())  # no step taken
    assert not net._forward_pre_hooks  # the masks' hook is removed
    with pytest.raises(TypeError, match=match):
        accuracy(net, x, y)


# ---- NeuronDropout reused ----------------------------------------------------------------


def _tiny_lm() -> Any:
    pytest.importorskip("transformers", reason="SeND training needs the transformers extra")
    from neuronkit.pruning.send import tiny_gpt_neox

    return tiny_gpt_neox(20, hidden_size=16, layers=2, heads=2, max_positions=16).eval()


def test_a_removed_dropper_refuses_with_and_set() -> None:
    from neuronkit.pruning.send import NeuronDropout

    model = _tiny_lm()
    dropper = NeuronDropout(model, [0], "hidden")
    with dropper:
        pass
    with (
        pytest.raises(RuntimeError, match="a with block after its hooks were removed"),
        dropper,
    ):
        pass
    with pytest.raises(RuntimeError, match=r"set\(\) after its hooks were removed"):
        dropper.set({0: torch.tensor([0, 1, 2])}, {0: 16})
    dropper.remove()  # still idempotent
    fresh = NeuronDropout(model, [0], "hidden")  # the way to go on
    ids = torch.randint(3, 20, (2, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        base = model(input_ids=ids).logits
        with fresh:
            fresh.set({0: torch.tensor([0, 1, 2])}, {0: 16})
            assert not torch.equal(model(input_ids=ids).logits, base)


def test_a_second_dropper_on_the_same_module_is_refused() -> None:
    from neuronkit.pruning.send import NeuronDropout

    model = _tiny_lm()
    first = NeuronDropout(model, [0], "hidden")
    with pytest.raises(ValueError, match="decoder layer -2 already carries the hook"):
        NeuronDropout(model, [1, -2], "hidden")  # -2 is layer 0
    assert [len(layer._forward_hooks) for layer in model.gpt_neox.layers] == [1, 0]
    NeuronDropout(model, [0], "mlp").remove()  # another module of the layer: allowed
    first.remove()
    NeuronDropout(model, [0], "hidden").remove()


# ---- sync_hf_config writes the config it proved ------------------------------------------


def test_pruned_vit_config_keeps_the_head_dim_it_was_proved_with(tmp_path: Any) -> None:
    """At ratio 0.3 ViT keeps 3 heads of 16 channels on a 45-wide residual stream: the config
    needs ``head_dim=16`` (45 // 3 = 15 otherwise)."""
    pytest.importorskip("transformers", reason="Hugging Face models need transformers")
    from neuronkit.pruning import DependencyGraph, hf_zoo, plan_pruning, prune

    build, make_inputs = hf_zoo()["vit"]
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build().eval()
    inputs = make_inputs()
    graph = DependencyGraph(model, inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no "from_pretrained cannot rebuild"
        pruned = prune(graph, plan_pruning(graph, "l2", 0.3))
    config = pruned.config
    assert (config.hidden_size, config.num_attention_heads, config.head_dim) == (45, 3, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruned.save_pretrained(tmp_path)
        reloaded = type(pruned).from_pretrained(tmp_path).eval()
    assert [p.shape for p in reloaded.parameters()] == [p.shape for p in pruned.parameters()]
    with torch.no_grad():
        y, y_reloaded = pruned(inputs).logits, reloaded(inputs).logits
    torch.testing.assert_close(y_reloaded, y, atol=1e-5 * max(float(y.abs().max()), 1.0), rtol=0)
