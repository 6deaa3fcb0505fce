"""SeND: Sensitive Neuron Dropout and Efficient EigenScore (Mohammadzadeh et al., 2024).

"Hallucination Detox: Sensitive Neuron Dropout (SeND) for Large Language Model Training".

- :mod:`.eigenscore`: INSIDE's EigenScore (exact) and the Efficient EigenScore (Chebyshev
  moments of ``log`` with Hutchinson trace estimation, no eigendecomposition).
- :mod:`.sensitivity`: sensitive neurons from activation variability across checkpoints.
- :mod:`.training`: SeND training of Hugging Face causal LMs (extra ``transformers``) with
  deterministic, periodic, hook-based dropout of the sensitive neurons; a tiny GPT-NeoX
  built from a config; sampled-response embeddings for EigenScore.
- :mod:`.corpus`: the shipped synthetic fact corpus (``facts.txt``) and a word tokenizer.
"""

from .corpus import (
    SPECIAL_TOKENS,
    Fact,
    WordTokenizer,
    generate_fact_corpus,
    load_fact_corpus,
    split_fact,
    unique_facts,
)
from .eigenscore import (
    KERNELS,
    chebyshev_log_coefficients,
    efficient_eigenscore,
    eigenscore,
    embedding_covariance,
    jackson_damping,
)
from .sensitivity import SENSITIVITY_METHODS, neuron_sensitivity, top_sensitive
from .training import (
    SITES,
    NeuronDropout,
    SeNDConfig,
    SeNDHistory,
    decoder_layers,
    language_model_loss,
    neuron_module,
    record_activations,
    require_transformers,
    sample_response_embeddings,
    tiny_gpt_neox,
    train_send,
)

__all__ = [
    "KERNELS",
    "SENSITIVITY_METHODS",
    "SITES",
    "SPECIAL_TOKENS",
    "Fact",
    "NeuronDropout",
    "SeNDConfig",
    "SeNDHistory",
    "WordTokenizer",
    "chebyshev_log_coefficients",
    "decoder_layers",
    "efficient_eigenscore",
    "eigenscore",
    "embedding_covariance",
    "generate_fact_corpus",
    "jackson_damping",
    "language_model_loss",
    "load_fact_corpus",
    "neuron_module",
    "neuron_sensitivity",
    "record_activations",
    "require_transformers",
    "sample_response_embeddings",
    "split_fact",
    "tiny_gpt_neox",
    "top_sensitive",
    "train_send",
    "unique_facts",
]
