"""Per-epoch information-plane tracking of every layer.

Shwartz-Ziv & Tishby, "Opening the Black Box of Deep Neural Networks via Information" (2017):
a small network (12-10-7-5-4-3-2, tanh) is trained on the 12-bit task and, at epochs on a log
grid, each layer ``T`` is placed in the plane ``(I(X; T), I(T; Y))``. With ``X`` uniform over
the finite input set and a deterministic network, ``I(X; T) = H(T)`` of the discretized layer:
the paper bins each unit into 30 equal bins over the tanh range ``[-1, 1]``
(:func:`binned_information`). The second estimator is the Kolchinsky-Tracey pairwise-distance
(KDE) upper bound on a noisy layer ``T + N(0, var I)``
(:func:`neuronkit.interpretability.information.kde_information`), as in Saxe et al., "On the
information bottleneck theory of deep learning" (ICLR 2018), who also showed that ReLU networks
need not compress.

* :class:`EnsembleMLP`: ``R`` independent MLPs trained in one batched pass (one per run, for
  averaging over initializations as the paper does).
* :func:`track_information_plane`: train and record ``I(X; T)`` / ``I(T; Y)`` of every layer
  with both estimators at epochs of :func:`log_epoch_grid`.
* :func:`compression`, :func:`dpi_violation`: summaries of the trajectories.
* :func:`plot_information_plane`: each layer's trajectory, points colored by epoch.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from neuronkit.common import (
    as_float_array,
    check_choice,
    check_finite,
    check_number,
    check_seed,
    detached_input,
    grad_enabled,
    host_array,
    integer_dtype,
    progress,
    torch_generator,
)
from neuronkit.interpretability.information import (
    _as_matrix,
    bin_activations,
    entropy,
    joint_codes,
    kde_information,
    mutual_information,
)

__all__ = [
    "EnsembleMLP",
    "InformationPlane",
    "binned_information",
    "compression",
    "dpi_violation",
    "log_epoch_grid",
    "plot_information_plane",
    "track_information_plane",
]

Activation = Literal["tanh", "relu"]
_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
}


def binned_information(
    t: Any, y: Any, *, n_bins: int = 30, value_range: tuple[float, float] = (-1.0, 1.0)
) -> tuple[float, float]:
    """Binning estimate of ``(I(X; T), I(T; Y))`` in bits for one layer (the paper's estimator).

    Each unit of ``t`` is cut into ``n_bins`` equal bins over ``value_range``; the binned layer
    is one discrete variable ``T``. The rows of ``t`` are the network's responses to each input
    of a finite set with ``X`` uniform over it, so ``I(X; T) = H(T)`` (the layer is a
    deterministic function of ``X``) and ``I(T; Y)`` is the plug-in MI with the labels.

    Args:
        t: ``[N, U]`` activations of the layer for all ``N`` inputs (numpy or torch).
        y: ``[N]`` integer labels.
        n_bins: bins per unit (the paper: 30).
        value_range: ``(low, high)`` bin range (the paper: ``(-1, 1)`` for tanh); values
            outside fall in the edge bins.

    Returns:
        ``(I(X; T), I(T; Y))`` in bits; ``I(T; Y) <= min(H(T), H(Y))``.
    """
    t = _as_matrix("t", t)  # named here: bin_activations would call it x
    check_finite("t", t)
    binned = bin_activations(t, n_bins, value_range=value_range)
    if binned.shape[1] * math.log2(n_bins) < 62:
        # one integer per row (mixed radix n_bins): a 1-D unique is much faster than rows
        radix = n_bins ** np.arange(binned.shape[1], dtype=np.int64)
        codes = np.unique(binned @ radix, return_inverse=True)[1].reshape(-1)
    else:
        codes = joint_codes(binned)
    labels = np.asarray(host_array(y))
    if labels.ndim != 1 or labels.shape[0] != codes.shape[0]:
        raise ValueError(
            f"y must be [N] with N = {codes.shape[0]} labels, got shape {labels.shape}"
        )
    ixt = float(entropy(codes)[0])
    ity = mutual_information(codes, labels)
    return ixt, ity


def log_epoch_grid(epochs: int, n_points: int) -> np.ndarray:
    """Epochs ``0 .. epochs`` at which to record, roughly log-spaced (the paper's display grid).

    Args:
        epochs: number of training epochs (``>= 1``).
        n_points: wanted number of points (``>= 2``); fewer come back when integers collide.

    Returns:
        Sorted unique int64 epochs starting at 0 (before training) and ending at ``epochs``.
    """
    check_number("epochs", epochs, ge=1, integer=True)
    check_number("n_points", n_points, ge=2, integer=True)
    grid = np.geomspace(1.0, float(epochs), n_points - 1)
    return np.unique(np.concatenate([[0], np.round(grid).astype(np.int64), [epochs]]))


def _truncated_normal(shape: tuple[int, ...], scale: float, gen: torch.Generator) -> torch.Tensor:
    """``N(0, scale^2)`` samples restricted to ``[-2 scale, 2 scale]`` (TensorFlow's
    ``truncated_normal_initializer``)."""
    out = torch.empty(shape)
    nn.init.trunc_normal_(out, 0.0, scale, -2.0 * scale, 2.0 * scale, generator=gen)
    return out


class EnsembleMLP(nn.Module):
    """``n_models`` independent MLPs with the same layout, evaluated in one batched pass.

    Weights are ``[R, out, in]`` tensors (``R = n_models``) and biases ``[R, out, 1]``, applied
    feature-major (``h: [R, width, N]``, samples contiguous, which makes ``torch.baddbmm`` of
    these narrow layers several times faster than sample-major); the models share nothing,
    so one optimizer step on the summed losses is ``R`` independent steps (Adam and SGD act
    elementwise). Initialization follows the authors' code (``idnns/networks/model.py``:
    ``tf.truncated_normal_initializer(stddev=1 / sqrt(fan_in))``, zero biases): normal weights
    with scale ``1 / sqrt(fan_in)`` truncated at two scales (redrawn beyond), so their std is
    ``0.88 / sqrt(fan_in)``.

    Args:
        n_models: ``R >= 1``.
        sizes: layer widths including input and output, e.g. ``(12, 10, 7, 5, 4, 3, 2)``.
        activation: ``"tanh"`` or ``"relu"`` for the hidden layers (the output is softmax).
        seed: initialization seed.
    """

    def __init__(
        self,
        n_models: int,
        sizes: Sequence[int] = (12, 10, 7, 5, 4, 3, 2),
        activation: Activation = "tanh",
        *,
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_number("n_models", n_models, ge=1, integer=True)
        check_choice("activation", activation, list(_ACTIVATIONS))
        check_seed(seed)
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"sizes must list at least input and output widths, got {sizes}")
        for i, s in enumerate(sizes):
            check_number(f"sizes[{i}]", s, ge=1, integer=True)
        gen = torch_generator(seed)
        self.sizes = tuple(int(s) for s in sizes)
        self.activation = activation
        self.weights = nn.ParameterList(
            nn.Parameter(_truncated_normal((n_models, b, a), 1.0 / math.sqrt(a), gen))
            for a, b in itertools.pairwise(sizes)
        )
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(n_models, b, 1)) for b in sizes[1:])

    @property
    def n_models(self) -> int:
        """Number of independent models ``R``."""
        return int(self.weights[0].shape[0])

    def layers(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's representation: hidden activations then the output logits.

        Args:
            x: ``[N, in]`` inputs (shared by all models) or ``[R, N, in]``, in the models'
                parameter dtype.

        Returns:
            ``[R, N, width]`` per layer (the last entry are logits, not probabilities).
        """
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim == 2:
            x = x.unsqueeze(0).expand(self.n_models, -1, -1)
        if x.ndim != 3 or x.shape[0] != self.n_models or x.shape[2] != self.sizes[0]:
            raise ValueError(
                f"x must be [N, {self.sizes[0]}] or [{self.n_models}, N, {self.sizes[0]}], "
                f"got shape {tuple(x.shape)}"
            )
        if x.dtype != self.weights[0].dtype:
            raise TypeError(
                f"x must have the model's parameter dtype {self.weights[0].dtype}, got dtype "
                f"{x.dtype} (convert x, or the model with .to(dtype))"
            )
        return [h.transpose(1, 2) for h in self._layers_t(x.transpose(1, 2))]

    def _layers_t(self, x_t: torch.Tensor) -> list[torch.Tensor]:
        """Feature-major pass: ``x_t: [R, in, N]`` -> per layer ``[R, width, N]``."""
        act = _ACTIVATIONS[self.activation]
        out: list[torch.Tensor] = []
        h = x_t
        n_layers = len(self.weights)
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b, w, h)
            if i < n_layers - 1:
                h = act(h)
            out.append(h)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[R, N, n_classes]`` for inputs ``[N, in]`` or ``[R, N, in]``."""
        return self.layers(x)[-1]


@dataclass(frozen=True)
class InformationPlane:
    """Information-plane trajectories of ``R`` runs.

    Attributes:
        epochs: ``[E]`` recorded epochs.
        ixt: estimator name -> ``[R, E, L]`` ``I(X; T)`` in bits (``L`` layers, input side
            first, the softmax output last).
        ity: estimator name -> ``[R, E, L]`` ``I(T; Y)`` in bits.
        train_accuracy, test_accuracy: ``[R, E]``.
        h_y: ``H(Y)`` in bits.
        layer_names: ``L`` names.
        activation: hidden nonlinearity.
    """

    epochs: np.ndarray
    ixt: dict[str, np.ndarray]
    ity: dict[str, np.ndarray]
    train_accuracy: np.ndarray
    test_accuracy: np.ndarray
    h_y: float
    layer_names: tuple[str, ...]
    activation: str
    settings: dict[str, Any] = field(default_factory=dict)

    def mean(self, estimator: str = "binning") -> tuple[np.ndarray, np.ndarray]:
        """Run-averaged ``(I(X; T), I(T; Y))``, each ``[E, L]`` (the paper averages runs)."""
        check_choice("estimator", estimator, list(self.ixt))
        return self.ixt[estimator].mean(0), self.ity[estimator].mean(0)


def compression(ixt: Any) -> np.ndarray:
    """Per-layer compression ``max_e I(X; T_l)[e] - I(X; T_l)[final]`` (bits, ``>= 0``).

    Args:
        ixt: ``[E, L]`` trajectories (rows in epoch order).

    Returns:
        ``[L]`` drop of each layer's ``I(X; T)`` from its peak to the last epoch.
    """
    arr = _trajectory("ixt", ixt)
    return arr.max(0) - arr[-1]


def dpi_violation(values: Any) -> float:
    """Largest data-processing-inequality violation across consecutive layers (bits).

    For a Markov chain ``X -> T_1 -> ... -> T_L`` both ``I(X; T_l)`` and ``I(T_l; Y)`` must
    not increase with ``l``; estimates can. Returns ``max_{e, l} values[e, l+1] - values[e, l]``
    clipped at 0 (0: no violation).

    Args:
        values: ``[E, L]`` (or ``[L]``) ``I(X; T)`` or ``I(T; Y)`` trajectories.
    """
    if np.ndim(values) == 1:  # one epoch's [L]
        values = values[None] if hasattr(values, "shape") else [values]
    arr = _trajectory("values", values)
    if arr.shape[1] < 2:
        return 0.0
    return float(max(np.diff(arr, axis=1).max(), 0.0))


def _trajectory(name: str, x: Any) -> np.ndarray:
    arr = as_float_array(name, x)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(
            f"{name} must be a non-empty [E, L] array (epochs x layers; one layer's trajectory "
            f"is x[:, None], one epoch x[None, :]), got shape {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite, got NaN or infinity")
    return arr


@grad_enabled("track_information_plane")
def track_information_plane(
    x: torch.Tensor,
    y: torch.Tensor,
    train_idx: Any,
    *,
    hidden: Sequence[int] = (10, 7, 5, 4, 3),
    activation: Activation = "tanh",
    n_runs: int = 3,
    epochs: int = 1000,
    n_records: int = 30,
    lr: float = 1e-3,
    batch_size: int | None = None,
    optimizer: Literal["adam", "sgd"] = "adam",
    n_bins: int = 30,
    kde_noise_variance: float = 0.1,
    kde_samples: int | None = None,
    seed: int = 0,
    callback: Callable[[int, int], None] | None = None,
    show_progress: bool | None = None,
) -> InformationPlane:
    """Train ``n_runs`` networks and record every layer's information-plane position.

    The networks (``in - hidden... - n_classes``, softmax output) are trained with
    cross-entropy on ``x[train_idx]``; at each epoch of :func:`log_epoch_grid` every layer's
    response to *all* inputs ``x`` (X uniform over them, as in the paper) is measured with

    * ``"binning"``: :func:`binned_information`, ``n_bins`` equal bins per unit over
      ``[-1, 1]`` for tanh layers (the paper), over ``[0, max]`` for ReLU layers with ``max``
      the layer's largest activation over all recorded epochs of that run (one fixed grid
      over training), and over ``[-1, 1]`` for the softmax output (as the authors' code bins
      every layer);
    * ``"kde"``: :func:`~neuronkit.interpretability.information.kde_information` with noise
      variance ``kde_noise_variance`` on a fixed random subset of ``kde_samples`` inputs
      (all when ``None``).

    Args:
        x: ``[N, in]`` all inputs (float); the networks are built and trained on its device
            and in its dtype (float32 for half precision).
        y: ``[N]`` labels ``0 .. C - 1`` (int64 or another integer dtype).
        train_idx: indices of the training inputs (the rest are the test set).
        hidden: hidden widths (the paper: 10, 7, 5, 4, 3).
        activation: ``"tanh"`` (the paper) or ``"relu"``.
        n_runs: independent initializations, trained together (:class:`EnsembleMLP`).
        epochs: training epochs; n_records: points of the log grid.
        lr: learning rate; batch_size: minibatch size (``None``: full batch).
        optimizer: ``"adam"`` or ``"sgd"``.
        n_bins: bins per unit; kde_noise_variance: noise variance of the KDE estimator.
        kde_samples: inputs used by the KDE estimator (``None``: all ``N``).
        seed: seeds initialization, minibatch order and the KDE subset.
        callback: called as ``callback(done_epochs, epochs)`` after each recorded epoch.
        show_progress: a progress bar on stderr: ``None`` (default) only on a terminal, or
            ``True`` / ``False``.

    Returns:
        :class:`InformationPlane` with both estimators.
    """
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(
            f"x and y must be torch.Tensors, got {type(x).__name__} and {type(y).__name__}"
        )
    if x.ndim != 2 or not x.is_floating_point() or x.shape[0] < 2:
        raise ValueError(f"x must be a float [N >= 2, in] tensor, got {tuple(x.shape)} {x.dtype}")
    if not torch.isfinite(x).all():
        raise ValueError("x must be finite, got NaN or infinity")
    if y.ndim != 1 or y.shape[0] != x.shape[0] or not integer_dtype(y):
        raise ValueError(
            f"y must be int64 (or another integer dtype) [N] with N = {x.shape[0]}, got "
            f"{tuple(y.shape)} {y.dtype}"
        )
    y = y.long()  # int32 / uint8 labels as the accuracy and the cross-entropy read them
    if int(y.min()) < 0:
        raise ValueError(f"y must hold labels >= 0, got minimum {int(y.min())}")
    idx = np.asarray(train_idx).reshape(-1)
    if idx.size and not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(
            f"train_idx must hold integer indices, got dtype {idx.dtype} (for a boolean mask "
            "pass np.flatnonzero(mask))"
        )
    if idx.size == 0 or idx.min() < 0 or idx.max() >= x.shape[0]:
        raise ValueError(f"train_idx must be non-empty indices into 0..{x.shape[0] - 1}")
    check_choice("activation", activation, list(_ACTIVATIONS))
    check_choice("optimizer", optimizer, ["adam", "sgd"])
    for name, value in (("n_runs", n_runs), ("epochs", epochs), ("n_bins", n_bins)):
        check_number(name, value, ge=1, integer=True)
    check_number("n_records", n_records, ge=2, integer=True)  # log_epoch_grid names it n_points
    hidden = tuple(hidden)
    for i, h in enumerate(hidden):
        check_number(f"hidden[{i}]", h, ge=1, integer=True)
    check_number("lr", lr, gt=0.0)
    check_number("kde_noise_variance", kde_noise_variance, gt=0.0)
    check_seed(seed)
    if batch_size is not None:
        check_number("batch_size", batch_size, ge=1, integer=True)
    if kde_samples is not None:
        check_number("kde_samples", kde_samples, ge=2, integer=True)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")
    n, n_classes = x.shape[0], int(y.max()) + 1
    test_mask = np.ones(n, dtype=bool)
    test_mask[idx] = False
    record = log_epoch_grid(epochs, n_records)
    rng = np.random.default_rng(seed)
    kde_idx = (
        np.arange(n)
        if kde_samples is None or kde_samples >= n
        else np.sort(rng.choice(n, kde_samples, replace=False))
    )
    y_np = y.cpu().numpy()
    # trained in x's dtype (float64 too); half-precision inputs in float32 (exact), as Adam's
    # state underflows in half precision
    dtype = torch.promote_types(x.dtype, torch.float32)
    x = detached_input(x).to(dtype)  # training never reaches the caller's graph or x.grad
    model = EnsembleMLP(n_runs, (x.shape[1], *hidden, n_classes), activation, seed=seed)
    model = model.to(device=x.device, dtype=dtype)
    opt: torch.optim.Optimizer = (
        torch.optim.Adam(model.parameters(), lr=lr)
        if optimizer == "adam"
        else torch.optim.SGD(model.parameters(), lr=lr)
    )
    train_rows = torch.as_tensor(idx, device=x.device)
    x_train, y_train = x[train_rows], y.to(x.device)[train_rows]
    x_train_t = x_train.T.unsqueeze(0).expand(n_runs, -1, -1).contiguous()  # [R, in, N]
    bs = x_train.shape[0] if batch_size is None else min(batch_size, x_train.shape[0])
    gen = torch_generator(seed)
    snapshots: list[list[np.ndarray]] = []  # per record: per layer [R, N, U] float32
    train_acc, test_acc = [], []

    def snapshot() -> None:
        with torch.no_grad():
            reps = model.layers(x)
            reps[-1] = torch.softmax(reps[-1], dim=-1)
            pred = reps[-1].argmax(-1).cpu().numpy()  # [R, N]
        snapshots.append([r.cpu().numpy().astype(np.float32) for r in reps])
        correct = pred == y_np[None, :]
        train_acc.append(correct[:, idx].mean(1))
        test_acc.append(correct[:, test_mask].mean(1) if test_mask.any() else correct.mean(1))

    next_record = 0
    epochs_run = progress(
        range(epochs + 1), show_progress=show_progress, desc="track_information_plane"
    )
    for epoch in epochs_run:
        if epoch == record[next_record]:
            snapshot()
            next_record += 1
            if callback is not None:
                callback(epoch, epochs)
            if next_record == len(record):
                break
        if bs >= x_train.shape[0]:  # full batch: no shuffling needed
            batches: list[torch.Tensor | None] = [None]
        else:
            order = torch.randperm(x_train.shape[0], generator=gen).to(x.device)
            batches = [order[i : i + bs] for i in range(0, x_train.shape[0], bs)]
        for batch in batches:
            xb = x_train_t if batch is None else x_train_t[:, :, batch]
            yb = y_train if batch is None else y_train[batch]
            logits = model._layers_t(xb)[-1]  # [R, C, B]
            targets = yb.unsqueeze(0).expand(n_runs, -1)
            # mean over samples per run, summed over runs: independent per-run gradients
            loss = nn.functional.cross_entropy(logits, targets) * n_runs
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            # drop an outer autocast's cached low-precision copies of the updated weights
            torch.clear_autocast_cache()

    n_layers = len(hidden) + 1
    n_rec = len(snapshots)
    ixt = {k: np.zeros((n_runs, n_rec, n_layers)) for k in ("binning", "kde")}
    ity = {k: np.zeros((n_runs, n_rec, n_layers)) for k in ("binning", "kde")}
    for r in range(n_runs):
        for layer in range(n_layers):
            if layer == n_layers - 1 or activation == "tanh":
                # the softmax too: IDNNs bins every layer over [-1, 1] (about 15 bins across
                # [0, 1], as ibsgd's fixed width 0.07)
                value_range = (-1.0, 1.0)
            else:
                top = max(float(s[layer][r].max()) for s in snapshots)
                value_range = (0.0, top if top > 0 else 1.0)
            for e, snap in enumerate(snapshots):
                t = snap[layer][r]
                ixt["binning"][r, e, layer], ity["binning"][r, e, layer] = binned_information(
                    t, y_np, n_bins=n_bins, value_range=value_range
                )
                ixt["kde"][r, e, layer], ity["kde"][r, e, layer] = kde_information(
                    t[kde_idx], y_np[kde_idx], noise_variance=kde_noise_variance
                )
    p_y = np.bincount(y_np) / n
    p_y = p_y[p_y > 0]
    return InformationPlane(
        epochs=record[:n_rec],
        ixt=ixt,
        ity=ity,
        train_accuracy=np.stack(train_acc, 1),
        test_accuracy=np.stack(test_acc, 1),
        h_y=float(-(p_y * np.log2(p_y)).sum()),
        layer_names=tuple([f"layer {i + 1} ({w})" for i, w in enumerate(hidden)] + ["softmax"]),
        activation=activation,
        settings={
            "sizes": [x.shape[1], *hidden, n_classes],
            "epochs": epochs,
            "lr": lr,
            "batch_size": bs,
            "optimizer": optimizer,
            "n_bins": n_bins,
            "kde_noise_variance": kde_noise_variance,
            "kde_samples": int(kde_idx.size),
            "train_size": int(idx.size),
        },
    )


def plot_information_plane(
    ax: Any,
    ixt: Any,
    ity: Any,
    epochs: Any,
    *,
    layer_names: Sequence[str] | None = None,
    cmap: str = "viridis",
) -> Any:
    """Draw each layer's trajectory in the information plane, points colored by epoch.

    Args:
        ax: a matplotlib Axes.
        ixt, ity: ``[E, L]`` trajectories (bits), e.g. from :meth:`InformationPlane.mean`.
        epochs: ``[E]`` recorded epochs (colors on a log scale).
        layer_names: ``L`` labels for the legend.
        cmap: colormap of the epochs.

    Returns:
        The scatter artist of the last layer (pass it to ``fig.colorbar`` for an epoch bar).
    """
    if not (hasattr(ax, "plot") and hasattr(ax, "scatter")):
        raise TypeError(f"ax must be a matplotlib Axes, got {type(ax).__name__} ({ax!r:.80})")
    a, b = _trajectory("ixt", ixt), _trajectory("ity", ity)
    ep = as_float_array("epochs", epochs).reshape(-1)
    if a.shape != b.shape or ep.shape[0] != a.shape[0]:
        raise ValueError(
            f"ixt, ity must have the same [E, L] shape and epochs [E], got {a.shape}, "
            f"{b.shape} and {ep.shape}"
        )
    if not np.all(np.isfinite(ep)):
        raise ValueError(f"epochs must be finite (the colour scale is logarithmic), got {ep}")
    if isinstance(layer_names, (str, bytes)):
        raise TypeError(
            f"layer_names must be a sequence of names, got the string {layer_names!r:.80}"
        )
    names = (
        list(layer_names) if layer_names is not None else [f"T{i + 1}" for i in range(a.shape[1])]
    )
    if len(names) != a.shape[1]:
        raise ValueError(f"layer_names must have {a.shape[1]} entries, got {len(names)}")
    from matplotlib.colors import LogNorm

    norm = LogNorm(vmin=1.0, vmax=max(float(ep.max()), 2.0))
    artist = None
    for layer in range(a.shape[1]):
        ax.plot(
            a[:, layer], b[:, layer], "-", lw=1.0, alpha=0.6, color=f"C{layer}", label=names[layer]
        )
        artist = ax.scatter(
            a[:, layer],
            b[:, layer],
            c=np.maximum(ep, 1.0),
            cmap=cmap,
            norm=norm,
            s=14,
            zorder=3,
            edgecolors=f"C{layer}",
            linewidths=0.5,
        )
    ax.set_xlabel("I(X;T) [bits]")
    ax.set_ylabel("I(T;Y) [bits]")
    return artist
