"""Keep a pruned Hugging Face model's ``config`` true to its new shapes.

After :func:`~neuronkit.pruning.prune` removes residual channels, attention heads or MLP
channels from a ``transformers`` model, ``model.config`` still describes the original sizes, so
``save_pretrained`` followed by ``from_pretrained`` would build the wrong model.
:func:`sync_hf_config` first reads the sizes off the pruned modules where it knows their names
(GPT-2, BERT and the LLaMA family: Llama, Mistral, Qwen2, ...) and proves the result by building
the model class from the new config without initializing it (on the meta device, or with example
inputs on the CPU, where the same build is then run) and comparing every parameter shape.

For any other architecture, given example inputs, it searches the config: every integer field
(or element of an integer list, such as ConvNeXt's per-stage ``hidden_sizes``) that equals a
size the pruning changed is a candidate for the new size, and a field named for heads (``n_head``,
``num_heads``, ...) a candidate for the head count that keeps the head size. A candidate is kept
when the model built from it matches more parameter shapes and loses none. Equal shapes do not
prove an equal model (four heads of 8 channels have the shapes of two heads of 16), so the found
config is accepted only when the model it builds, sharing the pruned model's tensors, computes
the pruned model's outputs on the example inputs.

A config cannot describe layers of different sizes (global pruning) or a width that the
architecture ties to another one that changed differently (GPT-2's heads x head_dim); such a
config is left as it was, with a warning that names the mismatch.
"""

from __future__ import annotations

import copy
import functools
import sys
import warnings
from collections.abc import Collection, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from types import FrameType
from typing import Any

import torch
import torch.utils._pytree as pytree
from torch import nn

from neuronkit.common import eval_mode

from .tracing import ConfigView, call_model, split_inputs

__all__ = ["sync_hf_config"]


def _per_layer_sizes(model: nn.Module) -> dict[str, list[int]]:
    """Config field -> the size each transformer layer now has (GPT-2, LLaMA- and BERT-style
    module names, and the config fields a module's ``forward`` reads, which
    :func:`~.prune.prune` rewrote in its :class:`~.tracing.ConfigView`)."""
    sizes: dict[str, list[int]] = {}

    def add(field: str, value: Any) -> None:
        sizes.setdefault(field, []).append(int(value))

    for mod in model.modules():
        q, k, up = (getattr(mod, n, None) for n in ("q_proj", "k_proj", "up_proj"))
        attrs = vars(mod)  # plain attributes (head_dim, num_heads, ...), not submodules
        view = attrs.get("config")
        if isinstance(view, ConfigView):  # sizes its forward reads from the config (Phi-3)
            for field, value in view.overrides.items():
                add(field, value)
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


# a model built from a config and its parameter shapes, or (None, why the class rejects it)
_Built = tuple[nn.Module | None, dict[str, tuple[int, ...]] | str]


def _no_init_weights() -> AbstractContextManager[Any]:
    """``transformers``' context that skips weight initialization (only shapes are read)."""
    import importlib

    try:
        module = importlib.import_module("transformers.initialization")  # transformers >= 5
    except ImportError:  # pragma: no cover - transformers 4.x
        module = importlib.import_module("transformers.modeling_utils")
    context: AbstractContextManager[Any] = module.no_init_weights()
    return context


def _build(model: nn.Module, config: Any, device: str = "meta") -> nn.Module:
    """``type(model)(config)`` on ``device`` without initializing weights (on the CPU the
    weights are allocated, never written). On the default device no device context is
    entered: it would intercept every tensor the constructors create."""
    target = torch.device(device)
    place = nullcontext() if torch.get_default_device() == target else target
    with place, _no_init_weights():
        return type(model)(config)


def _built(model: nn.Module, config: Any, device: str) -> _Built:
    """The model ``config`` builds on ``device`` and its parameter shapes, or ``(None, why the
    class rejects it)``. Built on the CPU, its weights are allocated but never written (no
    page is touched), so it costs what a build on the meta device costs and can be run as the
    twin of :func:`_same_function`."""
    try:
        built = _build(model, config, device)
    except Exception as err:  # a model class may raise anything on a config it cannot build
        return None, f"the model class rejects it: {type(err).__name__}: {err}"
    return built, _shapes(built)


def _matched(want: dict[str, tuple[int, ...]], got: dict[str, tuple[int, ...]]) -> set[str]:
    return {k for k, shape in want.items() if got.get(k) == shape}


def sync_hf_config(model: nn.Module, example_inputs: Any = None) -> dict[str, Any]:
    """Write a pruned Hugging Face model's new sizes into ``model.config`` (in place).

    Args:
        model: a ``transformers`` ``PreTrainedModel`` after structural pruning.
        example_inputs: inputs the model accepts (a tensor, a tuple or a dict of keyword
            inputs, as for :class:`~neuronkit.pruning.DependencyGraph`). With them, a config
            the known module names do not describe is searched for, and every config is checked
            by running the model it builds (see the module docstring); without them only the
            known names are read and only the shapes are checked. :func:`~neuronkit.pruning.prune`
            passes the graph's example inputs.

    Returns:
        the config fields that changed, e.g. ``{"hidden_size": 32, "num_attention_heads": 2}``
        (a list field whole, a nested config's field as ``"vision_config.hidden_size"``);
        empty when nothing changed or no config describes the pruned model (then a
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
    inputs = None if example_inputs is None else split_inputs(example_inputs)
    known, problem = _known_sizes(model, config)
    new = copy.deepcopy(config)  # checked even when no known field changed (e.g. T5's heads)
    for field, value in known.items():
        setattr(new, field, value)
    want = _shapes(model)
    device = "meta" if inputs is None else "cpu"  # a CPU build can be run (the twin)
    twin, got = _built(model, new, device)
    if isinstance(got, str):
        problem = problem or got
        new = copy.deepcopy(config)
        twin, got = _built(model, new, device)
    elif got == want:
        if inputs is None or _same_function(model, twin, inputs):
            for field, value in known.items():
                setattr(config, field, value)
            return known
        problem = problem or _OTHER_OUTPUTS
    else:
        bad = next((k for k in want if got.get(k) != want[k]), None)
        problem = problem or (
            f"{bad}: pruned {want[bad]}, built from the updated config {got.get(bad)}"
            if bad is not None
            else f"the rebuilt model has other parameters ({sorted(set(got) - set(want))[:3]})"
        )
    found = None
    if inputs is not None and isinstance(got, dict):
        found = _search(model, new, (twin, got), want, inputs)
    if found is None or isinstance(found, str):
        return _unchanged(f"no config describes the pruned model ({found or problem})")
    # with the fields the known names added (ViT's head_dim): write the config that was proved
    changed = _differences(config, found, added=set(known))
    for name, value in changed.items():
        owner, _, field = name.rpartition(".")
        setattr(getattr(config, owner) if owner else config, field, value)
    return changed


def _known_sizes(model: nn.Module, config: Any) -> tuple[dict[str, int], str | None]:
    """The config fields that the known module names give (those that changed), or a
    problem when the layers disagree."""
    candidate: dict[str, int] = {}
    try:
        emb = model.get_input_embeddings()  # type: ignore[operator]
    except NotImplementedError:  # vision models (ResNet, MobileViT) have no token embedding
        emb = None
    if isinstance(emb, nn.Embedding):
        candidate["hidden_size"] = emb.embedding_dim
    for field, values in _per_layer_sizes(model).items():
        if len(set(values)) > 1:
            return {}, (
                f"layers differ in {field} ({sorted(set(values))}); a Hugging Face config "
                "holds one value"
            )
        candidate[field] = values[0]
    current = {f: getattr(config, f, None) for f in candidate}
    if "n_inner" in current and current["n_inner"] is None:  # GPT-2's default: 4 x width
        current["n_inner"] = 4 * config.hidden_size
    # a field that holds something else (SegFormer's per-stage head counts) is the search's
    known = {f: v for f, v in candidate.items() if current[f] is None or type(current[f]) is int}
    return {f: v for f, v in known.items() if current[f] != v}, None


# a config field: (attribute,), (attribute, list index), (sub-config, attribute[, index])
_Path = tuple[str | int, ...]


def _int_fields(config: Any, prefix: _Path = ()) -> list[tuple[_Path, int]]:
    """Every integer field of ``config``, every element of an integer list, and those of
    nested configs (``text_config``, ...), one level deep."""
    out: list[tuple[_Path, int]] = []
    for key, value in vars(config).items():
        if key.startswith("_"):
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            out.append(((*prefix, key), value))
        elif (
            isinstance(value, (list, tuple))
            and value
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        ):
            out.extend(((*prefix, key, i), v) for i, v in enumerate(value))
        elif not prefix and hasattr(value, "to_dict") and hasattr(value, "model_type"):
            out.extend(_int_fields(value, (key,)))
    return out


def _get(config: Any, path: _Path) -> Any:
    obj = config
    for part in path:
        obj = obj[part] if isinstance(part, int) else getattr(obj, part)
    return obj


# fields set together: ((path, new value), ...)
_Change = tuple[tuple[_Path, int], ...]


def _holds(config: Any, change: _Change) -> bool:
    return all(_get(config, path) == value for path, value in change)


def _with(config: Any, change: _Change) -> Any | None:
    """A copy of ``config`` with ``change`` made, or None where the config class rejects a
    value (a validating config)."""
    trial = copy.deepcopy(config)
    try:
        for path, value in change:
            if isinstance(path[-1], int):  # one element of a list field: the field is replaced
                owner, field = _get(trial, path[:-2]), str(path[-2])
                old = getattr(owner, field)
                seq = list(old)
                seq[path[-1]] = value
                setattr(owner, field, type(old)(seq) if isinstance(old, tuple) else seq)
            else:
                setattr(_get(trial, path[:-1]), str(path[-1]), value)
    except Exception:  # e.g. huggingface_hub's strict dataclass validation
        return None
    return trial


def _candidates(config: Any, pairs: set[tuple[int, int]]) -> list[_Change]:
    """Changes to try: fields equal to a changed size get the new size; head counts get the
    count that keeps the head size (``a / v`` channels per head). First, the elements of a
    list field (ConvNeXt's per-stage ``hidden_sizes``) all at once, each to its first new
    size (one model built instead of one per stage), then every field alone, then every head
    count at once (Falcon's ``num_attention_heads`` and ``num_kv_heads`` reshape the same
    heads)."""
    exact: list[tuple[_Path, int]] = []
    heads: list[tuple[_Path, int]] = []
    for path, v in _int_fields(config):
        name = str(path[-1] if isinstance(path[-1], str) else path[-2]).lower()
        for a, b in sorted(pairs):
            if v == a:
                exact.append((path, b))
            elif "head" in name and v > 0 and a % v == 0 and (b * v) % a == 0:
                heads.append((path, b * v // a))
    lists: dict[_Path, dict[_Path, int]] = {}
    for path, b in exact:
        if isinstance(path[-1], int):
            lists.setdefault(path[:-1], {}).setdefault(path, b)
    together = [tuple(elements.items()) for elements in lists.values() if len(elements) > 1]
    all_heads = tuple(dict(reversed(heads)).items())  # each head field's first new count
    combined = [all_heads] if len(all_heads) > 1 else []
    return list(dict.fromkeys(together + [(change,) for change in exact + heads] + combined))


_OTHER_OUTPUTS = (
    "the model built from it computes other outputs on the example inputs (a size the model "
    "reads from its config, e.g. a scale)"
)


def _search(
    model: nn.Module,
    config: Any,
    built: _Built,
    want: dict[str, tuple[int, ...]],
    inputs: tuple[tuple[Any, ...], tuple[str, ...] | None],
) -> Any | None:
    """A copy of ``config`` that builds the pruned shapes and the pruned model's function;
    ``_OTHER_OUTPUTS`` when the configs that build the shapes compute something else (T5's
    tied-embedding scale ``d_model ** -0.5``); None when none builds them (greedy over
    :func:`_candidates`; see the module docstring). ``built`` is what ``config`` builds on
    the CPU (:func:`_built`)."""
    twin, got = built
    if isinstance(got, str):
        return None
    pairs = {
        (a, b)
        for k, shape in want.items()
        if k in got and len(got[k]) == len(shape)
        for a, b in zip(got[k], shape, strict=True)
        if a != b
    }
    candidates = _candidates(config, pairs)
    if not candidates:
        return None
    matched = _matched(want, got)
    improved = True
    while improved and got != want:  # again while a pass helps: a field may only match once
        improved = False  # another has changed (Mamba's time_step_rank after its width)
        for change in candidates:
            if got == want:
                break
            tried = _tried(model, config, change)
            if tried is None:
                continue
            trial, trial_twin, shapes = tried
            if isinstance(shapes, dict) and (now := _matched(want, shapes)) > matched:
                config, twin, matched, got = trial, trial_twin, now, shapes
                improved = True
    if got != want:
        return None
    if _same_function(model, twin, inputs):
        return config
    # equal shapes, another function: a head count with the same total width (4 x 8 vs 2 x 16)
    for change in candidates:
        tried = _tried(model, config, change)
        if tried is not None and tried[2] == want and _same_function(model, tried[1], inputs):
            return tried[0]
    return _OTHER_OUTPUTS


def _tried(model: nn.Module, config: Any, change: _Change) -> tuple[Any, Any, Any] | None:
    """``(config with change, its CPU build, that build's shapes)`` (:func:`_built`); None
    when ``config`` holds ``change`` already or cannot take it."""
    if _holds(config, change):
        return None
    trial = _with(config, change)
    return None if trial is None else (trial, *_built(model, trial, "cpu"))


def _same_function(
    model: nn.Module, twin: nn.Module | None, inputs: tuple[tuple[Any, ...], tuple[str, ...] | None]
) -> bool:
    """Whether ``twin``, a model built on the CPU from a config (:func:`_built`), computes
    ``model``'s outputs on ``inputs`` once given what ``from_pretrained`` would load:
    ``model``'s parameters and persistent buffers (shared, not copied; ``twin`` is spent).
    Non-persistent buffers (a rotary table, an embedding scale) are the twin's own, computed
    from the config. Both run in eval mode; ``model``'s modes are restored."""
    if twin is None:
        return False
    try:
        source = dict(model.named_modules())
        for name, mod in twin.named_modules():
            src = source[name]
            for key in mod._parameters:
                mod._parameters[key] = src._parameters[key]
            for key, own in mod._buffers.items():
                theirs = src._buffers[key]
                if key not in mod._non_persistent_buffers_set or own is None or theirs is None:
                    mod._buffers[key] = theirs
                else:
                    mod._buffers[key] = own.to(device=theirs.device, dtype=theirs.dtype)
        values, names = inputs
        with torch.no_grad(), eval_mode(model, twin), _reused_leaf_outputs(model, twin):
            a = _tensors(call_model(model, values, names, use_cache=False, return_dict=True))
            b = _tensors(call_model(twin, values, names, use_cache=False, return_dict=True))
    except Exception:  # the twin cannot run: the config is not proven
        return False
    if not a or len(a) != len(b):
        return False
    return all(
        x.shape == y.shape and (_equal(x, y) or torch.allclose(x, y, rtol=1e-4, atol=1e-6))
        for x, y in zip(a, b, strict=True)
    )


_REUSE_BYTES = 1 << 29  # at most this much of model's leaf inputs and outputs is kept
_REUSE_MIN_WEIGHTS = 1 << 14  # a tiny config's 32 x 64 layer is computed again


@contextmanager
def _reused_leaf_outputs(model: nn.Module, twin: nn.Module) -> Iterator[None]:
    """While the block runs ``model`` and then ``twin``, each leaf of ``twin`` that is the
    same function as its namesake in ``model`` (:func:`_same_leaf`) returns the output that
    namesake computed on equal inputs instead of computing it again. The verdict of
    :func:`_same_function` is unchanged, and the twin's forward costs the operations between
    the leaves: the Linear layers, most of a transformer's time, run once. Copies of each
    call's inputs and output are kept (in-place writes after the call change neither side),
    up to ``_REUSE_BYTES``; later calls, and a second call on equal inputs, are computed."""
    source = dict(model.named_modules())
    kept = [0]
    handles = []
    originals: list[nn.Module] = []

    def record(calls: list[Any], mod: nn.Module, args: Any, kwargs: Any, out: Any) -> None:
        leaves = [t for t in pytree.tree_leaves((args, kwargs, out)) if isinstance(t, torch.Tensor)]
        size = sum(t.numel() * t.element_size() for t in leaves)
        if kept[0] + size <= _REUSE_BYTES:
            kept[0] += size
            calls.append(pytree.tree_map_only(torch.Tensor, torch.clone, (args, kwargs, out)))

    def replay(calls: list[Any], forward: Any, *args: Any, **kwargs: Any) -> Any:
        for i, (seen_args, seen_kwargs, _) in enumerate(calls):
            if _equal((args, kwargs), (seen_args, seen_kwargs)):
                return calls.pop(i)[2]  # handed over: the twin may write into it
        return forward(*args, **kwargs)

    try:
        for name, mod in twin.named_modules():
            src = source.get(name)
            if src is None or not _same_leaf(src, mod):
                continue
            calls: list[Any] = []
            handles.append(
                src.register_forward_hook(functools.partial(record, calls), with_kwargs=True)
            )
            mod.forward = functools.partial(replay, calls, mod.forward)
            originals.append(mod)
        yield
    finally:
        for handle in handles:
            handle.remove()
        for mod in originals:
            del mod.forward


def _same_leaf(a: nn.Module, b: nn.Module) -> bool:
    """Whether ``b`` computes what ``a`` computes on any input: both leaves of one class
    holding a weight matrix of at least ``_REUSE_MIN_WEIGHTS`` entries on the CPU (smaller
    products cost less than reusing them; an accelerator's are fast and its memory scarce),
    ``b`` with ``a``'s parameter tensors, equal buffers and equal plain attributes, neither
    with a hook or an instance ``forward``."""
    if type(a) is not type(b) or a._modules or b._modules:
        return False
    if not any(
        p is not None and p.ndim >= 2 and p.numel() >= _REUSE_MIN_WEIGHTS and p.device.type == "cpu"
        for p in a._parameters.values()
    ):
        return False
    if a._parameters.keys() != b._parameters.keys() or any(
        a._parameters[k] is not b._parameters[k] for k in a._parameters
    ):
        return False
    hooks = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks")
    if any(getattr(m, h, None) for m in (a, b) for h in hooks):
        return False
    public = [{k: v for k, v in vars(m).items() if not k.startswith("_")} for m in (a, b)]
    return _equal(a._buffers, b._buffers) and _equal(public[0], public[1])


def _equal(a: Any, b: Any) -> bool:
    """Exact equality of nested values: tensors of one dtype, shape and device with equal
    entries (NaN is unequal), containers of equal items, other values by ``==``."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and (a.dtype, a.shape, a.device) == (b.dtype, b.shape, b.device)
            and torch.equal(a, b)
        )
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(_equal, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    try:
        return bool(a == b)
    except Exception:  # a value without a boolean equality
        return False


def _tensors(out: Any) -> list[torch.Tensor]:
    """The floating-point tensors of a model output (a ``ModelOutput``, tuple or tensor)."""
    if isinstance(out, torch.Tensor):
        return [out] if out.is_floating_point() else []
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [t for item in out for t in _tensors(item)]
    return []


def _differences(old: Any, new: Any, added: Collection[str] = ()) -> dict[str, Any]:
    """``{name: value}`` of ``old``'s fields (whole lists; nested as ``sub.field``) that
    differ in ``new``, and the top-level fields named in ``added`` (set by
    :func:`sync_hf_config` from the module names, e.g. a ``head_dim`` the model class reads
    but ``old`` lacks or holds as None) wherever ``new`` holds an integer there. Other fields
    ``old`` lacks (ones a model class adds to its config while building) are skipped."""
    known = {path for path, _ in _int_fields(old)}
    changed: dict[str, Any] = {}
    for path, _ in _int_fields(new):
        if path in known:
            field = path[:-1] if isinstance(path[-1], int) else path
            before = _get(old, field)
        elif len(path) == 1 and path[0] in added:
            field, before = path, getattr(old, str(path[0]), None)
        else:
            continue
        name = ".".join(str(p) for p in field)
        value = _get(new, field)
        if name not in changed and before != value:
            changed[name] = copy.deepcopy(value)
    return changed


def _unchanged(problem: str) -> dict[str, Any]:
    """Warn that ``model.config`` stays as it was because of ``problem``; nothing changed. The
    warning points at the user's line (the first frame outside neuronkit.pruning), whether they
    called :func:`sync_hf_config`, ``prune`` or ``prune_model``."""
    level = 1
    frame: FrameType | None = sys._getframe(0)
    while frame is not None and frame.f_globals.get("__name__", "").startswith("neuronkit.pruning"):
        level, frame = level + 1, frame.f_back
    warnings.warn(
        f"model: {problem}; model.config is left unchanged and from_pretrained cannot rebuild "
        "this model",
        stacklevel=level,
    )
    return {}
