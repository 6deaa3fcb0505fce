"""Structural pruning of models that live on an accelerator: the graph is built, the plan
scored and the model pruned on the model's device, and the pruned model still equals the
soft-pruning oracle there."""

import pytest
import torch

from neuronkit.common.testing import devices
from neuronkit.pruning import DependencyGraph, count_macs, plan_pruning, prune, soft_prune, zoo


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("name", ["resnet", "vit"])
def test_prune_on_device_matches_oracle(
    device: str, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # full-precision convs
    ctor, shape = zoo()[name]
    torch.manual_seed(0)
    model = ctor().eval().to(device)
    x = torch.randn((2, *shape), generator=torch.Generator().manual_seed(0)).to(device)
    graph = DependencyGraph(model, x)
    plan = plan_pruning(graph, "l2", 0.5)
    hard, soft = prune(graph, plan).eval(), soft_prune(graph, plan).eval()
    assert all(p.device.type == device for p in hard.parameters())
    assert all(b.device.type == device for b in hard.buffers())
    with torch.no_grad():
        torch.testing.assert_close(hard(x), soft(x), rtol=1e-4, atol=1e-4)
    assert count_macs(model, x[:1]) >= 3 * count_macs(hard, x[:1])


@pytest.mark.parametrize("device", devices())
def test_hugging_face_model_prunes_on_device(device: str) -> None:
    transformers = pytest.importorskip(
        "transformers", reason="Hugging Face models need the optional transformers dependency"
    )
    cfg = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=32, vocab_size=128)
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(cfg).eval().to(device)
    ids = torch.randint(0, 128, (2, 16), generator=torch.Generator().manual_seed(1)).to(device)
    graph = DependencyGraph(model, ids)
    plan = plan_pruning(graph, "l2", 0.5)
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    assert all(p.device.type == device for p in hard.parameters())
    with torch.no_grad():
        y_hard = hard(ids, use_cache=False).logits
        y_soft = soft(ids, use_cache=False).logits
    torch.testing.assert_close(y_hard, y_soft, atol=1e-4, rtol=1e-4)
    assert hard.lm_head.weight is hard.transformer.wte.weight
