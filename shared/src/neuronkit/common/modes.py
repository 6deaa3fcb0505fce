"""Module and autograd modes: run models in eval mode and give every submodule its own mode
back; turn autograd on for code that needs it; detach inputs from the caller's graph; apply a
custom autograd Function cheaply in plain eager mode."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

_F = TypeVar("_F", bound=Callable[..., Any])


class eval_mode:  # used like a function: ``with eval_mode(model):``
    """Every submodule of each ``nn.Module`` in ``models`` in eval mode inside the block; each
    one's own training flag is restored afterwards, also on an exception (a BatchNorm frozen in
    eval inside a training model stays in eval). Anything that is not a module, e.g. a plain
    function, is left alone.

    A plain class rather than a generator context manager, and a walk over each module's
    children rather than ``model.modules()`` (which builds every submodule's name): entering
    and leaving cost about a microsecond, which matters where a batch-1 attribution or
    forward pass costs a few hundred.

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5)).train()
    >>> _ = net[1].eval()
    >>> with eval_mode(net):
    ...     net.training, net[1].training
    (False, False)
    >>> net.training, net[1].training
    (True, False)
    """

    __slots__ = ("_models", "_switched")

    def __init__(self, *models: Any) -> None:
        self._models = models
        self._switched: list[list[Any]] = []  # per active block, the modules it switched

    def __enter__(self) -> None:
        # an nn.Module holds its children in a ``_modules`` dict (torch is not imported here)
        stack = [m for m in self._models if isinstance(getattr(m, "_modules", None), dict)]
        seen = set(stack)  # a submodule in several places is visited once
        training: list[Any] = []
        self._switched.append(training)
        while stack:
            module = stack.pop()
            if module.training:
                module.training = False
                training.append(module)
            for child in module._modules.values():
                if child is not None and child not in seen:
                    seen.add(child)
                    stack.append(child)

    def __exit__(self, *exc_info: object) -> None:
        for module in self._switched.pop():
            module.training = True


class grad_enabled:  # used like a function: ``with grad_enabled("fit"):``
    """Autograd on inside the block, whatever the caller's grad mode: for code that needs
    gradients internally (a trainer, an attack, an optimisation over inputs), which a
    surrounding ``torch.no_grad()`` would otherwise break with torch's "element 0 of tensors
    does not require grad". Under ``torch.inference_mode()``, where no graph can be recorded,
    raises ``RuntimeError`` naming ``what``. Also a decorator (``@grad_enabled("fit")``),
    which costs about a microsecond a call. Needs torch.

    >>> import torch
    >>> with torch.no_grad(), grad_enabled("train"):
    ...     torch.is_grad_enabled()
    True
    >>> with torch.inference_mode(), grad_enabled("train"):  # doctest: +ELLIPSIS
    ...     pass
    Traceback (most recent call last):
    RuntimeError: train needs autograd: call it outside torch.inference_mode() ...
    """

    __slots__ = ("_previous", "_what")

    def __init__(self, what: str) -> None:
        self._what = what
        self._previous: list[bool] = []

    def _enable(self) -> bool:
        """Turn autograd on; return the caller's mode."""
        import torch

        if torch.is_inference_mode_enabled():
            raise RuntimeError(
                f"{self._what} needs autograd: call it outside torch.inference_mode() (a "
                "surrounding torch.no_grad() is fine)"
            )
        previous = torch.is_grad_enabled()
        torch.set_grad_enabled(True)
        return previous

    def __enter__(self) -> None:
        self._previous.append(self._enable())

    def __exit__(self, *exc_info: object) -> None:
        import torch

        torch.set_grad_enabled(self._previous.pop())

    def __call__(self, function: _F) -> _F:
        import torch

        enable, set_grad_enabled = self._enable, torch.set_grad_enabled

        @functools.wraps(function)
        def with_grad(*args: Any, **kwargs: Any) -> Any:
            previous = enable()
            try:
                return function(*args, **kwargs)
            finally:
                set_grad_enabled(previous)

        return cast(_F, with_grad)


def detached_input(x: Any) -> Any:
    """A torch tensor cut from the caller's autograd graph, ready to enter a new one: a
    differentiation or training on it then neither fills the caller's ``x.grad`` nor holds
    their graph. ``x.detach()`` (no copy), or a copy of an inference tensor (made under
    ``torch.inference_mode()``), which autograd cannot save for backward. Anything else is
    returned as is."""
    if not hasattr(x, "detach") or not hasattr(x, "is_inference"):
        return x
    return x.clone() if x.is_inference() else x.detach()


def eager_twin(function: Any) -> Any:
    """An old-style copy of the new-style ``torch.autograd.Function`` subclass ``function``
    (``forward`` without ``ctx``, plus ``setup_context``): the same forward, context and
    backward (double backward included), without the signature binding torch does on every
    ``apply`` of a new-style Function (``inspect.signature``, about 25 us: more than a small
    op costs). Pass every argument of ``forward`` (defaults are not filled in). For plain eager
    autograd only: ``torch.func`` transforms and forward-mode AD need ``function`` itself
    (:func:`~neuronkit.common.under_torch_func` tells them apart), and ``torch.compile`` traces
    either. Needs torch.
    """
    import torch

    def forward(ctx: Any, *args: Any) -> Any:
        out = function.forward(*args)
        function.setup_context(ctx, args, out)
        return out

    return type(
        f"Eager{function.__name__}",
        (torch.autograd.Function,),
        {
            "forward": staticmethod(forward),
            "backward": staticmethod(function.backward),
            "__module__": function.__module__,
            "__doc__": f"{function.__name__} as an old-style Function (eager_twin).",
        },
    )


def function_for_mode(new_style: Any, eager: Any, compiled: Any = None) -> Any:
    """Which of an autograd Function's variants to apply now: ``compiled`` (default
    ``new_style``; e.g. one without a custom ``jvp``, which dynamo refuses) while
    ``torch.compile`` traces, ``new_style`` under a ``torch.func`` transform or forward-mode
    AD, else ``eager`` (its :func:`eager_twin`). Needs torch."""
    import torch

    from .validation import under_torch_func

    if torch.compiler.is_compiling():
        return new_style if compiled is None else compiled
    return new_style if under_torch_func() else eager
