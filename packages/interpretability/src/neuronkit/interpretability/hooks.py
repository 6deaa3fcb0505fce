"""Recording activations and gradients of named submodules, without leaking hooks.

:class:`LayerRecorder` is a context manager: it registers forward hooks on the named modules
when entered and removes every handle when left, whatever happens inside the ``with`` block
(exceptions included), so a model is never left with stale hooks (a common pitfall of
feature-visualization and attribution libraries)::

    with LayerRecorder(model, ["features.0", "classifier.1"], gradients=True) as rec:
        loss = model(x).logsumexp(1).sum()
        loss.backward()
    rec.activations["features.0"]   # the module's output on the last call, detached
    rec.gradients["classifier.1"]   # d loss / d output of that module

:func:`layer_activations` is the one-call version for analysis (RSA, probing): it runs the
model in batches under ``torch.no_grad`` and returns each layer's outputs concatenated over
the batches, flattened to ``[N, features]`` if asked.
"""

from __future__ import annotations

import difflib
import itertools
import sys
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from types import TracebackType
from typing import Any

import torch
from torch import nn

from neuronkit.common import check_finite, check_number, check_type, input_dtype_error

__all__ = ["LayerRecorder", "get_layer", "layer_activations", "layer_names"]


def model_device(model: Any) -> torch.device:
    """The device of an ``nn.Module``'s first parameter or buffer; the CPU for a module
    without any or a plain function."""
    if isinstance(model, nn.Module):
        for tensor in itertools.chain(model.parameters(), model.buffers()):
            return tensor.device
    return torch.device("cpu")


def unit_axis(dim: Any, ndim: int | None = None, what: str = "the output") -> int:
    """``dim`` checked as the unit (channel) axis of a batch-first ``[B, ...]`` output with
    ``ndim`` dimensions: any axis but the batch axis, negative from the end. Returns it
    non-negative (as given if ``ndim`` is ``None``: only its type and ``!= 0`` are checked)."""
    check_number("dim", dim, integer=True)
    dim = int(dim)
    if dim == 0 or (ndim is not None and not -ndim < dim < ndim):
        where = "" if ndim is None else f" of {what} ({ndim} dimensions)"
        raise ValueError(f"dim must be an axis{where} other than the batch axis 0, got {dim}")
    return dim if ndim is None else dim % ndim


def check_not_compiled(name: str, model: Any) -> None:
    """Raise ``TypeError`` if ``model`` is a ``torch.compile``'d module: its compiled code does
    not run forward hooks added after compilation, so hooks put on its submodules would record
    (or change) nothing, silently. The module it compiles, ``model._orig_mod``, runs them."""
    eval_frame = sys.modules.get("torch._dynamo.eval_frame")  # loaded by torch.compile
    if eval_frame is not None and isinstance(model, eval_frame.OptimizedModule):
        raise TypeError(
            f"{name} must not be a torch.compile'd module: its compiled code skips forward hooks "
            f"added after compiling, which would silently do nothing; pass {name}._orig_mod"
        )


# torch's message for an in-place operation on a leaf that requires grad (or a view of one)
_IN_PLACE_ON_LEAF = "leaf Variable that requires grad is being used in an in-place operation"


def call_model(model: Any, inputs: torch.Tensor, name: str = "inputs", *, copy: bool = True) -> Any:
    """``model`` called on a copy of ``inputs``: a model that modifies its input in place
    (``x.sub_(0.5)``, ``F.relu(x, inplace=True)``) neither changes the caller's tensor nor
    fails on a leaf that requires grad (torch's "a leaf Variable that requires grad is being
    used in an in-place operation"); gradients still reach ``inputs`` through the copy.

    ``copy=False`` is for ``inputs`` the caller made itself (a leaf that requires grad, e.g.
    integrated gradients' interpolated rows): the model gets ``inputs`` and, only if it fails
    with that in-place error (raised before anything is modified), is called again on a copy.
    That saves a copy of a large batch (about 4% of a batch-32 MLP's integrated gradients);
    a model that modifies its input in place then runs twice up to that operation.

    A dtype mismatch between ``inputs`` and the model's parameters (e.g. float64 inputs for a
    float32 model, which torch reports as a ``RuntimeError`` from deep inside the model) is
    re-raised as a ``TypeError`` naming ``name``. Nothing is cast, and a model that accepts
    the dtype (an embedding taking integer indices, a model casting its input itself) runs as
    before: the check costs nothing unless the call fails."""
    try:
        if not copy:
            try:
                return model(inputs)
            except RuntimeError as err:
                if _IN_PLACE_ON_LEAF not in str(err):
                    raise
        return model(inputs.clone())
    except RuntimeError as err:
        mismatch = input_dtype_error(model, err, ((name, inputs),))
        if mismatch is None:
            raise
        raise mismatch from err


def submodule(model: nn.Module, layer: Any) -> nn.Module:
    """``layer`` as a submodule of ``model``: given by name (``model.named_modules()``) or as
    the module itself, which must belong to ``model``."""
    module = get_layer(model, layer) if isinstance(layer, str) else layer
    check_type("layer", module, nn.Module)
    if not any(m is module for m in model.modules()):
        raise ValueError("layer must be a submodule of model (or its name)")
    return module


def checked_layer(model: Any, layer: Any, layer_input: Any, batch_dim: Any) -> nn.Module:
    """The checked arguments every layer method takes (an uncompiled ``nn.Module``, the flag
    ``layer_input``, ``batch_dim >= 0``); returns the layer's module."""
    check_type("model", model, nn.Module)
    check_not_compiled("model", model)
    check_type("layer_input", layer_input, bool)
    check_number("batch_dim", batch_dim, ge=0, integer=True)
    return submodule(model, layer)


@contextmanager
def module_hooks(hooks: Iterable[tuple[nn.Module, Any, Any]]) -> Iterator[None]:
    """Forward pre-hooks and hooks ``(module, pre_hook, hook)`` (either may be ``None``) for the
    duration of the block; every handle is removed on exit, also after an error."""
    handles = []
    try:
        for module, pre_hook, hook in hooks:
            if pre_hook is not None:
                handles.append(module.register_forward_pre_hook(pre_hook))
            if hook is not None:
                handles.append(module.register_forward_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()


class LayerValueHook:
    """Hooks handing a layer's output (or, ``layer_input=True``, its first positional input)
    to :meth:`on_value`, whose return value replaces it for the rest of the forward pass.
    The layer attribution methods subclass it to record, keep or replace that value."""

    def __init__(self, layer_input: bool) -> None:
        self.layer_input = layer_input
        self.what = "input" if layer_input else "output"

    def on_value(self, value: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _checked(self, value: Any) -> torch.Tensor:
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"the layer's {self.what} must be a tensor, got {type(value).__name__}")
        return self.on_value(value)

    def pre_hook(self, module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        if not args:
            raise TypeError("layer_input=True needs a layer called with a positional input")
        return (self._checked(args[0]), *args[1:])

    def hook(self, module: nn.Module, args: Any, output: Any) -> torch.Tensor:
        return self._checked(output)

    def hooks(self, module: nn.Module) -> tuple[nn.Module, Any, Any]:
        """``(module, pre_hook, hook)`` for :func:`module_hooks`, one of them ``None``."""
        if self.layer_input:
            return (module, self.pre_hook, None)
        return (module, None, self.hook)


class _Stop(Exception):
    """Raised by :class:`KeepValue` once the layer has run: the rest of the model is skipped."""


class KeepValue(LayerValueHook):
    """Keeps the layer's output (or first input), in the graph, and stops the forward pass
    (``stop=True``) or hands the rest of the model a copy (so in-place ops after the layer
    leave the kept tensor as it was)."""

    value: torch.Tensor | None = None

    def __init__(self, layer_input: bool, stop: bool = False) -> None:
        super().__init__(layer_input)
        self.stop = stop

    def on_value(self, value: torch.Tensor) -> torch.Tensor:
        self.value = value
        if self.stop:
            raise _Stop
        return value.clone()


def layer_value(
    model: nn.Module, module: nn.Module, inputs: torch.Tensor, layer_input: bool
) -> torch.Tensor:
    """``module``'s output (or first input) when ``model`` runs on ``inputs``, in the graph
    if gradients are on; the modules after it do not run."""
    keep = KeepValue(layer_input, stop=True)
    with module_hooks([keep.hooks(module)]), suppress(_Stop):
        model(inputs)
    if keep.value is None:
        raise ValueError("layer did not run in the model's forward pass")
    return keep.value


class CallInputs:
    """Forward pre-hook keeping each module's first input of the call under way, as it was
    before the call, for the forward hook of the same call to :meth:`pop`. A module with
    ``inplace=True`` (``nn.ReLU(inplace=True)``) runs on a copy, so the kept tensor keeps its
    value and tensors upstream are not overwritten."""

    def __init__(self) -> None:
        self._kept: dict[nn.Module, torch.Tensor] = {}

    def pre_hook(self, module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        self._kept[module] = args[0]
        if getattr(module, "inplace", False) and isinstance(args[0], torch.Tensor):
            return (args[0].clone(), *args[1:])
        return None

    def pop(self, module: nn.Module) -> torch.Tensor:
        return self._kept.pop(module)


def tensor_output(outputs: Any) -> torch.Tensor:
    """``outputs`` if the model returned a tensor, else ``TypeError`` (e.g. for a model
    returning ``(logits, features)``, which would otherwise fail later with an unrelated
    ``AttributeError``)."""
    if not isinstance(outputs, torch.Tensor):
        raise TypeError(f"model must return a tensor, got {type(outputs).__name__}")
    return outputs


def layer_names(model: nn.Module) -> list[str]:
    """Every named submodule of ``model`` (``""`` excluded), in registration order."""
    check_type("model", model, nn.Module)
    return [name for name, _ in model.named_modules() if name]


def get_layer(model: nn.Module, name: str, *, argument: str = "layer") -> nn.Module:
    """The submodule called ``name`` (dotted path as in ``model.named_modules()``);
    ``argument``: the caller's argument that gave the name, for the error message.

    Raises:
        TypeError: ``model`` is not an ``nn.Module`` or ``name`` not a string.
        ValueError: no such submodule; the message lists the closest existing names.
    """
    check_type("model", model, nn.Module)
    check_type("name", name, str)
    modules = dict(model.named_modules())
    if name not in modules or name == "":
        names = [n for n in modules if n]
        close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
        hint = f"; did you mean {close}?" if close else ""
        shown = names if len(names) <= 12 else [*names[:12], "..."]
        raise ValueError(
            f"{argument} must name a submodule of {type(model).__name__}, got {name!r}{hint} "
            f"(available: {shown})"
        )
    return modules[name]


def _first_tensor(output: Any) -> torch.Tensor | None:
    """``output`` itself if a tensor, else the first tensor of a tuple / list or the first tensor
    value of a mapping (a dict, a Hugging Face ``ModelOutput``: its ``last_hidden_state`` or
    ``logits``); ``None`` if there is none."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        output = tuple(output.values())
    if isinstance(output, (tuple, list)):
        for item in output:
            if isinstance(item, torch.Tensor):
                return item
    return None


class _Inert:
    """What a :class:`_RecordingHook` becomes in a copy of the model: a hook that does nothing."""

    def __call__(self, module: nn.Module, args: Any, output: Any) -> None:
        return None


class _RecordingHook:
    """A :class:`LayerRecorder`'s forward hook on layer ``name``.

    A copy of the model made while it records (``copy.deepcopy``, a pickle, the pruner's
    copy) gets an inert hook instead: the copy's outputs must not overwrite the recorder's, and
    the recorder could never remove a hook it did not register.
    """

    def __init__(self, recorder: LayerRecorder, name: str) -> None:
        self.recorder, self.name = recorder, name

    def __call__(self, module: nn.Module, args: Any, output: Any) -> None:
        self.recorder._record(self.name, output)

    def __deepcopy__(self, memo: dict[int, Any]) -> _Inert:
        return _Inert()

    def __reduce__(self) -> tuple[type[_Inert], tuple[()]]:
        return _Inert, ()


class LayerRecorder:
    """Context manager recording outputs (and their gradients) of named submodules.

    Args:
        model: the network (not a ``torch.compile``'d module, whose compiled code skips the
            hooks: pass ``model._orig_mod``).
        layers: names of submodules (as in ``model.named_modules()``); checked on construction.
        gradients: also record the gradient of whatever is back-propagated with respect to
            each layer's output (via a tensor hook on the output).
        detach: store detached activations (default); ``False`` keeps them in the graph, so a
            loss can be built on them (feature visualization).
        accumulate: keep every call's output (see :attr:`history` and :meth:`stacked`) instead
            of only the last one.

    A copy of the model made while recording (``copy.deepcopy``, pickling, pruning) does not
    record: its copies of the hooks do nothing.
    For modules returning tuples (e.g. ``nn.LSTM``), the first tensor of the tuple is recorded;
    for modules returning a dict or a Hugging Face ``ModelOutput``, its first tensor value
    (``last_hidden_state``, ``logits``). A module returning no tensor at all raises
    ``TypeError`` when it runs.
    For a module called several times per forward pass (a shared ``ReLU``), ``activations``
    and ``gradients`` are those of its last call.
    The recorded output is a copy, so an in-place op later in the model (``ReLU(inplace=True)``)
    does not change it; with ``detach=False`` the copy stays in the autograd graph.

    Attributes:
        activations: ``{layer: tensor}`` output of the most recent forward call.
        gradients: ``{layer: tensor}`` gradient with respect to that output, after backward.
        history: ``{layer: [tensor, ...]}`` all outputs when ``accumulate=True``.
    """

    def __init__(
        self,
        model: nn.Module,
        layers: str | Sequence[str],
        *,
        gradients: bool = False,
        detach: bool = True,
        accumulate: bool = False,
    ) -> None:
        check_type("model", model, nn.Module)
        check_not_compiled("model", model)
        single = isinstance(layers, str)  # a missing one is named "layer", else "layers[i]"
        if isinstance(layers, str):
            layers = [layers]
        if not isinstance(layers, Iterable) or isinstance(layers, (bytes, dict)):
            raise TypeError(f"layers must be a name or a sequence of names, got {layers!r:.80}")
        names = list(layers)
        if not names:
            raise ValueError("layers must name at least one submodule, got an empty sequence")
        for i, name in enumerate(names):
            check_type(f"layers[{i}]", name, str)
        if len(set(names)) != len(names):
            raise ValueError(f"layers must be distinct, got {names}")
        self.model = model
        self.layers = names
        self.modules = {
            name: get_layer(model, name, argument="layer" if single else f"layers[{i}]")
            for i, name in enumerate(names)
        }
        check_type("gradients", gradients, bool)
        check_type("detach", detach, bool)
        check_type("accumulate", accumulate, bool)
        self.record_gradients = gradients
        self.detach = detach
        self.accumulate = accumulate
        self.activations: dict[str, torch.Tensor] = {}
        self.gradients: dict[str, torch.Tensor] = {}
        self.history: dict[str, list[torch.Tensor]] = {name: [] for name in names}
        self._calls = dict.fromkeys(names, 0)  # forward calls so far, per layer
        self._handles: list[Any] = []

    @property
    def active(self) -> bool:
        """Whether hooks are currently registered."""
        return bool(self._handles)

    def _record(self, name: str, output: Any) -> None:
        """The forward hook's work: store ``name``'s output (and hook its gradient)."""
        tensor = _first_tensor(output)
        if tensor is None:
            raise TypeError(
                f"layer {name!r} returned {type(output).__name__}, which holds no tensor to "
                f"record; name a submodule returning a tensor, or a tuple, list or dict of them"
            )
        # a copy: a later in-place op (ReLU(inplace=True) after a BatchNorm, as in
        # torchvision's ResNets) would overwrite the module's output in the stored tensor
        value = (tensor.detach() if self.detach else tensor).clone()
        self.activations[name] = value
        self._calls[name] += 1
        call = self._calls[name]
        if self.accumulate:
            self.history[name].append(value.detach())
        if self.record_gradients and tensor.requires_grad:
            # weakly: with detach=False the recorder holds the graph that holds this hook, a
            # cycle through autograd that Python's collector cannot see (every recorder leaked)
            recorder = weakref.ref(self)

            def grad_hook(grad: torch.Tensor) -> None:
                rec = recorder()
                # only the call whose output is in activations (backward reaches the
                # calls of a reused module last to first)
                if rec is not None and call == rec._calls[name]:
                    rec.gradients[name] = grad.detach()

            tensor.register_hook(grad_hook)

    def __enter__(self) -> LayerRecorder:
        if self._handles:
            raise RuntimeError("LayerRecorder is already active; it cannot be entered twice")
        try:
            for name, module in self.modules.items():
                self._handles.append(module.register_forward_hook(_RecordingHook(self, name)))
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()

    def remove(self) -> None:
        """Remove every hook this recorder registered (idempotent)."""
        while self._handles:
            self._handles.pop().remove()

    def stacked(self, name: str, batch_dim: int = 0) -> torch.Tensor:
        """All recorded outputs of ``name`` concatenated along their batch axis.

        Args:
            name: a recorded layer.
            batch_dim: the axis of the outputs that indexes the inputs, as in
                :func:`layer_activations`: 0 for batch-first outputs (``[B, ...]`` calls stack
                to ``[sum B, ...]``), 1 for time-major ones such as spiking neurons' (``[T, B,
                ...]`` calls stack to ``[T, sum B, ...]``; the layout is kept).

        Raises:
            ValueError: nothing was recorded, or the outputs' shapes differ other than on
                axis ``batch_dim``.
        """
        if name not in self.history:
            raise ValueError(f"name must be one of the recorded layers {self.layers}, got {name!r}")
        check_number("batch_dim", batch_dim, ge=0, integer=True)
        history = self.history[name]
        if not history:
            raise ValueError(
                f"no outputs of {name!r} were recorded (use accumulate=True and run the model)"
            )
        shapes = [tuple(t.shape) for t in history]
        rest = {s[:batch_dim] + s[batch_dim + 1 :] for s in shapes}
        if any(len(s) <= batch_dim for s in shapes) or len(rest) > 1:
            distinct = list(dict.fromkeys(shapes))
            raise ValueError(
                f"the outputs of {name!r} must have the same shape except on axis batch_dim="
                f"{batch_dim} to be stacked along it, got shapes {distinct[:4]}"
                f"{' ...' if len(distinct) > 4 else ''} (time-major outputs [T, B, ...] need "
                "batch_dim=1)"
            )
        return torch.cat(history, dim=batch_dim)


def layer_activations(
    model: nn.Module,
    inputs: torch.Tensor,
    layers: str | Sequence[str],
    *,
    batch_size: int | None = None,
    flatten: bool = True,
    batch_dim: int = 0,
    name: str = "inputs",
) -> dict[str, torch.Tensor]:
    """Outputs of the named layers for ``inputs``, computed without gradients.

    Args:
        model: the network (its train/eval mode is left as is; not a ``torch.compile``'d
            module: pass ``model._orig_mod``). In training mode its BatchNorm layers update
            their running statistics and normalize with each chunk's statistics, so the
            activations depend on ``batch_size``: call ``model.eval()`` first to measure.
        inputs: ``[N, ...]`` batch-first input tensor (finite if floating-point; its dtype must
            be one the model takes: nothing is cast).
        layers: submodule names.
        batch_size: run the model on chunks of this many examples (default: all at once).
        flatten: reshape each activation to ``[N, features]``.
        batch_dim: the axis of the layers' outputs that indexes the inputs, moved to the front:
            1 for time-major layers ``[T, B, ...]`` (spiking neurons, neuronkit-snn's ``Seq*``
            layers), whose ``[N, T * features]`` rows then keep each input's whole response.
        name: the argument ``inputs`` came from, for error messages (``test_inputs``, ...).

    Returns:
        ``{layer: tensor}`` with ``N`` rows per layer, in the order of ``layers``.

    Raises:
        ValueError: a layer that does not run exactly once per forward pass, whose output is a
            0-d tensor (e.g. a sum over the batch), or whose output does not have the pass's
            inputs on axis ``batch_dim`` (e.g. ``[T, B, ...]`` read with ``batch_dim=0``).
    """
    check_type(name, inputs, torch.Tensor)
    if inputs.ndim < 1 or inputs.shape[0] == 0:
        raise ValueError(
            f"{name} must be a non-empty batch [N, ...], got shape {tuple(inputs.shape)}"
        )
    check_finite(name, inputs)
    if batch_size is not None:
        check_number("batch_size", batch_size, ge=1, integer=True)
    check_type("flatten", flatten, bool)
    check_number("batch_dim", batch_dim, ge=0, integer=True)
    step = inputs.shape[0] if batch_size is None else batch_size
    starts = range(0, inputs.shape[0], step)
    with LayerRecorder(model, layers, accumulate=True) as rec, torch.no_grad():
        for start in starts:
            call_model(model, inputs[start : start + step], name)
    out: dict[str, torch.Tensor] = {}
    for layer in rec.layers:
        calls = len(rec.history[layer])
        if calls != len(starts):  # one output per forward pass, or the rows are not the inputs'
            raise ValueError(
                f"layers: {layer!r} produced {calls} tensor outputs in {len(starts)} forward "
                f"pass(es); name a module that runs exactly once per pass (not one reused "
                f"inside the model, e.g. a ReLU applied twice, nor one that is never called)"
            )
        if any(acts.ndim == 0 for acts in rec.history[layer]):
            raise ValueError(
                f"layers: {layer!r} returned a 0-d (scalar) tensor; name a layer whose output "
                f"has the batch as first dimension [N, ...]"
            )
        chunks = []
        for start, acts in zip(starts, rec.history[layer]):
            n = min(step, inputs.shape[0] - start)
            if acts.ndim <= batch_dim or acts.shape[batch_dim] != n:
                raise ValueError(
                    f"layers: {layer!r} returned shape {tuple(acts.shape)} for a pass of {n} "
                    f"inputs, which are not on its axis {batch_dim} (batch_dim). Time-major "
                    f"layers [T, B, ...], such as spiking neurons, need batch_dim=1, and the "
                    f"inputs must be batch-first [N, ...] (they are split into passes along "
                    f"axis 0): wrap a time-major model in a module that moves the batch axis"
                )
            chunks.append(acts.movedim(batch_dim, 0))
        acts = torch.cat(chunks)
        out[layer] = acts.reshape(acts.shape[0], -1) if flatten else acts
    return out
