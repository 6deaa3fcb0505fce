"""Martingale Posterior Neural Process (MPNP).

Lee, Yun, Nam, Fong & Lee, "Martingale Posterior Neural Processes", ICLR 2023.

The martingale posterior (Fong, Holmes & Walker 2023) replaces prior and likelihood by a
predictive for future data: uncertainty about the data-generating function is the uncertainty
left after imputing the not-yet-seen data from the predictive (predictive resampling). MPNP
equips a conditional NP with such a predictive, implicitly defined by a neural generator, and
uses it as the only source of functional uncertainty (no latent variable):

1. the context pairs are encoded one by one, ``R_c = {r_i = MLP([x_i, y_i])}`` ``[B, n, d]``;
2. a generator draws a set of ``M`` *pseudo contexts* in representation space from noise,
   conditioned on the context: with ``eps_1..eps_M ~ N(0, I_d)``, an induced-set-attention
   block (ISAB, Set Transformer) whose inducing points are the context representations,
   ``H = MAB(R_c, E)``, ``R~ = MAB(E, H)`` ``[B, M, d]`` (equivariant in the pseudo
   contexts, invariant to the order of the contexts);
3. the generated set is appended to the real context and mean-pooled,
   ``r = mean(R_c u R~)``, and decoded by the Gaussian decoder ``p(y | x, r)``;
4. the predictive is the mixture over ``K`` generated sets,
   ``p(y | x, C) ~= (1/K) sum_k p(y | x, C u Z~_k)``.

Training minimizes, per target point (``Y`` are the targets, ``Z~_k`` independent generated
sets):

* ``L_marg  = -log (1/K) sum_k p(Y | X, C u Z~_k)``: the marginal likelihood over generated sets;
* ``L_amort = -log p(Y | X, C)``: the context term, the same NP with the real context only
  (keeps the encoder/decoder an amortized inference map of real data, which the generated data
  must imitate);
* ``L_pseudo = -log (1/K) sum_k p(Y | X, Z~_k)``: the targets predicted from the pseudo contexts
  alone, which makes the generated sets informative about the function, like real data.

``L = L_marg + w_amort L_amort + w_pseudo L_pseudo`` (all weights 1 by default). The number of
pseudo contexts defaults to the number of real contexts.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from neuronkit.common import check_number

from .._utils import check_input_dtype, check_layout, check_positive_int, traced
from .neural_process import (
    GaussianDecoder,
    ProcessPrediction,
    SetEncoder,
    _check_depths,
    _dtype,
    check_sets,
    gaussian_log_prob,
    normal_noise,
    seeded_init,
)

__all__ = [
    "MartingalePosteriorNP",
    "MultiheadAttentionBlock",
    "PseudoContextGenerator",
    "mpnp_losses",
]


class MultiheadAttentionBlock(nn.Module):
    """Set Transformer's multihead attention block MAB(Q, K) (Lee et al., ICML 2019).

    ``O = LN(Q W_q + Attention(Q W_q, K W_k, K W_v))`` (heads concatenated) and
    ``MAB = LN(O + ReLU(O W_o))``; the attention is a plain scaled dot product per head.

    Args:
        dim: feature size (divisible by ``num_heads``); num_heads: attention heads.
    """

    def __init__(self, dim: int, num_heads: int = 4) -> None:
        super().__init__()
        self.dim = check_positive_int("dim", dim)
        self.num_heads = check_positive_int("num_heads", num_heads)
        if self.dim % self.num_heads:
            raise ValueError(f"num_heads must divide dim={self.dim}, got {self.num_heads}")
        self.query = nn.Linear(self.dim, self.dim)
        self.key = nn.Linear(self.dim, self.dim)
        self.value = nn.Linear(self.dim, self.dim)
        self.out = nn.Linear(self.dim, self.dim)
        self.norm1 = nn.LayerNorm(self.dim)
        self.norm2 = nn.LayerNorm(self.dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, -1).transpose(1, 2)  # [B, h, n, d/h]

    def forward(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """``queries [B, Nq, d]`` attend to ``keys [B, Nk, d]`` (the block's dtype); returns
        ``[B, Nq, d]``."""
        dtype, dim = self.query.weight.dtype, self.query.weight.shape[1]
        check_layout("queries", queries, 3, f"[B, Nq, {dim}]", dim, dtype)
        check_layout("keys", keys, 3, f"[B, Nk, {dim}]", self.key.weight.shape[1], dtype)
        if not traced(queries) and not traced(keys) and keys.shape[0] != queries.shape[0]:
            raise ValueError(
                f"keys must have the batch size {queries.shape[0]} of queries, got "
                f"{tuple(keys.shape)}"
            )
        q = self.query(queries)
        qh, kh, vh = self._heads(q), self._heads(self.key(keys)), self._heads(self.value(keys))
        scores = qh @ kh.transpose(-1, -2) / math.sqrt(qh.shape[-1])
        att = (torch.softmax(scores, dim=-1) @ vh).transpose(1, 2).reshape(q.shape)
        o = self.norm1(q + att)
        return self.norm2(o + torch.relu(self.out(o)))


class PseudoContextGenerator(nn.Module):
    """Generator of pseudo-context representations: an ISAB over noise induced by the context.

    ``E ~ N(0, I) [B, M, d]``, ``H = MAB(R_c, E)``, ``R~ = MAB(E, H)``.

    Args:
        dim: representation size ``d``; num_heads: attention heads.
    """

    def __init__(self, dim: int, num_heads: int = 4) -> None:
        super().__init__()
        self.dim = check_positive_int("dim", dim)
        self.induce = MultiheadAttentionBlock(self.dim, num_heads)
        self.output = MultiheadAttentionBlock(self.dim, num_heads)

    def forward(
        self,
        context: torch.Tensor,
        num_pseudo: int,
        num_sets: int = 1,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Draw ``num_sets`` independent pseudo-context sets.

        Args:
            context: context representations ``[B, n, d]``.
            num_pseudo: pseudo contexts per set ``M``; num_sets: ``K``.
            generator: for the noise (None: torch's global RNG), drawn on its device.

        Returns:
            ``[K, B, M, d]``.
        """
        if not isinstance(context, torch.Tensor):
            raise TypeError(f"context must be a torch.Tensor [B, n, d], got {type(context)}")
        if context.ndim != 3:
            raise ValueError(f"context must be a tensor [B, n, d], got {tuple(context.shape)}")
        if context.shape[-1] != self.dim:
            raise ValueError(
                f"context must have last dimension {self.dim}, got {tuple(context.shape)}"
            )
        check_input_dtype("context", context, _dtype(self))
        m = check_positive_int("num_pseudo", num_pseudo)
        k = check_positive_int("num_sets", num_sets)
        b, n, d = context.shape
        noise = normal_noise((k * b, m, d), context, generator)
        ctx = context.unsqueeze(0).expand(k, b, n, d).reshape(k * b, n, d)
        h = self.induce(ctx, noise)
        return self.output(noise, h).view(k, b, m, d)


def _log_mean_exp(x: torch.Tensor, dim: int = 0) -> torch.Tensor:
    return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])


class MartingalePosteriorNP(nn.Module):
    """Martingale Posterior Neural Process (Lee et al., ICLR 2023); see the module docstring.

    Args:
        x_dim, y_dim: input and output dimensions.
        hidden: width of every layer and representation size ``d``.
        encoder_depth, decoder_depth: linear layers of the encoder and decoder MLPs.
        num_heads: attention heads of the generator.
        num_pseudo: pseudo contexts per generated set (None: as many as real contexts).
        num_train_samples: generated sets ``K`` per task in the training loss.
        amortized_weight, pseudo_weight: weights of ``L_amort`` and ``L_pseudo`` (``>= 0``).
        min_std: lower bound of the predictive standard deviation.
        seed: int or ``torch.Generator`` for the initialization.
    """

    def __init__(
        self,
        x_dim: int = 1,
        y_dim: int = 1,
        *,
        hidden: int = 128,
        encoder_depth: int = 3,
        decoder_depth: int = 3,
        num_heads: int = 4,
        num_pseudo: int | None = None,
        num_train_samples: int = 5,
        amortized_weight: float = 1.0,
        pseudo_weight: float = 1.0,
        min_std: float = 0.1,
        seed: int | torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if num_pseudo is not None:
            num_pseudo = check_positive_int("num_pseudo", num_pseudo)
        self.num_pseudo = num_pseudo
        self.num_train_samples = check_positive_int("num_train_samples", num_train_samples)
        check_number("amortized_weight", amortized_weight, ge=0)
        check_number("pseudo_weight", pseudo_weight, ge=0)
        self.amortized_weight = float(amortized_weight)
        self.pseudo_weight = float(pseudo_weight)
        _check_depths(encoder_depth, decoder_depth)
        with seeded_init(seed):
            self.encoder = SetEncoder(x_dim, y_dim, hidden, encoder_depth)
            self.generator = PseudoContextGenerator(hidden, num_heads)
            self.decoder = GaussianDecoder(x_dim, hidden, y_dim, hidden, decoder_depth, min_std)
        self.x_dim, self.y_dim = int(x_dim), int(y_dim)

    def _num_pseudo(self, num_context: int, num_pseudo: int | None) -> int:
        if num_pseudo is not None:
            return check_positive_int("num_pseudo", num_pseudo)
        return self.num_pseudo if self.num_pseudo is not None else num_context

    def generate(
        self,
        xc: torch.Tensor,
        yc: torch.Tensor,
        *,
        num_sets: int = 1,
        num_pseudo: int | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Context representations ``[B, n, d]`` and ``num_sets`` pseudo-context sets
        ``[K, B, M, d]`` for the context ``xc [B, n, Dx], yc [B, n, Dy]``."""
        check_sets(xc, yc, xc, x_dim=self.x_dim, y_dim=self.y_dim, dtype=_dtype(self))
        rc = self.encoder.embed(xc, yc)
        m = self._num_pseudo(rc.shape[1], num_pseudo)
        return rc, self.generator(rc, m, num_sets, generator=generator)

    @staticmethod
    def _pool(rc: torch.Tensor, pseudo: torch.Tensor) -> torch.Tensor:
        """Mean of ``R_c u R~_k`` per set: ``rc [B, n, d]``, ``pseudo [K, B, M, d]`` ->
        ``[K, B, d]``."""
        n, m = rc.shape[1], pseudo.shape[2]
        return (n * rc.mean(1).unsqueeze(0) + m * pseudo.mean(2)) / (n + m)

    def forward(
        self,
        xc: torch.Tensor,
        yc: torch.Tensor,
        xt: torch.Tensor,
        *,
        num_samples: int = 50,
        num_pseudo: int | None = None,
        generator: torch.Generator | None = None,
    ) -> ProcessPrediction:
        """The martingale-posterior predictive at ``xt [B, Nt, Dx]``: the mixture over
        ``num_samples`` generated pseudo-context sets appended to the context.

        Returns:
            a :class:`ProcessPrediction` with ``K = num_samples`` components.
        """
        check_sets(xc, yc, xt, x_dim=self.x_dim, y_dim=self.y_dim, dtype=_dtype(self))
        k = check_positive_int("num_samples", num_samples)
        rc, pseudo = self.generate(xc, yc, num_sets=k, num_pseudo=num_pseudo, generator=generator)
        mean, std = self.decoder(xt.unsqueeze(0), self._pool(rc, pseudo))
        return ProcessPrediction(mean, std)

    def predict_context_only(
        self, xc: torch.Tensor, yc: torch.Tensor, xt: torch.Tensor
    ) -> ProcessPrediction:
        """The deterministic predictive ``p(y | x, C)`` without pseudo contexts (``K = 1``)."""
        check_sets(xc, yc, xt, x_dim=self.x_dim, y_dim=self.y_dim, dtype=_dtype(self))
        mean, std = self.decoder(xt, self.encoder(xc, yc))
        return ProcessPrediction(mean.unsqueeze(0), std.unsqueeze(0))

    def losses(
        self,
        xc: torch.Tensor,
        yc: torch.Tensor,
        xt: torch.Tensor,
        yt: torch.Tensor,
        *,
        num_samples: int | None = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """The three loss terms and their weighted sum, each per target point (scalars).

        Returns:
            ``{"marginal", "amortized", "pseudo", "total"}``.
        """
        check_sets(xc, yc, xt, yt, x_dim=self.x_dim, y_dim=self.y_dim, dtype=_dtype(self))
        k = self.num_train_samples if num_samples is None else num_samples
        k = check_positive_int("num_samples", k)
        rc, pseudo = self.generate(xc, yc, num_sets=k, generator=generator)
        return mpnp_losses(
            self.decoder,
            rc,
            pseudo,
            xt,
            yt,
            amortized_weight=self.amortized_weight,
            pseudo_weight=self.pseudo_weight,
        )

    def loss(
        self,
        xc: torch.Tensor,
        yc: torch.Tensor,
        xt: torch.Tensor,
        yt: torch.Tensor,
        *,
        num_samples: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The training objective ``L_marg + w_amort L_amort + w_pseudo L_pseudo`` (scalar)."""
        return self.losses(xc, yc, xt, yt, num_samples=num_samples, generator=generator)["total"]


def mpnp_losses(
    decoder: GaussianDecoder,
    context: torch.Tensor,
    pseudo: torch.Tensor,
    xt: torch.Tensor,
    yt: torch.Tensor,
    *,
    amortized_weight: float = 1.0,
    pseudo_weight: float = 1.0,
) -> dict[str, torch.Tensor]:
    """MPNP's loss terms from representations (functional core of
    :meth:`MartingalePosteriorNP.losses`).

    Args:
        decoder: maps ``(x [..., N, Dx], r [..., d])`` to ``(mean, std) [..., N, Dy]``.
        context: real-context representations ``[B, n, d]``.
        pseudo: ``K`` generated sets ``[K, B, M, d]``.
        xt, yt: targets ``[B, Nt, Dx]``, ``[B, Nt, Dy]``; all four tensors in the decoder's
            dtype.
        amortized_weight, pseudo_weight: ``>= 0``.

    Returns:
        ``{"marginal", "amortized", "pseudo", "total"}``, each the batch mean of the per-task
        negative log-likelihood divided by ``Nt``.
    """
    if not isinstance(decoder, nn.Module):
        raise TypeError(f"decoder must be an nn.Module, got {type(decoder).__name__}")
    dtype = next((p.dtype for p in decoder.parameters() if p.is_floating_point()), None)
    for name, value in (("context", context), ("pseudo", pseudo), ("xt", xt), ("yt", yt)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        if dtype is not None:  # torch's bare matmul dtype error in the decoder otherwise
            check_input_dtype(name, value, dtype, owner="decoder")
    if context.ndim != 3 or pseudo.ndim != 4:
        raise ValueError(
            f"context must be [B, n, d] and pseudo [K, B, M, d], got {tuple(context.shape)} "
            f"and {tuple(pseudo.shape)}"
        )
    if pseudo.shape[1] != context.shape[0] or pseudo.shape[3] != context.shape[2]:
        raise ValueError(
            f"pseudo must have batch {context.shape[0]} and size {context.shape[2]}, got "
            f"{tuple(pseudo.shape)}"
        )
    if xt.ndim != 3 or yt.ndim != 3 or xt.shape[:2] != yt.shape[:2]:
        raise ValueError(
            f"xt, yt must be [B, Nt, D] alike, got {tuple(xt.shape)}, {tuple(yt.shape)}"
        )
    check_number("amortized_weight", amortized_weight, ge=0)
    check_number("pseudo_weight", pseudo_weight, ge=0)
    nt = yt.shape[1]
    n, m = context.shape[1], pseudo.shape[2]

    def joint_ll(r: torch.Tensor) -> torch.Tensor:  # r [..., B, d] -> [..., B]
        mean, std = decoder(xt.expand(*r.shape[:-2], *xt.shape), r)
        return gaussian_log_prob(yt, mean, std).sum(dim=(-1, -2))

    r_ctx = context.mean(1)
    r_marg = (n * r_ctx.unsqueeze(0) + m * pseudo.mean(2)) / (n + m)
    marginal = -(_log_mean_exp(joint_ll(r_marg), 0) / nt).mean()
    amortized = -(joint_ll(r_ctx) / nt).mean()
    pseudo_only = -(_log_mean_exp(joint_ll(pseudo.mean(2)), 0) / nt).mean()
    total = marginal + amortized_weight * amortized + pseudo_weight * pseudo_only
    return {"marginal": marginal, "amortized": amortized, "pseudo": pseudo_only, "total": total}
