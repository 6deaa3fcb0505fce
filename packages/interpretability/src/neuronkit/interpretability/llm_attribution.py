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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from neuronkit.common import check_number, check_type

from .feature_ablation import feature_ablation
from .kernel_shap import kernel_shap
from .lime import lime
from .shapley import shapley_value_sampling, shapley_values

__all__ = ["LLM_METHODS", "LLMAttributionResult", "llm_attribution"]

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
        self.model = model if isinstance(model, nn.Module) else None
        self._call = model
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
        logits = _logits(self._call(full))
        if logits.shape[:2] != full.shape:
            raise ValueError(
                f"model must return logits [N, L, V] for input ids {tuple(full.shape)}, got "
                f"{tuple(logits.shape)}"
            )
        n_prompt, n_target = ids.shape[1], self._target.shape[0]
        at = logits[:, n_prompt - 1 : n_prompt - 1 + n_target].double().log_softmax(-1)
        per_token = at.gather(2, self._target.view(1, -1, 1).expand(len(at), -1, 1))[..., 0]
        return torch.cat((per_token.sum(1, keepdim=True), per_token), dim=1)


def _ids(name: str, ids: Any) -> torch.Tensor:
    check_type(name, ids, torch.Tensor)
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids, got dtype {ids.dtype}")
    flat = ids.reshape(-1) if ids.ndim == 2 and ids.shape[0] == 1 else ids
    if flat.ndim != 1 or flat.numel() == 0:
        raise ValueError(
            f"{name} must be one sequence of token ids, [L] or [1, L], got {ids.shape}"
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
