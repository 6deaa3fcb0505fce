"""Training-data influence by tracing gradient descent (TracIn).

Pruthi, Liu, Kale & Sundararajan, "Estimating Training Data Influence by Tracing Gradient
Descent" (NeurIPS 2020). A training example ``z`` helps a test example ``z'`` when a gradient
step on ``z`` lowers the loss on ``z'``; summed over the steps of training, approximated by the
checkpoints ``w_1 .. w_k`` saved along the way with the learning rates ``eta_i`` in use there
(TracInCP)::

    TracIn(z, z') = sum_i eta_i  grad_w l(w_i, z) . grad_w l(w_i, z')

Positive scores mark proponents (training examples that pushed the test loss down), negative
ones opponents. Self-influence ``TracIn(z, z)`` is large for mislabelled and atypical training
examples, which the paper finds first by ranking it. Restricting the gradient to some layers
(``layers=``; the paper's experiments use the last layer) trades fidelity for speed. For one
``nn.Linear`` layer on ``[n, H]`` inputs the per-example gradients are never formed: the weight
gradient of an example is the outer product ``g a^T`` of the loss gradient at the layer's
output and the layer's input, so ``grad . grad' = (g . g') (a . a' + 1)`` (the 1 for the bias;
the paper's factorization; Captum's ``TracInCPFast`` computes it without the bias term).

Numbers equal Captum's ``TracInCP`` (its ``influence`` and ``self_influence``). The gradients
of each example come from one vectorized pass per batch (``torch.func.vmap``), where Captum
loops over the examples of a batch unless its loss is a summed loss with sample-wise hooks;
the model's parameters are never written: each checkpoint is applied through
``torch.func.functional_call``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from neuronkit.common import check_number, check_type, eval_mode, integer_dtype, named_input_dtypes
from neuronkit.common.progress import progress

from .hooks import check_not_compiled, submodule

__all__ = ["tracin_influence", "tracin_self_influence"]

#: per-example losses ``[n]`` of outputs ``[n, ...]`` and targets ``[n, ...]``
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Checkpoint = Mapping[str, torch.Tensor] | str | os.PathLike[str]


def _cross_entropy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(outputs, targets, reduction="none")


def tracin_influence(
    model: nn.Module,
    checkpoints: Sequence[Checkpoint],
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    *,
    learning_rates: float | Sequence[float] = 1.0,
    loss_fn: LossFn | None = None,
    layers: Sequence[str] | None = None,
    batch_size: int = 64,
    vectorize: bool = True,
    show_progress: bool | None = None,
) -> torch.Tensor:
    """TracInCP influence of every training example on every test example.

    Args:
        model: the network; its own parameters are not used (nor modified): each checkpoint's
            are. Runs in eval mode (its flags are restored).
        checkpoints: ``k`` state dicts of ``model`` saved during training (or paths of files
            holding them, read with ``torch.load(weights_only=True)``).
        train: ``(inputs [N, ...], targets [N, ...])``.
        test: ``(inputs [M, ...], targets [M, ...])``.
        learning_rates: the learning rate at each checkpoint (one number for all).
        loss_fn: ``loss_fn(outputs, targets)`` returning per-example losses ``[n]``; default
            cross-entropy on logits and class indices.
        layers: names of modules whose parameters the gradients cover (default: every
            parameter that requires gradients).
        batch_size: examples per vectorized gradient pass.
        vectorize: ``False`` takes the examples' gradients one at a time (for models
            ``torch.func.vmap`` cannot run).
        show_progress: a bar over the checkpoints (``None``: only on a terminal).

    Returns:
        ``[M, N]`` scores: entry ``(j, i)`` is training example ``i``'s influence on test
        example ``j``.
    """
    setup = _Setup(model, checkpoints, learning_rates, loss_fn, layers, batch_size, vectorize)
    x, y = setup.data("train", train)
    xt, yt = setup.data("test", test)
    scores: torch.Tensor | None = None  # in the gradients' dtype
    for state, lr in setup.states(show_progress):
        test_side = setup.features(state, xt, yt)
        columns = [_products(test_side, setup.features(state, *b)) for b in setup.batches(x, y)]
        part = lr * torch.cat(columns, 1)
        scores = part if scores is None else scores + part
    assert scores is not None
    return scores


def tracin_self_influence(
    model: nn.Module,
    checkpoints: Sequence[Checkpoint],
    data: tuple[torch.Tensor, torch.Tensor],
    *,
    learning_rates: float | Sequence[float] = 1.0,
    loss_fn: LossFn | None = None,
    layers: Sequence[str] | None = None,
    batch_size: int = 64,
    vectorize: bool = True,
    show_progress: bool | None = None,
) -> torch.Tensor:
    """TracInCP self-influence ``sum_i eta_i |grad l(w_i, z)|^2`` of each example.

    Arguments as :func:`tracin_influence`, with ``data = (inputs [N, ...], targets [N, ...])``.

    Returns:
        ``[N]`` scores; the largest flag examples to inspect first (mislabelled, atypical).
    """
    setup = _Setup(model, checkpoints, learning_rates, loss_fn, layers, batch_size, vectorize)
    x, y = setup.data("data", data)
    scores: torch.Tensor | None = None
    for state, lr in setup.states(show_progress):
        norms = [_squared_norms(setup.features(state, *b)) for b in setup.batches(x, y)]
        part = lr * torch.cat(norms)
        scores = part if scores is None else scores + part
    assert scores is not None
    return scores


class _ExampleGradients:
    """The checked model, loss, layers and batching, and the loss gradients of single
    examples at a state of the model (shared with :mod:`.influence_function`)."""

    def __init__(self, model: Any, loss_fn: Any, layers: Any, batch_size: Any, vectorize: Any):
        check_type("model", model, nn.Module)
        check_not_compiled("model", model)
        if loss_fn is not None and not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
        check_number("batch_size", batch_size, ge=1, integer=True)
        check_type("vectorize", vectorize, bool)
        self.model = model
        self.default_loss = loss_fn is None
        self.loss_fn: LossFn = loss_fn or _cross_entropy
        self.batch_size, self.vectorize = int(batch_size), vectorize
        self.names = self._parameter_names(layers)
        self.inputs: list[tuple[str, torch.Tensor]] = []  # (name, inputs) of data(), in order

    def _parameter_names(self, layers: Any) -> list[str]:
        if layers is None:
            names = [n for n, p in self.model.named_parameters() if p.requires_grad]
        else:
            if isinstance(layers, str) or not isinstance(layers, Sequence) or not layers:
                raise TypeError(f"layers must be a non-empty sequence of names, got {layers!r}")
            chosen = {id(p) for layer in layers for p in submodule(self.model, layer).parameters()}
            names = [n for n, p in self.model.named_parameters() if id(p) in chosen]
        if not names:
            raise ValueError("the model has no parameters to take gradients of (layers)")
        return names

    def data(self, name: str, pair: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise TypeError(f"{name} must be a pair (inputs, targets), got {type(pair).__name__}")
        x, y = pair
        check_type(f"{name} inputs", x, torch.Tensor)
        check_type(f"{name} targets", y, torch.Tensor)
        if x.ndim < 1 or len(x) == 0 or y.ndim < 1 or len(y) != len(x):
            raise ValueError(
                f"{name} must be non-empty inputs [n, ...] and targets [n, ...] of the same "
                f"length, got shapes {tuple(x.shape)} and {tuple(y.shape)}"
            )
        if self.default_loss:  # the cross-entropy: class indices (as int64) or probabilities
            if integer_dtype(y):
                y = y.long()
            elif not y.is_floating_point() or y.ndim < 2:
                raise TypeError(
                    f"{name} targets must be class indices of an integer dtype (or [n, C] "
                    f"class probabilities) for the default cross-entropy loss, got dtype "
                    f"{y.dtype} and shape {tuple(y.shape)}"
                )
        self.inputs.append((f"{name} inputs", x))
        return x.detach(), y.detach()

    def forward(
        self, state: tuple[dict[str, torch.Tensor], ...] | dict[str, torch.Tensor], x: torch.Tensor
    ) -> Any:
        """The model's outputs on ``x`` with the parameters and buffers ``state``; torch's
        dtype mismatch (float64 inputs of a float32 model) is a ``TypeError`` naming the
        inputs of :meth:`data` that differ."""
        with named_input_dtypes(self.model, *self.inputs):
            return functional_call(self.model, state, (x,))

    def batches(self, x: torch.Tensor, y: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        step = self.batch_size
        return [(x[i : i + step], y[i : i + step]) for i in range(0, len(x), step)]

    def loss(
        self,
        params: dict[str, torch.Tensor],
        rest: dict[str, torch.Tensor],
        x: torch.Tensor,
        y: torch.Tensor,
    ) -> torch.Tensor:
        """The summed loss of the rows ``x`` ``[n, ...]`` with the parameters ``params`` and
        the rest of the state ``rest``."""
        losses = self.loss_fn(self.forward((params, rest), x), y)
        if not isinstance(losses, torch.Tensor) or losses.shape != (len(x),):
            raise ValueError(
                f"loss_fn must return one loss per example ([{len(x)}]), got "
                f"{getattr(losses, 'shape', type(losses).__name__)}"
            )
        return losses.sum()

    def split(
        self, state: dict[str, torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The parameters the gradients cover, and the rest of ``state``."""
        params = {name: state[name] for name in self.names}
        return params, {name: value for name, value in state.items() if name not in params}

    def gradients(
        self, state: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor
    ) -> torch.Tensor:
        """The per-example gradients ``[n, P]`` of the loss at ``state``, flattened."""
        params, rest = self.split(state)

        def one(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
            return self.loss(p, rest, xi.unsqueeze(0), yi.unsqueeze(0))

        per_example = grad(one)
        with eval_mode(self.model):
            if self.vectorize:
                grads = vmap(per_example, in_dims=(None, 0, 0))(params, x, y)
            else:
                each = [per_example(params, xi, yi) for xi, yi in zip(x, y, strict=True)]
                grads = {name: torch.stack([g[name] for g in each]) for name in self.names}
        return torch.cat([grads[name].reshape(len(x), -1) for name in self.names], 1)

    def all_gradients(
        self, state: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor
    ) -> torch.Tensor:
        """:meth:`gradients` ``[n, P]`` of all examples, batch by batch."""
        return torch.cat([self.gradients(state, *b) for b in self.batches(x, y)])


#: the per-example gradients ``[n, P]``, or for one ``nn.Linear`` layer their factors: the
#: loss gradients at its output ``g [n, C]``, its inputs ``a [n, H]`` and whether its bias is
#: covered (example ``i``'s gradient: ``g_i a_i^T`` and, with the bias, ``g_i``)
Features = torch.Tensor | tuple[torch.Tensor, torch.Tensor, bool]


def _products(left: Features, right: Features) -> torch.Tensor:
    """The gradients' dot products ``[n_left, n_right]``."""
    if isinstance(left, torch.Tensor) and isinstance(right, torch.Tensor):
        return left @ right.T
    assert isinstance(left, tuple)
    assert isinstance(right, tuple)
    inputs = left[1] @ right[1].T
    return (left[0] @ right[0].T) * (inputs + 1 if left[2] else inputs)


def _squared_norms(features: Features) -> torch.Tensor:
    """The gradients' squared norms ``[n]``."""
    if isinstance(features, torch.Tensor):
        return features.square().sum(1)
    g, a, bias = features
    inputs = a.square().sum(1)
    return g.square().sum(1) * (inputs + 1 if bias else inputs)


class _Setup(_ExampleGradients):
    """:class:`_ExampleGradients` with the checked checkpoints and learning rates."""

    def __init__(
        self,
        model: Any,
        checkpoints: Any,
        learning_rates: Any,
        loss_fn: Any,
        layers: Any,
        batch_size: Any,
        vectorize: Any,
    ) -> None:
        super().__init__(model, loss_fn, layers, batch_size, vectorize)
        if isinstance(checkpoints, (str, os.PathLike, Mapping)) or not isinstance(
            checkpoints, Sequence
        ):
            raise TypeError(
                "checkpoints must be a sequence of state dicts or paths, got "
                f"{type(checkpoints).__name__}"
            )
        if not checkpoints:
            raise ValueError("checkpoints must hold at least one checkpoint, got none")
        if isinstance(learning_rates, (int, float)) and not isinstance(learning_rates, bool):
            learning_rates = [learning_rates] * len(checkpoints)
        check_type("learning_rates", learning_rates, Sequence)
        if len(learning_rates) != len(checkpoints):
            raise ValueError(
                f"learning_rates must give one rate per checkpoint ({len(checkpoints)}), got "
                f"{len(learning_rates)}"
            )
        for rate in learning_rates:
            check_number("learning_rates", rate, gt=0)
        expected = set(self.model.state_dict())
        for k, checkpoint in enumerate(checkpoints):  # before any work: files must exist
            if isinstance(checkpoint, (str, os.PathLike)):
                if not os.path.isfile(checkpoint):
                    raise FileNotFoundError(f"checkpoints[{k}]: no file {os.fspath(checkpoint)!r}")
            elif not isinstance(checkpoint, Mapping):
                raise TypeError(
                    f"checkpoints[{k}] must be a state dict or a path, got "
                    f"{type(checkpoint).__name__}"
                )
            else:
                _check_state(k, checkpoint, expected)
        self.checkpoints = list(checkpoints)
        self.learning_rates = [float(r) for r in learning_rates]
        self.linear = self._one_linear(layers)

    def _one_linear(self, layers: Sequence[str] | None) -> nn.Linear | None:
        """The ``nn.Linear`` whose weight (and bias) are all the gradients cover, if one is."""
        if layers is None or len(layers) != 1:
            return None
        module = submodule(self.model, layers[0])
        return module if isinstance(module, nn.Linear) else None

    def features(
        self, state: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor
    ) -> Features:
        """The examples' :data:`Features` at ``state``, batch by batch; factors where the
        layer runs once per forward on ``[n, H]`` inputs (else the gradients)."""
        if self.linear is not None:
            parts = [self._factors(state, *b) for b in self.batches(x, y)]
            if all(part is not None for part in parts):
                g = torch.cat([part[0] for part in parts if part is not None])
                a = torch.cat([part[1] for part in parts if part is not None])
                return g, a, self.linear.bias is not None
        return self.all_gradients(state, x, y)

    def _factors(
        self, state: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The loss gradients at the layer's output ``[n, C]`` and its inputs ``[n, H]`` from
        one batched forward and backward (in eval mode the examples do not interact), or
        ``None`` where the layer is not called once on ``[n, H]``."""
        assert self.linear is not None
        seen: list[tuple[torch.Tensor, torch.Tensor]] = []

        def capture(module: nn.Module, args: tuple[Any, ...], out: torch.Tensor) -> torch.Tensor:
            leaf = out.detach().requires_grad_(True)  # the loss's gradient is taken here
            seen.append((args[0].detach(), leaf))
            return leaf.clone()  # what follows may work in place (nn.ReLU(inplace=True))

        handle = self.linear.register_forward_hook(capture)
        try:
            with torch.enable_grad(), eval_mode(self.model):
                losses = self.loss_fn(self.forward(state, x), y)
        finally:
            handle.remove()
        if len(seen) != 1 or seen[0][0].shape != (len(x), self.linear.in_features):
            return None
        if not isinstance(losses, torch.Tensor) or losses.shape != (len(x),):
            raise ValueError(
                f"loss_fn must return one loss per example ([{len(x)}]), got "
                f"{getattr(losses, 'shape', type(losses).__name__)}"
            )
        a, z = seen[0]
        (g,) = torch.autograd.grad(losses.sum(), z, allow_unused=True)
        return (torch.zeros_like(z) if g is None else g), a

    def states(self, show_progress: bool | None) -> Iterator[tuple[dict[str, torch.Tensor], float]]:
        """Each checkpoint's parameters and buffers (read when its turn comes) with its
        learning rate, under a progress bar."""
        expected = dict(self.model.state_dict(keep_vars=True))
        pairs = progress(
            enumerate(zip(self.checkpoints, self.learning_rates)),
            show_progress=show_progress,
            desc="tracin checkpoints",
            total=len(self.checkpoints),
        )
        for k, (checkpoint, lr) in pairs:
            if isinstance(checkpoint, (str, os.PathLike)):  # checked in full once read
                checkpoint = torch.load(checkpoint, map_location="cpu", weights_only=True)
                if not isinstance(checkpoint, Mapping):
                    raise TypeError(
                        f"checkpoints[{k}] must hold a state dict, got {type(checkpoint).__name__}"
                    )
                _check_state(k, checkpoint, set(expected))
            state = {
                name: checkpoint[name].detach().to(value.device, value.dtype)
                for name, value in expected.items()
            }
            yield state, lr


def _check_state(k: int, checkpoint: Mapping[str, Any], expected: set[str]) -> None:
    missing = sorted(expected - set(checkpoint))
    if missing:
        raise ValueError(f"checkpoints[{k}] lacks the model's entries {missing[:5]}")
