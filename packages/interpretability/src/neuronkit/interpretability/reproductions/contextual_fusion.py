"""Reproduction: contextual (object + scene) late fusion for adversarial and blur robustness.

Akumalla, Haney & Bazhenov, "Contextual Fusion For Adversarial Robustness" (arXiv 2011.09526).

Scenes carry the class twice: a scikit-learn digit (the object) in a central box and a
class-correlated grating (the context) around it, agreeing with the label 90% of the time.
As in the paper, two backbones are trained on their own tasks and then frozen: an object CNN
on the object crop (the paper's ImageNet-CNN) and a scene CNN on the whole scene predicting
the scene category (the Places-CNN). Three linear classifiers read their features: object-only,
context-only and the joint (late-fusion) classifier on the concatenated features. All are
evaluated on the same held-out scenes under white-box FGSM / PGD (gradients through each
whole model; the object-only model's attack lands on its own crop) and Gaussian blur of the
scene. The adversary-aware regularizer ``alpha * ||W_object||^2`` is swept on the fused head.
"""

from __future__ import annotations

import numpy as np
import torch

from neuronkit.common import Check, RunContext, new_figure, reproduction
from neuronkit.interpretability import accuracy, fgsm_attack, train_classifier
from neuronkit.interpretability.data.object_context import object_context
from neuronkit.interpretability.fusion import (
    LateFusionClassifier,
    RobustnessCurves,
    StreamClassifier,
    StreamCNN,
    gaussian_blur,
    robustness_curves,
    train_head,
)

# fixed before running (inputs are in [0, 1]; the digit box is 8x8 pixels)
EPS = 0.1  # L-inf FGSM radius of the checks
SIGMA = 1.0  # Gaussian blur sigma (pixels) of the checks
AGREEMENT = 0.9  # P(scene category == label)
FGSM_EPS = (0.02, 0.05, 0.1, 0.15, 0.2)
PGD_EPS_QUICK = (0.05, 0.1)
PGD_EPS_FULL = (0.02, 0.05, 0.1, 0.15)
BLUR_SIGMAS = (0.5, 1.0, 1.5, 2.0)
ALPHAS_QUICK = (0.0, 1e-2, 1e-1)
ALPHAS_FULL = (0.0, 1e-3, 1e-2, 1e-1, 1.0)
MODELS = ("object", "context", "fused")


@reproduction(
    id="interpretability.contextual_fusion",
    paper="Contextual Fusion For Adversarial Robustness",
    claim=(
        "on data where the class is carried by object and context, fusion beats the "
        "object-only model under FGSM and blur by >= 5 points at <= 1 point clean-accuracy cost"
    ),
    checks=[
        Check(
            "fgsm_gain",
            ">=",
            0.05,
            "fused minus object-only accuracy under FGSM (L-inf eps=0.1)",
        ),
        Check(
            "blur_gain",
            ">=",
            0.05,
            "fused minus object-only accuracy under Gaussian blur (sigma=1.0 px)",
        ),
        Check("clean_cost", "<=", 0.01, "object-only minus fused clean accuracy"),
    ],
    seed=0,
    threads=1,
)
def run(ctx: RunContext) -> None:
    quick = ctx.quick
    seeds = [ctx.seed + i for i in range(3)]
    copies = 1 if quick else 2
    backbone_epochs = 10 if quick else 30
    head_epochs = 30 if quick else 80
    pgd_eps = PGD_EPS_QUICK if quick else PGD_EPS_FULL
    alphas = ALPHAS_QUICK if quick else ALPHAS_FULL
    n_eval = 400 if quick else None
    curves: dict[str, list[RobustnessCurves]] = {m: [] for m in MODELS}
    reg_rows: list[dict[str, object]] = []
    reg: dict[float, list[tuple[float, float, float, float]]] = {a: [] for a in alphas}
    example = None
    for seed in seeds:
        data = object_context(agreement=AGREEMENT, copies=copies, seed=seed)
        train, test = data.split(0.7, seed=seed)
        if n_eval is not None:
            test = test.subset(torch.arange(min(n_eval, len(test))))
        if example is None:
            example = test
        # backbones, each trained on its own task then frozen (ImageNet-CNN / Places-CNN)
        obj_pre = StreamClassifier(StreamCNN(seed=seed), 10, box=data.box)
        ctx_pre = StreamClassifier(StreamCNN(stride=2, seed=seed + 1000), 10)
        train_classifier(
            obj_pre, train.scenes, train.y, epochs=backbone_epochs, batch_size=64, seed=seed
        )
        train_classifier(
            ctx_pre, train.scenes, train.context, epochs=backbone_epochs, batch_size=64, seed=seed
        )
        obj_pre.eval()
        ctx_pre.eval()
        ctx.log(
            f"seed {seed}: object backbone acc {accuracy(obj_pre, test.scenes, test.y):.3f}, "
            f"scene backbone category acc {accuracy(ctx_pre, test.scenes, test.context):.3f}, "
            f"observed agreement {test.agreement:.3f}"
        )
        models: dict[str, StreamClassifier | LateFusionClassifier] = {
            "object": StreamClassifier(obj_pre.backbone, 10, box=data.box),
            "context": StreamClassifier(ctx_pre.backbone, 10),
            "fused": LateFusionClassifier(obj_pre.backbone, ctx_pre.backbone, 10, box=data.box),
        }
        for name, model in models.items():
            torch.manual_seed(seed)
            model.head.reset_parameters()
            train_head(model, train.scenes, train.y, epochs=head_epochs, seed=seed)
            model.eval()
            c = robustness_curves(
                model,
                test.scenes,
                test.y,
                fgsm_eps=FGSM_EPS,
                pgd_eps=pgd_eps,
                blur_sigmas=BLUR_SIGMAS,
            )
            curves[name].append(c)
            ctx.log(
                f"seed {seed} {name}: clean {c.clean:.3f}, FGSM({EPS}) {c.at('fgsm', EPS):.3f}, "
                f"blur({SIGMA}) {c.at('blur', SIGMA):.3f}"
            )
        # the paper's known adversary: FGSM computed on the foreground (object) network alone
        # and shown to the fused model (its perturbation lies inside the object box)
        fg_adv = fgsm_attack(models["object"], test.scenes, test.y, eps=EPS, clamp=(0.0, 1.0))
        for alpha in alphas:
            if alpha == 0.0:  # the fused model above
                fused = models["fused"]
                c = curves["fused"][-1]
            else:
                fused = LateFusionClassifier(obj_pre.backbone, ctx_pre.backbone, 10, box=data.box)
                torch.manual_seed(seed)
                fused.head.reset_parameters()
                train_head(fused, train.scenes, train.y, epochs=head_epochs, alpha=alpha, seed=seed)
                fused.eval()
                c = robustness_curves(
                    fused, test.scenes, test.y, fgsm_eps=(EPS,), blur_sigmas=(SIGMA,)
                )
            assert isinstance(fused, LateFusionClassifier)
            with torch.no_grad():
                ratio = float(
                    fused.stream_weight("object").norm() / fused.stream_weight("context").norm()
                )
            fgsm_acc, blur_acc = c.at("fgsm", EPS), c.at("blur", SIGMA)
            fg_acc = accuracy(fused, fg_adv, test.y)
            reg[alpha].append((c.clean, fgsm_acc, blur_acc, fg_acc))
            reg_rows.append(
                {
                    "seed": seed,
                    "alpha": alpha,
                    "clean acc": round(c.clean, 4),
                    f"FGSM eps={EPS} acc": round(fgsm_acc, 4),
                    f"blur sigma={SIGMA} acc": round(blur_acc, 4),
                    f"foreground-only FGSM eps={EPS} acc": round(fg_acc, 4),
                    "||W_object|| / ||W_context||": round(ratio, 3),
                }
            )

    def mean(name: str, attr: str) -> np.ndarray:
        return np.mean([np.asarray(getattr(c, attr), dtype=float) for c in curves[name]], axis=0)

    summary = {
        name: {
            "clean": float(mean(name, "clean")),
            "fgsm": mean(name, "fgsm").tolist(),
            "pgd": mean(name, "pgd").tolist(),
            "blur": mean(name, "blur").tolist(),
        }
        for name in MODELS
    }
    ctx.metric("fgsm_eps", list(FGSM_EPS))
    ctx.metric("pgd_eps", list(pgd_eps))
    ctx.metric("blur_sigmas", list(BLUR_SIGMAS))
    ctx.metric("accuracy", summary)
    ctx.metric(
        "regularizer_sweep",
        {
            str(a): dict(
                zip(
                    ("clean", "fgsm", "blur", "fgsm_foreground_only"),
                    np.mean(reg[a], axis=0).round(4).tolist(),
                    strict=True,
                )
            )
            for a in alphas
        },
    )
    rows = []
    for name in MODELS:
        row: dict[str, object] = {"model": name, "clean": round(summary[name]["clean"], 4)}
        for e, v in zip(FGSM_EPS, summary[name]["fgsm"], strict=True):
            row[f"FGSM {e}"] = round(v, 4)
        for e, v in zip(pgd_eps, summary[name]["pgd"], strict=True):
            row[f"PGD {e}"] = round(v, 4)
        for s, v in zip(BLUR_SIGMAS, summary[name]["blur"], strict=True):
            row[f"blur {s}"] = round(v, 4)
        rows.append(row)
    ctx.table(f"Accuracy (mean over {len(seeds)} seed(s))", rows)
    ctx.table("Adversary-aware regularizer alpha * ||W_object||^2 on the fused head", reg_rows)

    i_eps = FGSM_EPS.index(EPS)
    i_sigma = BLUR_SIGMAS.index(SIGMA)
    ctx.check("fgsm_gain", summary["fused"]["fgsm"][i_eps] - summary["object"]["fgsm"][i_eps])
    ctx.check("blur_gain", summary["fused"]["blur"][i_sigma] - summary["object"]["blur"][i_sigma])
    ctx.check("clean_cost", summary["object"]["clean"] - summary["fused"]["clean"])

    gains = {
        kind: [
            round(f - o, 4)
            for f, o in zip(summary["fused"][kind], summary["object"][kind], strict=True)
        ]
        for kind in ("fgsm", "pgd", "blur")
    }
    ctx.metric("fused_minus_object", gains)
    ctx.note(
        "Fused minus object-only accuracy per level: FGSM "
        + ", ".join(f"eps {e}: {g:+.3f}" for e, g in zip(FGSM_EPS, gains["fgsm"], strict=True))
        + "; PGD "
        + ", ".join(f"eps {e}: {g:+.3f}" for e, g in zip(pgd_eps, gains["pgd"], strict=True))
        + "; blur "
        + ", ".join(f"sigma {s}: {g:+.3f}" for s, g in zip(BLUR_SIGMAS, gains["blur"], strict=True))
        + ". The attack on the fused model also perturbs the context stream, whose accuracy "
        "falls first (see the context-only curve), so a gain at one level need not hold at all."
    )

    fig, axes = new_figure(1, 3, figsize=(11.0, 3.4))
    styles = {"object": "o-", "context": "s--", "fused": "^-"}
    for ax, (kind, levels, xlabel) in zip(
        axes,
        (
            ("fgsm", FGSM_EPS, "FGSM eps (L-inf)"),
            ("pgd", pgd_eps, "PGD eps (L-inf, 10 steps)"),
            ("blur", BLUR_SIGMAS, "Gaussian blur sigma (px)"),
        ),
        strict=True,
    ):
        for name in MODELS:
            ax.plot(
                [0.0, *levels],
                [summary[name]["clean"], *summary[name][kind]],
                styles[name],
                label=name,
            )
        ax.set_xlabel(xlabel)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy")
    axes[0].legend(fontsize=8)
    ctx.save_figure("fusion_robustness", fig)

    assert example is not None
    n_show = 5
    fig, axes = new_figure(3, n_show, figsize=(7.5, 4.6))
    blurred = gaussian_blur(example.scenes[:n_show], SIGMA)
    for col in range(n_show):
        for r, (img, title) in enumerate(
            (
                (example.scenes[col, 0], "scene"),
                (example.objects[col, 0], "object crop"),
                (blurred[col, 0].clamp(0, 1), f"blur {SIGMA}"),
            )
        ):
            ax = axes[r, col]
            ax.imshow(img.numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(title, fontsize=8)
        axes[0, col].set_title(
            f"y={int(example.y[col])} ctx={int(example.context[col])}", fontsize=8
        )
    ctx.save_figure("example_inputs", fig)

    ctx.note(
        f"Data: scikit-learn 8x8 digits (the object, in the central box) on a 24x24 scene whose "
        f"grating (5 orientations x 2 frequencies, random phase, pixel noise 0.1) is the scene "
        f"category; category = label with probability {AGREEMENT}, else another class at "
        f"random. Split 70/30 by source digit ({copies} scene(s) per digit); "
        f"{'first 400 test scenes evaluated' if quick else 'all test scenes evaluated'}. "
        f"Backbones (2 conv + pool + 64-d feature layer; the paper: ResNet18 on ImageNet / "
        f"Places365) are trained {backbone_epochs} epochs on their own task (digit from the "
        f"crop; scene category from the full scene) and frozen; the three linear heads "
        f"(object 64-d, context 64-d, fused 128-d) are trained {head_epochs} epochs on the "
        f"label. Attacks are white-box on each whole model (FGSM; PGD 10 steps of 2.5 eps/10), "
        f"inputs clamped to [0, 1]; the object-only model reads only its box, so its attack is "
        f"the same attack on its own input. Blur acts on the whole scene. The regularizer sweep "
        f"also reports the paper's known-adversary case: FGSM computed on the object-only "
        f"model (the foreground network) and shown to the fused model. Check levels fixed "
        f"before running: eps={EPS}, sigma={SIGMA}. Mean over seeds {seeds}."
    )
    ctx.note(
        "Before neuronkit-interpretability 0.5.11 quick mode trained one seed, and its FGSM pass "
        "(+6.3 points at seed 0) was a good draw: an audit at quick settings measured per-seed "
        "gains of +6.2, -7.7, +6.0, 0.0, -0.7 and +7.5 points for seeds 0-5 (mean +1.9), so quick "
        "mode now runs the full mode's three seeds. Measured in the same audit (full settings, "
        "seeds 0-2): the fused model's own FGSM restricted to the object box leaves it about 20 "
        "points above the object-only model, restricted to the background it barely hurts "
        "(0.97-0.98), but both together erase the gain: the context stream is the more fragile "
        "one (context-only accuracy about 3% at eps 0.1), so a white-box attack on the whole "
        "fused model spends its budget there."
    )
