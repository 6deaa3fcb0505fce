"""TCAV: testing with concept activation vectors.

Kim, Wattenberg, Gilmer, Cai, Wexler, Viegas & Sayres, "Interpretability Beyond Feature
Attribution: Quantitative Testing with Concept Activation Vectors (TCAV)" (ICML 2018).

* A concept activation vector (CAV) of a layer is the normal of a linear classifier that
  separates the layer's activations on examples of a concept (striped images) from those on
  random examples, pointing towards the concept (:func:`train_cav`; the authors' default
  classifier, scikit-learn's ``SGDClassifier(alpha=0.01, max_iter=1000, tol=1e-3)``, unit
  length).
* The conceptual sensitivity of a class ``k`` at an input is the directional derivative of its
  logit along the CAV, ``S(x) = grad_a h_k(a(x)) . v``, and the TCAV score is the fraction of
  the class's inputs where it is positive (:func:`tcav_score`).
* A CAV can separate any two sets, so one score means little: :func:`tcav` trains the concept
  against several random sets, and one random set against the same sets, and a two-sided
  t-test of the two groups of scores says whether the concept's differ (the paper's
  statistical significance testing; reject at ``p < significance``, divided by the number of
  tests for a Bonferroni correction).

The layer's gradients at the inputs are computed once (one forward and backward pass, the
layers before it without a graph) and scored against every CAV with one matrix product.
Captum's ``TCAV`` stores activations on disk and trains its own classifier; its scores of the
same CAVs are the same numbers (``sign_count``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from neuronkit.common import check_number, check_seed, check_type, eval_mode, grad_enabled

from .attribution import Target, _check_inputs, _target_index
from .grad_cam import _layer_gradients
from .hooks import check_not_compiled, layer_activations, submodule

__all__ = ["CAV", "TCAVResult", "layer_sensitivities", "tcav", "tcav_score", "train_cav"]


@dataclass(frozen=True)
class CAV:
    """A concept activation vector: ``vector`` ``[D]`` (unit length, towards the concept, in
    the flattened activations of ``layer``) and the classifier's accuracy on held-out
    examples."""

    layer: str
    vector: torch.Tensor
    accuracy: float


@dataclass(frozen=True)
class TCAVResult:
    """:func:`tcav`'s result: the concept's TCAV scores against each random set and those of a
    random set against the same sets (``[R]`` each), the two-sided t-test's ``p_value`` and
    whether it is below ``significance``; ``cavs`` are the concept's CAVs."""

    scores: torch.Tensor
    random_scores: torch.Tensor
    p_value: float
    significant: bool
    cavs: tuple[CAV, ...]

    @property
    def mean(self) -> float:
        return float(self.scores.mean())


def _activations(
    model: nn.Module, layer: str, inputs: torch.Tensor, batch_size: int | None, name: str
) -> np.ndarray:
    with eval_mode(model):
        acts = layer_activations(model, inputs, layer, batch_size=batch_size, name=name)[layer]
    return acts.double().cpu().numpy()


def train_cav(
    model: nn.Module,
    layer: str,
    concept_inputs: torch.Tensor,
    random_inputs: torch.Tensor,
    *,
    alpha: float = 0.01,
    test_fraction: float = 0.33,
    seed: int = 0,
    batch_size: int | None = None,
) -> CAV:
    """The CAV of a concept at ``layer``.

    Args:
        model: the network (runs in eval mode; its flags are restored).
        layer: the layer's name in ``model.named_modules()``; its output ``[N, ...]`` is
            flattened.
        concept_inputs: ``[Nc, ...]`` examples of the concept.
        random_inputs: ``[Nr, ...]`` random (counter-)examples.
        alpha: the classifier's L2 penalty (``SGDClassifier``'s, the authors' 0.01).
        test_fraction: share of each set held out for the accuracy (Captum's 0.33).
        seed: the split's and the classifier's seed.
        batch_size: examples per forward pass (default: all).

    Returns:
        the :class:`CAV`.
    """
    from sklearn.linear_model import SGDClassifier

    check_type("model", model, nn.Module)
    check_type("layer", layer, str)
    check_number("alpha", alpha, gt=0.0)
    check_number("test_fraction", test_fraction, gt=0.0, lt=1.0)
    check_seed(seed)
    for name, x in (("concept_inputs", concept_inputs), ("random_inputs", random_inputs)):
        _check_inputs(x, name)
        if x.shape[0] < 2:
            raise ValueError(f"{name} must hold at least 2 examples, got {x.shape[0]}")
    concept = _activations(model, layer, concept_inputs, batch_size, "concept_inputs")
    random = _activations(model, layer, random_inputs, batch_size, "random_inputs")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label, acts in ((1, concept), (0, random)):  # a stratified split
        order = rng.permutation(len(acts))
        n_test = min(len(acts) - 1, max(1, round(test_fraction * len(acts))))
        test.append((acts[order[:n_test]], np.full(n_test, label)))
        train.append((acts[order[n_test:]], np.full(len(acts) - n_test, label)))
    x_train, y_train = (np.concatenate(parts) for parts in zip(*train, strict=True))
    x_test, y_test = (np.concatenate(parts) for parts in zip(*test, strict=True))
    classifier = SGDClassifier(  # scikit-learn takes seeds below 2**32
        alpha=alpha, max_iter=1000, tol=1e-3, random_state=seed % 2**32
    )
    classifier.fit(x_train, y_train)
    accuracy = float(classifier.score(x_test, y_test))
    normal = classifier.coef_[0]  # positive on the concept's side (label 1)
    norm = float(np.linalg.norm(normal))
    if norm == 0:
        raise ValueError(
            f"the classifier at layer {layer!r} found no direction between the concept and "
            "random examples (all weights 0): are their activations identical?"
        )
    vector = torch.from_numpy(normal / norm)
    return CAV(layer, vector, accuracy)


@grad_enabled("layer_sensitivities")
def layer_sensitivities(
    model: nn.Module, inputs: torch.Tensor, layer: str, target: Target = None
) -> torch.Tensor:
    """``[B, D]``: the gradient of each example's target output with respect to ``layer``'s
    flattened output (one pass; the directional derivatives along CAVs are its products with
    them)."""
    check_type("model", model, nn.Module)
    check_not_compiled("model", model)
    check_type("layer", layer, str)
    _check_inputs(inputs)
    t = _target_index(target, inputs.shape[0], inputs.device)
    _, grads = _layer_gradients(model, submodule(model, layer), inputs, t, False)
    return grads.reshape(inputs.shape[0], -1)


def tcav_score(
    model: nn.Module, inputs: torch.Tensor, target: Target, cav: CAV | Sequence[CAV]
) -> torch.Tensor:
    """The TCAV score: the fraction of ``inputs`` whose target output grows along the CAV.

    Args:
        model, target: as for the attribution methods (``target``: the class, e.g. ``"zebra"``'s
            index, for the inputs of that class).
        inputs: ``[B, ...]`` examples (of the class, in the paper).
        cav: a :class:`CAV`, or several of one layer.

    Returns:
        ``[]`` for one CAV, ``[K]`` for ``K``.
    """
    many = not isinstance(cav, CAV)
    cavs: list[CAV] = [cav] if isinstance(cav, CAV) else list(cav)
    if not cavs or not all(isinstance(c, CAV) for c in cavs):
        raise TypeError("cav must be a CAV or a sequence of CAVs (from train_cav)")
    layers = {c.layer for c in cavs}
    if len(layers) != 1:
        raise ValueError(f"cav: the CAVs must be of one layer, got {sorted(layers)}")
    sens = layer_sensitivities(model, inputs, cavs[0].layer, target)  # [B, D]
    vectors = torch.stack([c.vector for c in cavs]).to(sens)  # [K, D]
    if vectors.shape[1] != sens.shape[1]:
        raise ValueError(
            f"cav: the CAVs have {vectors.shape[1]} entries, the layer's output has "
            f"{sens.shape[1]} per example"
        )
    scores = (sens @ vectors.T > 0).double().mean(0)
    return scores if many else scores[0]


def tcav(
    model: nn.Module,
    inputs: torch.Tensor,
    layer: str,
    target: Target,
    concept_inputs: torch.Tensor,
    random_inputs: Sequence[torch.Tensor],
    *,
    significance: float = 0.05,
    alpha: float = 0.01,
    test_fraction: float = 0.33,
    seed: int = 0,
    batch_size: int | None = None,
) -> TCAVResult:
    """TCAV with the paper's significance test.

    Args:
        model: the network.
        inputs: ``[B, ...]`` examples of the class ``target``.
        layer: the layer's name in ``model.named_modules()``.
        target: the class index (or indices, one per input).
        concept_inputs: ``[Nc, ...]`` examples of the concept.
        random_inputs: ``R + 1`` sets of random examples, each ``[Nr, ...]`` (the paper: 500
            random sets of 50-100 images). The concept is trained against sets ``1 .. R``, and
            set 0 against the same ``R`` sets for the random scores.
        significance: the test's level (0.05 in the paper; divide it by the number of
            concepts and layers tested for Bonferroni's correction).
        alpha, test_fraction, seed, batch_size: as :func:`train_cav` (CAV ``i`` gets seed
            ``seed + i``).

    Returns:
        a :class:`TCAVResult`.
    """
    from scipy.stats import ttest_ind

    check_number("significance", significance, gt=0.0, lt=1.0)
    if isinstance(random_inputs, torch.Tensor) or not isinstance(random_inputs, Sequence):
        raise TypeError("random_inputs must be a sequence of [N, ...] tensors (R + 1 sets)")
    if len(random_inputs) < 3:
        raise ValueError(
            f"random_inputs must hold at least 3 sets (a random 'concept' and 2 to test "
            f"against), got {len(random_inputs)}"
        )

    def cav_of(positives: torch.Tensor, negatives: torch.Tensor, i: int) -> CAV:
        return train_cav(
            model,
            layer,
            positives,
            negatives,
            alpha=alpha,
            test_fraction=test_fraction,
            seed=seed + i,
            batch_size=batch_size,
        )

    negatives = random_inputs[1:]
    cavs = tuple(cav_of(concept_inputs, neg, i) for i, neg in enumerate(negatives))
    random_cavs = [cav_of(random_inputs[0], neg, i) for i, neg in enumerate(negatives)]
    scores = tcav_score(model, inputs, target, [*cavs, *random_cavs])
    ours, theirs = scores[: len(cavs)], scores[len(cavs) :]
    p_value = float(ttest_ind(ours.numpy(), theirs.numpy()).pvalue)
    if math.isnan(p_value):  # both groups constant: equal, or separated without overlap
        p_value = 1.0 if float(ours.mean()) == float(theirs.mean()) else 0.0
    return TCAVResult(ours, theirs, p_value, p_value < significance, cavs)
