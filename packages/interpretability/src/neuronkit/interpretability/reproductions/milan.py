"""Reproduction: describing neurons in language by PMI decoding (MILAN).

Hernandez, Schwettmann, Bau, Bagashvili, Torralba & Andreas, "Natural Language Descriptions of
Deep Visual Features" (ICLR 2022).

1. Synthetic compositional scenes (colour x shape x position) and two populations of units
   with planted selectivities (colours, shapes, positions, colour-shape conjunctions, "any
   object"): a training population on one image set and a disjoint evaluation population
   (other units, other weights, other images).
2. Exemplars (top-15 images, masks above the 0.99 activation quantile) for every unit.
3. MILANNOTATIONS-like training data: 3 descriptions per training unit, each generic
   ("shapes", "objects") with probability 0.5, otherwise a paraphrase of the planted concept.
4. A captioner ``p(d | E)`` (CNN encoder pretrained on dense labels of other scenes, masked
   pyramid pooling, attention LSTM) and a language prior ``p(d)`` (LSTM LM over the training
   descriptions), both trained here.
5. Held-out units described by beam search + PMI reranking (``lambda = 0.2``, the authors'
   default) and by max likelihood (``lambda = 0``); a description is correct when it names the
   planted concept (any paraphrase).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch

from neuronkit.common import Check, RunContext, new_figure, reproduction
from neuronkit.interpretability.data.compositional import (
    CONCEPT_KINDS,
    Concept,
    annotate,
    compositional_images,
    parse_description,
    planted_population,
)
from neuronkit.interpretability.description import (
    DEFAULT_LAMBDA,
    DescriptionLM,
    ExemplarCaptioner,
    ExemplarEncoder,
    Vocabulary,
    compute_exemplars,
    describe_units,
)

LAMBDAS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)


@reproduction(
    id="interpretability.milan",
    paper="Natural Language Descriptions of Deep Visual Features",
    claim=(
        "on synthetic compositional images (color x shape x position) where neurons have "
        "planted selectivities, PMI decoding names the planted concept for >= 70% of "
        "held-out neurons and beats max-likelihood decoding, which prefers generic "
        "descriptions"
    ),
    checks=[
        Check(
            "pmi_accuracy",
            ">=",
            0.7,
            "share of held-out units whose PMI description (lambda=0.2) names the planted concept",
        ),
        Check(
            "pmi_minus_ml_accuracy",
            ">",
            0.0,
            "PMI accuracy minus max-likelihood (lambda=0) accuracy on the same units",
        ),
        Check(
            "ml_minus_pmi_generic_share",
            ">",
            0.0,
            "on units with a specific planted concept: share named by a generic description "
            "under max likelihood minus the share under PMI (ML prefers generic descriptions)",
        ),
    ],
    seed=0,
    threads=1,  # tiny models: one thread is fastest and immune to oversubscription
)
def run(ctx: RunContext) -> None:
    quick = ctx.quick
    seed = ctx.seed
    n_images = 800 if quick else 1500
    n_train_units = 600 if quick else 1500
    n_eval_units = 100 if quick else 300
    k = 15
    p_generic = 0.5
    width = 24
    pretrain_epochs = 4
    caption_epochs = 15
    beam_size = 20

    train_images = compositional_images(n_images, seed=1000 * seed + 1)
    eval_images = compositional_images(n_images, seed=1000 * seed + 2)
    encoder = ExemplarEncoder(width=width, seed=seed)
    pre = encoder.pretrain(
        train_images.images,
        train_images.pixel_labels,
        epochs=pretrain_epochs,
        batch_size=16,
        lr=1e-2,
        seed=seed,
    )
    ctx.log(f"encoder pretrained (dense colour/shape/quadrant loss {pre[0]:.3f} -> {pre[-1]:.3f})")

    train_net = planted_population(n_train_units, seed=1000 * seed + 10)
    eval_net = planted_population(n_eval_units, seed=1000 * seed + 20)
    train_ex = compute_exemplars(train_net, train_images.images, "units", k=k, quantile=0.99)
    eval_ex = compute_exemplars(eval_net, eval_images.images, "units", k=k, quantile=0.99)
    ctx.log(
        f"exemplars: {len(train_ex)} training and {len(eval_ex)} held-out units, "
        f"mean mask coverage {float(eval_ex.masks.mean()):.3f}"
    )

    annotations = [annotate(c, 3, p_generic=p_generic, seed=ctx.rng) for c in train_net.concepts]
    texts = [d for group in annotations for d in group]
    vocabulary = Vocabulary.from_descriptions(texts)
    captioner = ExemplarCaptioner(vocabulary, encoder, hidden_size=96, embedding_size=48, seed=seed)
    features = encoder.encode_indexed(train_images.images, train_ex.indices, train_ex.masks)
    cap_loss = captioner.fit_features(
        features, annotations, epochs=caption_epochs, batch_size=64, lr=3e-3, seed=seed
    )
    prior = DescriptionLM(vocabulary, seed=seed)
    lm_loss = prior.fit(texts, epochs=10, seed=seed)
    ctx.log(f"captioner NLL {cap_loss[0]:.3f} -> {cap_loss[-1]:.3f}; prior NLL {lm_loss[-1]:.3f}")

    descriptions = describe_units(
        captioner, eval_ex, prior=prior, lam=DEFAULT_LAMBDA, beam_size=beam_size, max_length=8
    )
    truth = eval_net.concepts

    def correct(texts: list[str]) -> np.ndarray:
        return np.array(
            [parse_description(t) == c for t, c in zip(texts, truth, strict=True)], dtype=bool
        )

    pmi_texts = [d.text for d in descriptions]
    ml_texts = [d.rerank(0.0) for d in descriptions]
    pmi_ok, ml_ok = correct(pmi_texts), correct(ml_texts)
    specific = np.array([not c.is_generic for c in truth])

    def generic_share(texts: list[str]) -> float:
        parsed = [parse_description(t) for t in texts]
        flags = [p is not None and p.is_generic for p, s in zip(parsed, specific, strict=True) if s]
        return float(np.mean(flags))

    sweep = {lam: correct([d.rerank(lam) for d in descriptions]) for lam in LAMBDAS}
    pmi_acc, ml_acc = float(pmi_ok.mean()), float(ml_ok.mean())
    ctx.metric("pmi_accuracy", pmi_acc)
    ctx.metric("ml_accuracy", ml_acc)
    ml_generic, pmi_generic = generic_share(ml_texts), generic_share(pmi_texts)
    ctx.metric("ml_generic_share_on_specific_units", ml_generic)
    ctx.metric("pmi_generic_share_on_specific_units", pmi_generic)
    ctx.metric("accuracy_by_lambda", {str(lam): float(v.mean()) for lam, v in sweep.items()})
    ctx.metric("captioner_nll", [round(x, 4) for x in cap_loss])
    ctx.metric("training_descriptions", dict(Counter(texts).most_common(8)))

    rows = []
    for kind in CONCEPT_KINDS:
        sel = np.array([c.kind == kind for c in truth])
        if sel.any():
            rows.append(
                {
                    "planted kind": kind,
                    "units": int(sel.sum()),
                    "PMI accuracy": round(float(pmi_ok[sel].mean()), 3),
                    "ML accuracy": round(float(ml_ok[sel].mean()), 3),
                    "ML generic share": round(
                        float(
                            np.mean(
                                [
                                    (p := parse_description(t)) is not None and p.is_generic
                                    for t, s in zip(ml_texts, sel, strict=True)
                                    if s
                                ]
                            )
                        ),
                        3,
                    ),
                }
            )
    rows.append(
        {
            "planted kind": "all",
            "units": len(truth),
            "PMI accuracy": round(pmi_acc, 3),
            "ML accuracy": round(ml_acc, 3),
            "ML generic share": round(
                float(
                    np.mean(
                        [(p := parse_description(t)) is not None and p.is_generic for t in ml_texts]
                    )
                ),
                3,
            ),
        }
    )
    ctx.table("Held-out units: PMI (lambda=0.2) vs max-likelihood decoding", rows)
    ctx.table(
        "Accuracy by prior weight lambda (same beams, reranked)",
        [{"lambda": lam, "accuracy": round(float(v.mean()), 3)} for lam, v in sweep.items()],
    )
    ctx.table(
        "Examples (first 12 held-out units)",
        [
            {
                "planted": str(c),
                "PMI": p,
                "ML": m,
                "PMI ok": bool(a),
                "ML ok": bool(b),
            }
            for c, p, m, a, b in list(zip(truth, pmi_texts, ml_texts, pmi_ok, ml_ok, strict=True))[
                :12
            ]
        ],
    )
    _figures(ctx, eval_ex.images, eval_ex.masks, truth, pmi_texts, ml_texts, sweep)

    ctx.note(
        f"Scenes: {n_images} training and {n_images} held-out 16x16 images with 1-3 objects "
        f"(4 colours x 4 shapes x 4 quadrants, brightness 0.5-1). Units: a fixed detector bank "
        f"(colour similarity, normalised template matching, half-plane masks, presence) read by "
        f"a 1x1 convolution with planted weights (+ N(0, 0.02) weights on every detector), "
        f"ReLU, 2x2 average pooling; 10% of units detect any object, the rest are spread "
        f"evenly over 4 colours, 4 shapes, 4 positions and 16 colour-shape conjunctions. "
        f"{n_train_units} training units and {n_eval_units} held-out units come from different "
        f"weights and different images. Exemplars: top {k} images by max-pooled activation, "
        f"masks where the bilinearly upsampled map exceeds the unit's 0.99 quantile. "
        f"Annotations: 3 per training unit, each generic ('shapes' 60% / 'objects' 40%) with "
        f"probability {p_generic}, otherwise one of the concept's paraphrases; generic "
        f"strings are thus the most frequent captions, as in MILANNOTATIONS."
    )
    ctx.note(
        f"Captioner: CNN (3 layers, width {width}, coordinate channels) pretrained "
        f"{pretrain_epochs} epochs on dense colour/shape/quadrant labels of the training scenes "
        f"(our stand-in for the paper's ImageNet-pretrained ResNet), frozen; masked pyramid "
        f"pooling; Show-Attend-and-Tell LSTM decoder (hidden 96) trained {caption_epochs} "
        f"epochs. Prior: 1-layer LSTM LM on the training descriptions only. Decoding: beam "
        f"search (beam {beam_size}) on p(d|E), reranked by log p(d|E) - lambda log p(d) with "
        f"lambda = {DEFAULT_LAMBDA} (the authors' default temperature); max likelihood is the "
        f"top beam (lambda = 0). The paper uses beam 50, k = 15 and a ResNet encoder; we use "
        f"smaller models for CPU. A description counts as correct when it names exactly the "
        f"planted concept (any paraphrase; generic units must get a generic description)."
    )
    ctx.note(
        "Design choices fixed after pilot runs (disclosed): the random per-detector weight "
        "std was lowered from 0.05 to 0.02 (at 0.05 the top-15 exemplars of position and "
        "any-object units were dominated by their random colour/shape preferences, so even a "
        "supervised linear probe of the exemplar features identified only ~70% of held-out "
        "concepts); the encoder width (16 -> 24), pretraining (lr 1e-2, batch 16), a "
        "LayerNorm on exemplar features and a linear learning-rate decay for the captioner "
        "were chosen to make the captioner fit. lambda = 0.2, p_generic = 0.5 and the "
        "thresholds were fixed before any run. Training differs from the authors' "
        "Decoder.fit (milan/decoders.py): no doubly stochastic attention penalty (their "
        "weight 1), dropout 0.3 (theirs 0.5), Adam with a fixed schedule instead of AdamW "
        "with early stopping on validation BLEU; in an audit, adding their penalty and "
        "dropout moved quick PMI accuracy by -0.06 to +0.03 over seeds 0-3 (seed noise)."
    )
    by_kind = ", ".join(
        f"{r['planted kind']} {r['PMI accuracy']:.2f} (ML {r['ML accuracy']:.2f}, n={r['units']})"
        for r in rows[:-1]
    )
    ctx.note(
        f"Accuracy by planted kind, PMI (ML): {by_kind}. Colour-shape conjunctions are "
        f"16 of the 28 specific concepts, so they make up about half "
        f"of the units and of the overall accuracy; max likelihood already names most of them "
        f"(the captioner is confident about conjunctions), while for single colours, shapes "
        f"and positions it almost always answers 'shapes'/'objects'. PMI recovers many colour "
        f"units, but single-shape and position units stay hard, for two different reasons "
        f"(audit of quick seeds 0-2). Position units: their small random weights on the other "
        f"half-plane detectors put 73-84% of their top-15 exemplars in one quadrant, so a "
        f"'right' unit's exemplar set looks like a 'top' or 'bottom' unit's; a classifier "
        f"given the true colour, shape and quadrant of every exemplar names only 25-64% of "
        f"held-out position units. Shape units: their exemplars are as mixed in colour "
        f"(modal colour ~50%) as colour units' are in shape (~60%), and that classifier names "
        f"83-100% of them, so the limit is our small captioner: trained on 600 units (quick), "
        f"it puts 0.11-0.22 of its probability on the shape's descriptions (calibrated: 0.5), "
        f"too little for the prior term at lambda = {DEFAULT_LAMBDA} to overturn 'shapes'; "
        f"trained on 1500 (full mode, seed 0) it names 0.47 of shape units. "
        f"The overall check can pass while these kinds fail; read the per-kind table. Over "
        f"quick seeds 0-3 PMI accuracy is 0.71, 0.70, 0.70, 0.62: the pass is marginal."
    )
    ctx.check("pmi_accuracy", pmi_acc)
    ctx.check("pmi_minus_ml_accuracy", pmi_acc - ml_acc)
    ctx.check("ml_minus_pmi_generic_share", ml_generic - pmi_generic)


def _figures(
    ctx: RunContext,
    images: torch.Tensor,
    masks: torch.Tensor,
    truth: list[Concept],
    pmi: list[str],
    ml: list[str],
    sweep: dict[float, np.ndarray],
) -> None:
    n_units, n_show = min(6, len(truth)), 5
    fig, axes = new_figure(n_units, n_show, figsize=(2.0 * n_show, 2.1 * n_units))
    for r in range(n_units):
        for c in range(n_show):
            ax = axes[r, c]
            shown = images[r, c] * (0.25 + 0.75 * masks[r, c])
            ax.imshow(shown.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(f"planted: {truth[r]}", fontsize=7)
        axes[r, 2].set_title(f"PMI: {pmi[r]}  |  ML: {ml[r]}", fontsize=7)
    ctx.save_figure("milan_exemplars", fig)

    fig, ax = new_figure()
    lams = list(sweep)
    ax.plot(lams, [float(sweep[lam].mean()) for lam in lams], "o-")
    ax.axvline(DEFAULT_LAMBDA, color="grey", ls=":", lw=0.8)
    ax.axhline(0.7, color="grey", lw=0.8)
    ax.set_xlabel("lambda (weight of the language prior)")
    ax.set_ylabel("held-out units named correctly")
    ax.set_title("MILAN: PMI reranking vs max likelihood (lambda = 0)")
    ctx.save_figure("milan_accuracy_by_lambda", fig)
