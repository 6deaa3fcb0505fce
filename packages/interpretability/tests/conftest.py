"""Test settings for neuronkit-interpretability."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from torch import nn


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """The models here are tiny: one intra-op thread is fastest and does not slow to a crawl
    when the CI machine's cores are shared. Restored after each test."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_bert() -> Callable[..., nn.Module]:
    """A factory of tiny float64 BERT classifiers in eval mode (vocabulary 50, width 16, 2
    layers of 2 heads, 3 labels), built from their config after ``torch.manual_seed(seed)``;
    extra config fields as keywords. Skips without the transformers extra."""
    transformers = pytest.importorskip(
        "transformers", reason="transformers is an optional extra (neuronkit-interpretability)"
    )

    def build(seed: int, **config: Any) -> nn.Module:
        torch.manual_seed(seed)
        settings = transformers.BertConfig(
            vocab_size=50,
            hidden_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=16,
            num_labels=3,
            **config,
        )
        model: nn.Module = transformers.BertForSequenceClassification(settings)
        return model.double().eval()

    return build
