"""Reproduction: iterative initialization and retraining reaches T = 1 without losing accuracy.

Chowdhury, Rathi & Roy, "One Timestep is All You Need: Training Spiking Neural Networks with
Ultra Low Latency" (IIR-SNN). A 5-layer spiking CNN (per-layer trainable leak and threshold,
soft reset, direct input, accumulated non-spiking readout) on the 8x8 digits, three seeds:

* IIR: a ReLU ANN (with BatchNorm) is trained briefly and converted (BN folded, thresholds
  calibrated layer by layer on spike-driven currents, as the reference code does; summed
  readout), then trained at T = 5 and retrained at T = 3, 2, 1, each stage starting from the
  previous one;
* baseline: the same SNN trained from scratch at T = 1 (random weights, the same threshold
  calibration, no ANN training) for the same total number of epochs (ANN epochs included).

Checks: T = 1 accuracy after IIR >= 0.97 x its T = 5 accuracy, and >= the baseline's.
"""

from __future__ import annotations

import numpy as np

from neuronkit.common import Check, RunContext, new_figure, reproduction
from neuronkit.snn import load_digits
from neuronkit.snn.training import (
    IIRResult,
    ann_to_snn,
    cnn_ann,
    evaluate_latency,
    iir_retrain,
    train_ann,
)

TIMESTEPS = (5, 3, 2, 1)


@reproduction(
    id="snn.iir",
    paper=("One Timestep is All You Need: Training Spiking Neural Networks with Ultra Low Latency"),
    claim=(
        "T=1 accuracy after IIR (5->3->2->1) >= 0.97 x the T=5 accuracy, and >= the same "
        "network trained from scratch at T=1 with the same total epochs (digits CNN, 5 layers, "
        "3 seeds); latency and spike counts per stage reported"
    ),
    checks=[
        Check("t1_over_t5_accuracy", ">=", 0.97, "IIR T=1 accuracy / IIR T=5 accuracy"),
        Check(
            "iir_minus_scratch_t1_points", ">=", 0.0, "IIR T=1 minus scratch T=1 accuracy (points)"
        ),
    ],
    seed=0,
    threads=1,  # small convolutions: extra threads only add contention
)
def run(ctx: RunContext) -> None:
    if ctx.quick:
        seeds, ann_epochs, stage_epochs, batch, lr = (0, 1, 2), 10, (10, 6, 6, 6), 64, 2e-3
    else:
        seeds, ann_epochs, stage_epochs, batch, lr = (0, 1, 2), 20, (20, 12, 12, 12), 64, 2e-3
    channels, hidden, percentile, calib, calib_steps = (8, 16, 16), 64, 90.0, 512, 100
    scratch_epochs = ann_epochs + sum(stage_epochs)
    base = int(ctx.rng.integers(0, 2**31 - 1000))
    for key, value in {
        "seeds": list(seeds),
        "timesteps": list(TIMESTEPS),
        "ann_epochs": ann_epochs,
        "stage_epochs": list(stage_epochs),
        "scratch_epochs": scratch_epochs,
        "batch_size": batch,
        "lr": lr,
        "channels": list(channels),
        "hidden": hidden,
        "threshold_percentile": percentile,
        "calibration_steps": calib_steps,
        "readout": "sum over T",
    }.items():
        ctx.metric(key, value)

    results: list[IIRResult] = []
    scratch: list[IIRResult] = []
    converted: list[dict[str, float]] = []
    for seed in ctx.progress(seeds, desc="seeds"):
        s = base + 100 * seed
        data = load_digits(seed=s)  # the split follows --seed too
        ctx.log(f"seed {seed}: ANN ({ann_epochs} epochs) -> SNN, then IIR over T={TIMESTEPS}")
        ann = cnn_ann(channels=channels, hidden=hidden, seed=s)
        train_ann(ann, data.x_train, data.y_train, ann_epochs, lr=lr, batch_size=batch, seed=s)
        snn = ann_to_snn(
            ann, data.x_train[:calib], percentile=percentile, calib_steps=calib_steps,
            average_readout=False,
        )  # fmt: skip
        converted.append(
            {f"T{T}": evaluate_latency(snn, data.x_test, data.y_test, T) for T in (5, 1)}
        )
        res = iir_retrain(
            snn, data, timesteps=TIMESTEPS, epochs_per_stage=stage_epochs, lr=lr,
            batch_size=batch, seed=s + 1,
        )  # fmt: skip
        results.append(res)
        ctx.log(f"seed {seed}: scratch at T=1 for {scratch_epochs} epochs")
        base_snn = ann_to_snn(
            cnn_ann(channels=channels, hidden=hidden, seed=s), data.x_train[:calib],
            percentile=percentile, calib_steps=calib_steps, average_readout=False,
        )  # fmt: skip
        scratch.append(
            iir_retrain(
                base_snn,
                data,
                timesteps=(1,),
                epochs_per_stage=scratch_epochs,
                lr=lr,
                batch_size=batch,
                seed=s + 1,
            )
        )
        ctx.log(
            f"seed {seed}: IIR "
            + ", ".join(f"T={st.T} {st.accuracy:.4f}" for st in res.stages)
            + f"; scratch T=1 {scratch[-1].final.accuracy:.4f}"
        )

    acc = np.array([[st.accuracy for st in r.stages] for r in results])  # [seeds, stages]
    spikes = np.array([[st.spikes["total"] for st in r.stages] for r in results])
    scratch_acc = np.array([r.final.accuracy for r in scratch])
    scratch_spikes = np.array([r.final.spikes["total"] for r in scratch])
    mean_acc = acc.mean(0)
    t5, t1 = float(mean_acc[0]), float(mean_acc[-1])
    ctx.metric("iir_accuracy", {f"T{T}": acc[:, i].tolist() for i, T in enumerate(TIMESTEPS)})
    ctx.metric("scratch_t1_accuracy", scratch_acc.tolist())
    ctx.metric("converted_accuracy_before_training", converted)
    ctx.metric(
        "spikes_per_sample", {f"T{T}": spikes[:, i].tolist() for i, T in enumerate(TIMESTEPS)}
    )
    ctx.metric("scratch_t1_spikes_per_sample", scratch_spikes.tolist())
    ctx.metric("final_thresholds", [r.final.thresholds for r in results])
    ctx.metric("final_leaks", [r.final.leaks for r in results])
    wins = int(np.sum(acc[:, -1] > scratch_acc))
    ctx.metric("seeds_where_iir_beats_scratch", wins)
    ctx.note(
        f"Per seed, IIR's T = 1 accuracy beat the scratch baseline on {wins} of {len(seeds)} "
        f"seeds (mean difference {100.0 * (t1 - float(scratch_acc.mean())):+.2f} points); on "
        "the 8x8 digits a T = 1 network trained from a calibrated start is already strong, so "
        "the gap is small compared with the paper's deep CIFAR/ImageNet networks, where "
        "training at T = 1 from scratch does not converge. Mean test accuracy per IIR stage: "
        + ", ".join(f"T = {T}: {acc[:, i].mean():.4f}" for i, T in enumerate(TIMESTEPS))
        + "; the last step (T = 2 to 1) loses the most."
    )
    ctx.check("t1_over_t5_accuracy", t1 / t5)
    ctx.check("iir_minus_scratch_t1_points", 100.0 * (t1 - float(scratch_acc.mean())))
    rows = []
    for i, T in enumerate(TIMESTEPS):
        layers = {
            k: float(np.mean([r.stages[i].spikes[k] for r in results]))
            for k in results[0].stages[i].spikes
            if k != "total"
        }
        rows.append(
            {
                "run": "IIR",
                "latency_T": T,
                "epochs": stage_epochs[i],
                "test_accuracy": round(float(mean_acc[i]), 4),
                "spikes_per_sample": round(float(spikes[:, i].mean()), 1),
                "spikes_per_layer": " / ".join(f"{v:.0f}" for v in layers.values()),
            }
        )
    rows.append(
        {
            "run": "scratch",
            "latency_T": 1,
            "epochs": scratch_epochs,
            "test_accuracy": round(float(scratch_acc.mean()), 4),
            "spikes_per_sample": round(float(scratch_spikes.mean()), 1),
            "spikes_per_layer": "",
        }
    )
    ctx.table(f"Per stage, mean over {len(seeds)} seeds (digits test set)", rows)
    _figure(ctx, mean_acc, spikes.mean(0), float(scratch_acc.mean()), float(scratch_spikes.mean()))
    ctx.note(
        f"Network: conv3x3({channels[0]}) - conv3x3({channels[1]}) - avgpool - "
        f"conv3x3({channels[2]}) - avgpool - fc({hidden}) - fc(10), every hidden layer an "
        "IIR/DIET-SNN LIF neuron with its own trainable leak (clamped to [0, 1]) and threshold, "
        "soft reset, the linear surrogate 0.3 * max(0, 1 - |u/theta - 1|); direct input; the "
        "output layer accumulates (sums) its membrane over the T steps, as the reference code "
        "does (before neuronkit-snn 0.3.13 it was divided by T). Adam "
        f"(lr {lr}, cosine decay within each stage, a fresh optimizer per stage), batch {batch}."
    )
    ctx.note(
        f"IIR start: a ReLU ANN with BatchNorm trained for {ann_epochs} epochs, BN folded into "
        "the convs, the ANN's weights kept, leak 1, and the thresholds set layer by layer as in "
        "the reference's find_threshold: the largest, over "
        f"{calib_steps} steps, of the {percentile:g}th percentile of the current that the layers "
        f"below (already converted) drive into the layer, over {calib} training images (the "
        "reference runs 500 steps; the thresholds differ by < 0.3% here). Before neuronkit-snn "
        "0.3.13 the thresholds came from the ANN's pre-activations with the next layer's "
        "weights multiplied by them (Rueckauer-style weight normalization). Then "
        f"{stage_epochs} epochs at "
        f"T = {TIMESTEPS}. The scratch baseline uses the same conversion of an untrained ANN "
        "(random weights, the same threshold calibration, so its neurons fire at T = 1) and "
        f"trains at T = 1 for {scratch_epochs} epochs: the IIR run's ANN and SNN epochs "
        "together. The paper starts from a fully trained DIET-SNN at T = 5 and trains every "
        "stage to convergence; here the ANN and the T = 5 stage get as many epochs as the "
        "budget allows (about 98-99% test accuracy at T = 5). Before neuronkit-snn 0.3.12 quick "
        "mode trained every stage for 2 epochs: its T = 5 network was unconverged, so its pass "
        "(T1/T5 1.12, +7.9 points over scratch) mostly measured further training. The leaks "
        "start at 1 and train (their value is clamped to [0, 1] with the gradient passed "
        "straight through; before neuronkit-snn 0.3.7 the clamp's zero gradient at 1 froze "
        "them); final leak per layer and seed: "
        + "; ".join("[" + ", ".join(f"{v:.3f}" for v in r.final.leaks) + "]" for r in results)
        + "."
    )


def _figure(
    ctx: RunContext,
    acc: np.ndarray,
    spikes: np.ndarray,
    scratch_acc: float,
    scratch_spikes: float,
) -> None:
    fig, (ax1, ax2) = new_figure(1, 2)
    x = np.arange(len(TIMESTEPS))
    ax1.plot(x, 100 * acc, "o-", label="IIR")
    ax1.axhline(100 * scratch_acc, color="r", ls="--", label="scratch at T=1")
    ax1.set_xticks(x, [f"T={T}" for T in TIMESTEPS])
    ax1.set_xlabel("IIR stage (latency)")
    ax1.set_ylabel("test accuracy (%), mean over seeds")
    ax1.legend(fontsize=7)
    ax2.bar(x, spikes, label="IIR")
    ax2.axhline(scratch_spikes, color="r", ls="--", label="scratch at T=1")
    ax2.set_xticks(x, [f"T={T}" for T in TIMESTEPS])
    ax2.set_ylabel("spikes per sample")
    ax2.legend(fontsize=7)
    ctx.save_figure("iir_stages", fig)
