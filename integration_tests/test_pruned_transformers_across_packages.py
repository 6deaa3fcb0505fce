"""A Hugging Face transformer pruned by neuronkit-pruning, then given codebooks by
neuronkit-interpretability: the codebooks take the pruned widths."""

from __future__ import annotations

import warnings

import pytest
import torch

transformers = pytest.importorskip("transformers")

from neuronkit.interpretability import insert_hf_codebooks  # noqa: E402
from neuronkit.pruning import prune_model  # noqa: E402


def _gpt2() -> torch.nn.Module:
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_embd=64,
        n_layer=2,
        n_head=4,
        vocab_size=100,
        n_positions=32,
        bos_token_id=0,
        eos_token_id=0,
    )
    return transformers.GPT2LMHeadModel(config).eval()


@pytest.mark.parametrize(
    ("head_dims", "components"),
    [(False, ("attention_heads", "mlp")), (True, ("attention", "mlp"))],
)
def test_codebooks_on_a_pruned_gpt2(head_dims: bool, components: tuple[str, ...]) -> None:
    ids = torch.randint(0, 100, (2, 16))
    with warnings.catch_warnings():  # head_dims: the config cannot describe the model (warned)
        warnings.simplefilter("ignore")
        small = prune_model(_gpt2(), ids, 0.5, head_dims=head_dims)
    proj = small.transformer.h[0].attn.c_proj
    assert (proj.nx, proj.nf) == tuple(proj.weight.shape)  # HF Conv1D widths follow the weight
    wrapped = insert_hf_codebooks(small, components=components, num_codes=16)
    assert wrapped(ids).logits.shape == (2, 16, 100)
