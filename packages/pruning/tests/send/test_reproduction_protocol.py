"""The pruning.send reproduction tracks and drops what the SeND paper does.

The paper's sensitive units are indices of the penultimate layer's sentence embedding
(Mohammadzadeh et al. 2024, v1 Fig. 5; "Sensitive Embedding Indices" from v2 on); the authors'
code tracks ``hidden_states[-2]`` (notarobot-hub/SEND, send/send_pythia.py). The reproduction
also reads its EigenScore embeddings from ``hidden_states[-2]``.
"""

from __future__ import annotations

import pytest
import torch

from neuronkit.pruning.reproductions.send import send_configs
from neuronkit.pruning.send.corpus import WordTokenizer
from neuronkit.pruning.send.training import record_activations, tiny_gpt_neox

pytest.importorskip("transformers", reason="SeND training needs the transformers extra")

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors


def test_send_tracks_the_penultimate_output_embedding() -> None:
    configs = send_configs(150, 5)
    assert set(configs) == {"normal", "send"}
    assert configs["normal"].drop_fraction == 0.0
    assert configs["send"].drop_fraction > 0.0
    tok = WordTokenizer.from_texts(["the capital of a is b .", "x works as a e ."])
    model = tiny_gpt_neox(len(tok), hidden_size=16, layers=4, heads=2, seed=0).eval()
    ids, mask = tok.batch(["the capital of a is", "x works as a"], eos=False)
    for cfg in configs.values():
        assert cfg.layers == (-2,)
        tracked = record_activations(model, ids, mask, list(cfg.layers), cfg.site)[0]
        with torch.no_grad():
            hidden = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        last = mask.sum(1) - 1
        expected = hidden.hidden_states[-2][torch.arange(len(ids)), last]
        # the tracked (and dropped) units are the coordinates of the EigenScore embedding
        assert tracked.shape == expected.shape
        assert torch.allclose(tracked, expected, atol=1e-6)
