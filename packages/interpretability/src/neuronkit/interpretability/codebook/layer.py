"""The codebook bottleneck of Tamkin, Taufeeque & Goodman, "Codebook Features: Sparse and
Discrete Interpretability for Neural Networks" (2023), Section 2.

A codebook layer replaces an activation vector ``a`` (for a transformer, the output of an
attention or MLP block at one token) by the mean (or the sum) of the ``k`` codebook vectors
most cosine-similar to it::

    ids = top-k_i  cos(a, c_i)          output = mean_{i in ids} c_i

The choice is discrete, so gradients pass straight through to ``a`` (the straight-through
estimator), and the chosen codes receive the gradient of the task loss through the output.
The codebook is also pulled towards the activations it replaces by a reconstruction loss
``|| a - output ||^2`` whose gradient reaches only the codebook (the reference code's
"aeloss"); :meth:`CodebookLayer.reconstruction_loss` returns it for the last forward call.
Codes that were not chosen for a while ("dead codes") are re-initialised to random recent
activations plus a little noise (:meth:`CodebookLayer.replace_dead_codes`). With ``groups``,
the vector is split into equal chunks snapped by separate codebooks, computed together: the
paper's per-head attention codebooks, one per head on the concatenated head outputs.

For interpretation the layer records the chosen codes (:meth:`CodebookLayer.record`) and can
force codes on (:meth:`CodebookLayer.force`): the forced codes replace the chosen ones, at all
positions or at chosen sequence positions, so the network computes with them downstream.
"""

from __future__ import annotations

import base64
import contextlib
import numbers
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from neuronkit.common import (
    check_choice,
    check_finite,
    check_floating,
    check_number,
    check_seed,
    check_type,
    integer_dtype,
    values_hidden,
)

__all__ = ["CodebookLayer", "codebook_lookup", "cosine_topk"]

_REDUCTIONS = ("mean", "sum")


def cosine_topk(
    x: torch.Tensor, codebook: torch.Tensor, k: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` codes most cosine-similar to each vector.

    Args:
        x: ``[..., D]`` activations.
        codebook: ``[C, D]`` code vectors.
        k: codes per vector, ``1 <= k <= C``.

    Returns:
        ``(ids, similarity)``: ``[..., k]`` long code indices and ``[..., k]`` their cosine
        similarities, most similar first. A zero vector has similarity 0 to every code.
    """
    check_type("x", x, torch.Tensor)
    check_type("codebook", codebook, torch.Tensor)
    if codebook.ndim != 2:
        raise ValueError(
            f"codebook must have 2 dimensions [C, D], got shape {tuple(codebook.shape)}"
        )
    if x.ndim < 1 or x.shape[-1] != codebook.shape[1]:
        raise ValueError(
            f"x must have shape [..., {codebook.shape[1]}] to match the codebook, "
            f"got {tuple(x.shape)}"
        )
    check_number("k", k, ge=1, le=codebook.shape[0], integer=True)
    for name, t in (("x", x), ("codebook", codebook)):
        check_floating(name, t)
    if x.dtype != codebook.dtype and not torch.is_autocast_enabled(x.device.type):
        raise TypeError(f"x must have the codebook's dtype {codebook.dtype}, got {x.dtype}")
    xn = torch.nn.functional.normalize(x, dim=-1)
    cn = torch.nn.functional.normalize(codebook, dim=-1)
    sim = xn @ cn.T
    values, ids = sim.topk(k, dim=-1)
    return ids, values


def codebook_lookup(
    codebook: torch.Tensor, ids: torch.Tensor, reduce: str = "mean"
) -> torch.Tensor:
    """Combine chosen codes: ``[C, D]`` codebook, ``[..., k]`` ids -> ``[..., D]``.

    ``reduce="mean"`` (the paper) averages the ``k`` codes, ``"sum"`` adds them. An id of -1
    contributes a zero vector (a blocked code); the mean still divides by ``k``.
    """
    check_type("codebook", codebook, torch.Tensor)
    check_type("ids", ids, torch.Tensor)
    check_choice("reduce", reduce, _REDUCTIONS)
    if codebook.ndim != 2:
        raise ValueError(f"codebook must be [C, D], got shape {tuple(codebook.shape)}")
    check_floating("codebook", codebook)
    if not integer_dtype(ids):
        raise TypeError(f"ids must be an integer tensor of code indices, got dtype {ids.dtype}")
    if ids.ndim == 0 or ids.shape[-1] == 0:
        raise ValueError(f"ids must be [..., k] with k >= 1, got shape {tuple(ids.shape)}")
    if ids.numel() and (int(ids.min()) < -1 or int(ids.max()) >= codebook.shape[0]):
        raise ValueError(
            f"ids must lie in [-1, {codebook.shape[0] - 1}] (-1: a blocked code), got range "
            f"[{int(ids.min())}, {int(ids.max())}]"
        )
    return _combine_codes(codebook, ids.long(), reduce)


def _combine_codes(codebook: torch.Tensor, ids: torch.Tensor, reduce: str) -> torch.Tensor:
    """:func:`codebook_lookup` without the checks (for ids made here, valid by construction)."""
    blocked = ids < 0
    vecs = torch.nn.functional.embedding(ids.clamp_min(0), codebook)
    if values_hidden(ids) or bool(blocked.any()):  # traced: mask unconditionally
        vecs = vecs.masked_fill(blocked[..., None], 0.0)
    out = vecs.sum(-2)
    return out / ids.shape[-1] if reduce == "mean" else out


class _GroupLayerNorm(nn.Module):
    """Layer norm over the last axis of ``[..., G, d]`` with its own affine weights per group
    (``G`` independent ``nn.LayerNorm(d)``, one per group codebook)."""

    def __init__(self, groups: int, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(groups, dim))
        self.bias = nn.Parameter(torch.zeros(groups, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.nn.functional.layer_norm(x, x.shape[-1:], eps=self.eps)
        return y * self.weight + self.bias


def _group_topk(a: torch.Tensor, codebook: torch.Tensor, k: int) -> torch.Tensor:
    """``[..., G, d]`` vectors, ``[G, C, d]`` codebooks -> ``[..., G, k]`` ids of the ``k`` codes
    of each group's own codebook most cosine-similar to that group's vector.

    Only the codes are normalized: dividing a vector by its norm does not change which codes
    rank first, so the ranking is the cosine ranking.
    """
    groups, _, dim = codebook.shape
    lead = a.shape[:-2]
    cn = torch.nn.functional.normalize(codebook, dim=-1)
    flat = a.reshape(-1, groups, dim).transpose(0, 1)  # [G, N, d]
    sim = torch.bmm(flat, cn.transpose(1, 2))  # [G, N, C]
    ids = sim.topk(k, dim=-1).indices  # [G, N, k]
    return ids.transpose(0, 1).reshape(*lead, groups, k)


class CodebookLayer(nn.Module):
    """A codebook bottleneck: ``[..., D] -> [..., D]``.

    Args:
        dim: activation size ``D``.
        num_codes: codebook size ``C`` (the paper uses far more codes than features, e.g. 1000
            codes for a 128-wide TokFSM model).
        k: codes per activation vector (the paper's ``k``; 1 for TokFSM).
        groups: split ``D`` into this many equal chunks, each snapped by its own codebook of
            ``num_codes`` codes (with its own layer norm). This is the paper's per-head
            attention codebook: applied to the concatenated head outputs before the attention's
            output projection with ``groups`` = number of heads, every head gets its own
            codebook (the reference code's "group" codebooks at "attn_preproj").
        reduce: ``"mean"`` (the paper) or ``"sum"`` of the chosen codes.
        layer_norm: apply a ``LayerNorm`` to the activations before snapping (as the reference
            implementation does); the codes then live in the normalized space and the
            reconstruction loss compares them with the normalized activations.
        replace_after_steps: during training, every this many forward calls replace the codes
            not chosen since the last replacement (0 disables it).
        replace_rho: relative size of the noise added to a replaced code
            (``new = a + rho * |a| * n``, ``n ~ N(0, I)``).
        seed: seeds the code initialisation and dead-code replacement.
        sync_ranks: keep the replicas in step across the ranks of a ``torch.distributed``
            process group (below); ``False`` keeps the bookkeeping local to each rank (a
            layer trained on one rank of a larger job, or ranks that call it unequally).

    Attributes:
        codebook: ``nn.Parameter`` ``[C, D]``; with ``groups = G > 1``, ``[G, C, D / G]``.
        counts: ``[C]`` long buffer (``[G, C]`` with groups): how many activation vectors chose
            each code since the last :meth:`reset_counts` (or dead-code replacement).
        last_codes: ids chosen in the last forward call (after forcing), or None: ``[..., k]``,
            or ``[..., G, k]`` with groups (the ids of group ``g`` index its own codebook).

    Data-parallel training (``DistributedDataParallel``): while ``torch.distributed`` has a
    process group of more than one rank (and ``sync_ranks``), a forward call in training mode
    sums the codes chosen on all ranks into ``counts`` (an all-reduce), so every rank sees the
    same, global usage and replaces the same dead codes, and after a replacement every rank
    takes rank 0's new code vectors (a broadcast of the codebook). The replicas thus stay
    identical (DDP itself only averages gradients, and overwrites the other ranks' buffers with
    rank 0's). Such a forward call is a collective: every rank must make it, equally often, as
    under DDP. In eval mode, with ``sync_ranks=False``, and in direct calls of
    :meth:`replace_dead_codes`, the bookkeeping stays local to the rank.

    Recomputing the forward call, as reentrant ``torch.utils.checkpoint``
    (``use_reentrant=True``) does in the backward pass, repeats the bookkeeping: the vectors
    are counted twice and the replacement schedule advances twice (and, distributed, the
    collectives run again during the backward pass). Do not checkpoint the layer that way.
    """

    counts: torch.Tensor
    _group_offsets: torch.Tensor

    def __init__(
        self,
        dim: int,
        num_codes: int,
        *,
        k: int = 1,
        groups: int = 1,
        reduce: str = "mean",
        layer_norm: bool = True,
        replace_after_steps: int = 0,
        replace_rho: float = 1e-4,
        seed: int = 0,
        sync_ranks: bool = True,
    ) -> None:
        super().__init__()
        check_number("dim", dim, ge=1, integer=True)
        check_number("num_codes", num_codes, ge=1, integer=True)
        check_number("k", k, ge=1, le=num_codes, integer=True)
        check_number("groups", groups, ge=1, le=dim, integer=True)
        if dim % groups:
            raise ValueError(f"groups must divide dim={dim}, got {groups}")
        check_choice("reduce", reduce, _REDUCTIONS)
        check_type("layer_norm", layer_norm, bool)
        check_number("replace_after_steps", replace_after_steps, ge=0, integer=True)
        check_number("replace_rho", replace_rho, ge=0)
        check_seed(seed)
        check_type("sync_ranks", sync_ranks, bool)
        self.sync_ranks = sync_ranks
        self.dim = int(dim)
        self.num_codes = int(num_codes)
        self.k = int(k)
        self.groups = int(groups)
        self.group_dim = self.dim // self.groups
        self.reduce = reduce
        self.replace_after_steps = int(replace_after_steps)
        self.replace_rho = float(replace_rho)
        self._generator = torch.Generator().manual_seed(int(seed))
        self.norm: nn.Module
        if self.groups == 1:
            init = torch.randn(num_codes, dim, generator=self._generator)
            self.norm = nn.LayerNorm(dim) if layer_norm else nn.Identity()
            counts = torch.zeros(num_codes, dtype=torch.long)
        else:
            init = torch.randn(self.groups, num_codes, self.group_dim, generator=self._generator)
            self.norm = (
                _GroupLayerNorm(self.groups, self.group_dim) if layer_norm else nn.Identity()
            )
            counts = torch.zeros(self.groups, num_codes, dtype=torch.long)
        self.codebook = nn.Parameter(init)
        self.register_buffer("counts", counts)
        offsets = torch.arange(self.groups)[:, None] * self.num_codes
        self.register_buffer("_group_offsets", offsets, persistent=False)
        self.enabled = True
        self.last_codes: torch.Tensor | None = None
        self._last_input: torch.Tensor | None = None
        self._last_output: torch.Tensor | None = None
        self._steps = 0
        self._records: list[list[torch.Tensor]] = []
        self._forced: list[tuple[torch.Tensor, torch.Tensor | None, bool]] = []
        self.replaced_total = 0

    def __getstate__(self) -> dict[str, Any]:
        """The state ``copy.deepcopy`` and pickle copy: all of it but what belongs to the last
        forward call or to open ``with`` blocks of this layer. The last call's normalized input
        and codes (kept for :meth:`reconstruction_loss`) are tensors of that call's autograd
        graph, which cannot be deep-copied; a copy's loss is zero until its first forward call.
        The lists of open :meth:`record` and :meth:`force` blocks are only cleared on this
        layer when the blocks end, so a copy starts with none."""
        state: dict[str, Any] = super().__getstate__()
        state.update(_last_input=None, _last_output=None, _records=[], _forced=[])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A layer pickled before 0.5.30 has no ``sync_ranks``: it synced, as the default does."""
        state.setdefault("sync_ranks", True)
        super().__setstate__(state)

    def get_extra_state(self) -> dict[str, Any]:
        """The training bookkeeping kept in the state dict (key ``_extra_state``) beside
        ``codebook`` and ``counts``: the forward calls since the last dead-code replacement,
        the replacements so far and the replacement generator's state, so that a layer loaded
        from a checkpoint resumes the replacement schedule (and its random draws) where the
        saved one stopped, not from the start. JSON-serializable (the generator's state as
        base64), as ``neuronkit.common.save_weights`` needs."""
        generator = base64.b64encode(self._generator.get_state().numpy().tobytes()).decode()
        return {"steps": self._steps, "replaced_total": self.replaced_total, "generator": generator}

    def set_extra_state(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise TypeError(f"extra state must be a dict, got {type(state).__name__}")
        self._steps = int(state["steps"])
        self.replaced_total = int(state["replaced_total"])
        raw = bytearray(base64.b64decode(state["generator"]))
        self._generator.set_state(torch.frombuffer(raw, dtype=torch.uint8).clone())

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # a state dict saved before the bookkeeping was part of it still loads strictly (the
        # layer keeps its own bookkeeping)
        state_dict.setdefault(prefix + "_extra_state", self.get_extra_state())
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def extra_repr(self) -> str:
        groups = f", groups={self.groups}" if self.groups > 1 else ""
        local = "" if self.sync_ranks else ", sync_ranks=False"
        return (
            f"dim={self.dim}, num_codes={self.num_codes}, k={self.k}{groups}, "
            f"reduce={self.reduce!r}, replace_after_steps={self.replace_after_steps}{local}"
        )

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Snap ``x`` (``[..., D]``; ``[B, T, D]`` for sequences) to its top-``k`` codes."""
        check_type("x", x, torch.Tensor)
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(f"x must have shape [..., {self.dim}], got {tuple(x.shape)}")
        if not self.enabled:
            return x
        if x.dtype != self.codebook.dtype:
            if not (x.is_floating_point() and torch.is_autocast_enabled(x.device.type)):
                raise TypeError(
                    f"x must have the codebook's dtype {self.codebook.dtype}, got {x.dtype} "
                    "(cast the layer with .to(dtype) or the input)"
                )
            x = x.to(self.codebook.dtype)  # under autocast: snapped in the codebook's precision
        grouped = self.groups > 1
        if grouped:
            a = self.norm(x.reshape(*x.shape[:-1], self.groups, self.group_dim))
            with torch.no_grad():
                ids = _group_topk(a.detach(), self.codebook.detach(), self.k)
        else:
            a = self.norm(x)
            with torch.no_grad():
                ids, _ = cosine_topk(a.detach(), self.codebook.detach(), self.k)
        forced = bool(self._forced)
        if forced:
            flat = ids.reshape(*ids.shape[:-2], -1) if grouped else ids
            marker = torch.full_like(flat, -2)  # forced slots get a code id or -1 (blocked)
            for codes, positions, per_sequence in self._forced:
                flat = _apply_forced(flat, codes, positions, per_sequence)
                marker = _apply_forced(marker, codes, positions, per_sequence)
            ids = flat.reshape(ids.shape)
            forced_at = (marker != -2).any(-1)  # [...] without the feature axes
        codes_out = self._lookup(ids, forced)
        # straight-through: the value is the codes, d output / d a is the identity
        out = codes_out + a - a.detach()
        if forced:
            # forced places: the codes alone (a new tensor, so in-place ops downstream leave
            # _last_output alone); elsewhere the straight-through output
            at = forced_at.reshape(*forced_at.shape, *([1] * (out.ndim - forced_at.ndim)))
            out = torch.where(at, codes_out, out)
        if grouped:
            out = out.reshape(x.shape)
            a = a.reshape(x.shape)
            codes_out = codes_out.reshape(x.shape)
        if not _is_exporting():  # an exported program keeps no module state
            self.last_codes = ids.detach()
            self._last_input = a.detach()  # the loss reads it detached: no upstream graph kept
            self._last_output = codes_out
            for record in self._records:
                record.append(ids.detach().cpu())
        sync = self.training and self.sync_ranks and _distributed()
        with torch.no_grad():
            step_counts = self._count(ids, forced)
            if sync:  # global statistics: every rank adds the codes chosen on all ranks
                dist.all_reduce(step_counts)
            self.counts += step_counts
        if self.training and self.replace_after_steps > 0:
            self._steps += 1
            if self._steps >= self.replace_after_steps:
                self._steps = 0
                replaced = self.replace_dead_codes(a.detach())
                if sync and replaced:  # the same dead codes on every rank: take rank 0's
                    dist.broadcast(self.codebook.data, src=0)  # new vectors everywhere
        return out

    def _offsets(self, device: torch.device) -> torch.Tensor:
        """``[G, 1]`` offset of each group's codes in the flattened ``[G * C, d]`` codebook."""
        if self._group_offsets.device != device:
            return self._group_offsets.to(device)
        return self._group_offsets

    def _lookup(self, ids: torch.Tensor, forced: bool) -> torch.Tensor:
        table: torch.Tensor = self.codebook
        if self.groups > 1:
            if forced:  # forced ids may hold -1 (blocked slots): keep them -1
                ids = torch.where(ids >= 0, ids + self._offsets(ids.device), -1)
            else:
                ids = ids + self._offsets(ids.device)
            table = table.reshape(self.groups * self.num_codes, self.group_dim)
        if not forced and self.k == 1:
            # top-k ids are never blocked, and one code's mean (or sum) is the code itself:
            # the same values as codebook_lookup, with fewer operations
            return torch.nn.functional.embedding(ids[..., 0], table)
        return _combine_codes(table, ids, self.reduce)

    def _count(self, ids: torch.Tensor, forced: bool) -> torch.Tensor:
        valid = ids >= 0 if forced else None  # top-k ids are never blocked
        if self.groups > 1:
            ids = ids + self._offsets(ids.device)
        flat = ids[valid] if valid is not None else ids.flatten()
        counts = torch.bincount(flat.cpu(), minlength=self.groups * self.num_codes)
        return counts.reshape(self.counts.shape).to(self.counts.device)

    def reconstruction_loss(self) -> torch.Tensor:
        """Mean over vectors of ``|| a - codes ||^2`` of the last forward call.

        ``a`` (the normalized input) is detached, so this trains only the codebook (the
        reference's "aeloss"). With groups the squared error is summed over all groups (the
        sum of the group codebooks' losses). Returns a zero scalar if nothing was run yet.
        """
        if self._last_input is None or self._last_output is None:
            return self.codebook.sum() * 0.0
        diff = self._last_output - self._last_input
        return diff.pow(2).sum(-1).mean()

    # ------------------------------------------------------------------ codes bookkeeping
    @torch.no_grad()
    def initialize_from(self, x: torch.Tensor) -> None:
        """Set the codebook to ``num_codes`` activation vectors drawn from ``x`` ``[..., D]``
        (with replacement when there are fewer vectors than codes), after the layer norm; with
        groups, each group's codebook draws from that group's chunk.
        """
        check_type("x", x, torch.Tensor)
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(f"x must have shape [..., {self.dim}], got {tuple(x.shape)}")
        check_floating("x", x)
        check_finite("x", x)
        flat = x.detach().reshape(-1, self.dim).to(self.codebook.device)
        if flat.shape[0] == 0:
            raise ValueError("x must hold at least one vector, got none")
        if self.groups == 1:
            self.codebook.data.copy_(self._sample(self.norm(flat), self.num_codes))
        else:
            normed = self.norm(flat.reshape(-1, self.groups, self.group_dim))
            for g in range(self.groups):
                self.codebook.data[g] = self._sample(normed[:, g], self.num_codes)
        self.counts.zero_()

    @torch.no_grad()
    def replace_dead_codes(self, x: torch.Tensor) -> int:
        """Re-initialise codes never chosen since the last reset to vectors of ``x``.

        Args:
            x: ``[..., D]`` normalized activations to draw replacements from (the layer passes
                its current batch during training); with groups, group ``g`` draws from chunk
                ``g``.

        Returns:
            how many codes were replaced (over all groups). Counts are reset afterwards.
        """
        check_type("x", x, torch.Tensor)
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(f"x must have shape [..., {self.dim}], got {tuple(x.shape)}")
        check_floating("x", x)
        flat = x.detach().reshape(-1, self.dim).to(self.codebook.device)
        if flat.shape[0] == 0:
            raise ValueError("x must hold at least one vector to draw replacements from, got none")
        n_total = 0
        if self.groups == 1:
            dead = torch.nonzero(self.counts == 0).flatten()
            n_total = int(dead.numel())
            if n_total:
                self.codebook.data[dead.to(self.codebook.device)] = self._sample(flat, n_total)
        else:
            chunks = flat.reshape(-1, self.groups, self.group_dim)
            for g in range(self.groups):
                dead = torch.nonzero(self.counts[g] == 0).flatten()
                n = int(dead.numel())
                if n:
                    self.codebook.data[g, dead.to(self.codebook.device)] = self._sample(
                        chunks[:, g], n
                    )
                n_total += n
        self.counts.zero_()
        self.replaced_total += n_total
        return n_total

    def _sample(self, flat: torch.Tensor, n: int) -> torch.Tensor:
        m = flat.shape[0]
        if m >= n:
            idx = torch.randperm(m, generator=self._generator)[:n]
        else:
            idx = torch.randint(0, m, (n,), generator=self._generator)
        new = flat[idx.to(flat.device)].clone()
        if self.replace_rho > 0:
            noise = torch.randn(new.shape, generator=self._generator).to(new)
            new = new + self.replace_rho * new.norm(dim=-1, keepdim=True) * noise
        return new

    def reset_counts(self) -> None:
        """Zero the usage counts."""
        self.counts.zero_()

    @property
    def active_codes(self) -> int:
        """How many codes were chosen at least once since the last reset (over all groups)."""
        return int((self.counts > 0).sum())

    # ------------------------------------------------------------------ interpretation hooks
    @contextlib.contextmanager
    def record(self) -> Iterator[list[torch.Tensor]]:
        """Collect the chosen ids of every forward call inside the block.

        Yields a list that receives one ``[..., k]`` (with groups ``[..., G, k]``) long tensor
        (on the CPU) per call.
        """
        store: list[torch.Tensor] = []
        self._records.append(store)
        try:
            yield store
        finally:
            self._records = [r for r in self._records if r is not store]

    @contextlib.contextmanager
    def force(
        self,
        codes: torch.Tensor | Sequence[int] | int,
        positions: Sequence[int] | torch.Tensor | int | None = None,
        *,
        per_sequence: bool = False,
    ) -> Iterator[None]:
        """Activate ``codes`` instead of the chosen ones inside the block.

        Args:
            codes: code ids: an int, ``[k]`` (the same codes everywhere) or ``[B, k]`` (per
                sequence); with groups, ``[G, k]`` or ``[B, G, k]`` (one set of ids per group,
                each indexing its group's codebook). Fewer than ``k`` ids fill the first slots
                and block (zero) the rest, so the output is exactly the forced codes' mean
                when ``len == k``.
            positions: sequence positions (the axis before the feature axis of a ``[B, T, D]``
                input, negative counts from the end) where the codes are forced; ``None``
                forces every position.
            per_sequence: if True, ``positions`` holds one position per sequence (``[B]``: the
                codes are forced at ``positions[b]`` of sequence ``b`` only), as when prompts
                of different lengths are batched.

        The output at forced places is the combination of the forced codes (no
        straight-through term): this is an intervention, used at inference.
        """
        check_type("per_sequence", per_sequence, bool)
        try:
            ids = torch.as_tensor(codes)
        except (TypeError, ValueError, RuntimeError):  # not numbers
            raise TypeError(f"codes must be integer code ids, got {codes!r:.80}") from None
        if ids.numel() and not integer_dtype(ids):  # a float id truncated, a bool read as 0 / 1
            raise TypeError(f"codes must be integer code ids, got dtype {ids.dtype}")
        ids = ids.long()
        if self.groups == 1:
            if ids.ndim == 0:
                ids = ids.reshape(1)
            if ids.ndim not in (1, 2) or ids.shape[-1] < 1 or ids.shape[-1] > self.k:
                raise ValueError(
                    f"codes must be an int, [k] or [B, k] ids with 1 <= k <= {self.k}, got "
                    f"shape {tuple(ids.shape)}"
                )
        elif (
            ids.ndim not in (2, 3)
            or ids.shape[-2] != self.groups
            or ids.shape[-1] < 1
            or ids.shape[-1] > self.k
        ):
            raise ValueError(
                f"codes must be [G, k] or [B, G, k] ids with G = groups = {self.groups} and "
                f"1 <= k <= {self.k}, got shape {tuple(ids.shape)}"
            )
        if bool(((ids < 0) | (ids >= self.num_codes)).any()):
            raise ValueError(f"codes must be ids in [0, {self.num_codes}), got {ids.tolist()}")
        if ids.shape[-1] < self.k:
            pad = torch.full((*ids.shape[:-1], self.k - ids.shape[-1]), -1, dtype=torch.long)
            ids = torch.cat([ids, pad], dim=-1)
        if self.groups > 1:  # [(B,) G, k] -> [(B,) G * k], matching the flattened ids
            ids = ids.reshape(*ids.shape[:-2], -1)
        pos: torch.Tensor | None = None
        if positions is not None:
            pos = _positions(positions)
        elif per_sequence:
            raise ValueError("positions must give one position per sequence when per_sequence")
        entry = (ids, pos, per_sequence)
        self._forced.append(entry)
        try:
            yield
        finally:
            self._forced = [f for f in self._forced if f is not entry]


def _distributed() -> bool:
    """Whether a ``torch.distributed`` default process group of more than one rank is set up
    (the codebook layer then keeps its replicas in step, see :class:`CodebookLayer`)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _is_exporting() -> bool:
    """Whether ``torch.export`` is tracing (``torch.compiler.is_exporting``, torch >= 2.6;
    False before, where the export only warns about the attributes set)."""
    is_exporting = getattr(torch.compiler, "is_exporting", None)
    return bool(is_exporting()) if is_exporting is not None else False


def _positions(positions: Any) -> torch.Tensor:
    """``positions`` as a 1-D long tensor; an int (``np.int64`` too) or a 0-d integer array /
    tensor is one position."""
    values = [positions] if isinstance(positions, numbers.Number) else positions
    try:
        pos = torch.as_tensor(
            values if isinstance(values, (torch.Tensor, np.ndarray)) else list(values)
        )
    except (TypeError, ValueError, RuntimeError):  # not numbers (or not iterable)
        pos = torch.empty(0)
    if pos.ndim == 0:
        pos = pos.reshape(1)
    if pos.ndim != 1 or pos.numel() == 0 or not integer_dtype(pos):
        raise ValueError(
            f"positions must be an int or a non-empty sequence of ints, got {positions!r:.80}"
        )
    return pos.long()


def _apply_forced(
    ids: torch.Tensor,
    codes: torch.Tensor,
    positions: torch.Tensor | None,
    per_sequence: bool = False,
) -> torch.Tensor:
    """Replace ``ids`` ``[..., k]`` by ``codes`` ``[k]`` / ``[B, k]`` at ``positions`` (axis -2);
    with ``per_sequence``, at position ``positions[b]`` of sequence ``b`` only."""
    out = ids.clone()
    codes = codes.to(ids.device)
    if codes.ndim == 2:
        if ids.ndim < 2 or ids.shape[0] != codes.shape[0]:
            raise ValueError(
                f"codes of shape {tuple(codes.shape)} need an input batch of {codes.shape[0]}, got "
                f"ids of shape {tuple(ids.shape)}"
            )
        view = codes.reshape(codes.shape[0], *([1] * (ids.ndim - 2)), codes.shape[1])
    else:
        view = codes
    if positions is None:
        out[...] = view.expand_as(out) if codes.ndim == 2 else codes
        return out
    if ids.ndim < 3:
        raise ValueError(f"positions need a [B, T, D] input, got ids of shape {tuple(ids.shape)}")
    t = ids.shape[-2]
    pos = positions.to(ids.device)
    pos = torch.where(pos < 0, pos + t, pos)
    if per_sequence:
        if ids.ndim != 3 or pos.numel() != ids.shape[0]:
            raise ValueError(
                f"positions must hold one position per sequence ({ids.shape[0]}) of a "
                f"[B, T, D] input, got {pos.numel()} for ids of shape {tuple(ids.shape)}"
            )
        keep = (pos >= 0) & (pos < t)
        rows = torch.arange(ids.shape[0], device=ids.device)[keep]
        vals = codes[keep] if codes.ndim == 2 else codes.expand(int(keep.sum()), -1)
        out[rows, pos[keep]] = vals
        return out
    pos = pos[(pos >= 0) & (pos < t)]
    if pos.numel() == 0:
        return out
    if codes.ndim == 2:
        out[..., pos, :] = view.expand(*out[..., pos, :].shape)
    else:
        out[..., pos, :] = codes
    return out
