"""Captioners ``p(d | E)``: descriptions of a neuron given its exemplar set.

MILAN (Hernandez et al., "Natural Language Descriptions of Deep Visual Features", ICLR 2022)
describes a neuron with a captioner trained on exemplar sets annotated by people
(MILANNOTATIONS). Its architecture (authors' ``milan/encoders.py`` and ``milan/decoders.py``):

* a frozen, pretrained image encoder applied to every exemplar image; its feature maps at
  several depths are pooled with the exemplar's mask, normalised to sum to one (a "pyramid"
  of mask-pooled features), giving one feature vector per exemplar;
* a Show-Attend-and-Tell decoder: an LSTM whose initial state is computed from the mean
  exemplar feature and which, at every step, attends over the ``k`` exemplar features
  (additive attention, sigmoid gate from the hidden state) and reads the previous word.

Here :class:`ExemplarEncoder` is a small CNN (with coordinate channels, so position is
visible) pretrained in-house (:meth:`ExemplarEncoder.pretrain`, dense labelling of a synthetic
scene-parsing task, our stand-in for ImageNet pretraining) and :class:`ExemplarCaptioner` is
the attention-LSTM decoder. Any object with the :class:`Captioner` protocol can replace it;
:class:`HFCaptioner` adapts a Hugging Face image-to-text model (``transformers`` is not needed
to import this module: the adapter only calls the objects it is given).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ParamSpec, Protocol, TypeVar, runtime_checkable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from neuronkit.common import (
    check_adam_dtype,
    check_finite,
    check_floating,
    check_number,
    check_seed,
    check_type,
    detached_input,
    eval_mode,
    forked_manual_seed,
    grad_enabled,
    integer_dtype,
    progress,
    torch_generator,
)

from .vocabulary import Vocabulary

__all__ = [
    "Captioner",
    "ExemplarCaptioner",
    "ExemplarEncoder",
    "HFCaptioner",
    "beam_search",
]

State = tuple[torch.Tensor, ...]


@runtime_checkable
class Captioner(Protocol):
    """What MILAN's decoding needs from a captioner (the plugin protocol).

    ``images [k, C, H, W]`` and ``masks [k, 1, H, W]`` are one neuron's exemplar set.
    """

    def log_prob(
        self, images: torch.Tensor, masks: torch.Tensor, descriptions: Sequence[str]
    ) -> torch.Tensor:
        """``[n]`` log p(d | E) of each description."""
        ...

    def propose(
        self, images: torch.Tensor, masks: torch.Tensor, *, beam_size: int, max_length: int
    ) -> list[tuple[str, float]]:
        """Candidate descriptions with their log p(d | E), best first (e.g. a beam)."""
        ...


def _check_exemplar_set(images: Any, masks: Any, *, batched: bool = False) -> None:
    check_type("images", images, torch.Tensor)
    check_type("masks", masks, torch.Tensor)
    lead = 2 if batched else 1
    layout = "[S, k, C, H, W]" if batched else "[k, C, H, W]"
    if images.ndim != lead + 3 or images.shape[0] == 0 or images.shape[lead - 1] == 0:
        raise ValueError(f"images must be {layout}, got shape {tuple(images.shape)}")
    expected = (*images.shape[:lead], 1, *images.shape[-2:])
    if tuple(masks.shape) != expected:
        raise ValueError(f"masks must have shape {expected}, got {tuple(masks.shape)}")
    for name, t in (("images", images), ("masks", masks)):
        if t.is_complex():
            raise TypeError(f"{name} must be a real-valued tensor, got dtype {t.dtype}")
    check_finite("images", images)
    check_finite("masks", masks)


def _check_descriptions(descriptions: Any) -> list[str]:
    if isinstance(descriptions, str) or not isinstance(descriptions, Sequence):
        raise TypeError(
            f"descriptions must be a sequence of strings, got {type(descriptions).__name__}"
        )
    if not descriptions:
        raise ValueError("descriptions must hold at least one string, got an empty sequence")
    for i, d in enumerate(descriptions):
        check_type(f"descriptions[{i}]", d, str)
    return list(descriptions)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _own_rng(fit: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run a training method with a keyword-only ``seed`` under :func:`forked_manual_seed`: its
    global draws (dropout, new heads' initialisation) follow ``seed``, and the caller's global
    RNG state is restored afterwards (no reseed of an uninitialized CUDA is queued either)."""
    default = inspect.signature(fit).parameters["seed"].default

    @functools.wraps(fit)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        seed: int = kwargs.get("seed", default)  # type: ignore[assignment]  # checked there
        with forked_manual_seed(seed):
            return fit(*args, **kwargs)

    return wrapper


@contextlib.contextmanager
def _training(module: nn.Module) -> Iterator[None]:
    """``module`` in train mode inside the block; every submodule's own train/eval flag is
    restored afterwards, also on an exception (a frozen encoder kept in eval stays in eval)."""
    flags = [(m, m.training) for m in module.modules()]
    module.train()
    try:
        yield
    finally:
        for m, training in flags:
            m.training = training


def _coords(images: torch.Tensor) -> torch.Tensor:
    b, _, h, w = images.shape
    ys = torch.linspace(-1.0, 1.0, h, dtype=images.dtype, device=images.device)[:, None]
    xs = torch.linspace(-1.0, 1.0, w, dtype=images.dtype, device=images.device)[None, :]
    ys, xs = ys.expand(h, w), xs.expand(h, w)
    return torch.stack([ys, xs])[None].expand(b, -1, -1, -1)


class ExemplarEncoder(nn.Module):
    """Masked pyramid features of exemplar images.

    A 3-layer CNN (3x3 convolutions, the last dilated; receptive field 9 pixels) over the
    image plus two coordinate channels; each layer's feature map is averaged under the
    exemplar's mask (normalised to sum to one; an all-zero mask gives zero features) and the
    three pooled vectors are concatenated, as in the paper's ``PyramidConvEncoder``.

    Args:
        in_channels: image channels.
        width: channels per layer; :attr:`feature_size` is ``3 * width``.
        seed: initialise the weights from this seed (default: torch's global RNG).

    Forward: ``images [..., C, H, W]``, ``masks [..., 1, H, W]`` (or ``None``: whole image)
    ``-> [..., 3 * width]``.
    """

    def __init__(self, in_channels: int = 3, width: int = 32, *, seed: int | None = None) -> None:
        super().__init__()
        check_number("in_channels", in_channels, ge=1, integer=True)
        check_number("width", width, ge=1, integer=True)
        self.in_channels = int(in_channels)
        self.width = int(width)
        c0 = in_channels + 2
        with forked_manual_seed(seed):
            self.layers = nn.ModuleList(
                [
                    nn.Sequential(nn.Conv2d(c0, width, 3, padding=1), nn.ReLU()),
                    nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU()),
                    nn.Sequential(nn.Conv2d(width, width, 3, padding=2, dilation=2), nn.ReLU()),
                ]
            )

    @property
    def _dtype(self) -> torch.dtype:
        return next(self.layers.parameters()).dtype

    @property
    def feature_size(self) -> int:
        """Length of one exemplar's feature vector."""
        return 3 * self.width

    def feature_maps(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Each layer's ``[B, width, H, W]`` map for ``images [B, C, H, W]``."""
        check_type("images", images, torch.Tensor)
        if images.ndim != 4 or images.shape[1] != self.in_channels:
            raise ValueError(
                f"images must be [B, {self.in_channels}, H, W], got shape {tuple(images.shape)}"
            )
        x = images.to(self._dtype)  # float32 unless the encoder was converted (.double())
        h = torch.cat([x, _coords(x)], dim=1)
        maps = []
        for layer in self.layers:
            h = layer(h)
            maps.append(h)
        return maps

    def forward(self, images: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        check_type("images", images, torch.Tensor)
        if images.ndim < 4:
            raise ValueError(f"images must be [..., C, H, W], got shape {tuple(images.shape)}")
        lead = images.shape[:-3]
        flat = images.reshape(-1, *images.shape[-3:])
        if masks is None:
            m = torch.ones(
                flat.shape[0], 1, *flat.shape[-2:], device=flat.device, dtype=self._dtype
            )
        else:
            check_type("masks", masks, torch.Tensor)
            if tuple(masks.shape) != (*lead, 1, *images.shape[-2:]):
                raise ValueError(
                    f"masks must have shape {(*lead, 1, *images.shape[-2:])}, "
                    f"got {tuple(masks.shape)}"
                )
            m = masks.reshape(-1, 1, *masks.shape[-2:]).to(self._dtype)
        weights = m / m.sum(dim=(2, 3), keepdim=True).clamp_min(1e-12)
        pooled = [(f * weights).sum(dim=(2, 3)) for f in self.feature_maps(flat)]
        return torch.cat(pooled, dim=1).reshape(*lead, self.feature_size)

    def encode_indexed(
        self,
        images: torch.Tensor,
        indices: torch.Tensor,
        masks: torch.Tensor,
        *,
        batch_size: int = 256,
    ) -> torch.Tensor:
        """Features of exemplar sets that index a shared image collection, without gradients.

        Equal to ``self(images[indices], masks)`` but runs the CNN once per distinct image
        (exemplar sets of many units share images).

        Args:
            images: ``[N, C, H, W]`` the dataset.
            indices: ``[S, k]`` dataset index of each exemplar (e.g. ``Exemplars.indices``).
            masks: ``[S, k, 1, H, W]``.
            batch_size: images per CNN pass.

        Returns:
            ``[S, k, F]``.
        """
        check_type("images", images, torch.Tensor)
        check_type("indices", indices, torch.Tensor)
        check_type("masks", masks, torch.Tensor)
        if images.ndim != 4 or images.shape[1] != self.in_channels:
            raise ValueError(
                f"images must be [N, {self.in_channels}, H, W], got {tuple(images.shape)}"
            )
        if indices.ndim != 2 or not integer_dtype(indices):
            raise ValueError(
                f"indices must be an integer [S, k] tensor, got {tuple(indices.shape)}"
            )
        if indices.numel() and (indices.min() < 0 or indices.max() >= images.shape[0]):
            raise ValueError(f"indices must lie in [0, {images.shape[0]}), got out-of-range values")
        expected = (*indices.shape, 1, *images.shape[-2:])
        if tuple(masks.shape) != expected:
            raise ValueError(f"masks must have shape {expected}, got {tuple(masks.shape)}")
        check_number("batch_size", batch_size, ge=1, integer=True)
        check_finite("images", images)
        check_finite("masks", masks)
        if indices.numel() == 0:  # no exemplar: no CNN pass (torch.cat of no batches fails)
            return torch.zeros(
                *indices.shape, self.feature_size, dtype=self._dtype, device=images.device
            )
        used, inverse = torch.unique(indices.reshape(-1), return_inverse=True)
        with torch.no_grad():
            maps = [
                torch.cat(parts)
                for parts in zip(
                    *(
                        self.feature_maps(images[used[i : i + batch_size]])
                        for i in range(0, len(used), batch_size)
                    ),
                    strict=True,
                )
            ]
            m = masks.reshape(-1, 1, *masks.shape[-2:]).to(self._dtype)
            weights = m / m.sum(dim=(2, 3), keepdim=True).clamp_min(1e-12)
            pooled = [torch.einsum("nchw,nhw->nc", f[inverse], weights[:, 0]) for f in maps]
        return torch.cat(pooled, dim=1).reshape(*indices.shape, self.feature_size)

    @_own_rng
    @grad_enabled("ExemplarEncoder.pretrain")
    def pretrain(
        self,
        images: torch.Tensor,
        pixel_labels: torch.Tensor,
        *,
        epochs: int = 5,
        batch_size: int = 64,
        lr: float = 3e-3,
        seed: int = 0,
        show_progress: bool | None = None,
    ) -> list[float]:
        """Pretrain the CNN on dense labelling (one 1x1-conv head per label map, then dropped).

        Args:
            images: ``[N, C, H, W]``.
            pixel_labels: ``[N, A, H, W]`` integer class per pixel for ``A`` label maps
                (e.g. colour, shape, position of the object covering the pixel; 0 for none).
            epochs, batch_size, lr: Adam training schedule.
            seed: shuffling and head initialisation seed.
            show_progress: a bar over the epochs (``None``: only on a terminal).

        Returns:
            The mean cross-entropy (summed over heads) of each epoch.
        """
        check_type("images", images, torch.Tensor)
        check_type("pixel_labels", pixel_labels, torch.Tensor)
        if images.ndim != 4 or images.shape[1] != self.in_channels or images.shape[0] == 0:
            raise ValueError(
                f"images must be [N, {self.in_channels}, H, W], got {tuple(images.shape)}"
            )
        if pixel_labels.is_floating_point() or pixel_labels.is_complex():
            raise TypeError(f"pixel_labels must be an integer tensor, got {pixel_labels.dtype}")
        if (
            pixel_labels.ndim != 4
            or pixel_labels.shape[0] != images.shape[0]
            or pixel_labels.shape[2:] != images.shape[2:]
        ):
            raise ValueError(
                f"pixel_labels must be [{images.shape[0]}, A, {images.shape[2]}, "
                f"{images.shape[3]}], got {tuple(pixel_labels.shape)}"
            )
        if pixel_labels.shape[1] == 0:
            raise ValueError(
                f"pixel_labels must hold A >= 1 label maps [N, A, H, W], got "
                f"{tuple(pixel_labels.shape)}"
            )
        if (pixel_labels < 0).any():
            raise ValueError("pixel_labels must be >= 0 (class indices)")
        check_finite("images", images)
        for name, v in (("epochs", epochs), ("batch_size", batch_size)):
            check_number(name, v, ge=1, integer=True)
        check_number("lr", lr, gt=0.0)
        check_seed(seed)
        images = detached_input(images)  # training never reaches the caller's graph or .grad
        check_adam_dtype("ExemplarEncoder", self.named_parameters())
        gen = torch_generator(seed)
        n_classes = [int(pixel_labels[:, a].max()) + 1 for a in range(pixel_labels.shape[1])]
        heads = nn.ModuleList([nn.Conv2d(self.feature_size, c, 1) for c in n_classes])
        heads = heads.to(images.device)
        opt = torch.optim.Adam([*self.parameters(), *heads.parameters()], lr=lr)
        history = []
        with _training(self):
            for _ in progress(range(epochs), show_progress=show_progress, desc="pretrain"):
                order = torch.randperm(images.shape[0], generator=gen)
                total, count = 0.0, 0
                for start in range(0, len(order), batch_size):
                    idx = order[start : start + batch_size]
                    feats = torch.cat(self.feature_maps(images[idx]), dim=1)
                    loss = sum(
                        F.cross_entropy(head(feats), pixel_labels[idx, a].long())
                        for a, head in enumerate(heads)
                    )
                    assert isinstance(loss, torch.Tensor)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    # drop an outer autocast's cached low-precision copies of the updated weights
                    torch.clear_autocast_cache()
                    total += float(loss.detach()) * len(idx)
                    count += len(idx)
                history.append(total / count)
        return history


def beam_search(
    step: Callable[[torch.Tensor, State], tuple[torch.Tensor, State]],
    state: State,
    *,
    bos: int,
    eos: int,
    beam_size: int,
    max_length: int,
    banned: Sequence[int] = (),
) -> list[tuple[list[int], float]]:
    """Beam search for the highest log-probability token sequences.

    Args:
        step: ``(tokens [B], state) -> (log-probs [B, V], state)``; every tensor of ``state``
            has the beam on dimension 0.
        state: initial state for one beam (dimension 0 of size 1); the token and score
            tensors live on the device of its first tensor (the CPU for an empty state).
        bos, eos: start and end token ids.
        beam_size: live hypotheses kept per step (>= 1).
        max_length: most words before ``eos`` (``eos`` is forced after them).
        banned: token ids never generated (padding, unknown words, ``bos``).

    Returns:
        Up to ``beam_size`` finished ``(tokens without bos/eos, log p including eos)``, best
        first. Scores are summed log-probabilities (no length normalisation).
    """
    check_number("beam_size", beam_size, ge=1, integer=True)
    check_number("max_length", max_length, ge=1, integer=True)
    check_number("bos", bos, ge=0, integer=True)
    check_number("eos", eos, ge=0, integer=True)
    if isinstance(banned, (str, bytes)) or not isinstance(banned, Iterable):
        raise TypeError(f"banned must be a sequence of token ids, got {banned!r:.80}")
    banned = list(banned)
    for i, b in enumerate(banned):
        check_number(f"banned[{i}]", b, ge=0, integer=True)
    tokens: list[list[int]] = [[]]
    device = state[0].device if len(state) else torch.device("cpu")
    scores = torch.zeros(1, device=device)
    current = torch.tensor([bos], device=device)
    finished: list[tuple[list[int], float]] = []
    for t in range(max_length + 1):
        logp, state = step(current, state)
        logp = logp.detach().float()
        if t == 0:  # the vocabulary size is known from the first step on
            vocab = logp.shape[-1]
            if eos >= vocab:
                raise ValueError(f"eos must be < {vocab} (the step's vocabulary), got {eos}")
            if banned and max(banned) >= vocab:
                raise ValueError(
                    f"banned must hold token ids < {vocab} (the step's vocabulary), got {banned}"
                )
        if t == max_length:
            finished += [(tokens[b], float(scores[b] + logp[b, eos])) for b in range(len(tokens))]
            break
        total = scores[:, None] + logp
        for i in banned:
            total[:, i] = -math.inf
        vocab = total.shape[1]
        values, flat = total.flatten().topk(min(2 * beam_size, total.numel()))
        keep_b: list[int] = []
        keep_w: list[int] = []
        keep_s: list[float] = []
        for v, f in zip(values.tolist(), flat.tolist(), strict=True):
            if not math.isfinite(v):
                break
            b, w = divmod(f, vocab)
            if w == eos:
                finished.append((tokens[b], v))
            elif len(keep_b) < beam_size:
                keep_b.append(b)
                keep_w.append(w)
                keep_s.append(v)
        if not keep_b:
            break
        finished.sort(key=lambda x: -x[1])
        if len(finished) >= beam_size and finished[beam_size - 1][1] >= max(keep_s):
            break  # log-probs only fall: no live beam can enter the top beam_size
        index = torch.tensor(keep_b, device=device)
        state = tuple(s[index] for s in state)
        tokens = [[*tokens[b], w] for b, w in zip(keep_b, keep_w, strict=True)]
        scores = torch.tensor(keep_s, device=device)
        current = torch.tensor(keep_w, device=device)
    finished.sort(key=lambda x: -x[1])
    return finished[:beam_size]


class ExemplarCaptioner(nn.Module):
    """Show-Attend-and-Tell captioner of exemplar sets (MILAN's ``p(d | E)``).

    Args:
        vocabulary: the description vocabulary (shared with the language prior).
        encoder: a pretrained :class:`ExemplarEncoder`; it stays frozen (as in the paper).
        embedding_size: word embedding size.
        hidden_size: LSTM size.
        dropout: dropout before the output layer during training.
        seed: initialise the decoder weights from this seed (default: torch's global RNG).

    Shapes: an exemplar set is ``images [k, C, H, W]`` and ``masks [k, 1, H, W]``; features
    are ``[B, k, F]``.
    """

    def __init__(
        self,
        vocabulary: Vocabulary,
        encoder: ExemplarEncoder,
        *,
        embedding_size: int = 64,
        hidden_size: int = 128,
        dropout: float = 0.3,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        check_type("vocabulary", vocabulary, Vocabulary)
        check_type("encoder", encoder, ExemplarEncoder)
        check_number("embedding_size", embedding_size, ge=1, integer=True)
        check_number("hidden_size", hidden_size, ge=1, integer=True)
        check_number("dropout", dropout, ge=0.0, lt=1.0)
        self.vocabulary = vocabulary
        self.encoder = encoder.requires_grad_(False)
        f = encoder.feature_size
        self.hidden_size = int(hidden_size)
        attn = min(f, hidden_size)
        with forked_manual_seed(seed):
            self.norm = nn.LayerNorm(f)
            self.init_h = nn.Sequential(nn.Linear(f, hidden_size), nn.Tanh())
            self.init_c = nn.Sequential(nn.Linear(f, hidden_size), nn.Tanh())
            self.embedding = nn.Embedding(len(vocabulary), embedding_size)
            self.query = nn.Linear(hidden_size, attn)
            self.key = nn.Linear(f, attn)
            self.score = nn.Linear(attn, 1)
            self.gate = nn.Sequential(nn.Linear(hidden_size, f), nn.Sigmoid())
            self.lstm = nn.LSTMCell(embedding_size + f, hidden_size)
            self.output = nn.Sequential(
                nn.Dropout(dropout), nn.Linear(hidden_size, len(vocabulary))
            )

    def encode(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Exemplar features ``[..., k, F]`` of ``images [..., k, C, H, W]`` (frozen encoder)."""
        with torch.no_grad():
            return self.encoder(images, masks)

    def init_state(self, features: torch.Tensor) -> State:
        """``(h, c)`` from the mean exemplar feature of ``features [B, k, F]``.

        ``features`` here and in :meth:`step` are layer-normalised (``self.norm``) encoder
        features; :meth:`forward`, :meth:`log_prob` and :meth:`propose` normalise them.
        """
        pooled = features.mean(dim=1)
        return self.init_h(pooled), self.init_c(pooled)

    def step(
        self,
        features: torch.Tensor,
        tokens: torch.Tensor,
        state: State,
        keys: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, State]:
        """One decoding step: ``(log p(next word) [B, V], new state)``.

        ``keys`` (``self.key(features)``) may be passed to avoid recomputing it every step.
        """
        h, c = state
        if keys is None:
            keys = self.key(features)
        scores = self.score(torch.tanh(self.query(h)[:, None] + keys))[..., 0]
        attention = torch.softmax(scores, dim=1)
        context = (attention[..., None] * features).sum(dim=1) * self.gate(h)
        h, c = self.lstm(torch.cat([self.embedding(tokens), context], dim=1), (h, c))
        return F.log_softmax(self.output(h), dim=-1), (h, c)

    def forward(self, features: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """Teacher-forced log-probabilities ``[B, T, V]`` of the word after each input.

        Args:
            features: ``[B, k, F]``.
            inputs: ``[B, T]`` token ids starting with ``<bos>``.
        """
        features = self.norm(features)
        state = self.init_state(features)
        keys = self.key(features)
        out = []
        for t in range(inputs.shape[1]):
            logp, state = self.step(features, inputs[:, t], state, keys)
            out.append(logp)
        return torch.stack(out, dim=1)

    def _sequence_log_prob(self, features: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        logp = self(features, ids[:, :-1])
        target = ids[:, 1:]
        picked = logp.gather(2, target[..., None])[..., 0]
        return (picked * (target != self.vocabulary.pad)).sum(dim=1)

    @grad_enabled("ExemplarCaptioner.fit")
    def fit(
        self,
        images: torch.Tensor,
        masks: torch.Tensor,
        annotations: Sequence[Sequence[str]],
        *,
        epochs: int = 30,
        batch_size: int = 64,
        lr: float = 3e-3,
        seed: int = 0,
        show_progress: bool | None = None,
    ) -> list[float]:
        """Train the decoder on annotated exemplar sets (maximum likelihood, teacher forcing).

        Args:
            images: ``[S, k, C, H, W]`` exemplar sets of ``S`` training neurons.
            masks: ``[S, k, 1, H, W]``.
            annotations: ``S`` lists of descriptions (every one is a training target).
            epochs, batch_size, lr: Adam, learning rate decayed linearly to 0, gradient norm
                clipped at 5.
            seed: shuffling / dropout seed.
            show_progress: a bar over the epochs (``None``: only on a terminal).

        Returns:
            Mean per-description negative log-likelihood of each epoch.
        """
        _check_exemplar_set(images, masks, batched=True)
        return self.fit_features(
            self.encode(images, masks),
            annotations,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            show_progress=show_progress,
        )

    @_own_rng
    @grad_enabled("ExemplarCaptioner.fit_features")
    def fit_features(
        self,
        features: torch.Tensor,
        annotations: Sequence[Sequence[str]],
        *,
        epochs: int = 30,
        batch_size: int = 64,
        lr: float = 3e-3,
        seed: int = 0,
        show_progress: bool | None = None,
    ) -> list[float]:
        """:meth:`fit` on precomputed exemplar features ``[S, k, F]`` (e.g. from
        :meth:`ExemplarEncoder.encode_indexed`)."""
        check_type("features", features, torch.Tensor)
        f = self.encoder.feature_size
        if features.ndim != 3 or features.shape[-1] != f or 0 in features.shape[:2]:
            raise ValueError(
                f"features must be [S, k, {f}] with S, k >= 1, got shape {tuple(features.shape)}"
            )
        check_floating("features", features)
        check_finite("features", features)
        if isinstance(annotations, str) or not isinstance(annotations, Sequence):
            raise TypeError(
                f"annotations must be a sequence of lists of strings, got {annotations!r:.60}"
            )
        if len(annotations) != features.shape[0]:
            raise ValueError(
                f"annotations must have one list per exemplar set ({features.shape[0]}), "
                f"got {len(annotations)}"
            )
        for name, v in (("epochs", epochs), ("batch_size", batch_size)):
            check_number(name, v, ge=1, integer=True)
        check_number("lr", lr, gt=0.0)
        check_seed(seed)
        sets, texts = [], []
        for s, group in enumerate(annotations):
            for d in _check_descriptions(group):
                sets.append(s)
                texts.append(d)
        features = detached_input(features)
        set_idx = torch.tensor(sets)
        ids = self.vocabulary.encode(texts).to(features.device)
        gen = torch_generator(seed)
        check_adam_dtype("ExemplarCaptioner", self.named_parameters())
        params = [p for p in self.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=lr)
        steps = epochs * math.ceil(len(texts) / batch_size)
        schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1.0 - i / steps)
        history = []
        with _training(self):
            for _ in progress(range(epochs), show_progress=show_progress, desc="fit captioner"):
                order = torch.randperm(len(texts), generator=gen)
                total = 0.0
                for start in range(0, len(order), batch_size):
                    idx = order[start : start + batch_size]
                    loss = -self._sequence_log_prob(features[set_idx[idx]], ids[idx]).mean()
                    opt.zero_grad()
                    loss.backward()
                    nn.utils.clip_grad_norm_(params, 5.0)
                    opt.step()
                    torch.clear_autocast_cache()
                    schedule.step()
                    total += float(loss.detach()) * len(idx)
                history.append(total / len(texts))
        return history

    def log_prob(
        self, images: torch.Tensor, masks: torch.Tensor, descriptions: Sequence[str]
    ) -> torch.Tensor:
        """``[n]`` log p(d | E) of each description (including ``<eos>``), dropout off."""
        _check_exemplar_set(images, masks)
        texts = _check_descriptions(descriptions)
        with eval_mode(self), torch.no_grad():  # every submodule's own mode restored after
            features = self.encode(images[None], masks[None]).expand(len(texts), -1, -1)
            ids = self.vocabulary.encode(texts).to(features.device)
            return self._sequence_log_prob(features, ids)

    def propose(
        self,
        images: torch.Tensor,
        masks: torch.Tensor,
        *,
        beam_size: int = 20,
        max_length: int = 8,
    ) -> list[tuple[str, float]]:
        """Beam-search candidates ``(description, log p(d | E))``, best first."""
        _check_exemplar_set(images, masks)
        v = self.vocabulary
        with eval_mode(self), torch.no_grad():  # every submodule's own mode restored after
            features = self.norm(self.encode(images[None], masks[None]))
            keys = self.key(features)

            def step(tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
                n = len(tokens)
                return self.step(features.expand(n, -1, -1), tokens, state, keys.expand(n, -1, -1))

            beams = beam_search(
                step,
                self.init_state(features),
                bos=v.bos,
                eos=v.eos,
                beam_size=beam_size,
                max_length=max_length,
                banned=(v.pad, v.bos, v.unk),
            )
        return [(v.decode(tokens), score) for tokens, score in beams]


class HFCaptioner:
    """Adapter of a Hugging Face image-to-text model to the :class:`Captioner` protocol.

    The model captions single images; an exemplar set's likelihood is the mean over its
    exemplars of ``log p(d | image_j)`` (a normalised product of per-exemplar experts), each
    exemplar shown with the region outside its mask dimmed to ``highlight`` of its intensity
    (MILAN's annotators saw the same kind of highlighted images). Candidates come from beam
    search on every exemplar (``model.generate``) plus any fixed ``candidates``, rescored on
    the whole set.

    Args:
        model: an encoder-decoder captioning model called as ``model(pixel_values=...,
            labels=...)`` whose output ``.logits [B, T, V]`` are aligned with ``labels``
            (``VisionEncoderDecoderModel`` and similar), with a ``generate`` method.
        tokenizer: its tokenizer (``__call__`` and ``batch_decode``).
        image_processor: optional; called as ``image_processor(images=[H, W, C] uint8 arrays,
            return_tensors="pt")`` to build ``pixel_values``; by default the highlighted
            ``[k, C, H, W]`` tensor is passed as is.
        highlight: intensity kept outside the mask, in ``[0, 1]``.
        candidates: descriptions always scored in :meth:`propose`.

    Images are floating-point, with values in ``[0, 1]``; images and masks are on the model's
    device (pixel values and token ids are moved there).
    No weights are downloaded: load the model yourself (``from_pretrained`` from a local
    folder or your cache) and pass it in.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        image_processor: Any = None,
        highlight: float = 0.3,
        candidates: Sequence[str] = (),
    ) -> None:
        if not callable(model):
            raise TypeError(f"model must be a callable Hugging Face model, got {type(model)}")
        if not callable(tokenizer):
            raise TypeError(f"tokenizer must be a callable tokenizer, got {type(tokenizer)}")
        check_number("highlight", highlight, ge=0.0, le=1.0)
        self.model = model
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.highlight = float(highlight)
        if isinstance(candidates, str) or not isinstance(candidates, Sequence):
            raise TypeError(  # a str would give one candidate per character
                f"candidates must be a sequence of strings, got {type(candidates).__name__} "
                f"({candidates!r:.80})"
            )
        self.candidates = list(candidates)
        for i, c in enumerate(self.candidates):
            check_type(f"candidates[{i}]", c, str)

    def pixel_values(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Highlighted exemplars, run through the image processor if one was given."""
        _check_exemplar_set(images, masks)
        if not images.is_floating_point():  # uint8 0..255 would saturate at the clamp to [0, 1]
            raise TypeError(
                f"images must be a floating-point tensor with values in [0, 1], got dtype "
                f"{images.dtype}"
            )
        shown = images.float() * (self.highlight + (1.0 - self.highlight) * masks.float())
        if self.image_processor is None:
            return shown
        arrays = [
            (img.permute(1, 2, 0).clamp(0, 1).cpu().numpy() * 255).astype(np.uint8) for img in shown
        ]
        out = self.image_processor(images=arrays, return_tensors="pt")
        values = out["pixel_values"] if isinstance(out, dict) else out.pixel_values
        return torch.as_tensor(values).to(images.device)

    def log_prob(
        self, images: torch.Tensor, masks: torch.Tensor, descriptions: Sequence[str]
    ) -> torch.Tensor:
        """``[n]`` mean over exemplars of log p(d | exemplar)."""
        texts = _check_descriptions(descriptions)
        pixels = self.pixel_values(images, masks)
        k = pixels.shape[0]
        enc = self.tokenizer(texts, padding=True, return_tensors="pt")
        ids = torch.as_tensor(enc["input_ids"]).to(pixels.device)
        keep = torch.as_tensor(enc["attention_mask"]).to(pixels.device).bool()
        labels = ids.masked_fill(~keep, -100)
        n = labels.shape[0]
        with torch.no_grad():
            out = self.model(
                pixel_values=pixels.repeat_interleave(n, dim=0), labels=labels.repeat(k, 1)
            )
        logp = torch.log_softmax(torch.as_tensor(out.logits).float(), dim=-1)
        lab = labels.repeat(k, 1)
        picked = logp.gather(2, lab.clamp_min(0)[..., None])[..., 0] * (lab != -100)
        return picked.sum(dim=1).reshape(k, n).mean(dim=0)

    def propose(
        self, images: torch.Tensor, masks: torch.Tensor, *, beam_size: int = 5, max_length: int = 8
    ) -> list[tuple[str, float]]:
        """Beam candidates of every exemplar and the fixed candidates, rescored on the set."""
        check_number("beam_size", beam_size, ge=1, integer=True)
        check_number("max_length", max_length, ge=1, integer=True)
        pixels = self.pixel_values(images, masks)
        with torch.no_grad():
            generated = self.model.generate(
                pixel_values=pixels,
                num_beams=beam_size,
                num_return_sequences=beam_size,
                max_new_tokens=max_length,
            )
        texts = [
            t.strip() for t in self.tokenizer.batch_decode(generated, skip_special_tokens=True)
        ]
        unique = list(dict.fromkeys([t for t in texts if t] + self.candidates))
        if not unique:
            return []
        scores = self.log_prob(images, masks, unique)
        ranked = sorted(zip(unique, scores.tolist(), strict=True), key=lambda x: -x[1])
        return ranked
