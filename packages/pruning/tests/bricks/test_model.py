"""Tests of the gateable tiny transformer (neuronkit.pruning.bricks.model)."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from neuronkit.pruning.bricks.model import BrickTransformer, task_accuracy, train_multitask
from neuronkit.pruning.bricks.tasks import make_task_data

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors


def _model(seed: int = 0) -> BrickTransformer:
    torch.manual_seed(seed)
    return BrickTransformer(12, 7, d_model=16, n_heads=2, n_layers=2, d_ff=24).eval()


def test_attention_matches_torch_multihead_attention() -> None:
    m = _model()
    attn = m.blocks[0].attn
    ref = torch.nn.MultiheadAttention(16, 2, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(attn.qkv.weight)
        ref.in_proj_bias.copy_(attn.qkv.bias)
        ref.out_proj.weight.copy_(attn.out.weight)
        ref.out_proj.bias.copy_(attn.out.bias)
    x = torch.randn(3, 5, 16)
    assert torch.allclose(attn(x), ref(x, x, x, need_weights=False)[0], atol=1e-5)


def test_gates_and_cache() -> None:
    m = _model()
    tok = torch.randint(0, 12, (4, 7))
    dense = m(tok)
    ones = [torch.ones(24), torch.ones(24)]
    assert torch.allclose(m(tok, ones), dense)
    logits, ins, hid = m.run_with_cache(tok)
    assert torch.allclose(logits, dense)
    assert ins[0].shape == (4, 7, 16)
    assert hid[1].shape == (4, 7, 24)
    assert torch.allclose(hid[0], F.relu(m.ffns[0].w_in(ins[0])))
    # zeroing every neuron of a layer equals removing that FFN's hidden contribution
    zero = [torch.zeros(24), None]
    _, ins_z, _ = m.run_with_cache(tok, zero)
    x = m.embed(tok) + m.pos[:7]
    x = x + m.blocks[0].attn(m.blocks[0].ln1(x))
    x = x + m.ffns[0].w_out.bias
    assert torch.allclose(
        ins_z[1], m.blocks[1].ln2(x + m.blocks[1].attn(m.blocks[1].ln1(x))), atol=1e-5
    )
    # a callable gate sees the FFN input
    seen = []

    def gate(z: torch.Tensor) -> torch.Tensor:
        seen.append(z)
        return torch.ones(*z.shape[:-1], 24)

    assert torch.allclose(m(tok, [gate, None]), dense)
    assert torch.allclose(seen[0], ins[0])


def test_training_learns_and_accuracy_is_per_task() -> None:
    data = make_task_data(["affine", "reverse"], 200, seq_len=4, n_digits=5, seed=0)
    torch.manual_seed(0)
    m = BrickTransformer(data.vocab_size, data.seq_len, d_model=16, n_heads=2, d_ff=32)
    before = task_accuracy(m, data)
    hist = train_multitask(m, data, steps=150, batch_size=32, lr=1e-2, seed=0, log_every=50)
    after = task_accuracy(m, data)
    assert before.shape == (2,)
    assert after.shape == (2,)
    assert hist.steps == [50, 100, 150]
    assert hist.loss[-1] < hist.loss[0]
    assert float(after.mean()) > float(before.mean()) + 0.2
    # a frozen subset stays put
    m2 = BrickTransformer(data.vocab_size, data.seq_len, d_model=16, n_heads=2, d_ff=32)
    head = m2.head.weight.detach().clone()
    train_multitask(m2, data, steps=5, parameters=list(m2.ffns[0].parameters()), seed=1)
    assert torch.equal(m2.head.weight, head)


def test_bad_inputs() -> None:
    m = _model()
    with pytest.raises(ValueError, match="tokens"):
        m(torch.full((2, 7), 12))
    with pytest.raises(TypeError, match="tokens"):
        m(torch.zeros(2, 7))
    with pytest.raises(ValueError, match="tokens"):
        m(torch.zeros(2, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="gates"):
        m(torch.zeros(2, 7, dtype=torch.long), [None])
    with pytest.raises(ValueError, match="gate mask"):
        m(torch.zeros(2, 7, dtype=torch.long), [torch.ones(5), None])
    with pytest.raises(ValueError, match="n_heads"):
        BrickTransformer(5, 5, d_model=10, n_heads=3)
    data = make_task_data(["sort"], 4)
    with pytest.raises(ValueError, match="steps"):
        train_multitask(m, data, steps=0)
    with pytest.raises(TypeError, match="data"):
        task_accuracy(m, "data")  # type: ignore[arg-type]


def test_training_ignores_the_callers_grad_mode() -> None:
    """Under torch.no_grad() training failed with torch's own message; token tensors made
    under torch.inference_mode() could not be saved for backward."""
    import dataclasses

    data = make_task_data(["affine"], 40, seq_len=4, n_digits=5, seed=0)
    with torch.inference_mode():
        tokens, targets = data.tokens.clone(), data.targets.clone()
    frozen_data = dataclasses.replace(data, tokens=tokens, targets=targets)

    def trained(grad_mode, d) -> BrickTransformer:  # type: ignore[no-untyped-def]
        torch.manual_seed(0)
        m = BrickTransformer(data.vocab_size, data.seq_len, d_model=8, n_heads=2, d_ff=16)
        with grad_mode():
            train_multitask(m, d, steps=3, batch_size=8, seed=0, activation_l1=0.1)
        return m

    ref = trained(torch.enable_grad, data)
    for m in (trained(torch.no_grad, data), trained(torch.no_grad, frozen_data)):
        assert all(torch.equal(p, q) for p, q in zip(m.parameters(), ref.parameters()))
    with pytest.raises(RuntimeError, match=r"^train_multitask needs autograd"):
        trained(torch.inference_mode, data)
