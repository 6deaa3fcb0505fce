"""SeND training of Hugging Face causal language models (extra ``transformers``).

Mohammadzadeh et al. (2024), "Hallucination Detox: Sensitive Neuron Dropout (SeND) for Large
Language Model Training". SeND trains as usual but, every ``window`` checkpoints (one
checkpoint every ``checkpoint_every`` optimizer steps), records the activations of chosen
layers on a fixed tracking set, scores each neuron's variability across those checkpoints
(:mod:`.sensitivity`) and, for the whole next interval, *deterministically* drops (zeros,
without rescaling) the top ``drop_fraction`` most sensitive neurons. Dropping is done with
forward hooks (:class:`NeuronDropout`), so any model whose decoder layers can be found works;
all hooks are removed when training ends and the returned model is the plain model.

Also here: a tiny GPT-NeoX built from a config (:func:`tiny_gpt_neox`), the loss on a corpus
(:func:`language_model_loss`) and the sampled-response embeddings that EigenScore needs
(:func:`sample_response_embeddings`, INSIDE's recipe: ``K`` sampled answers per prompt, one
middle-layer hidden state of the last token each).

``transformers`` is imported only inside :func:`tiny_gpt_neox`; the other functions take any
``torch.nn.Module`` that behaves like a Hugging Face causal LM (``input_ids``,
``attention_mask``, ``labels``, ``output_hidden_states`` keywords; ``.loss``, ``.logits``,
``.hidden_states`` outputs).
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from neuronkit.common import (
    check_adam_dtype,
    check_choice,
    check_number,
    check_probability,
    check_seed,
    check_type,
    detached_input,
    eval_mode,
    forked_manual_seed,
    grad_enabled,
    progress,
    torch_generator,
)

from .sensitivity import SENSITIVITY_METHODS, neuron_sensitivity, top_sensitive

__all__ = [
    "SITES",
    "NeuronDropout",
    "SeNDConfig",
    "SeNDHistory",
    "decoder_layers",
    "language_model_loss",
    "neuron_module",
    "record_activations",
    "require_transformers",
    "sample_response_embeddings",
    "tiny_gpt_neox",
    "train_send",
]

#: Where neurons live: ``"mlp"`` (the MLP's hidden units, after the activation function) or
#: ``"hidden"`` (the decoder layer's output, the residual stream).
SITES = ("mlp", "hidden")
_EXTRA = "neuronkit-pruning[transformers]"


def require_transformers() -> Any:
    """Import and return ``transformers``; ImportError naming the extra when it is missing."""
    try:
        import transformers
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            f"SeND on Hugging Face models needs transformers: pip install '{_EXTRA}'"
        ) from err
    return transformers


def tiny_gpt_neox(
    vocab_size: int,
    *,
    hidden_size: int = 64,
    layers: int = 4,
    heads: int = 4,
    intermediate_size: int | None = None,
    max_positions: int = 64,
    seed: int = 0,
) -> nn.Module:
    """A randomly initialized ``GPTNeoXForCausalLM`` built from a ``GPTNeoXConfig``.

    No download, no pretrained weights: Pythia's architecture (parallel residual, rotary
    embeddings on a quarter of each head, GELU MLP of width ``4 * hidden_size`` unless given),
    scaled down. ``bos=1``, ``eos=2``, ``pad=0`` match :class:`~.corpus.WordTokenizer`.

    Args:
        vocab_size: number of tokens (>= 5).
        hidden_size: model width, divisible by ``heads``.
        layers: decoder layers (>= 1).
        heads: attention heads.
        intermediate_size: MLP width (default ``4 * hidden_size``).
        max_positions: longest sequence.
        seed: seed of the weight initialization (global RNG state is restored afterwards).
    """
    for name, value, low in (
        ("vocab_size", vocab_size, 5),
        ("hidden_size", hidden_size, 2),
        ("layers", layers, 1),
        ("heads", heads, 1),
        ("max_positions", max_positions, 2),
    ):
        check_number(name, value, ge=low, integer=True)
    if hidden_size % heads:
        raise ValueError(
            f"hidden_size must be divisible by heads, got hidden_size={hidden_size}, heads={heads}"
        )
    if intermediate_size is not None:
        check_number("intermediate_size", intermediate_size, ge=1, integer=True)
    check_seed(seed)
    transformers = require_transformers()
    config = transformers.GPTNeoXConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate_size or 4 * hidden_size,
        max_position_embeddings=max_positions,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        tie_word_embeddings=False,
        use_cache=False,
    )
    with forked_manual_seed(seed):
        model = transformers.GPTNeoXForCausalLM(config)
    return model


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The list of decoder layers of a Hugging Face causal LM (GPT-NeoX, Llama-style, GPT-2)."""
    check_type("model", model, nn.Module)
    for path in ("gpt_neox.layers", "model.layers", "transformer.h", "model.decoder.layers"):
        obj: Any = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, nn.ModuleList):
            return obj
    raise ValueError(
        f"model must expose its decoder layers as gpt_neox.layers, model.layers or "
        f"transformer.h, got a {type(model).__name__} without them"
    )


def neuron_module(model: nn.Module, layer: int, site: str = "mlp") -> nn.Module:
    """The module whose output holds the neurons of decoder ``layer`` at ``site``.

    ``"mlp"``: the MLP's activation-function module (``mlp.act`` / ``mlp.act_fn``), whose
    ``[B, S, intermediate]`` output are the MLP neurons; ``"hidden"``: the decoder layer
    itself (output ``[B, S, hidden]``). Negative ``layer`` counts from the end.
    """
    check_choice("site", site, SITES)
    layers = decoder_layers(model)
    check_type("layer", layer, int)
    if not -len(layers) <= layer < len(layers):
        raise ValueError(f"layer must lie in [-{len(layers)}, {len(layers)}), got {layer}")
    block = layers[layer]
    if site == "hidden":
        return block
    mlp = getattr(block, "mlp", None)
    for name in ("act", "act_fn", "activation_fn"):
        act = getattr(mlp, name, None)
        if isinstance(act, nn.Module):
            return act
    raise ValueError(
        f"site='mlp' needs a decoder layer with an mlp.act / mlp.act_fn module, "
        f"got {type(block).__name__}"
    )


def _first(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


def _drop_neurons(
    dropper: NeuronDropout, layer: int, module: nn.Module, args: Any, output: Any
) -> Any:
    """Forward hook of :class:`NeuronDropout`: zero the dropped neurons of ``layer``."""
    mask = dropper._masks.get(layer)
    if mask is None or not dropper.active:
        return None
    out = _first(output)
    if out.shape[-1] != mask.numel():
        raise ValueError(
            f"layer {layer} has {out.shape[-1]} neurons but the mask has {mask.numel()}"
        )
    dropped = out * mask.to(dtype=out.dtype, device=out.device)
    return (dropped, *output[1:]) if isinstance(output, tuple) else dropped


class NeuronDropout:
    """Deterministic dropout of chosen neurons through forward hooks (SeND's drop step).

    ``NeuronDropout(model, layers, site)`` registers one hook per layer; :meth:`set` chooses
    which neuron indices are zeroed (``None`` or empty: none). Zeroing multiplies the module
    output by a 0/1 mask over the last dimension (out of place, no rescaling). Use it as a
    context manager or call :meth:`remove`; once removed, a dropper is spent (:meth:`set` and
    ``with`` raise a ``RuntimeError``): make a new one. One dropper per module: a layer whose
    ``site`` module already carries another dropper's hook is refused (``ValueError``). The
    model stays picklable; a copy of it (deepcopy, pickle) drops the neurons dropped at copy
    time, whatever this dropper does afterwards.
    """

    def __init__(self, model: nn.Module, layers: Sequence[int], site: str = "mlp") -> None:
        check_type("layers", layers, (list, tuple))
        if not layers:
            raise ValueError("layers must name at least one decoder layer, got []")
        n = len(decoder_layers(model))
        modules = [neuron_module(model, li, site) for li in layers]  # validates each index
        if len({li % n for li in layers}) != len(layers):
            raise ValueError(f"layers must be distinct, got {list(layers)}")
        for li, m in zip(layers, modules):
            if any(
                isinstance(h, functools.partial) and h.func is _drop_neurons
                for h in m._forward_hooks.values()
            ):  # two droppers would each zero their own neurons, silently
                raise ValueError(
                    f"layers: the {site!r} module of decoder layer {li} already carries the hook "
                    "of another NeuronDropout; call that dropper's remove() (or leave its with "
                    "block) first"
                )
        self.layers = tuple(int(li) for li in layers)
        self.site = site
        self.active = True
        self._masks: dict[int, torch.Tensor | None] = dict.fromkeys(self.layers)
        # a partial of a module-level function, not a closure: the model pickles, and a copy of
        # it gets a copy of this dropper (its current masks), independent of this one
        self._handles = [
            m.register_forward_hook(functools.partial(_drop_neurons, self, li))
            for li, m in zip(self.layers, modules)
        ]

    def set(
        self, dropped: dict[int, torch.Tensor] | None, width: dict[int, int] | None = None
    ) -> None:
        """Drop ``dropped[layer]`` (int64 indices) in each layer; ``None`` clears every mask.

        ``width[layer]`` is the number of neurons of that layer (needed to build the mask).
        Every layer is checked before any mask changes: on an error the masks stay as they were.

        Raises:
            RuntimeError: the dropper's hooks were removed (nothing would be dropped).
        """
        self._check_hooked("set()")
        if dropped is None:
            self._masks = dict.fromkeys(self.layers)
            return
        check_type("dropped", dropped, dict)
        if width is None:
            raise ValueError("width must give each layer's neuron count when dropped is given")
        new: dict[int, torch.Tensor | None] = {}
        for layer, idx in dropped.items():
            if layer not in self._masks:
                raise ValueError(f"dropped names layer {layer}, expected one of {self.layers}")
            if layer not in width:
                raise ValueError(f"width must give the neuron count of layer {layer}")
            idx = torch.as_tensor(idx, dtype=torch.long).cpu()  # the masks live on the CPU
            h = int(width[layer])
            if idx.numel() and (idx.min() < 0 or idx.max() >= h):
                raise ValueError(f"dropped[{layer}] indices must lie in [0, {h}), got {idx}")
            mask = torch.ones(h)
            mask[idx] = 0.0
            new[layer] = mask if idx.numel() else None
        self._masks.update(new)

    def dropped(self) -> dict[int, torch.Tensor]:
        """The currently dropped indices per layer."""
        return {
            li: (
                torch.nonzero(m == 0).flatten()
                if m is not None
                else torch.empty(0, dtype=torch.long)
            )
            for li, m in self._masks.items()
        }

    @contextlib.contextmanager
    def suspended(self) -> Iterator[None]:
        """Within the block no neuron is dropped (masks are kept)."""
        before, self.active = self.active, False
        try:
            yield
        finally:
            self.active = before

    def remove(self) -> None:
        """Remove every hook (idempotent)."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def _check_hooked(self, what: str) -> None:
        if not self._handles:
            raise RuntimeError(
                f"NeuronDropout: {what} after its hooks were removed (by remove() or the end of "
                "a with block): it would drop nothing; make a new NeuronDropout(model, layers, "
                "site)"
            )

    def __enter__(self) -> NeuronDropout:
        self._check_hooked("a with block")
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def _check_batch(name: str, ids: torch.Tensor, mask: torch.Tensor) -> None:
    check_type(f"{name}_ids", ids, torch.Tensor)
    check_type(f"{name}_mask", mask, torch.Tensor)
    if ids.ndim != 2 or ids.dtype != torch.long:
        raise ValueError(
            f"{name}_ids must be an int64 [N, L] tensor, got {ids.dtype} {tuple(ids.shape)}"
        )
    if mask.shape != ids.shape:
        raise ValueError(
            f"{name}_mask must match {name}_ids' shape {tuple(ids.shape)}, got {tuple(mask.shape)}"
        )
    if ids.shape[0] < 1:
        raise ValueError(f"{name}_ids must hold at least one row, got shape {tuple(ids.shape)}")
    if bool((mask.sum(1) < 1).any()):
        raise ValueError(f"{name}_mask must keep at least one token per row")


@torch.no_grad()
def record_activations(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    layers: Sequence[int],
    site: str = "hidden",
    positions: torch.Tensor | None = None,
) -> torch.Tensor:
    """Activations of the neurons of ``layers`` at one token per row (eval mode, no grad).

    Args:
        model: a Hugging Face causal LM.
        input_ids: ``[N, L]`` int64, right-padded.
        attention_mask: ``[N, L]`` (1 = token).
        layers: decoder layer indices.
        site: ``"mlp"`` or ``"hidden"`` (:func:`neuron_module`).
        positions: ``[N]`` token index per row (default: each row's last real token).

    Returns:
        ``[len(layers), N, H]`` float32 (all layers must have the same width ``H``).
    """
    _check_batch("input", input_ids, attention_mask)
    if positions is None:
        positions = attention_mask.sum(1) - 1
    check_type("positions", positions, torch.Tensor)
    if positions.shape != (input_ids.shape[0],):
        raise ValueError(
            f"positions must be [N]={input_ids.shape[0]}, got {tuple(positions.shape)}"
        )
    store: dict[int, torch.Tensor] = {}
    rows = torch.arange(input_ids.shape[0], device=positions.device)

    def make(li: int) -> Any:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            store[li] = _first(output)[rows, positions].detach().float().cpu()

        return hook

    modules = [neuron_module(model, li, site) for li in layers]  # all checked before any hook
    handles = [m.register_forward_hook(make(li)) for li, m in zip(layers, modules)]
    try:
        with eval_mode(model):
            model(input_ids=input_ids, attention_mask=attention_mask)
    finally:
        for h in handles:
            h.remove()
    widths = {store[li].shape[-1] for li in layers}
    if len(widths) != 1:
        raise ValueError(f"layers must have the same number of neurons, got widths {widths}")
    return torch.stack([store[li] for li in layers])


@dataclass(frozen=True)
class SeNDConfig:
    """Settings of :func:`train_send` (``drop_fraction = 0`` is normal training).

    Attributes:
        steps: optimizer steps.
        batch_size: sequences per step (sampled without replacement, epoch by epoch).
        lr: AdamW learning rate (cosine decay to ``lr * min_lr_ratio`` over ``steps``).
        weight_decay: AdamW weight decay.
        min_lr_ratio: final learning rate as a share of ``lr``.
        layers: decoder layers whose neurons are tracked and dropped (paper: penultimate).
        site: ``"hidden"`` (the layer's output embedding: the paper's sensitive embedding
            indices, as the authors' code tracks ``hidden_states[-2]``) or ``"mlp"`` (the
            layer's MLP units).
        drop_fraction: share ``K`` of each layer's neurons dropped per interval.
        checkpoint_every: optimizer steps between two recorded checkpoints.
        window: checkpoints per interval (the paper's ``Delta``); the sensitive set is
            recomputed from each interval's checkpoints and dropped during the next one.
        sensitivity: ``"variance"`` (paper), ``"net_change"`` or ``"combined"``.
        release_steps: final steps trained with nothing dropped.
    """

    steps: int = 600
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.01
    min_lr_ratio: float = 0.1
    layers: tuple[int, ...] = (-2,)
    site: str = "hidden"
    drop_fraction: float = 0.2
    checkpoint_every: int = 10
    window: int = 3
    sensitivity: str = "variance"
    release_steps: int = 0

    def __post_init__(self) -> None:
        check_number("steps", self.steps, ge=1, integer=True)
        check_number("batch_size", self.batch_size, ge=1, integer=True)
        check_number("lr", self.lr, gt=0)
        check_number("weight_decay", self.weight_decay, ge=0)
        check_probability("min_lr_ratio", self.min_lr_ratio)
        check_type("layers", self.layers, tuple)
        if not self.layers:
            raise ValueError("layers must name at least one decoder layer, got ()")
        check_choice("site", self.site, SITES)
        check_probability("drop_fraction", self.drop_fraction, open_right=True)
        check_number("checkpoint_every", self.checkpoint_every, ge=1, integer=True)
        check_number("window", self.window, ge=2, integer=True)
        check_choice("sensitivity", self.sensitivity, SENSITIVITY_METHODS)
        check_number("release_steps", self.release_steps, ge=0, integer=True)
        first_drop = (self.window - 1) * self.checkpoint_every  # the window's last checkpoint
        if self.drop_fraction > 0 and first_drop >= self.steps - self.release_steps:
            raise ValueError(
                f"release_steps must leave room for a drop: the first drop comes at step "
                f"(window - 1) * checkpoint_every = {first_drop}, but dropping stops at step "
                f"steps - release_steps = {self.steps - self.release_steps}, so SeND would "
                "train as usual (use drop_fraction=0 for that)"
            )


@dataclass
class SeNDHistory:
    """What :func:`train_send` did: per-step loss, and every change of the dropped set."""

    loss: list[float] = field(default_factory=list)
    drops: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[int] = field(default_factory=list)


@grad_enabled("train_send")
def train_send(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    tracking_ids: torch.Tensor,
    tracking_mask: torch.Tensor,
    config: SeNDConfig,
    *,
    seed: int = 0,
    show_progress: bool | None = None,
) -> SeNDHistory:
    """Train a causal LM in place with Sensitive Neuron Dropout (or normally).

    Language-model loss on right-padded sequences (padding ignored). Every
    ``checkpoint_every`` steps the neurons of ``config.layers`` are recorded on the tracking
    set at each row's last real token (eval mode, nothing dropped); after ``window`` such
    checkpoints their sensitivity (:func:`~.sensitivity.neuron_sensitivity`) picks the top
    ``drop_fraction`` per layer, zeroed by :class:`NeuronDropout` until the next selection;
    the last ``release_steps`` steps drop nothing. Hooks are removed at the end. The batch
    order depends only on ``seed``, so ``drop_fraction=0`` with the same seed is the matched
    normal-training baseline.

    Args:
        model: a Hugging Face causal LM (modified in place).
        input_ids: ``[N, L]`` int64 training sequences; attention_mask ``[N, L]``.
        tracking_ids: ``[M, L']`` tracking inputs; tracking_mask ``[M, L']``.
        config: :class:`SeNDConfig`.
        seed: seed of the batch order.
        show_progress: a progress bar on stderr: ``None`` (default) only on a terminal, or
            ``True`` / ``False``.

    Returns:
        :class:`SeNDHistory` with the per-step loss and the dropped sets (step, layer,
        indices, sensitivity).
    """
    check_type("model", model, nn.Module)
    _check_batch("input", input_ids, attention_mask)
    _check_batch("tracking", tracking_ids, tracking_mask)
    check_type("config", config, SeNDConfig)
    check_seed(seed)
    # inference tensors (made under torch.inference_mode) cannot be saved for backward
    input_ids, attention_mask = detached_input(input_ids), detached_input(attention_mask)
    gen = torch_generator(seed)
    labels = input_ids.masked_fill(attention_mask == 0, -100)
    params = [p for p in model.parameters() if p.requires_grad]
    check_adam_dtype("model", model.named_parameters())
    # foreach: one C++ loop over the parameters instead of a Python loop (the CPU default),
    # the same element-wise arithmetic, so the same numbers
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, foreach=True)
    history = SeNDHistory()
    send = config.drop_fraction > 0
    dropper = NeuronDropout(model, list(config.layers), config.site) if send else None
    snapshots: list[torch.Tensor] = []
    n = input_ids.shape[0]
    order = torch.randperm(n, generator=gen)
    cursor = 0
    model.train()
    try:
        release = config.steps - config.release_steps  # from here on nothing is dropped
        for step in progress(range(config.steps), show_progress=show_progress, desc="train_send"):
            if dropper is not None and step < release and step % config.checkpoint_every == 0:
                with dropper.suspended():
                    snapshots.append(
                        record_activations(
                            model, tracking_ids, tracking_mask, list(config.layers), config.site
                        )
                    )
                history.checkpoints.append(step)
                if len(snapshots) == config.window:
                    acts = torch.stack(snapshots, dim=1)  # [layers, T, M, H]
                    snapshots.clear()
                    chosen, width = {}, {}
                    for j, li in enumerate(config.layers):
                        score = neuron_sensitivity(acts[j], config.sensitivity)
                        chosen[li] = top_sensitive(score, config.drop_fraction)
                        width[li] = score.numel()
                        history.drops.append(
                            {
                                "step": step,
                                "layer": li,
                                "indices": chosen[li].tolist(),
                                "sensitivity": score.tolist(),
                            }
                        )
                    dropper.set(chosen, width)
            if dropper is not None and step == release:
                dropper.set(None)
            if cursor + config.batch_size > n:
                order, cursor = torch.randperm(n, generator=gen), 0
            idx = order[cursor : cursor + config.batch_size]
            cursor += config.batch_size
            frac = step / max(1, config.steps - 1)
            scale = config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (
                1 + math.cos(math.pi * frac)
            )
            for group in opt.param_groups:
                group["lr"] = config.lr * scale
            if not model.training:  # record_activations restores the mode; set it once
                model.train()
            out = model(
                input_ids=input_ids[idx], attention_mask=attention_mask[idx], labels=labels[idx]
            )
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            opt.step()
            # drop an outer autocast's cached low-precision copies of the updated weights
            torch.clear_autocast_cache()
            history.loss.append(float(out.loss.detach()))
    finally:
        if dropper is not None:
            dropper.remove()
        model.eval()
    return history


@torch.no_grad()
def language_model_loss(
    model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, batch_size: int = 256
) -> float:
    """Mean next-token cross-entropy (nats per predicted token) over right-padded sequences."""
    _check_batch("input", input_ids, attention_mask)
    check_number("batch_size", batch_size, ge=1, integer=True)
    total, count = 0.0, 0
    with eval_mode(model):
        for s in range(0, input_ids.shape[0], batch_size):
            ids, mask = input_ids[s : s + batch_size], attention_mask[s : s + batch_size]
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            target = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
            loss = nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="sum",
                ignore_index=-100,
            )  # fmt: skip
            total += float(loss)
            count += int((target != -100).sum())
    return total / max(count, 1)


@torch.no_grad()
def sample_response_embeddings(
    model: nn.Module,
    prompts: Sequence[Sequence[int]],
    k: int,
    *,
    max_new_tokens: int = 2,
    layer: int | None = None,
    temperature: float = 1.0,
    seed: int | torch.Generator = 0,
) -> torch.Tensor:
    """Sample ``k`` responses per prompt and embed each (INSIDE's EigenScore input).

    Each prompt (token ids, no padding) is continued ``k`` times by ancestral sampling at
    ``temperature`` for exactly ``max_new_tokens`` tokens; the embedding of a response is
    ``hidden_states[layer]`` (0: token embeddings, ``i``: output of decoder layer ``i``;
    default the middle one, ``L // 2``) at the last token of prompt + response. Prompts of
    equal length are batched together. ``seed`` (an int: a CPU generator, so the same tokens on
    every device, or a ``torch.Generator``) draws the tokens on the generator's device.

    Returns:
        ``[P, k, H]`` float32 embeddings on the model's device, in the order of ``prompts``.
    """
    check_type("prompts", prompts, (list, tuple))
    if not prompts:
        raise ValueError("prompts must hold at least one prompt, got an empty sequence")
    check_number("k", k, ge=2, integer=True)
    check_number("max_new_tokens", max_new_tokens, ge=1, integer=True)
    check_number("temperature", temperature, gt=0)
    n_layers = len(decoder_layers(model))
    layer = n_layers // 2 if layer is None else layer
    check_number("layer", layer, ge=0, le=n_layers, integer=True)
    if isinstance(seed, torch.Generator):
        gen = seed
    else:
        check_seed(seed)
        gen = torch.Generator().manual_seed(int(seed))
    rows = [list(map(int, p)) for p in prompts]
    if any(len(r) == 0 for r in rows):
        raise ValueError("prompts must not be empty token lists")
    groups: dict[int, list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(len(r), []).append(i)
    out: list[torch.Tensor | None] = [None] * len(rows)
    device = next(model.parameters()).device
    with eval_mode(model):
        for length in sorted(groups):
            members = groups[length]
            seq = torch.tensor([rows[i] for i in members], dtype=torch.long, device=device)
            seq = seq.repeat_interleave(k, dim=0)
            for _ in range(max_new_tokens):
                logits = model(input_ids=seq).logits[:, -1].float() / temperature
                # drawn on the generator's device (a CPU generator: the same tokens anywhere)
                probs = torch.softmax(logits, -1).to(gen.device)
                nxt = torch.multinomial(probs, 1, generator=gen).to(device)
                seq = torch.cat([seq, nxt], dim=1)
            hidden = model(input_ids=seq, output_hidden_states=True).hidden_states[layer]
            emb = hidden[:, -1].float().reshape(len(members), k, -1)
            for j, i in enumerate(members):
                out[i] = emb[j]
    return torch.stack([e for e in out if e is not None])
