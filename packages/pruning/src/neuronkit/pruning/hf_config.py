"""Keep a pruned Hugging Face model's ``config`` true to its new shapes.

After :func:`~neuronkit.pruning.prune` removes residual channels, attention heads or MLP
channels from a ``transformers`` model, ``model.config`` still describes the original sizes, so
``save_pretrained`` followed by ``from_pretrained`` would build the wrong model.
:func:`sync_hf_config` reads the sizes off the pruned modules (GPT-2, BERT and the LLaMA
family: Llama, Mistral, Qwen2, ...), writes them into the config and proves the result by
building the model class from the new config on the meta device and comparing every parameter
shape. A config cannot describe layers of different sizes (global pruning) or a residual width
that is no longer heads x head_dim where the architecture ties them (GPT-2); such a config is
left as it was, with a warning that names the mismatch.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import torch
from torch import nn

__all__ = ["sync_hf_config"]


def _per_layer_sizes(model: nn.Module) -> dict[str, list[int]]:
    """Config field -> the size each transformer layer now has (GPT-2, LLaMA- and BERT-style
    module names)."""
    sizes: dict[str, list[int]] = {}

    def add(field: str, value: Any) -> None:
        sizes.setdefault(field, []).append(int(value))

    for mod in model.modules():
        q, k, up = (getattr(mod, n, None) for n in ("q_proj", "k_proj", "up_proj"))
        attrs = vars(mod)  # plain attributes (head_dim, num_heads, ...), not submodules
        query = getattr(mod, "query", None)
        inner = getattr(getattr(mod, "intermediate", None), "dense", None)
        if isinstance(q, nn.Linear) and isinstance(k, nn.Linear) and "head_dim" in attrs:
            head_dim = int(attrs["head_dim"])
            add("num_attention_heads", q.out_features // head_dim)
            add("num_key_value_heads", k.out_features // head_dim)
            add("head_dim", head_dim)
        elif isinstance(up, nn.Linear):
            add("intermediate_size", up.out_features)
        elif isinstance(query, nn.Linear) and "attention_head_size" in attrs:  # BERT-style
            add("num_attention_heads", query.out_features // int(attrs["attention_head_size"]))
        elif isinstance(inner, nn.Linear):  # BERT-style layer: intermediate.dense
            add("intermediate_size", inner.out_features)
        elif hasattr(mod, "c_attn") and "num_heads" in attrs and "split_size" in attrs:
            add("num_attention_heads", attrs["num_heads"])  # GPT-2 attention (already updated)
        elif hasattr(mod, "c_fc") and hasattr(mod.c_fc, "nf"):
            add("n_inner", mod.c_fc.nf)  # GPT-2 MLP (HF Conv1D)
    return sizes


def _shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def sync_hf_config(model: nn.Module) -> dict[str, int]:
    """Write a pruned Hugging Face model's new sizes into ``model.config`` (in place).

    Args:
        model: a ``transformers`` ``PreTrainedModel`` after structural pruning.

    Returns:
        the config fields that changed, e.g. ``{"hidden_size": 32, "num_attention_heads": 2}``;
        empty when nothing changed or the sizes cannot be described by a config (then a
        ``UserWarning`` names the first parameter whose shape a rebuilt model would get wrong,
        and the config is unchanged).
    """
    config: Any = getattr(model, "config", None)
    get_embeddings: Any = getattr(model, "get_input_embeddings", None)
    if config is None or get_embeddings is None:
        raise TypeError(
            f"model: expected a Hugging Face PreTrainedModel with a config, got "
            f"{type(model).__name__}"
        )
    candidate: dict[str, int] = {}
    try:
        emb = get_embeddings()
    except NotImplementedError:  # vision models (ResNet, MobileViT) have no token embedding
        emb = None
    if isinstance(emb, nn.Embedding):
        candidate["hidden_size"] = emb.embedding_dim
    for field, values in _per_layer_sizes(model).items():
        if len(set(values)) > 1:
            return _unchanged(
                f"layers differ in {field} ({sorted(set(values))}); a Hugging Face config holds "
                "one value"
            )
        candidate[field] = values[0]
    current = {f: getattr(config, f, None) for f in candidate}
    if "n_inner" in current and current["n_inner"] is None:  # GPT-2's default: 4 x width
        current["n_inner"] = 4 * config.hidden_size
    changed = {f: v for f, v in candidate.items() if current[f] != v}
    new = copy.deepcopy(config)  # checked even when no known field changed (e.g. T5's heads)
    for field, value in changed.items():
        setattr(new, field, value)
    want = _shapes(model)
    try:
        with torch.device("meta"):
            got = _shapes(type(model)(new))
    except (ValueError, RuntimeError) as err:  # e.g. a width that is not heads x head_dim
        problem = f"the model class rejects it: {err}"
    else:
        bad = next((k for k in want if got.get(k) != want[k]), None)
        if bad is None:
            for field, value in changed.items():
                setattr(config, field, value)
            return changed
        problem = f"{bad}: pruned {want[bad]}, built from the updated config {got.get(bad)}"
    return _unchanged(f"no config describes the pruned shapes ({problem})")


def _unchanged(problem: str) -> dict[str, int]:
    """Warn that ``model.config`` stays as it was because of ``problem``; nothing changed."""
    warnings.warn(
        f"model: {problem}; model.config is left unchanged and from_pretrained cannot rebuild "
        "this model",
        stacklevel=3,
    )
    return {}
