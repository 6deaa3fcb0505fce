"""Putting codebook bottlenecks into any torch model, and into Hugging Face transformers.

Tamkin, Taufeeque & Goodman, "Codebook Features" (2023), insert codebooks into every
transformer layer before the attention and MLP outputs join the residual stream: one codebook
per attention head (on the concatenated head outputs, before the attention's output
projection) and one after each MLP block. :func:`insert_codebooks` does this for any
``nn.Module`` by name: a forward hook replaces the module's output (the first tensor of a tuple
output, as attention blocks return) by the codebook's output, or a forward pre-hook replaces
its input (``inputs=``, for the pre-projection head codebooks), and ``groups=`` splits the
features into equal chunks with one codebook each (one per head).
:func:`transformer_component_names` finds the attention, attention output projection and MLP
modules of a Hugging Face ``transformers`` model (GPT-2, GPT-NeoX, GPT-J, Llama/Mistral/
Qwen-style, OPT, BERT-style encoders ...), and :func:`insert_hf_codebooks` combines the two.

The returned :class:`CodebookModel` shares the wrapped model's weights (training it fine-tunes
the model in place) and owns the codebooks; :meth:`CodebookModel.remove` takes the hooks out
and leaves the model as it was.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from neuronkit.common import check_number, check_seed, check_type

from ..hooks import check_not_compiled, get_layer
from .layer import CodebookLayer

__all__ = [
    "CodebookModel",
    "insert_codebooks",
    "insert_hf_codebooks",
    "transformer_component_names",
]

_ATTENTION_NAMES = ("attn", "attention", "self_attn", "self_attention", "attn_layer")
_MLP_NAMES = (
    "mlp",
    "feed_forward",
    "ffn",
    "ff",
    "mlp_layer",
    "block_sparse_moe",
    "DenseReluDense",  # T5
)
_BLOCK_PATTERNS = {"attention": "attn|attention", "mlp": "mlp|ffn|feed_forward"}
# output projection of the concatenated heads, inside the attention block
_PROJECTION_NAMES = ("dense", "c_proj", "o_proj", "out_proj", "output.dense", "wo", "out_lin", "o")
_COMPONENTS = ("attention", "attention_heads", "mlp")
_TRANSFORMERS_HINT = (
    "the Hugging Face helpers need the transformers package: "
    "pip install 'neuronkit-interpretability[transformers]'"
)


def _key(name: str) -> str:
    return name.replace(".", "__")


def _replace_first_tensor(output: Any, new: torch.Tensor) -> Any:
    if isinstance(output, torch.Tensor):
        return new
    if isinstance(output, tuple):
        items = list(output)
        for i, item in enumerate(items):
            if isinstance(item, torch.Tensor):
                items[i] = new
                return type(output)(items) if type(output) is tuple else output.__class__(*items)
    raise TypeError(
        "a codebook needs a module returning a tensor or a tuple holding one, "
        f"got {type(output).__name__}"
    )


def _first_tensor(output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, tuple):
        for item in output:
            if isinstance(item, torch.Tensor):
                return item
    raise TypeError(
        "a codebook needs a module returning a tensor or a tuple holding one, "
        f"got {type(output).__name__}"
    )


def _codebook_owner(module: nn.Module) -> CodebookModel | None:
    """The :class:`CodebookModel` whose hook is on ``module``, if any."""
    for hooks in (module._forward_hooks, module._forward_pre_hooks):
        for hook in hooks.values():
            owner = getattr(getattr(hook, "func", None), "__self__", None)
            if isinstance(owner, CodebookModel):
                return owner
    return None


class CodebookModel(nn.Module):
    """A model with codebooks after some of its modules (made by :func:`insert_codebooks`).

    Calling it calls the wrapped model with the same arguments; the codebooks act through
    forward hooks on the named modules (forward pre-hooks on their input for the modules
    named in ``inputs``).

    Args:
        model: the model to wrap (shared, not copied; not a ``torch.compile``'d module).
        codebooks: ``{module name: CodebookLayer}``.
        inputs: the names whose module input (first positional tensor argument) is snapped
            instead of its output.

    Attributes:
        model: the wrapped model (shared, not copied).
        codebooks: ``{module name: CodebookLayer}`` in insertion order.
    """

    def __init__(
        self,
        model: nn.Module,
        codebooks: Mapping[str, CodebookLayer],
        *,
        inputs: Sequence[str] = (),
    ) -> None:
        super().__init__()
        check_type("model", model, nn.Module)
        check_not_compiled("model", model)
        if not isinstance(codebooks, Mapping):
            raise TypeError(
                "codebooks must be a mapping of module name to CodebookLayer, got "
                f"{type(codebooks).__name__} ({codebooks!r:.80})"
            )
        if not codebooks:
            raise ValueError("codebooks must name at least one module, got none")
        for name, layer in codebooks.items():
            check_type("codebooks keys", name, str)
            check_type(f"codebooks[{name!r}]", layer, CodebookLayer)
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, Sequence):
            raise TypeError(f"inputs must be a sequence of module names, got {inputs!r:.80}")
        unknown = [n for n in inputs if n not in codebooks]
        if unknown:
            raise ValueError(
                f"inputs must name modules with codebooks {list(codebooks)}, got {unknown}"
            )
        self.model = model
        self.training = model.training  # this module's flag only; model and codebooks keep theirs
        self._names = list(codebooks)
        self._inputs = frozenset(inputs)
        self.layers = nn.ModuleDict({_key(n): layer for n, layer in codebooks.items()})
        self._handles: list[Any] = []
        self._collect: dict[str, list[torch.Tensor]] | None = None
        self._tokens: tuple[int, int] | None = None
        self._attach()

    # ------------------------------------------------------------------ plumbing
    @property
    def codebooks(self) -> dict[str, CodebookLayer]:
        """``{module name: CodebookLayer}``."""
        return {n: self.layers[_key(n)] for n in self._names}  # type: ignore[misc]

    @property
    def names(self) -> list[str]:
        """The names of the modules that carry a codebook."""
        return list(self._names)

    @property
    def inputs(self) -> list[str]:
        """The names whose module input (not output) carries the codebook."""
        return [n for n in self._names if n in self._inputs]

    def _attach(self) -> None:
        # the hooks are bound methods of this module (not closures over it): copy.deepcopy
        # rebinds them to the copy, so a deep copy (or a pruned copy) of the model runs,
        # records and is forced through its own codebooks, not the original's
        modules = {name: get_layer(self.model, name) for name in self._names}  # all, or none
        for name, module in modules.items():
            if _codebook_owner(module) is not None:  # two codebooks would snap in turn
                raise ValueError(
                    f"codebooks[{name!r}]: the module already carries a codebook of another "
                    "CodebookModel; call that model's remove() first"
                )
        for name, module in modules.items():
            if name in self._inputs:
                handle = module.register_forward_pre_hook(functools.partial(self._pre_hook, name))
            else:
                handle = module.register_forward_hook(functools.partial(self._hook, name))
            self._handles.append(handle)

    def _hook(self, name: str, module: nn.Module, args: Any, output: Any) -> Any:
        return self._snap(name, output)

    def _pre_hook(self, name: str, module: nn.Module, args: Any) -> Any:
        return self._snap(name, tuple(args))

    def _snap(self, name: str, values: Any) -> Any:
        """``values`` (a module's output or its input arguments) with the first tensor snapped
        by the codebook ``name`` (or recorded, inside :meth:`initialize_codebooks`). Token
        activations flattened to ``[B * T, D]`` (OPT's MLP) are snapped as ``[B, T, D]``."""
        x = _first_tensor(values)
        x_bt, tokens = x, self._tokens
        if tokens is not None and x.ndim == 2 and x.shape[0] == tokens[0] * tokens[1]:
            x_bt = x.reshape(*tokens, x.shape[-1])
        if self._collect is not None:
            self._collect[name].append(x_bt.detach().clone())  # later in-place ops
            return None
        return _replace_first_tensor(values, self.layers[_key(name)](x_bt).reshape(x.shape))

    @contextlib.contextmanager
    def _token_shape(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[None]:
        """Within the block, ``(B, T)`` of the call's ``[B, T]`` integer token ids, if any."""
        ids = kwargs.get("input_ids", args[0] if args else None)
        self._tokens = None
        if isinstance(ids, torch.Tensor) and ids.ndim == 2 and not ids.is_floating_point():
            self._tokens = (int(ids.shape[0]), int(ids.shape[1]))
        try:
            yield
        finally:
            self._tokens = None

    def remove(self) -> None:
        """Remove the hooks: the wrapped model runs as if no codebook had been inserted."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @property
    def attached(self) -> bool:
        """Whether the hooks are in place."""
        return bool(self._handles)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Run the wrapped model (``self.model(*args, **kwargs)``)."""
        if not self._handles:
            raise RuntimeError("the codebooks were removed; call the wrapped model directly")
        with self._token_shape(args, kwargs):
            return self.model(*args, **kwargs)

    # ------------------------------------------------------------------ training helpers
    def codebook_loss(self) -> torch.Tensor:
        """Sum over codebooks of their reconstruction loss on the last forward call."""
        losses = [layer.reconstruction_loss() for layer in self.codebooks.values()]
        return torch.stack(losses).sum()

    @contextlib.contextmanager
    def disabled(self) -> Iterator[None]:
        """Inside the block the codebooks pass activations through unchanged."""
        states = {n: layer.enabled for n, layer in self.codebooks.items()}
        for layer in self.codebooks.values():
            layer.enabled = False
        try:
            yield
        finally:
            for n, layer in self.codebooks.items():
                layer.enabled = states[n]

    @torch.no_grad()
    def initialize_codebooks(self, *args: Any, **kwargs: Any) -> None:
        """Run the model once on the given inputs without codebooks and initialise every
        codebook from the activations it would replace (:meth:`CodebookLayer.initialize_from`).
        """
        self._collect = {n: [] for n in self._names}
        try:
            with self._token_shape(args, kwargs):
                self.model(*args, **kwargs)
            collected = self._collect
        finally:
            self._collect = None
        # every codebook's input first: a module left uncalled refuses before any codebook changes
        missing = [name for name in self._names if not collected[name]]
        if missing:
            which = ", ".join(map(repr, missing))
            raise RuntimeError(
                f"module {which} was not called by the model's forward pass"
                if len(missing) == 1
                else f"modules {which} were not called by the model's forward pass"
            )
        inputs = {
            n: torch.cat([t.reshape(-1, t.shape[-1]) for t in collected[n]]) for n in self._names
        }
        layers = self.codebooks
        saved = {n: (cb.codebook.detach().clone(), cb.counts.clone()) for n, cb in layers.items()}
        try:
            for name, layer in layers.items():
                layer.initialize_from(inputs[name])
        except BaseException:  # e.g. non-finite activations at a later module: all as before
            for name, layer in layers.items():
                layer.codebook.data.copy_(saved[name][0])
                layer.counts.copy_(saved[name][1])
            raise

    def reset_counts(self) -> None:
        """Zero every codebook's usage counts."""
        for layer in self.codebooks.values():
            layer.reset_counts()

    # ------------------------------------------------------------------ interpretation
    @contextlib.contextmanager
    def record_codes(
        self, names: Sequence[str] | None = None
    ) -> Iterator[dict[str, list[torch.Tensor]]]:
        """Record the codes chosen inside the block.

        Yields ``{module name: [ids per forward call]}``; each entry is ``[..., k]`` long (for
        a transformer, ``[B, T, k]``). ``names`` restricts recording to some codebooks.
        """
        chosen = self._check_names("names", names)
        with contextlib.ExitStack() as stack:
            out = {n: stack.enter_context(self.codebooks[n].record()) for n in chosen}
            yield out

    @contextlib.contextmanager
    def force_codes(
        self,
        codes: Mapping[str, torch.Tensor | Sequence[int] | int],
        positions: int | Sequence[int] | torch.Tensor | None = None,
        *,
        per_sequence: bool = False,
    ) -> Iterator[None]:
        """Activate codes during the block: ``{module name: ids}`` (see
        :meth:`CodebookLayer.force`), at ``positions`` of the sequence (``None``: everywhere;
        with ``per_sequence``, ``positions[b]`` of sequence ``b``).
        """
        if not isinstance(codes, Mapping) or not codes:
            raise TypeError(
                f"codes must be a non-empty mapping of module name to ids, got {codes!r:.80}"
            )
        self._check_names("codes", list(codes))
        with contextlib.ExitStack() as stack:
            for name, ids in codes.items():
                stack.enter_context(
                    self.codebooks[name].force(ids, positions, per_sequence=per_sequence)
                )
            yield

    def _check_names(self, arg: str, names: Sequence[str] | None) -> list[str]:
        if names is None:
            return list(self._names)
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, Sequence):
            raise TypeError(f"{arg} must be a sequence of module names, got {names!r:.80}")
        unknown = [n for n in names if n not in self._names]
        if unknown:
            raise ValueError(f"{arg} must name modules with codebooks {self._names}, got {unknown}")
        return list(names)


def insert_codebooks(
    model: nn.Module,
    modules: Sequence[str] | Mapping[str, int],
    *,
    num_codes: int,
    k: int = 1,
    groups: int | Mapping[str, int] = 1,
    inputs: Sequence[str] = (),
    reduce: str = "mean",
    layer_norm: bool = True,
    replace_after_steps: int = 0,
    replace_rho: float = 1e-4,
    seed: int = 0,
) -> CodebookModel:
    """Put a :class:`CodebookLayer` after (or before) each named module of ``model``.

    Args:
        model: any ``nn.Module``; its weights are shared with the result, not copied. Not a
            ``torch.compile``'d module (its compiled code skips the hooks): pass
            ``model._orig_mod``.
        modules: names as in ``model.named_modules()``, or ``{name: dim}`` when the size
            cannot be inferred (an output size is read from the module's ``out_features``,
            ``embed_dim``, ``hidden_size`` or ``normalized_shape``, else from its last
            parameter; an input size from ``in_features`` or ``nx``). The module's output (or
            the first tensor of a tuple output) must be ``[..., dim]``.
        num_codes, k, reduce, layer_norm, replace_after_steps, replace_rho: see
            :class:`CodebookLayer` (the same for every codebook).
        groups: codebooks per vector (:class:`CodebookLayer` ``groups``): an int for every
            module or ``{name: groups}`` (unnamed modules get 1). For the paper's per-head
            attention codebooks, the number of heads on the attention's output projection
            input.
        inputs: names (among ``modules``) whose input (the first positional tensor argument,
            ``[..., dim]``) is snapped instead of the output, e.g. the concatenated head
            outputs entering an attention output projection.
        seed: codebook ``i`` is seeded with ``seed + i``.

    Returns:
        a :class:`CodebookModel` (hooks are already attached), in ``model``'s train/eval mode
        and each codebook in that of its module.

    Raises:
        ValueError: a module is the ``out_proj`` of an ``nn.MultiheadAttention`` (never called
            as a module, so a codebook on it would never run).
    """
    check_type("model", model, nn.Module)
    check_not_compiled("model", model)
    check_seed(seed)
    if isinstance(modules, str) or not isinstance(modules, (Sequence, Mapping)):
        raise TypeError(
            "modules must be a sequence of module names or a {name: dim} mapping, "
            f"got {modules!r:.80}"
        )
    items = list(modules.items()) if isinstance(modules, Mapping) else [(n, None) for n in modules]
    if not items:
        raise ValueError("modules must name at least one submodule, got none")
    names = [n for n, _ in items]
    if len(set(names)) != len(names):
        raise ValueError(f"modules must be distinct, got {names}")
    if isinstance(inputs, str) or not isinstance(inputs, Sequence):
        raise TypeError(f"inputs must be a sequence of module names, got {inputs!r:.80}")
    unknown = [n for n in inputs if n not in names]
    if unknown:
        raise ValueError(f"inputs must be among modules {names}, got {unknown}")
    if isinstance(groups, Mapping):
        extra = [n for n in groups if n not in names]
        if extra:
            raise ValueError(f"groups must name modules among {names}, got {extra}")
        group_of = {n: groups.get(n, 1) for n in names}
    else:
        group_of = dict.fromkeys(names, groups)
    layers: dict[str, CodebookLayer] = {}
    for i, (name, dim) in enumerate(items):
        check_type(f"modules[{i}]", name, str)
        module = get_layer(model, name, argument=f"modules[{i}]")
        parent, _, attr = name.rpartition(".")
        if attr == "out_proj" and isinstance(
            get_layer(model, parent) if parent else model, nn.MultiheadAttention
        ):
            raise ValueError(
                f"modules: {name!r} is the out_proj of an nn.MultiheadAttention, which uses its "
                "weight directly and never calls it, so a codebook there would never run; put "
                f"it on the attention module {parent or 'model'!r} itself (its output) or on a "
                "later layer"
            )
        on_input = name in inputs
        if dim is not None:
            size: int | None = dim
        else:
            size = _input_dim(module) if on_input else _output_dim(module)
        if size is None:
            side = "input" if on_input else "output"
            raise ValueError(
                f"modules: cannot infer the {side} size of {name!r} ({type(module).__name__}); "
                "pass {name: dim}"
            )
        check_number(f"dim of {name!r}", size, ge=1, integer=True)
        check_number(f"groups of {name!r}", group_of[name], ge=1, integer=True)
        layers[name] = CodebookLayer(
            int(size),
            num_codes,
            k=k,
            groups=int(group_of[name]),
            reduce=reduce,
            layer_norm=layer_norm,
            replace_after_steps=replace_after_steps,
            replace_rho=replace_rho,
            seed=seed + i,
        ).train(module.training)  # an eval-mode model gets eval-mode codebooks
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    for layer in layers.values():
        layer.to(device=device, dtype=dtype)
    return CodebookModel(model, layers, inputs=list(inputs))


def _input_dim(module: nn.Module) -> int | None:
    for attr in ("in_features", "nx"):
        value = getattr(module, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _output_dim(module: nn.Module) -> int | None:
    for attr in ("out_features", "embed_dim", "hidden_size", "nf"):
        value = getattr(module, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    shape = getattr(module, "normalized_shape", None)
    if isinstance(shape, tuple) and shape:
        return int(shape[-1])
    config = getattr(module, "config", None)
    size = getattr(config, "hidden_size", None)
    if isinstance(size, int):
        return size
    last: nn.Module | None = None
    for sub in module.modules():
        if isinstance(sub, (nn.Linear, nn.Conv1d)) or type(sub).__name__ == "Conv1D":
            last = sub
    if isinstance(last, nn.Linear):
        return last.out_features
    nf = getattr(last, "nf", None)  # transformers' GPT-2 Conv1D
    return int(nf) if isinstance(nf, int) else None


def _require_transformers() -> Any:
    try:
        import transformers
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(_TRANSFORMERS_HINT) from err
    return transformers


def _post_norm_output(block: nn.Module | None) -> bool:
    """Whether ``block`` is a post-norm output module (BERT's ``BertSelfOutput`` /
    ``BertOutput``): a ``dense`` projection whose output is added to the residual and
    layer-normalized inside the block."""
    children = dict(block.named_children()) if block is not None else {}
    return isinstance(children.get("dense"), nn.Linear) and any(
        isinstance(c, nn.LayerNorm) or type(c).__name__.endswith("LayerNorm")  # DeBERTa's own
        for c in children.values()
    )


def _find_block(layer: nn.Module, block: str) -> str | None:
    """The attention or MLP block of one transformer layer, relative to it: a child with a
    known name or one matching the block's pattern; for the MLP of a post-norm BERT-style
    layer (``intermediate`` and ``output`` children) ``output.dense``, and of a layer whose
    MLP is two of its own linear layers (OPT, BART, XGLM: ``fc1``, ``fc2``) ``fc2``; else the
    shallowest descendant with a known or matching name (T5's ``layer.0.SelfAttention``,
    ``layer.1.DenseReluDense``)."""
    children = dict(layer.named_children())
    names = _ATTENTION_NAMES if block == "attention" else _MLP_NAMES
    pattern = re.compile(_BLOCK_PATTERNS[block], re.IGNORECASE)
    found = next((c for c in names if c in children), None)
    found = found or next((c for c in children if pattern.search(c)), None)
    if found is None and block == "mlp":
        if "intermediate" in children and _post_norm_output(children.get("output")):
            return "output.dense"
        if all(isinstance(children.get(c), nn.Linear) for c in ("fc1", "fc2")):
            return "fc2"
    if found is None:
        deeper = sorted(
            (n for n, _ in layer.named_modules() if "." in n), key=lambda n: n.count(".")
        )
        last = {n: n.rpartition(".")[2] for n in deeper}
        found = next((n for c in names for n in deeper if last[n] == c), None)
        found = found or next((n for n in deeper if pattern.search(last[n])), None)
    return found


def _find_component(layer: nn.Module, comp: str, where: str) -> str:
    """The module of component ``comp`` in the transformer layer ``layer`` (named ``where``),
    relative to the layer (see :func:`transformer_component_names`)."""
    block = "attention" if comp == "attention_heads" else comp
    found = _find_block(layer, block)
    if found is None:
        raise ValueError(
            f"model: layer {where} has no {block} block among its children "
            f"{[n for n, _ in layer.named_children()]} (looked for "
            f"{_ATTENTION_NAMES if block == 'attention' else _MLP_NAMES} and their descendants, "
            "BERT-style 'intermediate' and 'output', or 'fc1' and 'fc2')"
        )
    module = layer.get_submodule(found)
    if comp == "attention" and _post_norm_output(dict(module.named_children()).get("output")):
        return f"{found}.output.dense"
    if comp == "attention_heads":
        inner = sorted((n for n, _ in module.named_modules() if n), key=lambda n: n.count("."))
        proj = next(
            (n for c in _PROJECTION_NAMES for n in inner if n == c or n.endswith(f".{c}")), None
        )
        if proj is None:
            raise ValueError(
                f"model: attention block {where}.{found} has no output projection among "
                f"{_PROJECTION_NAMES}"
            )
        return f"{found}.{proj}"
    return found


def _component_list(components: Any) -> list[str]:
    """``components`` (a name or a sequence of names) as a list, its type checked."""
    if isinstance(components, str):
        return [components]
    if not isinstance(components, Sequence):
        raise TypeError(
            f"components must be a sequence of {', '.join(map(repr, _COMPONENTS))}, got "
            f"{type(components).__name__} ({components!r:.80})"
        )
    return list(components)


def _layer_list(layers: Any) -> list[Any] | None:
    """``layers`` (``None`` or an iterable of layer indices) as a list, read once: a generator
    passed to :func:`insert_hf_codebooks`, which reads the selection twice, must not run dry."""
    if layers is None:
        return None
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Iterable):
        raise TypeError(
            f"layers must be a sequence of layer indices or None, got {type(layers).__name__} "
            f"({layers!r:.80})"
        )
    chosen = list(layers)
    if not chosen:
        raise ValueError("layers must select at least one layer (None: all layers), got none")
    return chosen


def transformer_component_names(
    model: nn.Module,
    components: Sequence[str] = ("attention", "mlp"),
    layers: Sequence[int] | None = None,
) -> list[str]:
    """Names of the attention and/or MLP blocks of a Hugging Face transformers model.

    The blocks are the children, named like ``attn``/``attention``/``self_attn`` (attention)
    or ``mlp``/``feed_forward``/``ffn`` (MLP), of each element of the model's stack of layers
    (the ``nn.ModuleList`` with ``config.num_hidden_layers`` entries, e.g.
    ``transformer.h`` of GPT-2 or ``gpt_neox.layers`` of GPT-NeoX). ``"attention_heads"``
    names the attention block's output projection (``dense``, ``c_proj``, ``o_proj``,
    ``out_proj``, ...; also one level down, as in GPT-Neo), whose input is the concatenation
    of the heads' outputs.

    Post-norm BERT-style layers (``attention``, ``intermediate``, ``output`` children) add the
    residual and layer-normalize inside ``attention.output`` and ``output``, so there the
    blocks' outputs before the residual are those of the dense projections:
    ``"attention"`` names ``attention.output.dense`` and ``"mlp"`` names ``output.dense``.
    Layers whose MLP is two of their own linear layers (OPT, BART, XGLM, BioGPT: ``fc1``,
    ``fc2``) give ``fc2`` as the MLP; blocks nested deeper (T5's ``layer.0.SelfAttention``
    and ``layer.1.DenseReluDense``) are found as the shallowest descendants with such names.
    Checked on 43 tiny architectures (decoders, BERT-style encoders, T5, BART).

    Args:
        model: a ``transformers.PreTrainedModel``.
        components: any of ``"attention"``, ``"attention_heads"``, ``"mlp"``, in the order
            wanted within a layer.
        layers: distinct layer indices (negative from the end); ``None``: all layers.

    Returns:
        module names, layer by layer (e.g. ``["transformer.h.0.attn", "transformer.h.0.mlp",
        ...]``; ``"gpt_neox.layers.0.attention.dense"`` for ``"attention_heads"``).

    Raises:
        ImportError: transformers is not installed (names the extra to install).
        TypeError: ``model`` is not a ``PreTrainedModel``.
        ValueError: no layer stack or no matching block was found.
    """
    transformers = _require_transformers()
    check_type("model", model, transformers.PreTrainedModel)
    comps = _component_list(components)
    layers = _layer_list(layers)
    if not comps or any(c not in _COMPONENTS for c in comps):
        raise ValueError(
            f"components must be a non-empty selection of {', '.join(map(repr, _COMPONENTS))}, "
            f"got {comps}"
        )
    n_layers = getattr(model.config, "num_hidden_layers", None)
    stacks = [
        (name, mod)
        for name, mod in model.named_modules()
        if isinstance(mod, nn.ModuleList)
        and len(mod) > 0
        and (n_layers is None or len(mod) == n_layers)
    ]
    if not stacks:
        raise ValueError(
            f"model: found no nn.ModuleList of {n_layers} transformer layers in "
            f"{type(model).__name__}"
        )
    stack_name, stack = stacks[0]
    total = len(stack)
    if layers is None:
        chosen = list(range(total))
    else:
        chosen = []
        for i, idx in enumerate(layers):
            check_number(f"layers[{i}]", idx, ge=-total, lt=total, integer=True)
            chosen.append(idx % total)
        twice = sorted({c for c in chosen if chosen.count(c) > 1})
        if twice:  # a module would carry two codebooks
            raise ValueError(
                f"layers must be distinct layer indices (of {total} layers), got {layers} "
                f"(layer {', '.join(map(str, twice))} named more than once)"
            )
    names: list[str] = []
    for idx in chosen:
        for comp in comps:
            found = _find_component(stack[idx], comp, f"{stack_name}.{idx}")
            names.append(f"{stack_name}.{idx}.{found}")
    return names


def insert_hf_codebooks(
    model: nn.Module,
    *,
    components: Sequence[str] = ("attention", "mlp"),
    layers: Sequence[int] | None = None,
    num_codes: int,
    k: int = 1,
    reduce: str = "mean",
    layer_norm: bool = True,
    replace_after_steps: int = 0,
    replace_rho: float = 1e-4,
    seed: int = 0,
) -> CodebookModel:
    """Codebooks in the attention and/or MLP blocks of a Hugging Face transformers model.

    ``"attention"`` and ``"mlp"`` put one codebook (as wide as the module's output, normally
    ``config.hidden_size``) on each block's output, before it is added to the residual stream
    (for BERT-style post-norm layers, on the dense output projections; see
    :func:`transformer_component_names`).
    ``"attention_heads"`` is the paper's attention setup (the reference code's grouped
    codebooks at "attn_preproj"): the concatenated head outputs entering the attention's
    output projection are snapped with one codebook per head (``groups =
    config.num_attention_heads``, each of ``num_codes`` codes).
    The TokFSM setting of the paper is ``components=("attention_heads", "mlp")``. See
    :func:`transformer_component_names` and :func:`insert_codebooks` for the arguments.
    """
    layers = _layer_list(layers)  # once: a generator would be empty on the second reading
    names = transformer_component_names(model, components, layers)
    comps = _component_list(components)
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(
            f"components {comps} name the same modules twice for "
            f"{type(model).__name__}: {twice[:4]} (in BERT-style layers 'attention' and "
            "'attention_heads' are both on attention.output.dense); choose one"
        )
    hidden = getattr(model.config, "hidden_size", None)
    if not isinstance(hidden, int):
        raise ValueError(f"model: config.hidden_size must be an int, got {hidden!r:.80}")
    heads: dict[str, int] = {}
    dims: dict[str, int] = {}
    if "attention_heads" in comps:
        n_heads = getattr(model.config, "num_attention_heads", None)
        if not isinstance(n_heads, int):
            raise ValueError(
                f"model: config.num_attention_heads must be an int, got {n_heads!r:.80}"
            )
        proj_names = set(transformer_component_names(model, ["attention_heads"], layers))
        for name in names:
            if name in proj_names:
                size = _input_dim(get_layer(model, name))
                dims[name] = size if size is not None else hidden
                heads[name] = n_heads
    for name in names:  # the modules' own widths: a pruned model's config may lag behind
        if name not in dims:
            size = _output_dim(get_layer(model, name))
            dims[name] = size if size is not None else hidden
    return insert_codebooks(
        model,
        {n: dims[n] for n in names},  # in the model's order
        num_codes=num_codes,
        k=k,
        groups=heads,
        inputs=list(heads),
        reduce=reduce,
        layer_norm=layer_norm,
        replace_after_steps=replace_after_steps,
        replace_rho=replace_rho,
        seed=seed,
    )
