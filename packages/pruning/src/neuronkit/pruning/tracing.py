"""Tracing models into ``torch.fx`` graphs for the dependency graph (SPA's computational graph).

Wang, Rachwan, Günnemann & Charpentier (2024), "Structurally Prune Anything" (SPA) analyse a
standardized computational graph of the model. Plain PyTorch models are traced with
``torch.fx.symbolic_trace``. Hugging Face ``transformers`` models cannot be traced that way
(their ``forward`` branches on optional inputs, builds attention masks with data-dependent
code and returns ``ModelOutput`` objects; transformers 5 removed its ``HFTracer``), so they are
traced with :class:`ConcreteTracer`: an ``fx.Tracer`` that runs every recorded operation on the
real example inputs as it traces, so Python control flow, ``len`` and iteration over traced
values follow the example (the graph is *specialized to the example inputs*, which is all the
channel analysis needs; the pruned model is always the original module with smaller weights,
never the traced graph). HF ``Conv1D`` layers and last-axis norms (RMSNorm, T5's LayerNorm)
are leaf modules, the optional inputs are left unset with ``use_cache=False``, the
attention-mask builders of ``transformers.masking_utils`` are recorded as single shape-only
calls (they read the shapes, never the channels, of their tensor arguments) and input checks
(``torch_compilable_check``) run on the example without being recorded.
"""

from __future__ import annotations

import contextlib
import functools
import operator
import sys
import threading
import traceback
import weakref
from collections.abc import Callable, Container, Iterator, Mapping
from typing import Any

import torch
from torch import fx, nn
from torch.nn.modules import module as _torch_module

from neuronkit.common import eval_mode, input_dtype_error

from . import _inputs

__all__ = [
    "ConcreteTracer",
    "declares_layout",
    "is_hf_conv1d",
    "is_hf_model",
    "is_last_axis_norm",
    "leading_dims",
    "trace_model",
]


class UntraceableModelError(ValueError):
    """The model cannot be traced into a graph; the message names the failing operation."""


def is_hf_model(model: nn.Module) -> bool:
    """True for a Hugging Face ``transformers`` model (a ``PreTrainedModel`` subclass)."""
    return any(
        c.__name__ == "PreTrainedModel" and c.__module__.startswith("transformers.")
        for c in type(model).__mro__
    )


def leading_dims(module: nn.Module) -> int:
    """Axes a torch layer subclass takes in front of its own layout, folded into its batch.

    A class attribute ``leading_dims = k`` declares that the module *is* its torch base class
    (``nn.Conv2d``, ``nn.BatchNorm1d``, ...) applied to inputs with ``k`` extra leading axes:
    ``neuronkit.snn``'s time-major ``Seq*`` layers take ``[T, B, C, ...]`` (``k = 1``), so
    their channels sit on axis ``1 + k``. 0 for every other module.
    """
    k = getattr(type(module), "leading_dims", 0)
    return k if isinstance(k, int) and not isinstance(k, bool) and k > 0 else 0


def declares_layout(module: nn.Module) -> bool:
    """True for a module whose class declares how it maps channels, so the tracer keeps it
    whole (a leaf) even outside ``torch.nn``: ``leading_dims`` (see :func:`leading_dims`) or
    ``channel_local`` (each output element depends only on the same input element, as
    ``neuronkit.snn``'s spiking neurons over time; the module may set it False, or keep
    per-element parameters or buffers, when its settings differ per element)."""
    return leading_dims(module) > 0 or hasattr(type(module), "channel_local")


def _records_output(hook: Any) -> bool:
    """True for a forward hook that only records the module's output: transformers' output
    capturing (``output_hidden_states`` / ``output_attentions`` of models whose layers' outputs
    are collected by hooks, such as SegFormer's stages, which its decode head reads)."""
    return getattr(hook, "__module__", None) == "transformers.utils.output_capturing"


def _global_forward_hooks() -> bool:
    """True while global forward hooks or pre-hooks are registered
    (``torch.nn.modules.module.register_module_forward_hook`` / ``_pre_hook``): they run on
    every module call. The traces run them on concrete values only (the leaves' calls, as
    hooked modules' hooks), never on traced ones; the dependency graph freezes every group."""
    return bool(_torch_module._global_forward_hooks or _torch_module._global_forward_pre_hooks)


def _has_forward_hooks(module: nn.Module) -> bool:
    """True when forward hooks or pre-hooks are registered on ``module`` (other than those
    that only record its output): ``torch.fx`` calls ``forward`` without them, so what they
    change is invisible to a traced graph."""
    return bool(module._forward_pre_hooks) or not all(
        map(_records_output, module._forward_hooks.values())
    )


def _trace_through(m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Trace through module ``m`` (not a leaf: no forward hooks but output recorders):
    ``m.forward`` and the recorders, not ``nn.Module.__call__``, whose other hooks must not
    see traced values (global forward hooks; backward hooks, which wrap the outputs)."""
    out = m.forward(*args, **kwargs)
    return _run_output_recorders(m, args, out) if m._forward_hooks else out


def _call_hooked(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``module(*args, **kwargs)`` on concrete values for a module with forward hooks (a leaf
    of the trace), as the model calls it: its hooks run and what they change (an output's
    shape) is what the graph's later nodes see, but not the output recorders (run on the
    traced output instead). With gradients enabled, whatever the caller's grad mode: a hook
    may register a tensor hook on its output (Grad-CAM), which needs a grad-tracking one."""
    hooks = module._forward_hooks
    kept = {k: h for k, h in hooks.items() if not _records_output(h)}
    swap = len(kept) != len(hooks)
    if swap:  # a new dict on the module meanwhile: the caller's dict itself is untouched
        module._forward_hooks = type(hooks)(kept)
    try:
        with torch.enable_grad():
            return module(*args, **kwargs)
    finally:
        if swap:
            module._forward_hooks = hooks


def _run_output_recorders(module: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
    """Run the output-recording hooks of ``module`` (a leaf of the trace, or a module traced
    through with its ``forward``) on its traced ``output`` (they collect the proxies the model
    reads later, as they collect tensors in a plain call)."""
    for hook in list(module._forward_hooks.values()):
        if _records_output(hook):
            hook(module, args, output)
    return output


_CONTAINERS = (nn.Module, nn.Sequential, nn.ModuleList, nn.ModuleDict)
_UNCHANGED: dict[type, bool] = {}


def _unchanged_torch_layer(module: nn.Module) -> bool:
    """True when ``module``'s class subclasses a ``torch.nn`` layer outside ``torch.nn``
    without changing any of its methods (torchvision's video ``Conv3DSimple`` only adds a
    static method): it computes that layer and is traced whole, as that layer, where fx
    would trace through it to a functional call."""
    cls = type(module)
    if cls not in _UNCHANGED:
        base = next(
            (
                b
                for b in cls.__mro__[1:]
                if b.__module__.startswith("torch.nn.") and b not in _CONTAINERS
            ),
            None,
        )
        _UNCHANGED[cls] = (
            not cls.__module__.startswith("torch.nn.")
            and base is not None
            and all(
                getattr(cls, name) is getattr(base, name)
                for name in dir(base)
                if callable(getattr(base, name)) and not name.startswith("__")
            )
        )
    return _UNCHANGED[cls]


def is_hf_conv1d(module: nn.Module) -> bool:
    """True for ``transformers.pytorch_utils.Conv1D`` (a linear layer with ``[in, out]`` weights,
    used by GPT-2: ``y = x @ weight + bias``, ``weight: [in_features, nf]``)."""
    cls = type(module)
    return cls.__name__ == "Conv1D" and cls.__module__.startswith("transformers.")


def is_last_axis_norm(module: nn.Module) -> bool:
    """True for a normalization over the last axis written in its own ``forward``, whose 1-D
    ``weight`` (and ``bias``, if any) ``[C]`` scale (and shift) ``x`` normalized by
    statistics over that axis (``C`` channels): ``torch.nn.RMSNorm`` with a 1-D
    ``normalized_shape``, a Hugging Face RMSNorm (``LlamaRMSNorm`` and its copies) or a Hugging
    Face LayerNorm written out with a ``variance_epsilon`` (T5's RMS-only ``T5LayerNorm`` and
    its copies, DeBERTa's and Cohere's). A subclass with its own ``forward``, a gated norm
    (``MambaRMSNormGated``) or one with submodules is not one."""
    if not isinstance(module, nn.Module):
        return False
    cls = type(module)
    weight = module._parameters.get("weight")  # not getattr: no proxy while tracing
    if not isinstance(weight, torch.Tensor) or weight.ndim != 1:
        return False
    if isinstance(module, nn.RMSNorm):
        return cls.forward is nn.RMSNorm.forward and len(module.normalized_shape) == 1
    if not cls.__module__.startswith("transformers.") or list(module.children()):
        return False
    if cls.__name__.endswith("RMSNorm"):
        return True
    bias = module._parameters.get("bias")
    return (
        cls.__name__.endswith("LayerNorm")
        and not isinstance(module, nn.LayerNorm)  # those have their own rule
        and "variance_epsilon" in module.__dict__
        and (bias is None or tuple(bias.shape) == tuple(weight.shape))
    )


def _hf_leaf(module: nn.Module, name: str) -> bool:
    return is_hf_conv1d(module) or is_last_axis_norm(module)


class _ShapeOnlyCall:
    """A recorded call of a function that reads only the shapes/dtypes of its tensor inputs
    (attention-mask builders); the non-traced arguments are bound here."""

    nk_shape_only = True

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]):
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.__name__ = getattr(fn, "__name__", "shape_only_call")

    def __call__(self, *values: Any) -> Any:
        it = iter(values)
        args = [next(it) if a is _SLOT else a for a in self.args]
        kwargs = {k: next(it) if v is _SLOT else v for k, v in self.kwargs.items()}
        return self.fn(*args, **kwargs)


_SLOT = object()


class _ConcreteMixin:
    """Proxy behaviour that reads the concrete example value (mixed into fx proxies)."""

    def _value(self) -> Any:
        tracer: Any = getattr(self, "tracer")  # noqa: B009
        return tracer.value_of(self)

    def __len__(self) -> int:
        return len(self._value())

    def __iter__(self) -> Iterator[Any]:
        me: Any = self
        return iter([me[i] for i in range(len(self._value()))])

    def __index__(self) -> int:
        tracer: Any = getattr(self, "tracer")  # noqa: B009
        tracer.check_shape_flow(self, "an integer")
        value = self._value()
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(
                f"a traced {type(value).__name__} cannot become a Python number (its value "
                "would leave the graph); only integer sizes can"
            )
        return value

    def __int__(self) -> int:
        """``int(x)``: an integer as ``__index__``; a float computed from shapes only
        (``int(x.size(0) ** 0.5)``, DPT's grid of position embeddings) is truncated."""
        value = self._value()
        if isinstance(value, float):
            tracer: Any = getattr(self, "tracer")  # noqa: B009
            if tracer.value_source(self) is None:
                return int(value)
        return self.__index__()

    def __setitem__(self, key: Any, value: Any) -> None:
        """``x[key] = value`` in place (BART's ``shift_tokens_right``): one ``setitem`` node,
        run on the concrete value."""
        tracer: Any = getattr(self, "tracer")  # noqa: B009
        tracer.create_proxy("call_function", operator.setitem, (self, key, value), {})

    def __getattr__(self, k: str) -> Any:
        if k in _TYPE_ATTRS:  # torch.finfo(x.dtype), torch.ones(..., device=x.device)
            value = self._value()
            if isinstance(value, torch.Tensor):
                return getattr(value, k)
        me: Any = self
        return _ConcreteAttribute(me, k)


# a traced tensor's dtype and device are the example's, for every input the graph serves
_TYPE_ATTRS = frozenset({"dtype", "device", "layout", "is_cuda", "is_nested"})


class _ConcreteProxy(_ConcreteMixin, fx.Proxy):
    pass


class _ConcreteAttribute(_ConcreteMixin, fx.proxy.Attribute):
    @property
    def node(self) -> fx.Node:  # type: ignore[override]
        """fx's lazily added ``getattr`` node; its value is kept while this attribute lives
        (:meth:`ConcreteTracer._keep_while`)."""
        if self._node is None:
            proxy = self.tracer.create_proxy("call_function", getattr, (self.root, self.attr), {})
            if proxy.node in self.tracer._holders:  # type: ignore[attr-defined]
                self.tracer._keep_while(proxy.node, self)  # type: ignore[attr-defined]
            self._node = proxy.node
        return self._node


def _map(value: Any, fn: Callable[[Any], Any]) -> Any:
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(_map(v, fn) for v in value))
    if isinstance(value, (tuple, list)):
        return type(value)(_map(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: _map(v, fn) for k, v in value.items()}
    if isinstance(value, slice):
        return slice(_map(value.start, fn), _map(value.stop, fn), _map(value.step, fn))
    return fn(value)


_METADATA_ATTRS = frozenset({"shape", "ndim", "dtype", "device", "is_cuda", "layout", "is_nested"})
_METADATA_METHODS = frozenset({"size", "dim", "numel", "is_floating_point", "is_complex"})


def _reads_metadata(node: fx.Node) -> bool:
    """A node that reads a tensor's shape, rank, dtype or device, never its values."""
    if node.op == "call_method":
        return node.target in _METADATA_METHODS
    return (
        node.op == "call_function"
        and node.target is getattr
        and len(node.args) > 1
        and node.args[1] in _METADATA_ATTRS
    )


def _call_unregistered(
    m: nn.Module, forward: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Trace through a module that ``forward`` calls but the model does not hold (HF's
    module-level ``gelu = GELUActivation()``, DistilBERT's ``nn.ReLU()(x)``): a stateless one
    is its operations; one with parameters or buffers cannot be pruned and is refused."""
    if any(True for _ in m.parameters()) or any(True for _ in m.buffers()):
        raise NameError(
            f"a {type(m).__name__} that is not a submodule of the model is called in forward "
            "and holds parameters or buffers; register it as a submodule"
        )
    return forward(*args, **kwargs)


_BASE_LAYERS = (nn.Linear, nn.Embedding, nn.Conv1d, nn.Conv2d, nn.Conv3d)
# torch.nn layers made of other layers, traced through (with their fused inference path off,
# see _mha_fast_path_off): their attention, linear and norm layers have rules of their own
_TRANSFORMER_LAYERS = (
    nn.TransformerEncoderLayer,
    nn.TransformerDecoderLayer,
    nn.TransformerEncoder,
    nn.TransformerDecoder,
    nn.Transformer,
)


def _registered(tracer: fx.Tracer, m: nn.Module) -> str | None:
    """``m``'s qualified name in the traced root, or None when the root does not hold it."""
    try:
        return tracer.path_of_module(m)
    except NameError:
        return None


# argument types torch.fx stores in a node as they are (after checks for tensors, modules and
# named tuples that these never are): returned first, without those checks
_PLAIN_ARGS = frozenset(
    (int, float, bool, complex, str, type(None), type(...), torch.dtype, torch.device, torch.layout)
)


#: Tracing patches process-wide names: torch.fx replaces ``__call__`` and ``__getattr__`` of
#: the model's module classes (of ``nn.Module`` itself in torch.fx; see
#: ``_ClassLocalPatcher``), and the tracers here torch's tensor factories (and transformers'
#: mask builders). One trace runs at a time, and calls from other threads pass straight through.
_TRACE_LOCK = threading.RLock()


_FX_PATCHER: Any = getattr(fx._symbolic_trace, "_Patcher", None)
_MODULE_SLOTS = ("__call__", "__getattr__")
_TRACED_CLASSES = threading.local()  # .classes: the traced root's module classes (this thread)


class _ClassPatch:
    """``cls.name = fn`` while tracing; reverted to what ``cls`` itself held (``patch`` and
    ``revert``, as torch.fx's patch records)."""

    def __init__(self, cls: type, name: str, fn: Callable[..., Any]) -> None:
        self.cls, self.name, self.fn = cls, name, fn
        self.own = cls.__dict__.get(name, _MISSING)

    def patch(self) -> None:
        setattr(self.cls, self.name, self.fn)

    def revert(self) -> None:
        if self.own is _MISSING:
            delattr(self.cls, self.name)
        else:
            setattr(self.cls, self.name, self.own)


if _FX_PATCHER is not None:

    class _ClassLocalPatcher(_FX_PATCHER):
        """torch.fx's patcher, except that ``nn.Module.__call__`` and ``__getattr__`` are
        patched on the traced model's module classes rather than on ``nn.Module``: setting a
        special method on a class updates every subclass (about 1,400 with timm and
        torchvision imported; ~1 ms per trace), while a model has a few dozen classes. Where a
        class has its own ``__call__`` or ``__getattr__``, torch.fx's patch of ``nn.Module``
        is kept for that name. Modules of other classes, which the model does not hold, then
        run as plain code: a stateless one is its operations, a parameter one reads is refused
        (``create_arg``: not held by the model) and a buffer is a constant."""

        def patch_method(
            self, cls: type, name: str, new_fn: Callable[..., Any], deduplicate: bool = True
        ) -> None:
            classes = getattr(_TRACED_CLASSES, "classes", None)
            original = getattr(nn.Module, name, None)
            if (
                cls is not nn.Module
                or name not in _MODULE_SLOTS
                or not classes
                or any(getattr(c, name, None) is not original for c in classes)
            ):
                super().patch_method(cls, name, new_fn, deduplicate)
                return
            new_fn.__fx_already_patched = deduplicate  # type: ignore[attr-defined]
            for c in classes:
                self.patches_made.append(_ClassPatch(c, name, new_fn))
                self.patches_made[-1].patch()


class _ThreadSafeTracer(fx.Tracer):
    """``fx.Tracer`` whose traces hold :data:`_TRACE_LOCK` and record only the tracing
    thread's module calls: another thread's model, run meanwhile, runs as usual."""

    _owner: int | None = None

    def trace(self, root: Any, concrete_args: dict[str, Any] | None = None) -> fx.Graph:
        with _TRACE_LOCK:
            self._owner = threading.get_ident()
            before = getattr(_TRACED_CLASSES, "classes", None)
            if _FX_PATCHER is not None and isinstance(root, nn.Module):
                _TRACED_CLASSES.classes = {type(m) for m in root.modules()}
                setattr(fx._symbolic_trace, "_Patcher", _ClassLocalPatcher)  # noqa: B010
            try:
                return super().trace(root, concrete_args)
            finally:
                self._owner = None
                _TRACED_CLASSES.classes = before
                self._drop_tensors()
                if _FX_PATCHER is not None:
                    setattr(fx._symbolic_trace, "_Patcher", _FX_PATCHER)  # noqa: B010

    def _drop_tensors(self) -> None:
        """Forget the tables of the root's tensors once a trace is done: fx's trace leaves
        its tracer in a reference cycle (closures of its patcher), so only the garbage
        collector frees it, and until then those tables kept every parameter alive (through
        a prune in place, all of the replaced weights)."""
        self.tensor_attrs = {}
        vars(self).pop("_nk_tensor_names", None)

    def _foreign(self) -> bool:
        """Whether the caller is another thread than the one tracing."""
        return threading.get_ident() != self._owner

    def call_module(
        self,
        m: nn.Module,
        forward: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        if self._foreign():
            return forward(*args, **kwargs)
        return self._traced_call_module(m, forward, args, kwargs)

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]) -> Any:
        if self._foreign():
            return attr_val
        return self._traced_getattr(attr, attr_val, parameter_proxy_cache)

    def create_arg(self, a: Any) -> Any:
        kind = type(a)
        if kind in _PLAIN_ARGS:  # most arguments: kept as they are, as fx keeps them
            return a
        if isinstance(a, fx.Proxy):
            return a.node
        if kind is tuple or kind is list:
            return kind(self.create_arg(v) for v in a)
        node = _tensor_arg(self, a)  # a parameter or buffer passed as a tensor: by name
        if node is not None:
            return node
        if isinstance(a, nn.Parameter):  # read by a module of a class the model does not hold
            raise NameError(
                f"a parameter of shape {tuple(a.shape)} that the model does not hold is used in "
                "forward (a module that is not a submodule of the model?); register it as a "
                "submodule"
            )
        return super().create_arg(a)

    def _traced_call_module(
        self,
        m: nn.Module,
        forward: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """``call_module`` on the tracing thread (what subclasses override)."""
        return super().call_module(m, forward, args, kwargs)

    def _traced_getattr(
        self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]
    ) -> Any:
        """``getattr`` on the tracing thread (what subclasses override)."""
        return super().getattr(attr, attr_val, parameter_proxy_cache)


# an operation's tensor result of this size is dropped once no proxy holds it (smaller ones are
# kept: tracking them costs more than their memory)
_RELEASED_BYTES = 1 << 16


class ConcreteTracer(_ThreadSafeTracer):
    """An ``fx.Tracer`` that executes each recorded op on concrete example values.

    Control flow (``bool``), ``len``, iteration and integer conversion of traced values use the
    concrete values, so the graph follows the path the example inputs take; a traced tensor's
    dtype and device are the example's. Every node gets ``node.meta["nk_shape"]`` (the shape
    of its tensor result). Modules ``forward`` calls but the root does not hold are traced
    through when stateless; a subclass of a torch layer with its own ``forward`` is traced
    whole, as that layer, when it computes the layer's function on the example.

    Args:
        inputs: the concrete values of the root's placeholders, in order.
        leaf: extra predicate ``(module, qualified_name) -> bool`` for leaf modules.
        shapes_only: control flow may read shapes, dtypes and devices of traced tensors but
            not their values (``if x.sum() > 0`` raises ``TraceError``): the graph then holds
            for every input of the example's shapes.
    """

    def __init__(
        self,
        inputs: tuple[Any, ...],
        leaf: Callable[[nn.Module, str], bool] | None = None,
        *,
        shapes_only: bool = False,
    ) -> None:
        if not isinstance(inputs, (tuple, list)):
            raise TypeError(
                "inputs must be a tuple of the root's placeholder values, got "
                f"{type(inputs).__name__}"
            )
        if leaf is not None and not callable(leaf):
            raise TypeError(f"leaf must be None or a callable, got {type(leaf).__name__}")
        super().__init__()
        self.proxy_buffer_attributes = True  # buffers (e.g. BERT's token_type_ids) are traced
        self._inputs = list(inputs)
        self._leaf = leaf
        self._values: dict[fx.Node, Any] = {}
        self._holders: dict[fx.Node, int] = {}  # live proxies per node (:meth:`_keep_while`)
        self._holder_refs: set[weakref.ref[Any]] = set()
        self._concrete_run = False
        self._shapes_only = shapes_only
        self._base_layers: set[int] = set()  # ids of subclasses verified to compute the base
        self._names: tuple[dict[nn.Module, str], dict[str, nn.Module]] | None = None
        self.model: nn.Module | None = None  # the traced model (inside its _Root)

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if m is self.model:  # a torch.nn layer given as the model is traced through
            return False
        if (
            id(m) in self._base_layers
            or _has_forward_hooks(m)
            or _unchanged_torch_layer(m)
            or (self._leaf is not None and self._leaf(m, module_qualified_name))
        ):
            return True
        return not isinstance(m, _TRANSFORMER_LAYERS) and super().is_leaf_module(
            m, module_qualified_name
        )

    def _traced_call_module(
        self,
        m: nn.Module,
        forward: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        if self._concrete_run:  # inside a leaf running on values (a parametrization's module)
            return forward(*args, **kwargs)
        if _registered(self, m) is None:
            return _call_unregistered(m, forward, args, kwargs)
        if (
            m is not self.model
            and id(m) not in self._base_layers
            and self._computes_base_layer(m, args, kwargs)
        ):
            self._base_layers.add(id(m))
        # a module traced through (the model too: hooks on it freeze every group) runs its
        # ``forward``, as :func:`_trace_through`: no hook but the output recorders sees traced
        # values; a leaf is one node, its output recorders run on it
        out = super()._traced_call_module(m, m.forward, args, kwargs)
        return _run_output_recorders(m, args, out) if m._forward_hooks else out

    def _computes_base_layer(self, m: nn.Module, args: Any, kwargs: Any) -> bool:
        """Whether ``m`` subclasses a torch layer with its own ``forward`` (Falcon's
        ``input @ self.weight.T`` Linear) and computes the base layer's function on these
        inputs: it is then traced whole, as that layer."""
        base = next((b for b in _BASE_LAYERS if isinstance(m, b)), None)
        if (
            base is None
            or type(m).forward is base.forward
            or any(True for _ in m.children())
            or any(True for _ in m.buffers())
            or {n for n, _ in m.named_parameters()} - {"weight", "bias"}
        ):
            return False
        a, kw = self.value_of(args), self.value_of(kwargs)
        was, self._concrete_run = self._concrete_run, True
        try:
            with torch.no_grad():
                mine, ref = m.forward(*a, **kw), base.forward(m, *a, **kw)  # type: ignore[arg-type]
        except Exception:
            return False
        finally:
            self._concrete_run = was
        return (
            isinstance(mine, torch.Tensor)
            and mine.shape == ref.shape
            and torch.allclose(mine, ref, rtol=1e-4, atol=1e-6)
        )

    def _traced_getattr(
        self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]
    ) -> Any:
        if self._concrete_run:  # a leaf module running on concrete values reads real weights
            return attr_val
        return _tensor_proxy(self, attr_val, parameter_proxy_cache)

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return _ConcreteProxy(node, self)

    def _drop_tensors(self) -> None:
        super()._drop_tensors()
        self._values.clear()

    def _keep_while(self, node: fx.Node, holder: fx.Proxy) -> None:
        """Keep ``node``'s concrete value only while ``holder``, a proxy of it, lives (and any
        other proxy it is kept for). Traced code reaches a node only through its proxies, so
        once none lives the value is dropped and the allocator reuses its memory, as in an
        untraced forward (holding every intermediate tensor, the trace of GPT-2 small on 512
        tokens peaked 1029 MiB above the model; now 215 MiB). Called for the results of
        operations of at least ``_RELEASED_BYTES`` (placeholders and ``get_attr`` values, the
        inputs and the model's own tensors, are kept)."""
        values, counts, refs = self._values, self._holders, self._holder_refs
        counts[node] = counts.get(node, 0) + 1

        def release(ref: weakref.ref[Any]) -> None:
            refs.discard(ref)
            left = counts[node] - 1
            if left:
                counts[node] = left
            else:
                del counts[node]
                values.pop(node, None)

        refs.add(weakref.ref(holder, release))

    def value_of(self, obj: Any) -> Any:
        """The concrete value of a proxy (recursively inside containers)."""

        def one(v: Any) -> Any:
            if isinstance(v, fx.Proxy):
                v = v.node
            if isinstance(v, fx.Node):
                if v not in self._values and v.op == "get_attr":  # a tensor made a constant
                    self._values[v] = self._attr(str(v.target))
                    v.meta["nk_shape"] = tuple(int(d) for d in self._values[v].shape)
                return self._values[v]
            if isinstance(v, (_SizeInt, _SizeSum)):  # torch runs on plain ints: no reads
                return int.__int__(v)
            return v

        return _map(obj, one)

    def _attr(self, target: str) -> Any:
        was, self._concrete_run = self._concrete_run, True
        try:
            return _fetch(self.root, target)
        finally:
            self._concrete_run = was

    def to_bool(self, obj: fx.Proxy) -> bool:
        self.check_shape_flow(obj, "a condition")
        return bool(self.value_of(obj))

    def check_shape_flow(self, obj: fx.Proxy, what: str) -> None:
        """With ``shapes_only``, raise ``TraceError`` if the Python value of ``obj`` depends
        on the values (not only the shapes) of an input or of a parameter or buffer of more than
        one value (a scalar one is the same for every input and never pruned)."""
        if not self._shapes_only:
            return
        source = self.value_source(obj)
        if source is not None:
            raise fx.proxy.TraceError(
                f"{what} computed from the values of `{source.format_node()}`: "
                "data-dependent control flow"
            )

    def value_source(self, obj: fx.Proxy) -> fx.Node | None:
        """A placeholder or tensor attribute (of more than one value) whose values, not only
        its shape, ``obj`` is computed from; None when ``obj`` depends on shapes only."""
        stack, seen = [obj.node], set()
        while stack:
            node = stack.pop()
            if node in seen or _reads_metadata(node):
                continue
            seen.add(node)
            value = self._values.get(node)
            scalar_attr = node.op == "get_attr" and getattr(value, "numel", lambda: 2)() <= 1
            if node.op == "placeholder" or (node.op == "get_attr" and not scalar_attr):
                return node
            stack.extend(node.all_input_nodes)
        return None

    def iter(self, obj: fx.Proxy) -> Iterator[Any]:
        seq: Any = obj
        return iter([seq[i] for i in range(len(self.value_of(obj)))])

    def keys(self, obj: fx.Proxy) -> Any:
        return self.value_of(obj).keys()

    def create_proxy(
        self,
        kind: str,
        target: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        name: str | None = None,
        type_expr: Any | None = None,
        proxy_factory_fn: Any = None,
    ) -> fx.Proxy:
        proxy = super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
        node = proxy.node
        a, kw = self.value_of(node.args), self.value_of(node.kwargs)
        if kind == "placeholder":
            value = self._inputs.pop(0) if self._inputs else None
        elif kind == "get_attr":
            value = self._attr(str(target))
        elif kind == "call_function":
            value = target(*a, **kw)
        elif kind == "call_method":
            value = getattr(a[0], target)(*a[1:], **kw)
        elif kind == "call_module":
            leaf = self._submodule(str(target))
            was, self._concrete_run = self._concrete_run, True
            try:  # a hooked leaf with its hooks, as _record_shapes runs the symbolic graph
                if _has_forward_hooks(leaf) or _global_forward_hooks():
                    value = _call_hooked(leaf, a, kw)
                else:
                    value = leaf.forward(*a, **kw)
            finally:
                self._concrete_run = was
        else:
            value = None
        self._values[node] = value
        if isinstance(value, torch.Tensor):
            node.meta["nk_shape"] = tuple(int(s) for s in value.shape)
            node.meta["nk_dtype"] = value.dtype
            if kind.startswith("call_") and value.nbytes >= _RELEASED_BYTES:
                self._keep_while(node, proxy)
        return proxy

    def _submodule(self, name: str) -> nn.Module:
        """The root's submodule ``name``, a ``call_module`` target of the last trace (from one
        reversed table of fx's module paths, not a walk down the dotted name per call)."""
        paths = self.submodule_paths  # fx's {module: name} while tracing, None after
        if paths is not None and (self._names is None or self._names[0] is not paths):
            self._names = (paths, {path: m for m, path in paths.items()})
        found = None if self._names is None else self._names[1].get(name)
        return self.root.get_submodule(name) if found is None else found

    def shape_only_call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Any) -> Any:
        """Record ``fn(*args, **kwargs)`` as one node if it returns a tensor (else return the
        concrete result): ``fn`` reads only shapes of its traced arguments."""
        concrete = fn(*self.value_of(args), **self.value_of(kwargs))
        if not isinstance(concrete, torch.Tensor):
            return concrete
        traced: list[Any] = []

        def slot(v: Any) -> Any:
            if isinstance(v, fx.Proxy):
                traced.append(v)
                return _SLOT
            return v

        bound = _ShapeOnlyCall(
            fn, tuple(slot(v) for v in args), {k: slot(v) for k, v in kwargs.items()}
        )
        return self.create_proxy("call_function", bound, tuple(traced), {})


_MAX_INPUTS = 8


class _Root(nn.Module):
    """Calls the wrapped model on the first ``n`` placeholders, by position or as the keyword
    inputs ``names`` (an HF model with ``use_cache=False``, its outputs as a tuple)."""

    def __init__(self, model: nn.Module, hf: bool, n: int, names: tuple[str, ...] | None):
        super().__init__()
        self.model = model
        self.hf = hf
        self.n = n
        self.names = names

    def forward(
        self,
        x0: Any,
        x1: Any = None,
        x2: Any = None,
        x3: Any = None,
        x4: Any = None,
        x5: Any = None,
        x6: Any = None,
        x7: Any = None,
    ) -> Any:
        values = (x0, x1, x2, x3, x4, x5, x6, x7)[: self.n]
        if not self.hf:
            return call_model(self.model, values, self.names)
        out = call_model(self.model, values, self.names, use_cache=False, return_dict=True)
        if not hasattr(out, "to_tuple"):
            return out
        # an encoder-decoder's own encoder output comes back beside its logits: a hidden
        # state like any other, whose width prunes (the logits are the model's output)
        return tuple(v for k, v in out.items() if k != "encoder_last_hidden_state" or len(out) == 1)


def split_inputs(example_inputs: Any) -> tuple[tuple[Any, ...], tuple[str, ...] | None]:
    """``(values, names)`` of a model's example inputs: a tensor or a tuple of positional
    inputs (``names`` None), or a dict of keyword inputs (``model(**inputs)``, e.g. a
    tokenizer's output or an encoder-decoder's ``input_ids`` and ``decoder_input_ids``).

    Raises:
        TypeError: anything else, or an empty tuple or dict, or a non-string key.
    """
    if isinstance(example_inputs, torch.Tensor):
        return (example_inputs,), None
    if isinstance(example_inputs, Mapping) and example_inputs:
        if not all(isinstance(k, str) for k in example_inputs):
            raise TypeError("example_inputs: the keys of keyword inputs must be strings")
        return tuple(example_inputs.values()), tuple(example_inputs)
    if isinstance(example_inputs, (tuple, list)) and example_inputs:
        return tuple(example_inputs), None
    raise TypeError(
        "example_inputs: expected a tensor, a non-empty tuple of positional inputs or a "
        f"non-empty dict of keyword inputs, got {type(example_inputs).__name__}"
    )


def call_model(
    model: Callable[..., Any], values: tuple[Any, ...], names: tuple[str, ...] | None, **extra: Any
) -> Any:
    """``model(*values, **extra)``, or ``model(**dict(zip(names, values)), **extra)``."""
    if names is None:
        return model(*values, **extra)
    return model(**dict(zip(names, values, strict=True)), **extra)


def first_tensor(output: Any) -> torch.Tensor | None:
    """The tensor that stands for a model's output: the output itself, else the first item of
    a tuple or list or the first value of a dict or Hugging Face ``ModelOutput`` (an
    ``OrderedDict`` of the fields that are set: ``logits`` for a classifier called without
    labels), looked into until a tensor is found; None if there is none."""
    while not isinstance(output, torch.Tensor):
        if isinstance(output, Mapping) and output:
            output = next(iter(output.values()))
        elif isinstance(output, (tuple, list)) and output:
            output = output[0]
        else:
            return None
    return output


def _concrete_calls(model: nn.Module) -> list[tuple[dict[str, Any], str, Any]]:
    """(module globals, name, function) of every function that the modeling modules of
    ``model``'s submodules import and that runs on the example's values while tracing: the
    ``transformers.masking_utils.create_*mask`` builders (they read the shapes of their traced
    arguments; one node) and ``torch_compilable_check`` (an input check, e.g. BART's and T5's
    classifiers' "same number of <eos> tokens": it raises as it would, and records nothing)."""
    found: list[tuple[dict[str, Any], str, Any]] = []
    seen: set[int] = set()
    for mod in model.modules():
        for cls in type(mod).__mro__:
            pymod = sys.modules.get(cls.__module__)
            if pymod is None or id(pymod) in seen or not cls.__module__.startswith("transformers"):
                continue
            seen.add(id(pymod))
            g = vars(pymod)
            for name, fn in list(g.items()):
                if not callable(fn):
                    continue
                source = getattr(fn, "__module__", "")
                if (
                    source == "transformers.masking_utils"
                    and name.startswith("create_")
                    and name.endswith("mask")
                ) or (
                    source == "transformers.utils.import_utils" and name == "torch_compilable_check"
                ):
                    found.append((g, name, fn))
    return found


def _trace_concrete(
    model: nn.Module,
    example_inputs: tuple[Any, ...],
    hf: bool,
    names: tuple[str, ...] | None = None,
) -> tuple[nn.Module, fx.Graph]:
    """``(root, graph)``: the graph of ``model(*example_inputs)`` recorded by
    :class:`ConcreteTracer`, its targets ``model``'s own names, and a module holding what those
    targets name (no code is generated: :func:`_graph_module` does that on demand). Tensor
    factories (``torch.ones``, ...) record sizes that are traced values; Hugging Face models
    get their leaves and mask builders; other models (a fallback when ``torch.fx`` cannot
    trace them, e.g. a ``forward`` that branches on its input's shape) may branch on shapes
    only, and nodes left without users (such checks) are dropped."""
    if hf:
        tracer = _UnscopedConcreteTracer(example_inputs, leaf=_hf_leaf)
    else:
        tracer = _UnscopedConcreteTracer(
            example_inputs, leaf=lambda m, _: declares_layout(m), shapes_only=True
        )
    if not 1 <= len(example_inputs) <= _MAX_INPUTS:
        what = "a Hugging Face model (e.g. input_ids)" if hf else "the concrete tracer"
        raise ValueError(
            f"example_inputs: expected 1 to {_MAX_INPUTS} inputs for {what}, got "
            f"{len(example_inputs)}"
        )
    root = _Root(model, hf, len(example_inputs), names)
    tracer.model = model
    owner = threading.get_ident()

    def wrap(fn: Any) -> Any:
        def shape_only(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != owner:
                return fn(*args, **kwargs)
            return tracer.shape_only_call(fn, args, kwargs)

        return shape_only

    def factory(fn: Any) -> Any:  # torch.ones(x.shape[0], n): sizes that are traced values
        def call(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != owner or not _holds_proxy((args, kwargs)):
                return fn(*args, **kwargs)
            return tracer.create_proxy("call_function", original, args, kwargs)

        original = getattr(fn, "__wrapped__", fn)  # not :func:`_marks_sizes`'s wrapper
        return call

    with _TRACE_LOCK:  # the originals are read once no other trace has them patched
        # (module globals, name, original, stand-in while tracing)
        patched = [(g, n, fn, wrap(fn)) for g, n, fn in (_concrete_calls(model) if hf else [])]
        patched += [
            (vars(torch), n, getattr(torch, n), factory(getattr(torch, n))) for n in _FACTORIES
        ]
        for g, name, _, stand_in in patched:
            g[name] = stand_in
        try:
            graph = tracer.trace(root)
        finally:
            for g, name, fn, _ in patched:
                g[name] = fn
    prefix = "model."
    holder = nn.Module()
    for node in graph.nodes:
        if node.op in ("call_module", "get_attr"):
            target = str(node.target)
            obj = tracer._submodule(target) if node.op == "call_module" else None
            if obj is None:
                obj = root
                for part in target.split("."):
                    obj = getattr(obj, part)
            if target.startswith(prefix):
                target = target[len(prefix) :]
                node.target = target
            _hold(holder, target, obj)
    if not hf:
        _drop_unused(graph)
    return holder, graph


def _hold(holder: nn.Module, target: str, obj: Any) -> None:
    """Make ``holder.<target>`` (a dotted name) resolve to ``obj``, creating empty modules on
    the way as ``fx.GraphModule`` does; a tensor that is not a parameter becomes a buffer."""
    *path, field = target.split(".")
    for part in path:
        sub = getattr(holder, part, None)
        if sub is None:
            sub = nn.Module()
            setattr(holder, part, sub)
        holder = sub
    if isinstance(obj, torch.Tensor) and not isinstance(obj, nn.Parameter):
        holder.register_buffer(field, obj)
    else:
        setattr(holder, field, obj)


# tensor factories whose sizes may be traced values; torch's argument parser rejects a proxy
_FACTORIES = (
    "arange",
    "empty",
    "eye",
    "full",
    "linspace",
    "ones",
    "rand",
    "randn",
    "tensor",
    "zeros",
)


def _holds_proxy(value: Any) -> bool:
    found = False

    def look(v: Any) -> Any:
        nonlocal found
        found = found or isinstance(v, fx.Proxy)
        return v

    _map(value, look)
    return found


def _drop_unused(graph: fx.Graph) -> None:
    """Erase computations whose results nothing uses (input checks that only decided control
    flow, e.g. ``torch.isfinite(x).all()``); in-place ones (``x.mul_(2)``) stay."""
    for node in reversed(list(graph.nodes)):
        name = str(getattr(node.target, "__name__", node.target))
        in_place = name.endswith("_") or node.target is operator.setitem
        if node.op in ("call_function", "call_method") and not node.users and not in_place:
            graph.erase_node(node)


def _untraceable(model: nn.Module, exc: Exception, how: str) -> UntraceableModelError:
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if "/torch/" not in f.filename.replace("\\", "/")
        and not f.filename.replace("\\", "/").endswith("neuronkit/pruning/tracing.py")
    ]
    where = ""
    if frames:
        f = frames[-1]
        where = f" at {f.filename}:{f.lineno} `{(f.line or '').strip()}`"
    return UntraceableModelError(
        f"model: {how} cannot trace {type(model).__name__}: the operation{where} "
        f"failed with {type(exc).__name__}: {exc}. Data-dependent control flow and "
        "untraceable calls must be removed or wrapped as leaf modules; the model was not "
        "changed."
    )


def _tensor_name(tracer: fx.Tracer, value: Any, buffers: bool) -> str | None:
    """The root's name for ``value``, a parameter (or, with ``buffers``, a buffer), or None:
    the first name of a shared tensor, as ``named_parameters`` / ``named_buffers`` give it.
    fx scans those on every attribute read and every tensor argument (quadratic in the model's
    size: a third of tracing timm's MobileNetV4); here one table is built per trace (it holds
    the tensors, so an ``id`` reused by a new tensor never matches)."""
    table = getattr(tracer, "_nk_tensor_names", None)
    if table is None or table[0] is not tracer.root:
        found: tuple[dict[int, tuple[Any, str]], dict[int, tuple[Any, str]]] = ({}, {})
        for n, param in tracer.root.named_parameters():
            found[0].setdefault(id(param), (param, n))
        for n, buffer in tracer.root.named_buffers():
            found[1].setdefault(id(buffer), (buffer, n))
        table = (tracer.root, *found)
        setattr(tracer, "_nk_tensor_names", table)  # noqa: B010
    if isinstance(value, nn.Parameter):
        entry = table[1].get(id(value))
    elif buffers and isinstance(value, torch.Tensor):
        entry = table[2].get(id(value))
    else:
        return None
    return entry[1] if entry is not None and entry[0] is value else None


def _tensor_proxy(tracer: fx.Tracer, value: Any, cache: dict[str, Any]) -> Any:
    """``fx.Tracer.getattr``: the ``get_attr`` proxy of a parameter (or, with
    ``proxy_buffer_attributes``, a buffer) of the root read as a module attribute, else the
    value itself."""
    name = _tensor_name(tracer, value, tracer.proxy_buffer_attributes)
    if name is None:
        return value
    if name not in cache:
        cache[name] = tracer.create_proxy("get_attr", name, (), {})
    return cache[name]


def _tensor_arg(tracer: fx.Tracer, value: Any) -> fx.Node | None:
    """``fx.Tracer.create_arg`` for a parameter or buffer of the root passed as a plain
    tensor (``F.batch_norm(x, self.running_mean, ...)``): its ``get_attr`` node; None for
    anything else (fx's own handling)."""
    name = _tensor_name(tracer, value, buffers=True)
    return None if name is None else tracer.create_node("get_attr", name, (), {})


class _Unscoped(fx.Tracer):
    """A tracer that records nodes without ``torch.fx``'s module-scope metadata: the stock
    tracer copies its module stack into every node's ``meta["nn_module_stack"]`` and maps
    every node name to its scope; the dependency graph reads neither."""

    def create_node(
        self,
        kind: str,
        target: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        name: str | None = None,
        type_expr: Any | None = None,
    ) -> fx.Node:
        return self.graph.create_node(kind, target, args, kwargs, name, type_expr)


class _UnscopedConcreteTracer(_Unscoped, ConcreteTracer):
    """:class:`ConcreteTracer` without module-scope metadata (the dependency graph's)."""


class _PlainTracer(_Unscoped, _ThreadSafeTracer):
    """``torch.fx.Tracer`` without the per-node module-scope bookkeeping (:class:`_Unscoped`)
    and without entering a scope context per module call. The same graph (nodes, targets,
    names), about 25% faster to trace (MobileNetV2-style: 2.05 -> 1.56 ms).
    """

    def _traced_call_module(
        self,
        m: nn.Module,
        forward: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        name = _registered(self, m)
        if name is None:
            return _call_unregistered(m, forward, args, kwargs)
        if not self.is_leaf_module(m, name):
            return _trace_through(m, args, kwargs)
        return _run_output_recorders(m, args, self.create_proxy("call_module", name, args, kwargs))

    def _traced_getattr(
        self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]
    ) -> Any:
        return _tensor_proxy(self, attr_val, parameter_proxy_cache)

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return (
            declares_layout(m)
            or _has_forward_hooks(m)
            or _unchanged_torch_layer(m)
            or (
                not isinstance(m, _TRANSFORMER_LAYERS)
                and super().is_leaf_module(m, module_qualified_name)
            )
        )


def _same_tensor(t: torch.Tensor) -> torch.Tensor:
    return t


def drop_caches(module: nn.Module) -> None:
    """Let a module that keeps values computed from its tensors drop them: one that overrides
    ``nn.Module._apply`` to clear a cache (timm's LeViT, EfficientFormer and TinyViT attention
    cache ``attention_biases[:, idxs]`` in eval mode, cleared whenever ``.to()`` and the like
    apply a function to its tensors) gets ``_apply`` of the identity, as ``.to()`` to its own
    device and dtype does."""
    if type(module)._apply is not nn.Module._apply:
        module._apply(_same_tensor)


def _trace_graph(
    model: nn.Module,
    example_inputs: tuple[Any, ...],
    tracer: type[fx.Tracer] = _PlainTracer,
    names: tuple[str, ...] | None = None,
    wrapped_leaves: Container[str] | None = None,
) -> tuple[nn.Module, fx.Graph, _Sizes]:
    """Trace ``model`` into an ``fx.Graph`` whose nodes carry ``meta["nk_shape"]``, without
    generating a ``GraphModule``: returns ``(root, graph, sizes)`` where ``graph``'s
    ``get_attr`` and ``call_module`` targets are qualified names inside ``root``. While tracing,
    the modules' integer attributes are :class:`_SizeInt` (restored after): those read into
    the graph's ops stay there as such; ``sizes`` (:class:`_Sizes`) names the ``(module,
    attribute)`` pairs that ``forward`` also read otherwise and the quotients of two it read.

    Plain modules: ``tracer`` (default :class:`_PlainTracer`: the graph that
    ``torch.fx.symbolic_trace`` records, without module-scope metadata) and one run of the graph
    on ``example_inputs`` (with ``torch.fx.Interpreter``'s semantics) to record the shapes;
    ``root`` is ``model``. Hugging Face models, and plain models that ``torch.fx`` cannot trace
    symbolically (Python control flow on an input's shape) or take keyword inputs (``names``):
    :class:`ConcreteTracer` on the example inputs (see :func:`trace_model`; for plain models
    control flow may read shapes, never values); ``root`` holds what the graph's targets name.

    With ``wrapped_leaves`` (qualified names), the functions registered with
    ``torch.fx.wrap`` are traced through (torchvision's ``shifted_window_attention``), except
    those named there; where the model cannot be traced that way, it is traced again with
    every registered function a leaf, as ``torch.fx`` does.

    Raises:
        UntraceableModelError: the trace failed; the message names the failing operation.
        ValueError: the traced graph does not run on ``example_inputs``.
    """
    with _TRACE_LOCK:  # the factories below, and torch.fx, patch process-wide names
        saved = [(m, dict(vars(m))) for m in model.modules()]
        # plain dicts and lists a forward may fill in place (TinyViT's attention-bias cache),
        # the buffers it may assign (timm ConViT's ``self.rel_indices = ...``: a traced value
        # stayed in the model, which then failed on its next call) and the hooks it may register
        # (transformers' output capturing, with a flag on the model that the restore below
        # removes: kept hooks would then be registered twice)
        contents = [  # (container, its copy; None when it was empty)
            (v, v.copy() if v else None)
            for _, attrs in saved
            for k, v in attrs.items()
            if (type(v) in (dict, list) and not k.startswith("_")) or k in _RESTORED_DICTS
        ]
        table = fx._symbolic_trace._wrapped_fns_to_patch  # (globals id, name) -> globals
        wrapped = dict(table)
        followed = [
            key
            for key, scope in wrapped.items()
            if wrapped_leaves is not None and _qualname(scope.get(key[1])) not in wrapped_leaves
        ]
        for attempt in ("follow", "leaves") if followed else ("leaves",):
            for m, _ in saved:  # a cached value would enter the trace as a constant (restored)
                drop_caches(m)
            sizes = _track_sizes(model)
            factories = [(n, getattr(torch, n)) for n in _FACTORIES]
            for n, fn in factories:
                setattr(torch, n, _marks_sizes(fn, threading.get_ident()))
            if attempt == "follow":
                for key in followed:
                    del table[key]
            try:
                with _mha_fast_path_off():
                    root, graph = _trace(model, example_inputs, tracer, names, sizes)
                return root, graph, sizes
            except (UntraceableModelError, ValueError):
                if attempt == "leaves":
                    raise
            finally:
                table.update(wrapped)
                sizes.active = False
                sizes.restore()  # first: most modules are then as they were (the fast path)
                for n, fn in factories:
                    setattr(torch, n, fn)
                _restore_state(saved, contents)
        raise AssertionError("unreachable: the last attempt returns or raises")


@contextlib.contextmanager
def _mha_fast_path_off() -> Iterator[None]:
    """torch's transformer layers without their fused inference path while tracing: its
    eligibility checks branch on the input (``src.dim()``, ``x.requires_grad``) and it hides the
    layers' operations in one call; without it they run (and trace as) their modules."""
    was = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(was)


def _qualname(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', '')}"


def _restore_state(
    saved: list[tuple[nn.Module, dict[str, Any]]], contents: list[tuple[Any, Any]]
) -> None:
    """Put back the modules' attributes and the contents of their plain dicts and lists as
    :func:`_trace_graph` found them: a forward that stores on its module (Swin's window size)
    stored traced values."""
    for m, attrs in saved:
        now = vars(m)  # only what changed: rebuilding every __dict__ slows attribute reads
        if list(now) == list(attrs) and all(map(operator.is_, now.values(), attrs.values())):
            continue  # the same keys holding the same objects: unchanged
        for k in [k for k in now if k not in attrs]:
            del now[k]
        for k, v in attrs.items():
            if now.get(k, _MISSING) is not v:
                now[k] = v
    for container, before in contents:
        if before is None:  # it was empty
            if container:
                container.clear()
        elif isinstance(container, dict):
            if container.keys() != before.keys() or any(
                container[k] is not v for k, v in before.items()
            ):
                container.clear()
                container.update(before)
        elif len(container) != len(before) or any(
            a is not b for a, b in zip(container, before, strict=True)
        ):
            container[:] = before


def _trace(
    model: nn.Module,
    example_inputs: tuple[Any, ...],
    tracer: type[fx.Tracer],
    names: tuple[str, ...] | None,
    sizes: _Sizes,
) -> tuple[nn.Module, fx.Graph]:
    named = _inputs.named_values("example_inputs", example_inputs, names)
    if is_hf_model(model):
        try:
            return _trace_concrete(model, example_inputs, hf=True, names=names)
        except Exception as exc:
            # float64 examples of a float32 model: the inputs' fault, not the model's
            mismatch = input_dtype_error(model, exc, named)
            if mismatch is not None:
                raise mismatch from exc
            raise _untraceable(model, exc, "the concrete Hugging Face tracer") from exc
    if names is not None:
        try:
            return _trace_concrete(model, example_inputs, hf=False, names=names)
        except Exception as exc:
            mismatch = input_dtype_error(model, exc, named)
            if mismatch is not None:
                raise mismatch from exc
            raise _untraceable(model, exc, "the concrete tracer (keyword inputs)") from exc
    try:
        graph = tracer().trace(model)
    except Exception as exc:  # torch.fx raises many types (TraceError, TypeError, ...)
        sizes.escaped.clear()  # the reads the concrete trace makes are its own
        sizes.quotients.clear()
        try:  # e.g. a forward that branches on its input's shape: follow the example's
            return _trace_concrete(model, example_inputs, hf=False)
        except Exception as concrete:
            mismatch = input_dtype_error(model, concrete, named)
            if mismatch is not None:
                raise mismatch from concrete
            err = _untraceable(model, exc, "torch.fx")
            raise UntraceableModelError(
                f"{err} Tracing it on the example inputs (control flow on shapes only) "
                f"failed too: {type(concrete).__name__}: {concrete}"
            ) from exc
    sizes.active = False  # the graph's own ops read them now: each use is a node's argument
    _check_input_count(model, graph, example_inputs)
    try:
        _record_shapes(model, graph, example_inputs)
    except _NodeError as err:
        cause = err.error
        mismatch = input_dtype_error(model, cause, named)
        if mismatch is not None:  # float64 examples of a float32 model, integer images, ...
            raise mismatch from cause
        raise ValueError(
            f"example_inputs: running the traced {type(model).__name__} on the example inputs "
            f"failed at `{err.node.format_node()}` ({type(cause).__name__}: {cause})"
            f"{_hook_culprit(model, err.node, cause)}; pass inputs the model accepts"
        ) from cause
    return model, graph


def _check_input_count(model: nn.Module, graph: fx.Graph, inputs: tuple[Any, ...]) -> None:
    """Raise ``ValueError`` when ``inputs`` hold more positional inputs than ``model.forward``
    takes: a call of the model would fail, while the traced graph silently left the extra
    ones out (and a ``**kwargs`` placeholder would have taken them as a list)."""
    params = [str(n.target) for n in graph.nodes if n.op == "placeholder"]
    positional = [p for p in params if not p.startswith("*")]
    if any(p.startswith("*") and not p.startswith("**") for p in params):
        return  # *args takes any number
    if len(inputs) > len(positional):
        raise ValueError(
            f"example_inputs: {type(model).__name__}.forward takes {len(positional)} "
            f"positional input(s) ({', '.join(positional) or 'none'}), got {len(inputs)}; pass "
            "the inputs the model is called with (a dict for keyword inputs)"
        )


def _hook_culprit(root: nn.Module, node: fx.Node, exc: BaseException) -> str:
    """``", raised in ... by ..."``: the forward hook or pre-hook (of the module ``node``
    calls, or a global one) in whose code ``exc`` was raised; ``""`` when none was."""
    if node.op != "call_module":
        return ""
    try:
        module = _fetch(root, str(node.target))
    except RuntimeError:
        return ""
    tables = (
        ("its forward hook", module._forward_hooks),
        ("its forward pre-hook", module._forward_pre_hooks),
        ("a global forward hook", _torch_module._global_forward_hooks),
        ("a global forward pre-hook", _torch_module._global_forward_pre_hooks),
    )
    codes = {}
    for kind, hook in ((k, h) for k, table in tables for h in table.values()):
        while hasattr(hook, "func"):  # functools.partial
            hook = hook.func
        code = getattr(hook, "__code__", None)
        if code is not None:
            codes[code] = (kind, getattr(hook, "__qualname__", repr(hook)))
    for frame, line in traceback.walk_tb(exc.__traceback__):
        if frame.f_code in codes:
            kind, name = codes[frame.f_code]
            where = f"{frame.f_code.co_filename}:{line}"
            return (
                f", raised in `{node.target}` by {kind} `{name}` ({where}): hooks run here as "
                "in a call of the model (with gradients enabled)"
            )
    return ""


def trace_model(model: nn.Module, example_inputs: Any) -> fx.GraphModule:
    """Trace ``model`` into an ``fx.GraphModule`` whose nodes carry ``meta["nk_shape"]``.

    ``example_inputs``: a tensor, a tuple of positional inputs or a dict of keyword inputs (see
    :func:`split_inputs`). Plain modules: ``torch.fx.symbolic_trace`` and one run on the
    example inputs to record the shapes. Hugging Face models and keyword inputs:
    :class:`ConcreteTracer` on ``model(*example_inputs, use_cache=False)`` (e.g. ``input_ids:
    [B, T]``), a graph specialized to those inputs whose module targets are ``model``'s own
    submodule names; the graph's placeholders take the inputs by position.

    As for :class:`~.graph.DependencyGraph`, the model runs in eval mode without gradients
    (code that branches on ``self.training`` is traced in its eval branch): the trace updates
    no BatchNorm statistics and draws no dropout masks (which would advance the global random
    state), and every module's training flag is restored after it.

    Raises:
        UntraceableModelError: the trace failed; the message names the failing operation.
        ValueError: the traced graph does not run on ``example_inputs``.
    """
    values, names = split_inputs(example_inputs)
    with torch.no_grad(), eval_mode(model):
        root, graph, _ = _trace_graph(model, values, _ThreadSafeTracer, names)  # nn_module_stack
    return _graph_module(root, graph, type(model).__name__)


def _graph_module(root: nn.Module, graph: fx.Graph, class_name: str) -> fx.GraphModule:
    """The ``fx.GraphModule`` of a :func:`_trace_graph` result.

    Raises:
        UntraceableModelError: ``torch.fx`` cannot generate code for the graph.
    """
    try:
        return fx.GraphModule(root, graph, class_name=class_name)
    except Exception as exc:
        raise _untraceable(root, exc, "torch.fx") from exc


class _Sizes:
    """The integer attributes of a model's modules while it is traced (see :class:`_SizeInt`):
    which were read other than as an argument of a recorded op."""

    def __init__(self) -> None:
        self.active = True
        self.escaped: set[tuple[str, str]] = set()
        # a ratio read in forward, ``num // den`` of two attributes of one module: den -> (num,
        # ratio). Constant where pruning rewrites den to keep it (DependencyGraph decides)
        self.quotients: dict[tuple[str, str], tuple[tuple[str, str], int]] = {}
        self.replaced: list[tuple[dict[str, Any], str, Any]] = []  # (module __dict__, key, was)

    def restore(self) -> None:
        """Put the original values back (each object as it was)."""
        for attrs, key, value in self.replaced:
            if key in attrs:
                attrs[key] = value


class _SizeInt(int):
    """An integer module attribute (``self.num_heads``) while its model is traced: an ``int``
    that knows its owner ``key = (module, attribute)``. Arithmetic, comparisons, conversions,
    hashing and tensor factories on it mark it as read elsewhere; passed as is to a recorded
    op (``x.view(b, t, self.num_heads, d)``) it stays in the graph, where a size on the channel
    axis that nothing else reads can follow the pruning (the attribute is rewritten)."""

    key: tuple[str, str]
    sizes: _Sizes
    divisor = 1  # the attribute's value over this one (``self.expand_chs // 2``: 2)
    multiplier = 1  # this one over the attribute's value (``num_heads * head_dim``: head_dim)

    def __new__(cls, value: int, key: tuple[str, str], sizes: _Sizes) -> _SizeInt:
        obj = super().__new__(cls, value)
        obj.key, obj.sizes = key, sizes
        return obj

    def __floordiv__(self, other: Any) -> Any:
        """An exact division by a positive literal (CSPNet's ``split(self.expand_chs //
        2)``) is a part of the attribute that still knows it. An exact division by another
        plain attribute of the same module (Falcon's ``self.num_heads // self.num_kv_heads``)
        is recorded as a quotient (see :attr:`_Sizes.quotients`). Anything else marks a read."""
        whole = int.__int__(self)
        if (
            isinstance(other, _SizeInt)
            and self.sizes.active
            and self.key[0] == other.key[0]
            and all(
                x.divisor == x.multiplier == 1 and x.key[1].isidentifier() for x in (self, other)
            )
            and int.__int__(other) > 0
            and whole % int.__int__(other) == 0
        ):
            ratio = whole // int.__int__(other)
            if self.sizes.quotients.setdefault(other.key, (self.key, ratio)) == (self.key, ratio):
                return ratio
            other.escape()  # a second quotient by it: both constants
        if (
            self.sizes.active
            and self.multiplier == 1
            and type(other) is int
            and other > 0
            and whole % other == 0
        ):
            part = _SizeInt(whole // other, self.key, self.sizes)
            part.divisor = self.divisor * other
            return part
        self.escape()
        return int.__floordiv__(self, other)

    def __mul__(self, other: Any) -> Any:
        """A product with a positive integer (GPT-Neo's merge of its heads, ``num_heads *
        head_dim``) is a multiple of the attribute that still knows it; the other factor, if
        an attribute too, is read as a constant. Anything else marks a read."""
        if (
            self.sizes.active
            and self.divisor == 1
            and isinstance(other, int)
            and not isinstance(other, bool)
            and other > 0
        ):
            if isinstance(other, _SizeInt):
                other.escape()
            factor = int.__int__(other)
            multiple = _SizeInt(int.__int__(self) * factor, self.key, self.sizes)
            multiple.multiplier = self.multiplier * factor
            return multiple
        self.escape()
        return int.__mul__(self, other)

    __rmul__ = __mul__

    def __add__(self, other: Any) -> Any:
        """A sum with another attribute (or multiple of one, Phi-3's ``query_pos +
        self.num_key_value_heads * self.head_dim``) or with a positive literal (Falcon-7B's
        ``self.num_heads + 2``) is a :class:`_SizeSum` that knows its terms; anything else
        marks a read."""
        return _sum_of(self, other)

    def escape(self) -> None:
        if self.sizes.active:
            self.sizes.escaped.add(self.key)

    def __reduce__(self) -> tuple[Any, ...]:  # copies and pickles (of a graph) are plain ints
        return int, (int.__int__(self),)


class _SizeSum(int):
    """A sum of :class:`_SizeInt` terms (each a whole attribute or a multiple of one) and a
    literal ``offset`` while a model is traced: a bound that cuts a channel axis into
    consecutive parts, one per term (Phi-3's fused ``qkv[..., q + k :]``), or, one term plus
    an offset, the size of a channel axis with ``offset`` fixed entries (Falcon-7B's
    ``view(B, T, self.num_heads + 2, d)``: its query heads, one key and one value head).
    Anything else on it marks every term read."""

    terms: tuple[_SizeInt, ...]
    offset: int

    def __new__(cls, terms: tuple[_SizeInt, ...], offset: int = 0) -> _SizeSum:
        obj = super().__new__(cls, sum(int.__int__(t) for t in terms) + offset)
        obj.terms, obj.offset = terms, offset
        return obj

    def __add__(self, other: Any) -> Any:
        return _sum_of(self, other)

    def escape(self) -> None:
        for term in self.terms:
            term.escape()

    def __reduce__(self) -> tuple[Any, ...]:
        return int, (int.__int__(self),)


def _sum_of(a: _SizeInt | _SizeSum, b: Any) -> Any:
    """``a + b`` while tracing: a :class:`_SizeSum` when both are attribute sizes (not parts of
    one) or ``b`` is a positive literal, else a plain ``int`` that marks both read."""
    literal = type(b) is int and b > 0
    parts = [t for x in (a, b) for t in (x.terms if isinstance(x, _SizeSum) else (x,))]
    if literal:
        parts.pop()
    if all(isinstance(t, _SizeInt) and t.divisor == 1 and t.sizes.active for t in parts):
        offsets = sum(x.offset for x in (a, b) if isinstance(x, _SizeSum))
        return _SizeSum(tuple(parts), offsets + (b if literal else 0))
    for x in (a, b):
        if isinstance(x, (_SizeInt, _SizeSum)):
            x.escape()
    return int.__int__(a) + int.__int__(b) if isinstance(b, int) else NotImplemented


def _escaping(name: str) -> Callable[..., Any]:
    base = getattr(int, name)

    def method(self: _SizeInt | _SizeSum, *args: Any) -> Any:
        self.escape()
        return base(self, *args)

    method.__name__ = name
    return method


for _name in (
    *(f"__{op}__" for op in ("sub", "truediv", "mod", "divmod", "mul", "floordiv")),
    *(f"__r{op}__" for op in ("add", "sub", "floordiv", "truediv", "mod", "divmod", "mul")),
    *("__pow__", "__rpow__", "__neg__", "__pos__", "__abs__", "__invert__"),
    *("__and__", "__rand__", "__or__", "__ror__", "__xor__", "__rxor__"),
    *("__lshift__", "__rlshift__", "__rshift__", "__rrshift__"),
    *("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__hash__", "__bool__"),
    *("__index__", "__int__", "__float__", "__round__", "__trunc__", "__floor__", "__ceil__"),
):
    setattr(_SizeSum, _name, _escaping(_name))
    if not hasattr(_SizeInt, _name) or getattr(_SizeInt, _name) is getattr(int, _name):
        setattr(_SizeInt, _name, _escaping(_name))


def _track_sizes(model: nn.Module) -> _Sizes:
    """Replace every module's plain ``int`` attributes, the entries of its tuples of ``int``
    (timm's ``Scale.shape = (dim, 1, 1)``, keyed ``"shape[0]"``...) and the ``int`` fields of
    its model config (a :class:`ConfigView`, keyed ``"config.num_attention_heads"``...) by
    :class:`_SizeInt` (the caller restores them)."""
    sizes = _Sizes()
    for name, m in model.named_modules():
        attrs = vars(m)
        geometry = type(m).__module__.startswith("torch.nn.")  # a torch layer's window tuples
        for key, value in attrs.items():
            if key.startswith("_"):
                continue
            if type(value) is int:
                sizes.replaced.append((attrs, key, value))
                attrs[key] = _SizeInt(value, (name, key), sizes)
            elif is_model_config(value):  # Phi-3 slices its heads at config sizes
                sizes.replaced.append((attrs, key, value))
                ints = {
                    k: v
                    for k, v in _config_values(value).items()
                    if type(v) is int and not k.startswith("_")
                }
                attrs[key] = ConfigView(
                    value, {k: _SizeInt(v, (name, f"{key}.{k}"), sizes) for k, v in ints.items()}
                )
            elif geometry and key in _WINDOW_ATTRS:
                continue  # (3, 3) kernels, strides, paddings: never channel counts
            elif type(value) is tuple and value and all(type(v) is int for v in value):
                sizes.replaced.append((attrs, key, value))
                attrs[key] = tuple(
                    _SizeInt(v, (name, f"{key}[{i}]"), sizes) for i, v in enumerate(value)
                )
    return sizes


class ConfigView:
    """A module's own view of a shared Hugging Face model config: ``overrides`` (field ->
    value) shadow the config's fields; every other read and every write goes to the config.
    :func:`~.prune.prune` gives a module one when it rewrites a config size that its
    ``forward`` reads (Phi-3's ``self.config.num_attention_heads``) for that module alone."""

    def __init__(self, config: Any, overrides: dict[str, Any]) -> None:
        object.__setattr__(self, "config", config)
        object.__setattr__(self, "overrides", overrides)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("config", "overrides"):
            raise AttributeError(name)  # copies and pickles build the view before its state
        if name in self.overrides:
            return self.overrides[name]
        return getattr(self.config, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.overrides:
            self.overrides[name] = value
        else:
            setattr(self.config, name, value)

    def __repr__(self) -> str:
        return f"ConfigView({type(self.config).__name__}, overrides={self.overrides})"


def is_model_config(value: Any) -> bool:
    """Whether ``value`` is a Hugging Face model config or a :class:`ConfigView` of one."""
    return isinstance(value, ConfigView) or any(
        c.__name__ in ("PretrainedConfig", "PreTrainedConfig") for c in type(value).__mro__
    )


def _config_values(config: Any) -> dict[str, Any]:
    """A config's fields as its module reads them (a view's overrides over its config's)."""
    if isinstance(config, ConfigView):
        return {**_config_values(config.config), **config.overrides}
    return dict(vars(config))


# the spatial window of torch's conv and pool layers
_WINDOW_ATTRS = frozenset(("kernel_size", "stride", "padding", "dilation", "output_padding"))


def _marks_sizes(fn: Callable[..., Any], owner: int) -> Callable[..., Any]:
    """``fn`` (a tensor factory) marking the :class:`_SizeInt` arguments it receives from the
    thread ``owner`` (the one tracing)."""

    @functools.wraps(fn)  # ``__wrapped__``: the concrete tracer records ``fn`` itself
    def call(*args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() != owner or _holds_proxy((args, kwargs)):
            return fn(*args, **kwargs)  # recorded: the graph's node holds the sizes

        def mark(v: Any) -> Any:
            if isinstance(v, (_SizeInt, _SizeSum)):
                v.escape()
            return v

        _map((args, kwargs), mark)
        return fn(*args, **kwargs)

    return call


_MISSING = object()
# a module's private dicts that tracing puts back as they were (see _trace_graph)
_RESTORED_DICTS = frozenset(
    (
        "_buffers",
        "_forward_hooks",
        "_forward_hooks_with_kwargs",
        "_forward_hooks_always_called",
        "_forward_pre_hooks",
        "_forward_pre_hooks_with_kwargs",
    )
)


class _NodeError(Exception):
    """A node of the traced graph failed on the example inputs."""

    def __init__(self, node: fx.Node, error: Exception) -> None:
        super().__init__(str(error))
        self.node = node
        self.error = error


def _fetch(root: nn.Module, target: str) -> Any:
    """``root``'s attribute at the dotted path ``target`` (``fx.Interpreter.fetch_attr``)."""
    value: Any = root
    for i, atom in enumerate(target.split(".")):
        if not hasattr(value, atom):
            raise RuntimeError(
                f"Node referenced nonexistent target {'.'.join(target.split('.')[: i + 1])}"
            )
        value = getattr(value, atom)
    return value


_ImmutableList = fx.immutable_collections.immutable_list
_ImmutableDict = fx.immutable_collections.immutable_dict


def _mutable(value: Any) -> Any:
    """``value`` with fx's immutable lists and dicts (of node arguments) as plain ones: a
    wrapped Python function may write into a list it is given (torchvision's Swin3D
    ``_get_window_and_shift_size``), as it does in the model's own forward."""
    if type(value) in (list, tuple, _ImmutableList):
        items = [_mutable(v) for v in value]
        return tuple(items) if type(value) is tuple else items
    if type(value) in (dict, _ImmutableDict):
        return {k: _mutable(v) for k, v in value.items()}
    return value


def _record_shapes(root: nn.Module, graph: fx.Graph, inputs: tuple[Any, ...]) -> None:
    """Run ``graph`` once on ``inputs`` and record every tensor result's shape in
    ``node.meta["nk_shape"]``.

    The node semantics of ``fx.Interpreter`` (placeholders take the inputs in order, then their
    defaults; ``*args`` takes the rest; modules are called through ``__call__``), without its
    per-node bookkeeping. Raises :class:`_NodeError` naming the failing node.
    """
    env: dict[fx.Node, Any] = {}
    args_iter = iter(inputs)
    modules: dict[str, tuple[Any, bool]] = {}  # target -> (module, hooks run on its calls)
    global_hooks = _global_forward_hooks()
    map_arg = fx.node.map_arg
    load = env.__getitem__
    last_uses: dict[fx.Node, list[fx.Node]] = {}  # free values after their last use
    seen: set[fx.Node] = set()
    for node in reversed(graph.nodes):
        for used in node.all_input_nodes:
            if used not in seen:
                seen.add(used)
                last_uses.setdefault(node, []).append(used)
    for node in graph.nodes:
        op, target = node.op, node.target
        try:
            if op == "placeholder":
                if str(target).startswith("*"):
                    value: Any = list(args_iter)
                else:
                    value = next(args_iter, _MISSING)
                    if value is _MISSING:
                        if not node.args:
                            raise RuntimeError(
                                f"Expected positional argument for parameter {target}, but one "
                                "was not passed in!"
                            )
                        value = node.args[0]
            elif op == "get_attr":
                value = _fetch(root, str(target))
            else:
                args: Any = map_arg(node.args, load)
                kwargs: Any = map_arg(node.kwargs, load)
                if op == "call_function":
                    if not getattr(target, "__module__", "torch").startswith(("torch", "_op")):
                        args, kwargs = _mutable(args), _mutable(kwargs)  # plain Python
                    value = target(*args, **kwargs)
                elif op == "call_method":
                    value = getattr(args[0], str(target))(*args[1:], **kwargs)
                elif op == "call_module":
                    entry = modules.get(str(target))
                    if entry is None:
                        module = _fetch(root, str(target))
                        hooked = global_hooks or _has_forward_hooks(module)
                        entry = modules[str(target)] = (module, hooked)
                    if entry[1]:  # its hooks run, with gradients (see _call_hooked)
                        with torch.enable_grad():
                            value = entry[0](*args, **kwargs)
                    else:
                        value = entry[0](*args, **kwargs)
                elif op == "output":
                    value = args[0]
                else:
                    raise RuntimeError(f"unknown node op {op!r}")
        except Exception as exc:
            raise _NodeError(node, exc) from exc
        env[node] = value
        if isinstance(value, torch.Tensor):
            node.meta["nk_shape"] = tuple(int(s) for s in value.shape)
            node.meta["nk_dtype"] = value.dtype
        if op == "output":
            return
        for used in last_uses.get(node, ()):
            del env[used]
