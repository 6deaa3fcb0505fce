"""Tests of brick growing (neuronkit.pruning.bricks.growing)."""

from __future__ import annotations

import pytest
import torch

from neuronkit.pruning.bricks.growing import grow_ffn, grow_model
from neuronkit.pruning.bricks.model import FFN, BrickTransformer


@pytest.mark.parametrize("method", ["zero", "split"])
def test_grow_ffn_preserves_function(method: str) -> None:
    torch.manual_seed(0)
    ffn = FFN(6, 10)
    keep = {k: v.clone() for k, v in ffn.state_dict().items()}
    grown, idx = grow_ffn(ffn, 4, method=method, seed=1)
    assert grown.d_ff == 14
    assert idx.tolist() == [10, 11, 12, 13]
    x = torch.randn(20, 6)
    assert torch.allclose(grown(x), ffn(x), atol=1e-6)
    assert all(torch.equal(ffn.state_dict()[k], v) for k, v in keep.items())
    if method == "zero":
        assert float(grown.w_in.weight.detach()[10:].abs().sum()) > 0  # the new keys are random
        assert float(grown.w_out.weight.detach()[:, 10:].abs().sum()) == 0.0
    # the new brick receives gradient and can learn
    grown(x).pow(2).sum().backward()
    assert grown.w_out.weight.grad is not None
    assert float(grown.w_out.weight.grad[:, 10:].abs().sum()) > 0


def test_grow_model_preserves_logits_and_copies() -> None:
    torch.manual_seed(0)
    m = BrickTransformer(9, 5, d_model=8, n_heads=2, d_ff=12).eval()
    tok = torch.randint(0, 9, (3, 5))
    grown, idx = grow_model(m, 1, 4, seed=0)
    assert grown.ffns[1].d_ff == 16
    assert m.ffns[1].d_ff == 12
    assert len(idx) == 4
    assert torch.allclose(grown(tok), m(tok), atol=1e-5)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="n_new"):
        grow_ffn(FFN(4, 4), 0)
    with pytest.raises(ValueError, match="n_new"):
        grow_ffn(FFN(4, 4), 5, method="split")
    with pytest.raises(ValueError, match="method"):
        grow_ffn(FFN(4, 4), 1, method="copy")
    with pytest.raises(ValueError, match="layer"):
        grow_model(BrickTransformer(5, 5, d_model=8, n_heads=2, n_layers=1), 1, 2)
    with pytest.raises(TypeError, match="ffn"):
        grow_ffn(torch.nn.Linear(2, 2), 1)  # type: ignore[arg-type]


def test_brick_transformer_exports() -> None:
    """The token-range check read values and stopped ``torch.export``; traced, it is skipped."""
    model = BrickTransformer(11, 6, d_model=8, n_heads=2, d_ff=16).eval()
    tokens = torch.randint(0, 11, (2, 6), generator=torch.Generator().manual_seed(0))
    exported = torch.export.export(model, (tokens,)).module()
    torch.testing.assert_close(exported(tokens), model(tokens))
