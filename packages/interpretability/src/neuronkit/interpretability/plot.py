"""Pictures of attributions and of representational dissimilarity matrices (RDMs).

- :func:`attribution_map` draws an attribution map as Captum's ``visualize_image_attr``
  does (same sign filters, outlier clipping, colour maps and methods), straight from this
  package's channel-first output: ``[H, W]``, ``[C, H, W]`` or a batch ``[B, C, H, W]``, of
  which ``sample`` picks one. :func:`normalize_attribution` returns the map it draws.
- :func:`token_attributions` draws the tokens of a text on backgrounds coloured by their
  attributions (Captum's ``visualize_text`` colours, as a figure rather than HTML), e.g. the
  per-token sums of :func:`~neuronkit.interpretability.layer_integrated_gradients`.
- :func:`rdm_heatmap` draws one RDM as a square matrix; :func:`rdm_mds` places the
  conditions in the plane by classical multidimensional scaling (:func:`mds_embedding`).
- :func:`model_comparison` draws models' evaluations on data RDMs as bars with error bars
  under the noise ceiling (:func:`~neuronkit.interpretability.evaluate_models`), as
  rsatoolbox's ``plot_model_comparison``.

Tensors (any device, also in an autograd graph), numpy arrays and nested lists are accepted.
Each function draws on ``ax`` when given, else on a new headless figure
(:func:`neuronkit.common.new_figure`; ``ax.figure.savefig(...)`` saves it), and returns the
axes. Needs matplotlib (``neuronkit-common[plot]``, a dependency of this package).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from neuronkit.common import (
    as_float_array,
    axes_or_new,
    check_choice,
    check_finite,
    check_number,
    check_type,
)

from .rsa import _as_vectors, _rank_vectors, rdm_to_square
from .rsa_crossval import CrossValidation
from .rsa_inference import TESTS, EvaluationTests

__all__ = [
    "attribution_map",
    "mds_embedding",
    "model_comparison",
    "normalize_attribution",
    "rdm_heatmap",
    "rdm_mds",
    "token_attributions",
]

#: sign filters of :func:`normalize_attribution` (Captum's ``VisualizeSign``)
SIGNS = ("absolute_value", "all", "positive", "negative")
#: drawing methods of :func:`attribution_map` (Captum's, less ``original_image``)
METHODS = ("heat_map", "blended_heat_map", "masked_image", "alpha_scaling")

_IMAGE_LAYOUT = "[H, W], [C, H, W] or [B, C, H, W]"


def _channels_last(name: str, x: Any, sample: int) -> np.ndarray:
    """``x`` (``[H, W]``, ``[C, H, W]`` or ``[B, C, H, W]`` at ``sample``) as a finite float64
    ``[H, W, C]`` array."""
    check_number("sample", sample, integer=True)
    if not hasattr(x, "ndim"):  # nested lists: read once
        x = as_float_array(name, x, _IMAGE_LAYOUT)
    if x.ndim == 4:  # a batch: only the drawn sample is converted to float64
        if not -x.shape[0] <= sample < x.shape[0]:
            raise ValueError(
                f"sample must index the batch of {name} (size {x.shape[0]}), got {sample}"
            )
        x = x[sample]
    elif sample != 0:
        raise ValueError(
            f"sample must be 0 for a single {name} of shape {tuple(x.shape)} (pass a batch "
            "[B, C, H, W] to pick another)"
        )
    arr = as_float_array(name, x, _IMAGE_LAYOUT)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or 0 in arr.shape:
        raise ValueError(f"{name} must be a non-empty {_IMAGE_LAYOUT}, got shape {np.shape(x)}")
    check_finite(name, arr)
    return np.moveaxis(arr, 0, -1)


def _cumulative_sum_threshold(values: np.ndarray, percentile: float) -> float:
    """The smallest of ``values`` (>= 0) at which their ascending cumulative sum reaches
    ``percentile`` % of the total (Captum's threshold: the largest values that together make
    up the remaining share are clipped)."""
    ordered = np.sort(values, axis=None)
    totals = np.cumsum(ordered)
    return float(ordered[np.searchsorted(totals, totals[-1] * 0.01 * percentile, side="left")])


def normalize_attribution(
    attributions: Any,
    *,
    sign: str = "absolute_value",
    outlier_perc: float = 2.0,
    sample: int = 0,
) -> np.ndarray:
    """The attribution map ``[H, W]`` that :func:`attribution_map` draws, in ``[-1, 1]``.

    As Captum's ``visualize_image_attr``: channels are summed, ``sign`` keeps the absolute
    values (``"absolute_value"``), all of them (``"all"``) or their positive or negative parts,
    and the map is divided by the threshold below which ``100 - outlier_perc`` % of the total
    absolute attribution lies, then clipped to ``[-1, 1]``, so the few largest values do not
    wash out the rest. ``"negative"`` gives non-negative values (the magnitudes of the
    negative part).

    Args:
        attributions: ``[H, W]``, ``[C, H, W]`` or ``[B, C, H, W]``.
        sign: one of ``SIGNS``.
        outlier_perc: percentage of the total absolute attribution clipped, in ``[0, 100)``.
        sample: the batch entry of a ``[B, C, H, W]`` input.

    Returns:
        float64 ``[H, W]``; all zeros when the kept part is zero everywhere (Captum raises).
    """
    check_choice("sign", sign, SIGNS)
    check_number("outlier_perc", outlier_perc, ge=0.0, lt=100.0)
    attr = _channels_last("attributions", attributions, sample).sum(axis=2)
    if sign == "positive":
        attr = np.maximum(attr, 0.0)
    elif sign == "negative":
        attr = np.minimum(attr, 0.0)
    elif sign == "absolute_value":
        attr = np.abs(attr)
    threshold = _cumulative_sum_threshold(np.abs(attr), 100.0 - outlier_perc)
    if threshold == 0.0:
        return np.zeros_like(attr)
    return np.clip(attr / (-threshold if sign == "negative" else threshold), -1.0, 1.0)


def _display_range(image: np.ndarray) -> np.ndarray:
    """``image [H, W, C]`` min-max scaled to ``[0, 1]`` for display (a constant image: 0.5)."""
    lo, hi = float(image.min()), float(image.max())
    return (image - lo) / (hi - lo) if hi > lo else np.full_like(image, 0.5)


def attribution_map(
    attributions: Any,
    image: Any = None,
    *,
    method: str | None = None,
    sign: str = "absolute_value",
    outlier_perc: float = 2.0,
    sample: int = 0,
    alpha: float = 0.5,
    cmap: Any = None,
    colorbar: bool = True,
    ax: Any = None,
) -> Any:
    """Draw an attribution map, alone or over its image (Captum's ``visualize_image_attr``).

    Args:
        attributions: ``[H, W]``, ``[C, H, W]`` or ``[B, C, H, W]``, e.g. the output of
            :func:`~neuronkit.interpretability.saliency` on images.
        image: the input in the same layout (1 or 3 channels, the same ``H, W``), drawn
            min-max scaled to ``[0, 1]`` (normalized network inputs can be passed as they
            are); needed by every method but ``"heat_map"``.
        method: ``"heat_map"`` (the normalized map), ``"blended_heat_map"`` (the map at
            opacity ``alpha`` over the image in grey), ``"masked_image"`` (the image times
            the map) or ``"alpha_scaling"`` (the image with the map as its opacity); default
            ``"blended_heat_map"`` with an image, else ``"heat_map"``. The last two need a
            ``sign`` other than ``"all"`` (a map in ``[0, 1]``).
        sign, outlier_perc, sample: as :func:`normalize_attribution`.
        alpha: opacity of the blended heat map, in ``[0, 1]``.
        cmap: colour map of the heat map; default Captum's for the sign (``"Blues"`` for
            absolute values, ``"Greens"`` positive, ``"Reds"`` negative, red-white-green
            for all).
        colorbar: add a colour bar to the heat map methods.
        ax: matplotlib axes to draw on; default a new figure.

    Returns:
        The axes (ticks hidden).
    """
    method = check_choice("method", method, (None, *METHODS)) or (
        "heat_map" if image is None else "blended_heat_map"
    )
    check_number("alpha", alpha, ge=0.0, le=1.0)
    check_type("colorbar", colorbar, bool)
    if method != "heat_map" and image is None:
        raise ValueError(f"image is needed for method={method!r} (only 'heat_map' draws without)")
    if method in ("masked_image", "alpha_scaling") and sign == "all":
        raise ValueError(
            f"method={method!r} needs a map in [0, 1]: sign must be 'absolute_value', "
            "'positive' or 'negative', got 'all'"
        )
    norm = normalize_attribution(attributions, sign=sign, outlier_perc=outlier_perc, sample=sample)
    shown = None
    if image is not None:
        pixels = _channels_last("image", image, sample)
        if pixels.shape[:2] != norm.shape or pixels.shape[2] not in (1, 3):
            raise ValueError(
                f"image must have 1 or 3 channels and the attributions' height and width "
                f"{norm.shape}, got [H, W, C] = {pixels.shape}"
            )
        shown = _display_range(pixels)
    if sign == "all":
        from matplotlib.colors import LinearSegmentedColormap

        default: Any = LinearSegmentedColormap.from_list("RdWhGn", ["red", "white", "green"])
        vmin = -1.0
    else:
        default, vmin = {"absolute_value": "Blues", "positive": "Greens"}.get(sign, "Reds"), 0.0
    ax = axes_or_new(ax, (4.0, 3.4))
    heat = None
    if method == "heat_map":
        heat = ax.imshow(norm, cmap=cmap or default, vmin=vmin, vmax=1.0)
    else:
        assert shown is not None  # checked above: every other method needs the image
        if method == "blended_heat_map":
            ax.imshow(shown.mean(axis=2), cmap="gray")
            heat = ax.imshow(norm, cmap=cmap or default, vmin=vmin, vmax=1.0, alpha=alpha)
        elif method == "masked_image":
            masked = shown * norm[..., None]
            ax.imshow(
                masked[..., 0] if masked.shape[2] == 1 else masked, cmap="gray", vmin=0, vmax=1
            )
        else:  # alpha_scaling: the map as the image's opacity
            rgb = np.broadcast_to(shown, (*shown.shape[:2], 3))
            ax.imshow(np.concatenate([rgb, norm[..., None]], axis=2))
    ax.set_xticks([])
    ax.set_yticks([])
    if colorbar and heat is not None:
        ax.figure.colorbar(heat, ax=ax, fraction=0.046, pad=0.04)
    return ax


def token_attributions(
    tokens: Sequence[str],
    scores: Any,
    *,
    per_row: int = 12,
    cmap: Any = "RdYlGn",
    ax: Any = None,
) -> Any:
    """Draw a text's tokens in reading order on backgrounds coloured by their attributions.

    Args:
        tokens: the ``L`` tokens (strings), e.g. from a tokenizer's ``convert_ids_to_tokens``.
        scores: ``[L]`` attributions, e.g. ``layer_integrated_gradients(...)[i].sum(-1)``;
            scaled by the largest ``|score|`` so that 0 sits at the colour map's centre.
        per_row: tokens per line.
        cmap: diverging matplotlib colour map (default red for negative, green for positive,
            as Captum's ``visualize_text``).
        ax: matplotlib axes to draw on; default a new figure sized to the text.

    Returns:
        The axes; each token is one text artist (``ax.texts``), in order.
    """
    check_type("tokens", tokens, Sequence)
    if isinstance(tokens, str) or not all(isinstance(t, str) for t in tokens):
        raise TypeError("tokens must be a sequence of strings (one per token)")
    values = as_float_array("scores", scores, "[L]")
    if values.shape != (len(tokens),):
        raise ValueError(
            f"scores must hold one value per token ([{len(tokens)}]), got shape {values.shape}"
        )
    check_finite("scores", values)
    check_number("per_row", per_row, ge=1, integer=True)
    from matplotlib import colormaps

    colour_map = colormaps[cmap] if isinstance(cmap, str) else cmap
    top = float(np.abs(values).max()) if values.size else 0.0
    shades = 0.5 + 0.5 * (values / top if top > 0 else values)  # 0 at the centre
    rows = max(1, -(-len(tokens) // per_row))
    ax = axes_or_new(ax, (min(12.0, 1.0 * per_row), 0.5 + 0.45 * rows))
    for i, (token, shade) in enumerate(zip(tokens, shades, strict=True)):
        ax.text(
            (i % per_row + 0.5) / per_row,
            1 - (i // per_row + 0.5) / rows,
            token,
            ha="center",
            va="center",
            fontsize=9,
            bbox={"facecolor": colour_map(float(shade)), "edgecolor": "none", "pad": 2},
            transform=ax.transAxes,
        )
    ax.set_axis_off()
    ax.set_title(f"{len(tokens)} tokens, largest |attribution| {top:.3g}", fontsize=9)
    return ax


def _one_rdm(rdm: Any, rank: bool = False) -> np.ndarray:
    """One RDM (vector ``[n_pairs]`` or square ``[n, n]``) as a square ``[n, n]`` array,
    rank-transformed (:func:`~neuronkit.interpretability.rank_transform`) when ``rank``."""
    vectors, layout = _as_vectors("rdm", rdm)
    if vectors.shape[0] != 1:
        raise ValueError(
            f"rdm must be one RDM, [n_pairs] or [n, n], got a stack of {vectors.shape[0]} "
            f"({layout} layout); draw each on its own axes"
        )
    check_type("rank", rank, bool)
    return rdm_to_square(_rank_vectors(vectors)[0] if rank else vectors[0])


def _labels(labels: Sequence[Any] | None, n: int) -> list[str] | None:
    if labels is None:
        return None
    if isinstance(labels, (str, bytes)) or not isinstance(labels, (Sequence, np.ndarray)):
        raise TypeError(f"labels must be a sequence of {n} condition names, got {labels!r:.80}")
    if len(labels) != n:
        raise ValueError(f"labels must name the {n} conditions, got {len(labels)}")
    return [str(label) for label in labels]


def rdm_heatmap(
    rdm: Any,
    *,
    labels: Sequence[Any] | None = None,
    rank: bool = False,
    cmap: Any = "viridis",
    colorbar: bool = True,
    ax: Any = None,
) -> Any:
    """Draw one RDM as an ``[n, n]`` matrix (row ``i``, column ``j``: conditions ``i, j``).

    Args:
        rdm: ``[n_pairs]`` (vector form) or ``[n, n]`` (symmetric, zero diagonal), e.g. from
            :func:`~neuronkit.interpretability.rdm`.
        labels: names of the ``n`` conditions, written on both axes.
        rank: draw the dissimilarities' ranks scaled to ``[0, 1]`` (as
            :func:`~neuronkit.interpretability.rank_transform`; the diagonal stays 0), which
            spreads a skewed distribution over the colour map.
        cmap: matplotlib colour map.
        colorbar: add a colour bar.
        ax: matplotlib axes to draw on; default a new figure.

    Returns:
        The axes.
    """
    square = _one_rdm(rdm, rank)
    n = square.shape[0]
    names = _labels(labels, n)
    check_type("colorbar", colorbar, bool)
    ax = axes_or_new(ax, (4.4, 3.8))
    image = ax.imshow(square, cmap=cmap, interpolation="nearest")
    if names is not None:
        ax.set_xticks(range(n), names, rotation=90, fontsize=7)
        ax.set_yticks(range(n), names, fontsize=7)
    ax.set_title(f"RDM of {n} conditions" + (" (ranks)" if rank else ""), fontsize=9)
    if colorbar:
        bar = ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        bar.set_label("rank (scaled)" if rank else "dissimilarity")
    return ax


def mds_embedding(rdm: Any, dims: int = 2, *, squared: bool = True) -> np.ndarray:
    """Classical (Torgerson) multidimensional scaling of an RDM: ``[n, dims]`` coordinates.

    With distances ``D`` (``sqrt(rdm)`` when ``squared``, else ``rdm``), the coordinates are
    the top ``dims`` eigenvectors of ``B = -1/2 J D^2 J`` (``J`` centres), each scaled by the
    square root of its eigenvalue (negative ones, from non-Euclidean dissimilarities, give 0).
    Where the dissimilarities are squared Euclidean distances of patterns in ``dims`` or fewer
    dimensions, the coordinates reproduce them exactly, up to rotation and reflection.

    Args:
        rdm: one RDM, ``[n_pairs]`` or ``[n, n]``.
        dims: number of coordinates, in ``[1, n]``.
        squared: the RDM holds squared distances, as every
            :func:`~neuronkit.interpretability.rdm` method does: ``"euclidean"``,
            ``"mahalanobis"`` and ``"crossnobis"`` are squared distances per channel,
            ``"correlation"`` (``1 - r``) is the squared distance of the standardized patterns
            over ``2 c``, and the Poisson divergences are locally squared distances (in the
            rates' Fisher metric, ``(dl)^2 / l``). ``False`` embeds the values themselves as
            distances.

    Returns:
        float64 ``[n, dims]``, centred; each column's largest entry in magnitude is positive.
    """
    check_type("squared", squared, bool)
    square = _one_rdm(rdm)
    n = square.shape[0]
    check_number("dims", dims, integer=True, ge=1, le=n)
    if squared:
        d2 = np.maximum(square, 0.0)  # crossnobis estimates can be slightly negative
    else:
        if square.min() < 0:
            raise ValueError(
                f"rdm must be >= 0 to be read as distances (squared=False), got minimum "
                f"{square.min():.6g}"
            )
        d2 = square * square
    centred = d2 - d2.mean(axis=0) - d2.mean(axis=1)[:, None] + d2.mean()
    values, vectors = np.linalg.eigh(-0.5 * centred)
    top = np.argsort(values)[::-1][:dims]
    coords = vectors[:, top] * np.sqrt(np.maximum(values[top], 0.0))
    flip = np.sign(coords[np.abs(coords).argmax(axis=0), np.arange(dims)])
    return coords * np.where(flip == 0, 1.0, flip)


def rdm_mds(
    rdm: Any,
    *,
    labels: Sequence[Any] | None = None,
    colors: Any = None,
    squared: bool = True,
    ax: Any = None,
) -> Any:
    """Draw the conditions of an RDM as points in the plane (:func:`mds_embedding`, 2-D).

    Args:
        rdm: one RDM, ``[n_pairs]`` or ``[n, n]``.
        labels: names of the ``n`` conditions, written next to their points.
        colors: one matplotlib colour, or one per condition (e.g. category indices, mapped
            through the default colour map).
        squared: as :func:`mds_embedding`.
        ax: matplotlib axes to draw on; default a new figure.

    Returns:
        The axes; the title gives the share of the embedding's variance the two axes keep.
    """
    square = _one_rdm(rdm)
    n = square.shape[0]
    if n < 3:
        raise ValueError(f"rdm must have at least 3 conditions for a 2-D embedding, got {n}")
    names = _labels(labels, n)
    full = mds_embedding(square, n, squared=squared)  # every dimension, for the variance
    coords = full[:, :2]
    ax = axes_or_new(ax, (4.0, 3.6))
    ax.scatter(coords[:, 0], coords[:, 1], c=colors, s=24)
    for i, name in enumerate(names or ()):
        ax.annotate(name, coords[i], fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("MDS 1")
    ax.set_ylabel("MDS 2")
    total = float((full**2).sum())
    kept = float((coords**2).sum()) / total if total > 0 else 1.0
    ax.set_title(f"classical MDS, {kept:.0%} of the variance", fontsize=9)
    return ax


#: error bars of :func:`model_comparison`
ERRORS = ("sem", "ci")


def model_comparison(
    evaluation: EvaluationTests | CrossValidation,
    *,
    error: str = "sem",
    level: float = 0.95,
    test: str = "t-test",
    ax: Any = None,
) -> Any:
    """Draw each model's mean evaluation as a bar with its error bar, and the noise ceiling as
    a grey band from its lower to its upper bound.

    Args:
        evaluation: from :func:`~neuronkit.interpretability.evaluate_models`,
            :func:`~neuronkit.interpretability.bootstrap_crossvalidate` or
            :func:`~neuronkit.interpretability.crossvalidate`; k-fold cross-validation has no
            variance estimate, so its folds' evaluations are drawn as dots instead of error
            bars (``error``, ``level`` and ``test`` are not used).
        error: ``"sem"`` (standard errors) or ``"ci"`` (confidence intervals at ``level``,
            :meth:`~neuronkit.interpretability.ModelEvaluation.ci` with ``test``).
        level: confidence level of ``error="ci"``.
        test: ``"t-test"`` or ``"bootstrap"`` (percentile) intervals for ``error="ci"``.
        ax: matplotlib axes to draw on; default a new figure.

    Returns:
        The axes.
    """
    check_type("evaluation", evaluation, (EvaluationTests, CrossValidation))
    check_choice("error", error, ERRORS)
    check_choice("test", test, TESTS)
    means = evaluation.means
    m = len(means)
    ax = axes_or_new(ax, (max(3.0, 0.6 * m + 1.5), 3.4))
    lower, upper = evaluation.noise_ceiling
    ax.axhspan(lower, upper, color="0.8", zorder=0, label="noise ceiling")
    ax.bar(range(m), means, color="C0", zorder=1)
    if isinstance(evaluation, CrossValidation):
        folds = evaluation.evaluations  # [F, M]
        ax.plot(np.arange(m), folds.T, "k.", markersize=3, zorder=2)
        title = (
            f"{int(evaluation.subject_fold.max()) + 1} subject x "
            f"{int(evaluation.condition_fold.max()) + 1} condition folds; dots: folds"
        )
    else:
        if error == "sem":
            below = above = evaluation.sem()
        else:
            low, high = evaluation.ci(level, test)
            below, above = means - low, high - means
        ax.errorbar(
            range(m), means, yerr=[below, above], fmt="none", ecolor="k", capsize=3, zorder=2
        )
        errors = "s.e.m." if error == "sem" else f"{level:.0%} CI ({test})"
        title = f"bootstrap: {evaluation.bootstrap or 'none'}; bars: {errors}"
    ax.axhline(0.0, color="k", linewidth=0.6)
    ax.set_xticks(
        range(m), evaluation.names, rotation=45 if m > 4 else 0, ha="right" if m > 4 else "center"
    )
    ax.set_ylabel(f"{evaluation.method} with the data RDMs")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="best", fontsize=7, frameon=False)
    return ax
