"""Neural processes: the conditional NP, the latent-variable NP and their shared pieces.

* Conditional Neural Process (CNP; Garnelo et al., ICML 2018): a per-point encoder of the
  context pairs ``(x_i, y_i)``, mean pooling into one representation ``r``, and a Gaussian
  decoder ``p(y | x, r) = N(mu(x, r), sigma(x, r)^2)``; trained by maximum likelihood of the
  targets.
* Neural Process (NP; Garnelo et al., 2018, "Neural Processes", with the deterministic path of
  Kim et al. 2019): the CNP plus a global latent variable ``z ~ N(m(C), s(C)^2)`` (its own mean
  -pooled encoder), decoded as ``p(y | x, r, z)``; trained with the ELBO
  ``E_{q(z|C u T)} log p(y_T | x_T, r_C, z) - KL(q(z|C u T) || q(z|C))``.

Both are the baselines of "Martingale Posterior Neural Processes" (Lee, Yun, Nam, Fong & Lee,
ICLR 2023), see :mod:`neuronkit.theory.processes.mpnp`. Predictions are returned as a
:class:`ProcessPrediction`, an equally weighted mixture of ``K`` Gaussians per point (``K = 1``
for the CNP, one component per latent sample or per generated pseudo-context set otherwise), with
the evaluation the papers use: the per-point mixture log-likelihood and central predictive
intervals of the mixture.

Decoder standard deviations are bounded below: ``sigma = min_std + (1 - min_std) softplus(.)``
(``min_std = 0.1`` as in the reference implementations), which keeps the likelihood from
collapsing on the context points.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from neuronkit.common import (
    check_adam_dtype,
    check_number,
    check_probability,
    check_type,
    forked_manual_seed,
    grad_enabled,
    progress,
    values_hidden,
)

from .._utils import check_input_dtype, check_layout, check_positive_int, torch_generator, traced

__all__ = [
    "ConditionalNeuralProcess",
    "GaussianDecoder",
    "NeuralProcess",
    "ProcessPrediction",
    "SetEncoder",
    "TrainingLog",
    "gaussian_log_prob",
    "mixture_cdf",
    "mixture_log_likelihood",
    "mixture_quantile",
    "predictive_coverage",
    "train_process",
]


# ----------------------------------------------------------------------------- helpers


def normal_noise(
    shape: tuple[int, ...], like: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """Standard normal noise ``shape`` in ``like``'s dtype and on its device, drawn on the
    generator's device (the CPU for ``None``, torch's global RNG), so that a CPU generator gives
    the same draws whatever device the model is on."""
    device = None if generator is None else generator.device
    eps = torch.randn(shape, generator=generator, dtype=like.dtype, device=device)
    return eps.to(like.device)


@contextlib.contextmanager
def seeded_init(seed: int | torch.Generator | None) -> Iterator[None]:
    """Run a block (building modules) under torch's global RNG seeded from ``seed``.

    The global RNG state outside the block is left unchanged; ``None`` leaves the block on the
    current global RNG (so models differ from run to run).
    """
    if seed is None:
        yield
        return
    gen = torch_generator(seed)
    value = int(torch.randint(0, 2**62, (1,), generator=gen, device="cpu"))
    with forked_manual_seed(value):
        yield


def _mlp(in_dim: int, hidden: int, out_dim: int, depth: int) -> nn.Sequential:
    """``depth`` linear layers (``depth - 1`` hidden ReLU layers of width ``hidden``)."""
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(depth - 1):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def _check_tensor(
    name: str,
    x: Any,
    ndim: int,
    layout: str,
    last: int | None = None,
    dtype: torch.dtype | None = None,
) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor {layout}, got {type(x).__name__}")
    if x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions {layout}, got {tuple(x.shape)}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating-point tensor {layout}, got dtype {x.dtype}")
    if dtype is not None:
        check_input_dtype(name, x, dtype)
    if last is not None and x.shape[-1] != last:
        raise ValueError(f"{name} must have last dimension {last} {layout}, got {tuple(x.shape)}")
    if not values_hidden(x) and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} must be finite, got NaN or infinity in {tuple(x.shape)}")


def check_sets(
    xc: Any,
    yc: Any,
    xt: Any,
    yt: Any | None = None,
    *,
    x_dim: int,
    y_dim: int,
    dtype: torch.dtype | None = None,
) -> None:
    """Validate context ``xc [B, Nc, Dx], yc [B, Nc, Dy]`` and targets ``xt [B, Nt, Dx]``
    (``yt [B, Nt, Dy]``); with ``dtype`` (the model's), each must have it."""
    _check_tensor("xc", xc, 3, "[B, Nc, Dx]", x_dim, dtype)
    _check_tensor("yc", yc, 3, "[B, Nc, Dy]", y_dim, dtype)
    _check_tensor("xt", xt, 3, "[B, Nt, Dx]", x_dim, dtype)
    if yc.shape[:2] != xc.shape[:2]:
        raise ValueError(
            f"yc must have shape [{xc.shape[0]}, {xc.shape[1]}, {y_dim}], got {tuple(yc.shape)}"
        )
    if xc.shape[1] < 1:
        raise ValueError(f"xc must hold at least one context point, got {tuple(xc.shape)}")
    if xt.shape[0] != xc.shape[0]:
        raise ValueError(f"xt must have batch size {xc.shape[0]}, got {tuple(xt.shape)}")
    if yt is not None:
        _check_tensor("yt", yt, 3, "[B, Nt, Dy]", y_dim, dtype)
        if yt.shape[:2] != xt.shape[:2]:
            raise ValueError(
                f"yt must have shape [{xt.shape[0]}, {xt.shape[1]}, {y_dim}], got {tuple(yt.shape)}"
            )


def _dtype(model: nn.Module) -> torch.dtype:
    """The dtype of ``model``'s parameters (its first one)."""
    return next(model.parameters()).dtype


def gaussian_log_prob(y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Elementwise ``log N(y; mean, std^2)`` (broadcasting); ``std > 0``."""
    for name, value in (("y", y), ("mean", mean)):
        if not isinstance(value, (torch.Tensor, numbers.Real)):
            raise TypeError(
                f"{name} must be a torch.Tensor or a real number, got {type(value).__name__}"
            )
    if not isinstance(std, torch.Tensor):
        raise TypeError(f"std must be a torch.Tensor, got {type(std).__name__}")
    z = (y - mean) / std
    return -0.5 * z * z - torch.log(std) - 0.5 * math.log(2.0 * math.pi)


def _check_mixture(mean: Any, std: Any) -> None:
    _check_tensor("mean", mean, 4, "[K, B, N, Dy]")
    _check_tensor("std", std, 4, "[K, B, N, Dy]")
    if mean.shape != std.shape:
        raise ValueError(
            f"std must have the shape of mean {tuple(mean.shape)}, got {tuple(std.shape)}"
        )
    if bool((std <= 0).any()):
        raise ValueError("std must be > 0 everywhere, got a non-positive entry")


def _check_values(y: Any, mean: torch.Tensor) -> None:
    _check_tensor("y", y, 3, "[B, N, Dy]")
    if tuple(y.shape) != tuple(mean.shape[1:]):
        raise ValueError(
            f"y must have shape {list(mean.shape[1:])} [B, N, Dy], got {tuple(y.shape)}"
        )


def mixture_log_likelihood(y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Per-point log-density of an equally weighted Gaussian mixture.

    ``log (1/K) sum_k N(y_i; mean_ki, std_ki^2)``, summed over the output dimensions.

    Args:
        y: values ``[B, N, Dy]``; mean, std: mixture components ``[K, B, N, Dy]``.

    Returns:
        ``[B, N]``.
    """
    _check_mixture(mean, std)
    _check_values(y, mean)
    ll = gaussian_log_prob(y.unsqueeze(0), mean, std).sum(-1)
    return torch.logsumexp(ll, dim=0) - math.log(mean.shape[0])


def mixture_cdf(y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """CDF of an equally weighted Gaussian mixture at ``y``, per point and output dimension.

    Args:
        y: ``[B, N, Dy]``; mean, std: ``[K, B, N, Dy]``.

    Returns:
        ``[B, N, Dy]`` in ``[0, 1]``.
    """
    _check_mixture(mean, std)
    _check_values(y, mean)
    # 0.5 erfc(-z), not 0.5 (1 + erf(z)) (nor torch's float32 ndtr): no cancellation in the
    # lower tail
    z = (y.unsqueeze(0) - mean) / (std * math.sqrt(2.0))
    return (0.5 * torch.erfc(-z)).mean(dim=0)


def mixture_quantile(
    q: float, mean: torch.Tensor, std: torch.Tensor, *, iterations: int = 60
) -> torch.Tensor:
    """Quantile ``q`` of an equally weighted Gaussian mixture, per point (bisection).

    The quantile lies between the smallest and largest component quantiles, so ``iterations``
    halvings of that bracket give it to ``bracket / 2^iterations``.

    Args:
        q: probability in ``(0, 1)``; mean, std: ``[K, B, N, Dy]``; iterations: ``>= 1``.

    Returns:
        ``[B, N, Dy]``.
    """
    check_number("q", q, gt=0.0, lt=1.0)
    _check_mixture(mean, std)
    iterations = check_positive_int("iterations", iterations)
    zq = math.sqrt(2.0) * float(torch.erfinv(torch.tensor(2.0 * q - 1.0, dtype=torch.float64)))
    comp = mean + std * zq
    lo = comp.min(dim=0).values.clone()
    hi = comp.max(dim=0).values.clone()
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        below = mixture_cdf(mid, mean, std) < q
        lo = torch.where(below, mid, lo)
        hi = torch.where(below, hi, mid)
    return 0.5 * (lo + hi)


def predictive_coverage(
    y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, *, level: float = 0.9
) -> torch.Tensor:
    """Whether each value falls in the mixture's central ``level`` predictive interval.

    ``y_i`` is inside ``[F^-1((1-level)/2), F^-1((1+level)/2)]`` exactly when the mixture CDF
    ``F(y_i)`` is in ``[(1-level)/2, (1+level)/2]`` (``F`` is continuous and increasing), so no
    quantile search is needed. Average the result for the empirical coverage.

    Args:
        y: ``[B, N, Dy]``; mean, std: ``[K, B, N, Dy]``; level: in ``(0, 1)``.

    Returns:
        boolean ``[B, N, Dy]``.
    """
    check_number("level", level, gt=0.0, lt=1.0)
    cdf = mixture_cdf(y, mean, std)
    tail = 0.5 * (1.0 - float(level))
    return (cdf >= tail) & (cdf <= 1.0 - tail)


@dataclass(frozen=True)
class ProcessPrediction:
    """A predictive distribution per point: an equally weighted mixture of ``K`` Gaussians.

    Attributes:
        mean, std: ``[K, B, N, Dy]`` (``K = 1``: a single Gaussian).
    """

    mean: torch.Tensor
    std: torch.Tensor

    @property
    def num_components(self) -> int:
        return int(self.mean.shape[0])

    def log_likelihood(self, y: torch.Tensor) -> torch.Tensor:
        """Per-point mixture log-likelihood ``[B, N]`` of ``y [B, N, Dy]``."""
        return mixture_log_likelihood(y, self.mean, self.std)

    def coverage(self, y: torch.Tensor, level: float = 0.9) -> torch.Tensor:
        """Boolean ``[B, N, Dy]``: ``y`` inside the central ``level`` interval."""
        return predictive_coverage(y, self.mean, self.std, level=level)

    def interval(self, level: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
        """Central ``level`` interval ``(lower, upper)``, each ``[B, N, Dy]``."""
        check_number("level", level, gt=0.0, lt=1.0)
        tail = 0.5 * (1.0 - float(level))
        return (
            mixture_quantile(tail, self.mean, self.std),
            mixture_quantile(1.0 - tail, self.mean, self.std),
        )

    def predictive_mean(self) -> torch.Tensor:
        """Mixture mean ``[B, N, Dy]``."""
        return self.mean.mean(dim=0)

    def predictive_std(self) -> torch.Tensor:
        """Mixture standard deviation ``[B, N, Dy]`` (law of total variance)."""
        m = self.mean.mean(dim=0)
        # E[std^2] + Var[mean], not E[std^2 + mean^2] - m^2 (which cancels for large means)
        return ((self.std**2).mean(dim=0) + ((self.mean - m) ** 2).mean(dim=0)).sqrt()


# a pytree node, so torch.export / torch.compile can return it from a model's forward
torch.export.register_dataclass(
    ProcessPrediction, serialized_type_name="neuronkit.theory.ProcessPrediction"
)


# ----------------------------------------------------------------------------- modules


class SetEncoder(nn.Module):
    """Per-point encoder of context pairs: ``r_i = MLP([x_i, y_i])``, optionally mean-pooled.

    Args:
        x_dim, y_dim: input and output dimensions; hidden: width and representation size ``d``;
        depth: number of linear layers (``>= 1``).
    """

    def __init__(self, x_dim: int, y_dim: int, hidden: int, depth: int = 3) -> None:
        super().__init__()
        self.x_dim = check_positive_int("x_dim", x_dim)
        self.y_dim = check_positive_int("y_dim", y_dim)
        self.hidden = check_positive_int("hidden", hidden)
        depth = check_positive_int("depth", depth)
        self.net = _mlp(self.x_dim + self.y_dim, self.hidden, self.hidden, depth)

    def embed(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-point representations ``[B, N, d]`` of ``x [B, N, Dx]``, ``y [B, N, Dy]`` (in the
        encoder's dtype)."""
        dtype = _dtype(self)
        check_layout("x", x, 3, f"[B, N, {self.x_dim}]", self.x_dim, dtype)
        check_layout("y", y, 3, f"[B, N, {self.y_dim}]", self.y_dim, dtype)
        if not traced(x) and not traced(y) and y.shape[:2] != x.shape[:2]:
            raise ValueError(
                f"y must have shape [{x.shape[0]}, {x.shape[1]}, {self.y_dim}] like x, got "
                f"{tuple(y.shape)}"
            )
        return self.net(torch.cat([x, y], dim=-1))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean-pooled representation ``[B, d]`` of ``x [B, N, Dx]``, ``y [B, N, Dy]``."""
        return self.embed(x, y).mean(dim=1)


class GaussianDecoder(nn.Module):
    """``p(y | x, r) = N(mu, sigma^2)`` with ``sigma = min_std + (1 - min_std) softplus(.)``.

    An MLP on the concatenation ``[x, r]``; its first layer is computed as
    ``W_x x + W_r r + b`` so that ``W_r r`` is evaluated once per task rather than once per
    target point (the same function, cheaper when many points share one ``r``).

    Args:
        x_dim: input dimension; r_dim: size of the conditioning vector; y_dim: output
        dimension; hidden: width; depth: linear layers (``>= 2``); min_std: in ``[0, 1)``.
    """

    def __init__(
        self,
        x_dim: int,
        r_dim: int,
        y_dim: int,
        hidden: int,
        depth: int = 3,
        min_std: float = 0.1,
    ) -> None:
        super().__init__()
        self.x_dim = check_positive_int("x_dim", x_dim)
        self.r_dim = check_positive_int("r_dim", r_dim)
        self.y_dim = check_positive_int("y_dim", y_dim)
        hidden = check_positive_int("hidden", hidden)
        depth = check_positive_int("depth", depth, minimum=2)
        check_probability("min_std", min_std, open_right=True)
        self.min_std = float(min_std)
        self.input = nn.Linear(self.x_dim + self.r_dim, hidden)
        self.net = nn.Sequential(nn.ReLU(), _mlp(hidden, hidden, 2 * self.y_dim, depth - 1))

    def forward(self, x: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [..., N, Dx]``, ``r [..., d]`` (one vector per task; leading dimensions
        broadcast; both in the decoder's dtype) -> ``(mean, std)``, each ``[..., N, Dy]``."""
        w = self.input.weight
        r_dim = w.shape[1] - self.x_dim  # from the weight: what the layer takes now
        for name, value, rank, last in (("x", x, 2, self.x_dim), ("r", r, 1, r_dim)):
            if traced(value):
                continue
            layout = f"[..., N, {last}]" if name == "x" else f"[..., {last}]"
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"{name} must be a torch.Tensor {layout}, got {type(value)}")
            if value.ndim < rank or value.shape[-1] != last:
                raise ValueError(f"{name} must have shape {layout}, got {tuple(value.shape)}")
            check_input_dtype(name, value, w.dtype)
        hx = F.linear(x, w[:, : self.x_dim], self.input.bias)  # [..., N, H]
        hr = F.linear(r, w[:, self.x_dim :]).unsqueeze(-2)  # [..., 1, H]
        out = self.net(hx + hr)
        mean, raw = out.split(self.y_dim, dim=-1)
        return mean, self.min_std + (1.0 - self.min_std) * F.softplus(raw)


def _check_depths(encoder_depth: Any, decoder_depth: Any) -> None:
    """Check the depths under the model's argument names (the encoder and decoder modules that
    take them call both ``depth``)."""
    check_positive_int("encoder_depth", encoder_depth)
    check_positive_int("decoder_depth", decoder_depth, minimum=2)


class ConditionalNeuralProcess(nn.Module):
    """Conditional Neural Process (Garnelo et al., ICML 2018) with a mean-pooled encoder.

    Args:
        x_dim, y_dim: input and output dimensions.
        hidden: width of every layer and size of the representation.
        encoder_depth, decoder_depth: linear layers of the encoder and decoder MLPs.
        min_std: lower bound of the predictive standard deviation.
        seed: int or ``torch.Generator`` for the initialization (None: torch's global RNG).
    """

    def __init__(
        self,
        x_dim: int = 1,
        y_dim: int = 1,
        *,
        hidden: int = 128,
        encoder_depth: int = 3,
        decoder_depth: int = 3,
        min_std: float = 0.1,
        seed: int | torch.Generator | None = None,
    ) -> None:
        super().__init__()
        _check_depths(encoder_depth, decoder_depth)
        with seeded_init(seed):
            self.encoder = SetEncoder(x_dim, y_dim, hidden, encoder_depth)
            self.decoder = GaussianDecoder(x_dim, hidden, y_dim, hidden, decoder_depth, min_std)
        self.x_dim, self.y_dim = int(x_dim), int(y_dim)

    def forward(self, xc: torch.Tensor, yc: torch.Tensor, xt: torch.Tensor) -> ProcessPrediction:
        """Predict ``xt [B, Nt, Dx]`` given the context ``xc [B, Nc, Dx], yc [B, Nc, Dy]``.

        Returns:
            a :class:`ProcessPrediction` with ``K = 1``.
        """
        check_sets(xc, yc, xt, x_dim=self.x_dim, y_dim=self.y_dim, dtype=_dtype(self))
        mean, std = self.decoder(xt, self.encoder(xc, yc))
        return ProcessPrediction(mean.unsqueeze(0), std.unsqueeze(0))

    def loss(
        self,
        xc: torch.Tensor,
        yc: torch.Tensor,
        xt: torch.Tensor,
        yt: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Negative log-likelihood per target point (scalar); ``generator`` is unused."""
        check_sets(xc, yc, xt, yt, x_dim=self.x_dim, y_dim=self.y_dim, dtype=_dtype(self))
        mean, std = self.decoder(xt, self.encoder(xc, yc))
        return -gaussian_log_prob(yt, mean, std).sum(-1).mean()


class NeuralProcess(nn.Module):
    """Latent-variable Neural Process (Garnelo et al. 2018) with a deterministic path.

    ``r = mean_i MLP_det([x_i, y_i])`` and ``q(z | S) = N(m, s^2)`` with ``(m, s) =
    Linear(mean_i MLP_lat([x_i, y_i]))``, ``s = 0.1 + 0.9 sigmoid(.)``; the decoder reads
    ``[x, r, z]``. Training maximizes the ELBO or its importance-weighted version (see
    :meth:`loss`); prediction samples ``z`` from
    ``q(z | C)`` and returns the mixture over samples.

    Args:
        x_dim, y_dim: input and output dimensions; hidden: width and representation size;
        latent_dim: size of ``z``; encoder_depth, decoder_depth: linear layers; min_std: lower
        bound of the decoder's standard deviation; num_train_samples: latent draws per task in
        :meth:`loss` (1: the ELBO, more: the importance-weighted bound); seed: initialization
        seed or generator.
    """

    def __init__(
        self,
        x_dim: int = 1,
        y_dim: int = 1,
        *,
        hidden: int = 128,
        latent_dim: int | None = None,
        encoder_depth: int = 3,
        decoder_depth: int = 3,
        min_std: float = 0.1,
        num_train_samples: int = 1,
        seed: int | torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.num_train_samples = check_positive_int("num_train_samples", num_train_samples)
        latent = hidden if latent_dim is None else check_positive_int("latent_dim", latent_dim)
        _check_depths(encoder_depth, decoder_depth)
        with seeded_init(seed):
            self.encoder = SetEncoder(x_dim, y_dim, hidden, encoder_depth)
            self.latent_encoder = SetEncoder(x_dim, y_dim, hidden, encoder_depth)
            self.latent_head = nn.Linear(hidden, 2 * latent)
            self.decoder = GaussianDecoder(
                x_dim, hidden + latent, y_dim, hidden, decoder_depth, min_std
            )
        self.x_dim, self.y_dim, self.latent_dim = int(x_dim), int(y_dim), int(latent)

    def latent(self, x: torch.Tensor, y: torch.Tensor) -> torch.distributions.Normal:
        """``q(z | {(x_i, y_i)})`` for ``x [B, N, Dx]``, ``y [B, N, Dy]`` (the model's dtype), a
        diagonal Gaussian with batch shape ``[B, latent_dim]``."""
        m, raw = self.latent_head(self.latent_encoder(x, y)).chunk(2, dim=-1)
        return torch.distributions.Normal(m, 0.1 + 0.9 * torch.sigmoid(raw))

    def _decode(
        self, xt: torch.Tensor, r: torch.Tensor, z: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``z [K, B, L]``, ``r [B, d]`` -> mean, std ``[K, B, Nt, Dy]``."""
        rz = torch.cat([r.unsqueeze(0).expand(z.shape[0], -1, -1), z], dim=-1)
        return self.decoder(xt.unsqueeze(0), rz)

    def forward(
        self,
        xc: torch.Tensor,
        yc: torch.Tensor,
        xt: torch.Tensor,
        *,
        num_samples: int = 50,
        generator: torch.Generator | None = None,
    ) -> ProcessPrediction:
        """Mixture over ``num_samples`` draws ``z ~ q(z | C)`` (shapes as in the CNP)."""
        check_sets(xc, yc, xt, x_dim=self.x_dim, y_dim=self.y_dim, dtype=_dtype(self))
        k = check_positive_int("num_samples", num_samples)
        q = self.latent(xc, yc)
        z = q.loc + q.scale * normal_noise((k, *q.loc.shape), q.loc, generator)
        mean, std = self._decode(xt, self.encoder(xc, yc), z)
        return ProcessPrediction(mean, std)

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
        """Negative ELBO (one sample) or importance-weighted bound (several), per target point.

        With ``K = 1``: ``-(1/Nt) [E_q log p(y_T | x_T, r_C, z) - KL(q(z|T) || q(z|C))]`` (one
        reparameterized draw, analytic KL). With ``K > 1`` (as the BNP reference code trains
        its NP): ``-(1/Nt) log (1/K) sum_k p(y_T | x_T, r_C, z_k) q(z_k|C) / q(z_k|T)``,
        ``z_k ~ q(z|T)``. The targets are expected to include the context points, as in the
        reference implementations, so ``q(z|T)`` is the posterior given all the task's points.

        Args:
            num_samples: ``K`` (None: the model's ``num_train_samples``).
        """
        check_sets(xc, yc, xt, yt, x_dim=self.x_dim, y_dim=self.y_dim, dtype=_dtype(self))
        k = self.num_train_samples if num_samples is None else num_samples
        k = check_positive_int("num_samples", k)
        prior = self.latent(xc, yc)
        post = self.latent(xt, yt)
        z = post.loc + post.scale * normal_noise((k, *post.loc.shape), post.loc, generator)
        mean, std = self._decode(xt, self.encoder(xc, yc), z)
        ll = gaussian_log_prob(yt.unsqueeze(0), mean, std).sum(dim=(-1, -2))  # [K, B]
        if k == 1:
            kl = torch.distributions.kl_divergence(post, prior).sum(-1)  # [B]
            return -((ll[0] - kl) / yt.shape[1]).mean()
        log_w = ll + prior.log_prob(z).sum(-1) - post.log_prob(z).sum(-1)
        bound = torch.logsumexp(log_w, dim=0) - math.log(k)
        return -(bound / yt.shape[1]).mean()


# ----------------------------------------------------------------------------- training


@dataclass
class TrainingLog:
    """Loss per step of :func:`train_process` (``losses[t]`` before the ``t``-th update)."""

    losses: list[float]

    def smoothed(self, window: int = 50) -> list[float]:
        """Running mean over ``window`` steps (for plotting)."""
        window = check_positive_int("window", window)
        out, acc = [], 0.0
        for i, v in enumerate(self.losses):
            acc += v
            if i >= window:
                acc -= self.losses[i - window]
            out.append(acc / min(i + 1, window))
        return out


@grad_enabled("train_process")
def train_process(
    model: nn.Module,
    tasks: Callable[[int], Any],
    *,
    steps: int,
    lr: float = 5e-4,
    clip: float | None = None,
    generator: torch.Generator | None = None,
    callback: Callable[[int, float], None] | None = None,
    loss_kwargs: dict[str, Any] | None = None,
    show_progress: bool | None = None,
) -> TrainingLog:
    """Meta-train a neural process with Adam and cosine learning-rate decay.

    At step ``t`` the batch ``tasks(t)`` is drawn (anything with ``xc, yc, x, y`` attributes,
    e.g. :class:`neuronkit.theory.data.gp.GPTasks`); the loss is ``model.loss(xc, yc, x, y)``:
    the targets are all the task's points, context included, as in the reference code.

    Args:
        model: a module with ``loss(xc, yc, xt, yt, *, generator=..., **loss_kwargs)``.
        tasks: ``step -> batch`` (``step`` from 0); steps: number of updates; lr: peak
            learning rate.
        clip: gradient-norm clip (None: none); generator: passed to ``model.loss``.
        callback: called as ``callback(done, loss)`` after each update, ``done`` the number of
            updates made so far (1-based, as the other trainers' callbacks count).
        loss_kwargs: extra keyword arguments of ``model.loss``.
        show_progress: a progress bar on stderr: ``None`` (default) only on a terminal, or
            ``True`` / ``False``.

    Returns:
        a :class:`TrainingLog`. The model is left in eval mode, also when a step or the callback
        raises (e.g. a ``KeyboardInterrupt``).
    """
    check_type("model", model, nn.Module)
    if not hasattr(model, "loss"):
        raise TypeError(f"model must define loss(xc, yc, xt, yt), got {type(model).__name__}")
    if not callable(tasks):
        raise TypeError(f"tasks must be a callable step -> batch, got {type(tasks).__name__}")
    steps = check_positive_int("steps", steps)
    check_number("lr", lr, gt=0)
    if clip is not None:
        check_number("clip", clip, gt=0)
    kwargs = dict(loss_kwargs or {})
    loss_fn: Callable[..., torch.Tensor] = model.loss  # type: ignore[assignment]
    check_adam_dtype("model", model.named_parameters())
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    losses: list[float] = []
    model.train()
    try:
        for step in progress(range(steps), show_progress=show_progress, desc="train_process"):
            batch = tasks(step)
            loss = loss_fn(batch.xc, batch.yc, batch.x, batch.y, generator=generator, **kwargs)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise FloatingPointError(f"loss became {value} at step {step}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            # drop an outer autocast's cached low-precision copies of the updated weights
            torch.clear_autocast_cache()
            sched.step()
            losses.append(value)
            if callback is not None:
                callback(step + 1, value)
    finally:  # eval mode, as after a complete run, also when a step or the callback raises
        model.eval()
    return TrainingLog(losses)
