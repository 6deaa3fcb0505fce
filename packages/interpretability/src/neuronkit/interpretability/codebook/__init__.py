"""Codebook features (Tamkin, Taufeeque & Goodman 2023): sparse, discrete codebook bottlenecks
for any torch or Hugging Face transformers model, code/feature alignment, and steering
generation by activating codes."""

from .analysis import CodeAlignment, code_feature_alignment, code_feature_counts
from .intervene import codes_at, generate_with_codes, next_token_logits
from .layer import CodebookLayer, codebook_lookup, cosine_topk
from .wrap import CodebookModel, insert_codebooks, insert_hf_codebooks, transformer_component_names

__all__ = [
    "CodeAlignment",
    "CodebookLayer",
    "CodebookModel",
    "code_feature_alignment",
    "code_feature_counts",
    "codebook_lookup",
    "codes_at",
    "cosine_topk",
    "generate_with_codes",
    "insert_codebooks",
    "insert_hf_codebooks",
    "next_token_logits",
    "transformer_component_names",
]
