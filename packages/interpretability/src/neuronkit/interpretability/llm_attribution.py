"""Which prompt tokens make a language model say what it says?

Perturbation attribution of a causal language model's log-probability of a target
continuation to the tokens of its prompt, as Captum's ``LLMAttribution`` with
``TextTokenInput`` (Miglani et al., "Using Captum to Explain Generative Language Models",
2023). Each prompt token (or group of tokens sharing an index of ``feature_mask``; tokens in
``skip_tokens``, e.g. the beginning-of-sequence token, stay and are not attributed) is a
feature that is present or replaced by ``baseline_token``; a perturbation method (feature
ablation, Shapley values, Kernel SHAP, LIME) credits each feature with the change of

* the target's total log-probability ``sum_t log p(y_t | prompt, y_<t)`` (``seq_attr``), and
* each target token's log-probability (``token_attr``, one row per target token),

computed with teacher forcing: one forward pass of prompt + target per perturbed prompt
(Captum's default runs one pass per target token; for a causal model the numbers are the
same). All outputs come from the same perturbed prompts, each run through the model once per
call (the method sees the ``1 + T`` outputs as ``1 + T`` copies of the example; a prompt seen
before, in any forward pass of the call, is not run again).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from neuronkit.common import check_number, check_type, integer_dtype

from .feature_ablation import feature_ablation
from .hooks import submodule
from .kernel_shap import kernel_shap
from .layer_integrated_gradients import layer_integrated_gradients
from .lime import lime
from .lrp import layer_lrp
from .shapley import shapley_value_sampling, shapley_values

__all__ = [
    "LLM_METHODS",
    "LLMAttributionResult",
    "llm_attribution",
    "llm_gradient_attribution",
    "llm_lrp_attribution",
]

LLM_METHODS: dict[str, Callable[..., torch.Tensor]] = {
    "feature_ablation": feature_ablation,
    "shapley_values": shapley_values,
    "shapley_value_sampling": shapley_value_sampling,
    "kernel_shap": kernel_shap,
    "lime": lime,
}


@dataclass(frozen=True)
class LLMAttributionResult:
    """``seq_attr`` ``[F]``: each attributed prompt token's effect on the target's total
    log-probability; ``token_attr`` ``[T, F]``: on each target token's; ``input_ids`` ``[F]``
    the attributed tokens (prompt order, skipped ones left out), ``target_ids`` ``[T]``."""

    seq_attr: torch.Tensor
    token_attr: torch.Tensor
    input_ids: torch.Tensor
    target_ids: torch.Tensor


def _logits(out: Any) -> torch.Tensor:
    """A causal LM's ``[N, L, V]`` logits from its output (a tensor, a Hugging Face
    ``ModelOutput`` or a tuple whose first item they are)."""
    logits = getattr(out, "logits", None)
    if logits is None:
        logits = out[0] if isinstance(out, (tuple, list)) else out
    if not isinstance(logits, torch.Tensor) or logits.ndim != 3:
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"model must return logits [N, L, V] (or .logits), got {got}")
    return logits


def _target_log_probs(
    model: Callable[..., Any], full: torch.Tensor, target: torch.Tensor, raw: bool = False
) -> torch.Tensor:
    """``[N, T]``: each target token's log-probability (``raw``: its logit) in ``full``
    ``[N, L + T]`` (prompt then target), from one teacher-forced pass."""
    logits = _logits(model(full))
    if logits.shape[:2] != full.shape:
        raise ValueError(
            f"model must return logits [N, L, V] for input ids {tuple(full.shape)}, got "
            f"{tuple(logits.shape)}"
        )
    n_target = target.shape[0]
    start = full.shape[1] - n_target - 1
    at = logits[:, start : start + n_target]
    at = at if raw else at.log_softmax(-1)
    return at.gather(2, target.view(1, -1, 1).expand(len(at), -1, 1))[..., 0]


class _TargetLogProbs(nn.Module):
    """Presence indicators of the attributed tokens ``[N, F]`` -> ``[N, 1 + T]``: the target's
    total log-probability and each target token's, given the prompt with absent tokens
    replaced by the baseline token. Each distinct row is evaluated once per attribution (the
    perturbation methods repeat prompts: the full one, Kernel SHAP's coalitions drawn twice)."""

    def __init__(
        self,
        model: Callable[..., Any],
        prompt: torch.Tensor,
        attributed: torch.Tensor,
        target: torch.Tensor,
        baseline_token: int,
    ) -> None:
        super().__init__()
        self.model = model if isinstance(model, nn.Module) else None  # for eval mode
        self._call = (model,)  # a tuple: not registered a second time as a submodule
        self._prompt, self._attributed, self._target = prompt, attributed, target
        self._baseline = baseline_token
        self._seen: dict[bytes, torch.Tensor] = {}  # presence row -> its [1 + T] outputs

    def forward(self, present: torch.Tensor) -> torch.Tensor:
        unique, inverse = torch.unique(present > 0.5, dim=0, return_inverse=True)
        keys = [bytes(row) for row in unique.cpu().numpy()]
        missing = [i for i, key in enumerate(keys) if key not in self._seen]
        if missing:
            for key, values in zip(
                (keys[i] for i in missing), self._log_probs(unique[missing]), strict=True
            ):
                self._seen[key] = values
        out = torch.stack([self._seen[key] for key in keys])  # [U, 1 + T]
        return out[inverse].to(present.dtype)

    def _log_probs(self, present: torch.Tensor) -> torch.Tensor:
        """``[U, 1 + T]`` for ``U`` distinct presence rows."""
        ids = self._prompt.expand(present.shape[0], -1).clone()
        ids[:, self._attributed] = torch.where(present, ids[:, self._attributed], self._baseline)
        full = torch.cat((ids, self._target.expand(present.shape[0], -1)), dim=1)
        per_token = _target_log_probs(self._call[0], full, self._target).double()
        return torch.cat((per_token.sum(1, keepdim=True), per_token), dim=1)


def _ids(name: str, ids: Any) -> torch.Tensor:
    check_type(name, ids, torch.Tensor)
    if not integer_dtype(ids):
        raise TypeError(f"{name} must hold integer token ids, got dtype {ids.dtype}")
    flat = ids.reshape(-1) if ids.ndim == 2 and ids.shape[0] == 1 else ids
    if flat.ndim != 1 or flat.numel() == 0:
        raise ValueError(
            f"{name} must be one sequence of token ids, [L] or [1, L], got {tuple(ids.shape)}"
        )
    return flat.long()


def llm_attribution(
    model: Callable[..., Any],
    input_ids: torch.Tensor,
    target_ids: torch.Tensor,
    *,
    method: str | Callable[..., torch.Tensor] = "feature_ablation",
    feature_mask: torch.Tensor | None = None,
    skip_tokens: Sequence[int] = (),
    baseline_token: int = 0,
    batch_size: int = 16,
    show_progress: bool | None = None,
    **method_kwargs: Any,
) -> LLMAttributionResult:
    """Attribute a continuation's log-probabilities to the prompt's tokens (Captum's
    ``LLMAttribution`` over ``TextTokenInput``, ``attr_target="log_prob"``).

    Args:
        model: a causal language model mapping token ids ``[N, L]`` to logits ``[N, L, V]``
            (or an output with ``.logits``, as Hugging Face's ``AutoModelForCausalLM``); an
            ``nn.Module`` runs in eval mode (its flags are restored), without gradients.
        input_ids: the prompt, ``[L]`` or ``[1, L]`` token ids.
        target_ids: the continuation, ``[T]`` or ``[1, T]`` token ids (e.g. what the model
            generated).
        method: a name in :data:`LLM_METHODS` or a perturbation function with their signature
            (``method(model, inputs, target, feature_mask=..., batch_size=...,
            show_progress=..., **method_kwargs)``).
        feature_mask: ``[F]`` integer group of each attributed token (default: each token
            alone), e.g. words or sentences.
        skip_tokens: token ids that are never perturbed nor attributed (Captum's
            ``skip_tokens``, e.g. the tokenizer's BOS id).
        baseline_token: the id an absent token takes (Captum's default 0; often UNK or pad).
        batch_size: distinct prompts per forward pass.
        show_progress: progress bar over the forward passes (``None``: on a terminal only).
        method_kwargs: passed to the method, e.g. ``n_samples=25, seed=0``.

    Returns:
        :class:`LLMAttributionResult`.
    """
    if not callable(model):
        raise TypeError(f"model must be callable, got {type(model).__name__}")
    prompt, target = _ids("input_ids", input_ids), _ids("target_ids", target_ids)
    check_type("baseline_token", baseline_token, int)
    check_number("batch_size", batch_size, ge=1, integer=True)
    if isinstance(method, str):
        if method not in LLM_METHODS:
            raise ValueError(
                f"method must be one of {sorted(LLM_METHODS)} or a callable, got {method!r}"
            )
        fn = LLM_METHODS[method]
    elif callable(method):
        fn = method
    else:
        raise TypeError(f"method must be a name or a callable, got {type(method).__name__}")
    skip = torch.tensor(list(skip_tokens), dtype=torch.long, device=prompt.device)
    attributed = ~torch.isin(prompt, skip)
    n_features = int(attributed.sum())
    if n_features == 0:
        raise ValueError("input_ids: every token is in skip_tokens, none is left to attribute")
    outputs = 1 + target.shape[0]
    wrapper = _TargetLogProbs(model, prompt.view(1, -1), attributed, target, baseline_token)
    present = torch.ones(outputs, n_features, dtype=torch.float64, device=prompt.device)
    kwargs = dict(method_kwargs)
    if feature_mask is not None:
        if not isinstance(feature_mask, torch.Tensor) or feature_mask.shape != (n_features,):
            raise ValueError(
                f"feature_mask must be [{n_features}] (one group per attributed token), got "
                f"{getattr(feature_mask, 'shape', type(feature_mask).__name__)}"
            )
        kwargs["feature_mask"] = feature_mask.to(prompt.device)
    with torch.no_grad():
        attr = fn(
            wrapper,
            present,
            torch.arange(outputs, device=prompt.device),  # copy j attributes output j
            batch_size=batch_size * outputs,
            show_progress=show_progress,
            **kwargs,
        )
    return LLMAttributionResult(attr[0], attr[1:], prompt[attributed], target)


class _PerTokenLogProbs(nn.Module):
    """Token ids ``[N, L + T]`` (prompt then target) -> ``[N, T]`` target log-probabilities
    (``raw``: logits)."""

    def __init__(self, model: nn.Module, target: torch.Tensor, raw: bool = False) -> None:
        super().__init__()
        self.model, self._target, self._raw = model, target, raw

    def forward(self, full: torch.Tensor) -> torch.Tensor:
        return _target_log_probs(self.model, full, self._target, self._raw)


def _embedding(model: nn.Module, layer: str | nn.Module | None) -> nn.Module:
    """The token embedding: ``layer`` or ``model.get_input_embeddings()``."""
    if layer is None:
        get = getattr(model, "get_input_embeddings", None)
        if get is None:
            raise TypeError(
                "layer must be given (the token embedding) for a model without "
                "get_input_embeddings()"
            )
        layer = get()
    return submodule(model, layer)


def _attributed(prompt: torch.Tensor, skip_tokens: Sequence[int]) -> torch.Tensor:
    """``[L]`` whether each prompt token is attributed (not in ``skip_tokens``)."""
    skip = torch.tensor(list(skip_tokens), dtype=torch.long, device=prompt.device)
    attributed = ~torch.isin(prompt, skip)
    if not bool(attributed.any()):
        raise ValueError("input_ids: every token is in skip_tokens, none is left to attribute")
    return attributed


def _teacher_forced(prompt: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``[T, L + T]``: prompt then target, once per target token (copy ``j`` attributes token
    ``j``; for a causal model the same as Captum's one pass per target token on the prompt and
    the tokens before it)."""
    return torch.cat((prompt, target)).expand(target.shape[0], -1)


def llm_gradient_attribution(
    model: nn.Module,
    input_ids: torch.Tensor,
    target_ids: torch.Tensor,
    *,
    layer: str | nn.Module | None = None,
    skip_tokens: Sequence[int] = (),
    baseline_token: int = 0,
    n_steps: int = 50,
    method: str = "gausslegendre",
    internal_batch_size: int | None = None,
) -> LLMAttributionResult:
    """Layer integrated gradients of each target token's log-probability at the prompt's
    token embeddings, summed over the embedding (Captum's ``LLMGradientAttribution`` with
    ``LayerIntegratedGradients``).

    The path runs from the embeddings of the prompt with every attributed token replaced by
    ``baseline_token`` to the prompt's (skipped tokens and the target stay). All target tokens
    are attributed from passes over prompt + target (teacher forcing; Captum runs one
    attribution per target token on prompt + the tokens before it, which for a causal model
    gives the same gradients).

    Args:
        model: a causal language model (``nn.Module``) mapping token ids ``[N, L]`` to logits
            ``[N, L, V]`` (or ``.logits``); runs in eval mode (its flags are restored).
        input_ids, target_ids, skip_tokens, baseline_token: as :func:`llm_attribution`.
        layer: the token embedding (name in ``model.named_modules()`` or the module); default
            ``model.get_input_embeddings()`` (Hugging Face models).
        n_steps, method, internal_batch_size: as
            :func:`~neuronkit.interpretability.layer_integrated_gradients` (rows per pass:
            ``n_steps * T`` by default).

    Returns:
        :class:`LLMAttributionResult` (``seq_attr``: the rows of ``token_attr`` summed, as
        Captum).
    """
    check_type("model", model, nn.Module)
    prompt, target = _ids("input_ids", input_ids), _ids("target_ids", target_ids)
    check_type("baseline_token", baseline_token, int)
    embedding = _embedding(model, layer)
    attributed = _attributed(prompt, skip_tokens)
    n_prompt, n_target = prompt.shape[0], target.shape[0]
    full = _teacher_forced(prompt, target)
    reference = full.clone()
    reference[:, :n_prompt][:, attributed] = baseline_token
    attr = layer_integrated_gradients(
        _PerTokenLogProbs(model, target),
        full,
        embedding,
        torch.arange(n_target, device=prompt.device),
        baselines=reference,
        n_steps=n_steps,
        method=method,
        internal_batch_size=internal_batch_size,
    )
    assert isinstance(attr, torch.Tensor)
    return _per_token(attr, prompt, target, attributed)


def _per_token(
    attr: torch.Tensor, prompt: torch.Tensor, target: torch.Tensor, attributed: torch.Tensor
) -> LLMAttributionResult:
    """The result from the attributions ``[T, L + T, ...]`` at the embeddings of
    :func:`_teacher_forced`'s rows: summed over the embedding, the attributed prompt tokens'."""
    per_position = attr.reshape(target.shape[0], prompt.shape[0] + target.shape[0], -1).sum(-1)
    token_attr = per_position[:, : prompt.shape[0]][:, attributed]
    return LLMAttributionResult(token_attr.sum(0), token_attr, prompt[attributed], target)


def llm_lrp_attribution(
    model: nn.Module,
    input_ids: torch.Tensor,
    target_ids: torch.Tensor,
    *,
    layer: str | nn.Module | None = None,
    skip_tokens: Sequence[int] = (),
    attention: str = "uniform",
    rules: Mapping[Any, Any] | None = None,
    batch_size: int | None = None,
) -> LLMAttributionResult:
    """LRP relevance of the prompt's tokens for each target token's logit, at the token
    embeddings, summed over the embedding: by default AttnLRP (Achtibat et al., "AttnLRP:
    Attention-Aware Layer-Wise Relevance Propagation for Transformers", ICML 2024), as LXT
    computes it; :func:`~neuronkit.interpretability.layer_lrp` on a teacher-forced pass.

    LRP explains a logit (the log-probability's normalization over the vocabulary has no
    rule), so the rows are each target token's logit, not its log-probability as in
    :func:`llm_gradient_attribution`. One forward and backward pass for all target tokens (a
    batch of ``T`` copies of prompt + target, copy ``j`` attributing token ``j``), or one per
    ``batch_size`` of them.

    Args:
        model: a causal language model (``nn.Module``) mapping token ids ``[N, L]`` to logits
            ``[N, L, V]`` (or ``.logits``), built from what :func:`~neuronkit.interpretability.lrp`
            takes (Hugging Face LLaMA-family, GPT-2, BERT-style blocks); runs in eval mode.
        input_ids, target_ids, skip_tokens: as :func:`llm_attribution`.
        layer: as :func:`llm_gradient_attribution`.
        attention: ``"uniform"`` (AttnLRP, the default here) or ``"constant"`` (CP-LRP: the
            attention weights and gates held, :func:`~neuronkit.interpretability.lrp`'s
            default).
        rules: as :func:`~neuronkit.interpretability.lrp` (names as in ``model``).
        batch_size: target tokens attributed per pass (default: all), to bound memory.

    Returns:
        :class:`LLMAttributionResult` (``seq_attr``: the rows of ``token_attr`` summed).
    """
    check_type("model", model, nn.Module)
    prompt, target = _ids("input_ids", input_ids), _ids("target_ids", target_ids)
    embedding = _embedding(model, layer)
    attributed = _attributed(prompt, skip_tokens)
    if rules is not None:
        check_type("rules", rules, Mapping)
        rules = {f"model.{k}" if isinstance(k, str) else k: v for k, v in rules.items()}
    n_target = target.shape[0]
    if batch_size is not None:
        check_number("batch_size", batch_size, ge=1, integer=True)
    step = n_target if batch_size is None else batch_size
    full, wrapper = _teacher_forced(prompt, target), _PerTokenLogProbs(model, target, raw=True)
    rows = torch.arange(n_target, device=prompt.device)
    parts = []
    for start in range(0, n_target, step):
        part = layer_lrp(
            wrapper,
            full[start : start + step],
            embedding,
            rows[start : start + step],
            rules=rules,
            attention=attention,
        )
        assert isinstance(part, torch.Tensor)
        parts.append(part)
    return _per_token(torch.cat(parts), prompt, target, attributed)
