"""Generation with forced codes on a plain torch causal model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from neuronkit.interpretability.codebook.intervene import generate_with_codes, next_token_logits
from neuronkit.interpretability.codebook.wrap import insert_codebooks


class _Causal(nn.Module):
    """Next-token logits from the current token plus a causal running mean: [B, T] -> [B, T, V]."""

    def __init__(self, vocab: int = 6, d: int = 8) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.mlp = nn.Sequential(nn.Linear(d, d), nn.Tanh())
        self.head = nn.Linear(d, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.emb(ids)
        ctx = h.cumsum(1) / torch.arange(1, ids.shape[1] + 1)[None, :, None]
        return self.head(self.mlp(h) + ctx)


def _model() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    net = _Causal()
    cbm = insert_codebooks(net, ["mlp"], num_codes=6, layer_norm=False)
    with torch.no_grad():
        cbm.codebooks["mlp"].codebook.data = torch.eye(6, 8) * 20.0
    return cbm.eval(), torch.randint(0, 6, (3, 4))


def test_plain_generation_is_greedy_argmax() -> None:
    cbm, prompt = _model()
    out = generate_with_codes(cbm, prompt, max_new_tokens=3)
    assert out.shape == (3, 7)
    torch.testing.assert_close(out[:, :4], prompt)
    ids = prompt
    for _ in range(3):
        ids = torch.cat([ids, cbm(ids)[:, -1:].argmax(-1)], dim=1)
    torch.testing.assert_close(out, ids)


def test_forcing_a_code_steers_generation() -> None:
    cbm, prompt = _model()
    net = cbm.model
    for code in range(6):
        out = generate_with_codes(cbm, prompt, {"mlp": [code]}, max_new_tokens=2)
        # by hand: the bottleneck output is codebook[code] at every position
        forced = cbm.codebooks["mlp"].codebook[code]
        ids = prompt
        for _ in range(2):
            h = net.emb(ids)
            ctx = h.cumsum(1) / torch.arange(1, ids.shape[1] + 1)[None, :, None]
            logits = net.head(forced + ctx)
            ids = torch.cat([ids, logits[:, -1:].argmax(-1)], dim=1)
        torch.testing.assert_close(out, ids)
    # forcing at a past position acts on every later step: logits differ from plain
    plain = next_token_logits(cbm, prompt)
    only_first = next_token_logits(cbm, prompt, {"mlp": [0]}, positions=[0])
    torch.testing.assert_close(only_first, plain)  # position 0 does not feed the last logits here
    last = next_token_logits(cbm, prompt, {"mlp": [0]}, positions=[-1])
    assert not torch.allclose(last, plain)


def test_sampling_is_seeded() -> None:
    cbm, prompt = _model()
    a = generate_with_codes(
        cbm, prompt, max_new_tokens=4, sample=True, generator=torch.Generator().manual_seed(1)
    )
    b = generate_with_codes(
        cbm, prompt, max_new_tokens=4, sample=True, generator=torch.Generator().manual_seed(1)
    )
    torch.testing.assert_close(a, b)
    limited = generate_with_codes(cbm, prompt, max_new_tokens=5, vocab=2)
    assert limited[:, 4:].max() <= 1


def test_bad_inputs() -> None:
    cbm, prompt = _model()
    with pytest.raises(TypeError, match="model must be CodebookModel"):
        generate_with_codes(cbm.model, prompt)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="input_ids must be"):
        generate_with_codes(cbm, prompt.float())
    with pytest.raises(ValueError, match="generator"):
        generate_with_codes(cbm, prompt, sample=True)
    with pytest.raises(ValueError, match="positions"):
        generate_with_codes(cbm, prompt, {"mlp": [0]}, positions=[4])
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate_with_codes(cbm, prompt, max_new_tokens=0)


def test_per_sequence_positions_and_readout_positions() -> None:
    cbm, prompt = _model()
    pos = torch.tensor([0, 3, 1])
    at = torch.tensor([2, 3, 1])
    out = next_token_logits(cbm, prompt, {"mlp": [2]}, pos, per_sequence=True, at=at)
    assert out.shape == (3, 6)
    for b in range(3):  # one sequence at a time, codes forced at its own position only
        ref = next_token_logits(
            cbm, prompt[b : b + 1, : int(at[b]) + 1], {"mlp": [2]}, [int(pos[b])]
        )
        torch.testing.assert_close(out[b], ref[0])
    plain = next_token_logits(cbm, prompt, at=at)
    torch.testing.assert_close(plain[0], cbm(prompt)[0, 2])
    gen = generate_with_codes(cbm, prompt, {"mlp": [2]}, positions=pos, per_sequence=True)
    for b in range(3):
        ref = generate_with_codes(cbm, prompt[b : b + 1], {"mlp": [2]}, positions=[int(pos[b])])
        torch.testing.assert_close(gen[b], ref[0])
    with pytest.raises(ValueError, match="one position per sequence"):
        next_token_logits(cbm, prompt, {"mlp": [2]}, torch.tensor([0, 1]), per_sequence=True)
    with pytest.raises(ValueError, match="at must lie in"):
        next_token_logits(cbm, prompt, at=torch.tensor([0, 1, 4]))
    with pytest.raises(ValueError, match="positions must give one position"):
        next_token_logits(cbm, prompt, {"mlp": [2]}, per_sequence=True)


@pytest.mark.parametrize("position", [np.int64(1), torch.tensor(1), np.array(1), np.array([1])])
def test_numpy_and_0d_positions_are_single_positions(position) -> None:
    cbm, prompt = _model()
    expected = next_token_logits(cbm, prompt, {"mlp": [0]}, positions=[1])
    torch.testing.assert_close(
        next_token_logits(cbm, prompt, {"mlp": [0]}, positions=position), expected
    )
    torch.testing.assert_close(
        generate_with_codes(cbm, prompt, {"mlp": [0]}, positions=position, max_new_tokens=2),
        generate_with_codes(cbm, prompt, {"mlp": [0]}, positions=[1], max_new_tokens=2),
    )
    with pytest.raises(TypeError, match=r"positions\[0\] must be an integer"):
        next_token_logits(cbm, prompt, {"mlp": [0]}, positions=1.0)


def test_bool_ids_and_positions_and_a_non_bool_sample_flag_are_refused() -> None:
    cbm, prompt = _model()
    with pytest.raises(ValueError, match="input_ids must be a non-empty"):
        next_token_logits(cbm, prompt.bool())
    with pytest.raises(ValueError, match="at must be a"):
        next_token_logits(cbm, prompt, at=torch.tensor([True, False, True]))
    with pytest.raises(ValueError, match="positions must be a"):
        next_token_logits(cbm, prompt, {"mlp": [1]}, [True, False, True], per_sequence=True)
    with pytest.raises(TypeError, match="positions must be"):
        next_token_logits(cbm, prompt, {"mlp": [1]}, "abc", per_sequence=True)
    with pytest.raises(TypeError, match="sample must be bool"):
        generate_with_codes(cbm, prompt, sample="yes", generator=torch.Generator())  # type: ignore[arg-type]
