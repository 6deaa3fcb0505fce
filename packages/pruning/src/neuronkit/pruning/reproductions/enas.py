"""Reproduction: Understanding Neural Architecture Search techniques (ENAS analysis).

Adam & Lorraine (2019), "Understanding Neural Architecture Search Techniques"
(arXiv:1904.00438), analysing ENAS (Pham et al. 2018).

On the 8x8 digits (flattened), with a tiny ENAS cell space (``B`` nodes, each picks an earlier
node and one of tanh / ReLU / sigmoid / identity), for several seeds:

1. Random search with weight sharing: the supernet is trained on uniformly drawn cells; 20
   uniform cells are scored with the shared weights on a validation split; the best is kept.
2. ENAS: the supernet is trained on cells drawn from an LSTM controller that is trained by
   REINFORCE (validation accuracy with the shared weights, moving-average baseline, entropy
   bonus); 20 cells drawn from the trained controller are scored; the best is kept.
3. ENAS with memory-buffer training: as 2, plus a buffer of previously sampled architectures
   (whatever their reward; as in the authors' code it holds 10 epochs' worth of sampled cells,
   so it keeps the history since it started filling) whose teacher-forced negative
   log-likelihood on a random batch of buffered cells is added to the controller loss at every
   step.

Both chosen cells (1, 2) are retrained from scratch with the same seed and scored on the
test split: their paired difference over seeds, in standard errors, measures whether ENAS
beats random search beyond seed noise. For each trained controller (2, 3), the hidden state
at the last decision of each of ``N`` distinct sampled architectures is computed (as in the
authors' analysis code) and the Spearman correlation between minus the L2 distance of two
hidden states and the Jaccard similarity of the two labelled cell graphs is taken over all
pairs.

Checks: ``|mean(ENAS - random)| / SE <= 2`` (paired over seeds: within noise); the vanilla
controller's correlation ``|r| <= 0.15``; the memory buffer raises it by ``>= 0.2``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch

from neuronkit.common import Check, RunContext, new_figure, reproduction
from neuronkit.pruning.data import load_digits
from neuronkit.pruning.lottery import TrainConfig
from neuronkit.pruning.nas import (
    SIMILARITY_METRICS,
    Architecture,
    CellSpace,
    ENASController,
    ReinforceConfig,
    SearchConfig,
    enas_search,
    final_evaluation,
    hidden_graph_correlation,
    position_correlations,
    random_architectures,
    random_search,
)

#: Authors' buffer size in epochs' worth of stored cells: 1,000 cells stored per epoch, up to
#: 10,000 (georgeadam/menas, src/enas_pytorch/regularized_controllers/supervised.py
#: ``max_architectures = 10000``; train_scripts/supervised_trainer.py stores
#: ``generate_architectures(1000)`` per epoch).
MEMORY_EPOCHS = 10


def enas_search_configs(quick: bool) -> tuple[SearchConfig, SearchConfig]:
    """The search schedule of vanilla ENAS (and random search) and of ENAS with the memory buffer.

    The memory buffer is the paper's: a random subset of previously sampled cells, whatever
    their reward, holding ``MEMORY_EPOCHS`` epochs' worth of the cells sampled per epoch
    (the authors store 1,000 per epoch up to 10,000, then replace 100 per epoch). Within
    these schedules it never fills, so it keeps every cell sampled since
    ``memory_fill_epoch``: a history of past architectures, not only the latest ones.
    """
    if quick:
        config = SearchConfig(
            epochs=6,
            shared_steps=25,
            controller_steps=8,
            controller_batch=12,
            reward_batch=128,
            num_candidates=20,
            memory_capacity=32,
            memory_batch=32,
            memory_fill_epoch=1,
            memory_start_epoch=2,
            reinforce=ReinforceConfig(lr=0.02),
        )
    else:
        config = SearchConfig(
            epochs=12,
            shared_steps=40,
            controller_steps=16,
            controller_batch=12,
            reward_batch=256,
            num_candidates=50,
            memory_capacity=64,  # the best-rewarded-cells variant (best_buffer) keeps 64
            memory_batch=64,
            memory_fill_epoch=2,
            memory_start_epoch=4,
            reinforce=ReinforceConfig(lr=0.01),
        )
    per_epoch = config.controller_steps * config.controller_batch
    memory = dataclasses.replace(
        config, memory_policy="random", memory_capacity=MEMORY_EPOCHS * per_epoch
    )
    return config, memory


@reproduction(
    id="pruning.enas",
    paper="Understanding Neural Architecture Search Techniques",
    claim=(
        "ENAS and random search with weight sharing are within noise of each other; the "
        "correlation between controller hidden-state similarity and graph similarity is near 0 "
        "(|r| <= 0.15) for vanilla ENAS and rises by >= 0.2 with the memory buffer"
    ),
    checks=[
        Check(
            "enas_minus_random_within_noise",
            "<=",
            2.0,
            "|mean(ENAS - random)| final test accuracy in paired standard errors over seeds",
        ),
        Check(
            "vanilla_abs_correlation",
            "<=",
            0.15,
            "|Spearman r| hidden-state similarity vs graph Jaccard, vanilla ENAS, mean over "
            "seeds of each seed's |r| (opposite signs do not cancel)",
        ),
        Check(
            "memory_buffer_correlation_gain",
            ">=",
            0.2,
            "r(memory buffer) - r(vanilla), seed mean",
        ),
    ],
    seed=0,
    threads=1,  # tiny matrices: extra threads only add overhead
)
def run(ctx: RunContext) -> None:
    if ctx.quick:
        n_seeds, n_nodes, n_pairs_archs, final_steps = 3, 6, 60, 400
    else:
        n_seeds, n_nodes, n_pairs_archs, final_steps = 4, 8, 100, 1000
    config, memory_config = enas_search_configs(ctx.quick)
    # full mode also runs a variant buffer that keeps the best-rewarded cells
    controllers = ("enas", "enas+memory") if ctx.quick else ("enas", "enas+memory", "best_buffer")
    space = CellSpace(num_nodes=n_nodes)
    train_cfg = TrainConfig(
        iterations=final_steps,
        batch_size=64,
        lr=0.05,
        milestones=(int(0.6 * final_steps), int(0.85 * final_steps)),
    )
    split_seed = int(ctx.rng.integers(0, 10_000))
    data = load_digits(seed=split_seed)
    n_val = len(data.y_train) // 4
    x_search, y_search = data.x_train[n_val:], data.y_train[n_val:]
    x_val, y_val = data.x_train[:n_val], data.y_train[:n_val]
    ctx.metric("search_space_size", space.size)
    ctx.metric("num_nodes", n_nodes)

    rows: list[dict[str, Any]] = []
    corr_rows: list[dict[str, Any]] = []
    example: dict[str, tuple[torch.Tensor, list[Architecture]]] = {}
    positions: dict[str, list[np.ndarray]] = {}
    for s in ctx.progress(range(n_seeds), desc="seeds", total=n_seeds):
        seed = int(ctx.rng.integers(0, 2**31 - 1))
        res = {
            "random": random_search(space, x_search, y_search, x_val, y_val, config, seed=seed),
            "enas": enas_search(space, x_search, y_search, x_val, y_val, config, seed=seed),
            "enas+memory": enas_search(
                space, x_search, y_search, x_val, y_val, memory_config, seed=seed
            ),
        }
        if "best_buffer" in controllers:
            res["best_buffer"] = enas_search(
                space,
                x_search,
                y_search,
                x_val,
                y_val,
                dataclasses.replace(config, memory_policy="best"),
                seed=seed,
            )
        final_seed = int(ctx.rng.integers(0, 2**31 - 1))
        row: dict[str, Any] = {"seed": s}
        evaluated = ("random", "enas") if ctx.quick else ("random", "enas", "enas+memory")
        for name in evaluated:
            r = res[name]
            row[f"{name}_val_ws"] = round(r.best_score, 4)
            row[f"{name}_mean_candidate_ws"] = round(float(r.scores.mean()), 4)
            row[f"{name}_test"] = final_evaluation(
                space,
                r.best,
                data.x_train,
                data.y_train,
                data.x_test,
                data.y_test,
                hidden=config.hidden,
                train_config=train_cfg,
                seed=final_seed % 10_000,
            )
            row[f"{name}_cell"] = r.best.describe(space)
        rows.append(row)

        probe = random_architectures(space, n_pairs_archs, seed=final_seed % 10_000)
        for name in controllers:
            ctrl = res[name].controller
            assert ctrl is not None
            archs = _distinct_samples(ctrl, n_pairs_archs, seed=final_seed % 10_000)
            hidden = ctrl.hidden_states(archs)
            crow: dict[str, Any] = {
                "seed": s,
                "controller": name,
                "distinct_archs": len(archs),
                "final_entropy": round(res[name].history["entropy"][-1], 3),
            }
            for metric in SIMILARITY_METRICS:
                crow[f"r_{metric}"] = hidden_graph_correlation(hidden, archs, metric=metric).r
            crow["hidden_spread"] = round(
                float(hidden.std(dim=0).mean() / hidden.abs().mean().clamp_min(1e-12)), 4
            )
            probe_hidden = ctrl.hidden_states(probe)
            crow["r_jaccard_uniform_probe"] = hidden_graph_correlation(
                probe_hidden, probe, metric="jaccard"
            ).r
            positions.setdefault(name, []).append(position_correlations(probe_hidden, probe))
            hist = res[name].history["memory_loss"]
            if name != "enas":
                started = [v for v in hist if v > 0]
                crow["memory_nll_first"] = round(started[0], 3) if started else float("nan")
                crow["memory_nll_last"] = round(started[-1], 3) if started else float("nan")
            corr_rows.append(crow)
            if s == 0 and name in ("enas", "enas+memory"):
                example[name] = (hidden, archs)
        ctx.log(
            f"seed {s}: test random {row['random_test']:.4f} enas {row['enas_test']:.4f}; "
            f"r vanilla {corr_rows[-len(controllers)]['r_jaccard']:.3f} "
            f"memory {corr_rows[-len(controllers) + 1]['r_jaccard']:.3f}"
        )

    # ENAS vs random: paired over seeds (same data split, same retraining seed).
    enas_acc = np.array([r["enas_test"] for r in rows], dtype=float)
    rand_acc = np.array([r["random_test"] for r in rows], dtype=float)
    diff = 100.0 * (enas_acc - rand_acc)
    se = float(diff.std(ddof=1) / math.sqrt(len(diff)))
    mean_diff = float(diff.mean())
    z = abs(mean_diff) / se if se > 0 else 0.0 if mean_diff == 0 else float("inf")
    ctx.metric("enas_test_accuracy_mean", float(enas_acc.mean()))
    ctx.metric("random_test_accuracy_mean", float(rand_acc.mean()))
    ctx.metric("enas_minus_random_points_mean", mean_diff)
    ctx.metric("enas_minus_random_points_se", se)
    ctx.metric(
        "test_accuracy_seed_std_points",
        float(100 * np.concatenate([enas_acc, rand_acc]).std(ddof=1)),
    )
    ctx.metric(
        "ws_score_best_mean",
        {k: float(np.mean([r[f"{k}_val_ws"] for r in rows])) for k in ("random", "enas")},
    )
    ctx.table("Final evaluation per seed (retrained from scratch, test accuracy)", rows)

    r_van = np.array([c["r_jaccard"] for c in corr_rows if c["controller"] == "enas"], dtype=float)
    r_mem = np.array(
        [c["r_jaccard"] for c in corr_rows if c["controller"] == "enas+memory"], dtype=float
    )
    for metric in SIMILARITY_METRICS:
        for name in controllers:
            vals = [c[f"r_{metric}"] for c in corr_rows if c["controller"] == name]
            ctx.metric(f"r_{metric}_{name.replace('+', '_')}", float(np.mean(vals)))
    for name in controllers:
        vals = [c["r_jaccard_uniform_probe"] for c in corr_rows if c["controller"] == name]
        ctx.metric(f"r_jaccard_uniform_probe_{name.replace('+', '_')}", float(np.mean(vals)))
    ctx.table("Hidden-state / graph-similarity Spearman correlations", corr_rows)
    pos_mean = {k: _nanmean_rows(v) for k, v in positions.items()}
    for name, v in pos_mean.items():
        ctx.metric(
            f"position_r_uniform_probe_{name.replace('+', '_')}",
            [None if np.isnan(x) else round(float(x), 3) for x in v],
        )

    ctx.check("enas_minus_random_within_noise", z)
    ws = {k: float(np.mean([r[f"{k}_val_ws"] for r in rows])) for k in ("random", "enas")}
    ctx.note(
        f"With the shared weights, ENAS's chosen cells score {100 * ws['enas']:.1f}% on the "
        f"validation split against {100 * ws['random']:.1f}% for random search's, yet "
        f"retrained from scratch they differ by {mean_diff:+.2f} points on the test split "
        f"(SE {se:.2f}, {len(diff)} paired seeds): the supernet trained on the controller's "
        "narrow distribution fits those few cells well, while one trained on uniform cells "
        "must serve all of them; the gap in weight-sharing scores says little about the cells "
        "themselves (the paper's explanation of why ENAS looks better than random search)."
    )
    if z > 2.0:
        ctx.note(
            f"Here the paired difference is {z:.2f} standard errors from zero: ENAS's cells "
            f"retrain {mean_diff:+.2f} points better (about "
            f"{abs(mean_diff) * len(data.y_test) / 100:.1f} of {len(data.y_test)} test "
            f"images), with the standard error itself estimated from {len(diff)} seeds. "
            "The check is left failing."
        )
    ok_van = ctx.check("vanilla_abs_correlation", float(np.abs(r_van).mean()))
    gain = float((r_mem - r_van).mean())
    ok_gain = ctx.check("memory_buffer_correlation_gain", gain)
    probe_r = {
        name: float(
            np.mean([c["r_jaccard_uniform_probe"] for c in corr_rows if c["controller"] == name])
        )
        for name in controllers
    }
    nll = [
        (c["memory_nll_first"], c["memory_nll_last"])
        for c in corr_rows
        if c["controller"] == "enas+memory"
    ]
    ctx.metric("memory_nll_first_last_mean", [float(np.mean(v)) for v in zip(*nll)])
    spread = {
        name: float(np.mean([c["hidden_spread"] for c in corr_rows if c["controller"] == name]))
        for name in controllers
    }
    ctx.metric("hidden_spread", spread)
    ctx.note(
        "Hidden states per sampled cell (figure controller_hidden_states, first seed): the "
        "vanilla controller's rows are nearly identical, its units saturated, as in the "
        "paper's figure; with the memory buffer they differ from cell to cell. Spread (mean "
        "over units of the std across cells, relative to the mean |h|): "
        f"vanilla {spread['enas']:.3f}, memory buffer {spread['enas+memory']:.3f}."
    )
    if not ok_van:
        pos_van = pos_mean["enas"]
        ctx.note(
            f"The vanilla controller's correlation (mean |r| = {np.abs(r_van).mean():.3f}, per "
            f"seed r = {np.round(r_van, 3).tolist()}) is above 0.15 here, although its hidden "
            "states "
            "look the same for every cell: a rank correlation ignores the scale of the "
            "differences, and the small residual differences are not noise. The LSTM reads the "
            "embedding of the previous decision at every step and its state keeps a fading "
            "trace of the last decisions: two cells that agree on their last nodes get "
            "closer hidden states. Measured on uniformly drawn cells (position_r metrics), "
            "agreement at the last decision the state has read (the last node's input) "
            f"correlates with hidden-state similarity at r = {pos_van[-2]:.2f}, at the one "
            f"before at r = {pos_van[-3]:.2f}, and at the first decision at "
            f"r = {pos_van[0]:.2f} (the last op is drawn from the state, never read: "
            f"r = {pos_van[-1]:.2f}): the state is dominated by the last choices. "
            "Over whole cells, on one common set of uniformly drawn cells the correlation "
            f"is lower (r = {probe_r['enas']:.3f}); on the controller's own samples it is "
            "higher because a trained controller is confident about most decisions and the "
            "cells it samples differ in a few uncertain ones, which the recency of the state "
            "tracks when they are late in the sequence. The paper reports no correlation for "
            "its (PTB, 12-node) controller; with 6-8 nodes the last node is a large share of "
            "a cell, so the recency trace alone gives this correlation. The check is left "
            "failing."
        )
    if not ok_gain:
        first, last = (float(np.mean(v)) for v in zip(*nll))
        entropy = {
            name: float(np.mean([c["final_entropy"] for c in corr_rows if c["controller"] == name]))
            for name in ("enas", "enas+memory")
        }
        ctx.note(
            f"The memory buffer changes the correlation by {gain:+.3f} (r = "
            f"{r_mem.mean():.3f} against {r_van.mean():.3f}; on the uniform probe "
            f"{probe_r['enas+memory']:.3f} against {probe_r['enas']:.3f}). The buffer keeps the "
            "history of sampled cells, many drawn by the early, still high-entropy controller; "
            f"the teacher-forced NLL of buffered cells goes {first:.2f} -> {last:.2f} nats per "
            f"cell over the "
            f"{(config.epochs - memory_config.memory_start_epoch) * config.controller_steps} "
            f"supervised controller steps (a uniform controller: {math.log(space.size):.2f}), "
            f"and the controller's entropy ends at {entropy['enas+memory']:.1f} nats against "
            f"{entropy['enas']:.1f} for vanilla ENAS. Its own samples are then spread almost "
            "like uniform cells, on which the correlation is low for both controllers; its "
            "hidden states do differ from cell to cell (spread above) but, within these steps, "
            "not in a way that follows graph structure. The paper trains with the term at every "
            "controller step from epoch 10 on (2000 steps per epoch) and still calls the "
            "resulting Spearman correlations 'quite low'; the >= 0.2 rise is not reached at "
            "this scale and the check is left failing."
        )

    _figures(ctx, rows, example, positions)
    ctx.note(
        f"Search space: cells of {n_nodes} nodes (ENAS's recurrent-cell space made feedforward: "
        "node 0 applies its op to a linear map of the flattened 8x8 digit, node i applies its "
        "op to W_ji h_j for its chosen input j < i, the leaves are averaged, a linear head "
        f"classifies), {space.size:,} cells. Shared weights: one matrix per possible edge "
        f"(hidden width {config.hidden}), SGD with momentum 0.9, lr {config.shared_lr} with "
        "cosine decay, gradient clipping 5, one sampled cell per minibatch of "
        f"{config.batch_size}. Search: {config.epochs} epochs of {config.shared_steps} supernet "
        f"steps and (ENAS) {config.controller_steps} controller steps of "
        f"{config.controller_batch} cells each, rewarded by their accuracy with the shared "
        f"weights on a validation minibatch of {config.reward_batch} (a quarter of the training "
        f"split, never used by the supernet). Derivation: {config.num_candidates} cells drawn "
        "(from the controller or uniformly) scored on the whole validation split. Final "
        f"evaluation: the chosen cell retrained from scratch for {final_steps} SGD steps on the "
        "whole training split, test accuracy; ENAS and random use the same retraining seed."
    )
    ctx.note(
        "Controller as in ENAS: LSTM (64 units), zero first input, shared embeddings of op "
        "tokens and of input-node tokens, one linear decoder per decision, logits "
        "2.5*tanh(logits/5), uniform(-0.1, 0.1) initialization; REINFORCE with the entropy "
        "bonus (1e-4) added to the reward and a moving-average baseline (decay 0.95), Adam "
        f"with lr {config.reinforce.lr} (ENAS uses 3.5e-4 over thousands of steps; the short "
        "schedule here needs a larger step). Memory buffer (Adam & Lorraine): from epoch "
        f"{memory_config.memory_fill_epoch} the cells the controller samples enter a buffer of "
        f"{memory_config.memory_capacity} cells, whatever their reward "
        f"(MemoryBuffer(policy='random')): {MEMORY_EPOCHS} epochs' worth of sampled cells, as "
        "the authors store 1,000 controller samples per epoch up to 10,000 (georgeadam/menas, "
        "regularized_controllers/supervised.py), so within this schedule it never fills and "
        "keeps the history of every cell sampled since then; from epoch "
        f"{memory_config.memory_start_epoch} every controller step adds the teacher-forced "
        f"negative log-likelihood of {memory_config.memory_batch} buffered cells, "
        "L = L_PG + L_sup. Full mode also runs a variant whose buffer keeps the best-rewarded "
        "cells (controller best_buffer, MemoryBuffer(policy='best'))."
    )
    ctx.note(
        "Hidden state of an architecture: the controller's LSTM hidden state at the "
        "architecture's last decision, from which its last token is drawn (the authors' "
        "analysis takes the hidden state returned by the controller's sample, the last token "
        f"never fed back). For each controller, up to "
        f"{n_pairs_archs} distinct architectures are sampled (identical cells are dropped: "
        "they trivially share a hidden state and say nothing about structure); the Spearman "
        "correlation between minus the L2 distance of two hidden states and the Jaccard "
        "similarity of the two labelled edge sets is taken over all pairs, then averaged over "
        "seeds. Other graph similarities (connections or activations in common, node-aligned "
        "graph edit distance) and the correlation on one common set of uniformly drawn cells "
        "(r_jaccard_uniform_probe, which removes the effect of each controller's own sampling "
        "distribution) are recorded as metrics. Noise for ENAS vs random: the paired "
        "difference of final test accuracies over seeds, in standard errors of its mean."
    )


def _nanmean_rows(rows: list[np.ndarray]) -> np.ndarray:
    """Column means ignoring NaN (NaN where a column has no value, without a warning)."""
    stack = np.stack(rows)
    count = np.isfinite(stack).sum(axis=0)
    total = np.nansum(stack, axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _distinct_samples(ctrl: ENASController, n: int, *, seed: int) -> list[Architecture]:
    """Up to ``n`` distinct architectures from the controller (at most 8n draws)."""
    with torch.no_grad():
        drawn = ctrl.sample(8 * n, seed=seed).architectures
    seen: dict[Architecture, None] = {}
    for a in drawn:
        seen.setdefault(a, None)
        if len(seen) == n:
            break
    return list(seen)


def _figures(
    ctx: RunContext,
    rows: list[dict],
    example: dict[str, tuple[torch.Tensor, list[Architecture]]],
    positions: dict[str, list[np.ndarray]],
) -> None:
    fig, ax = new_figure()
    seeds = np.arange(len(rows))
    ax.plot(seeds, [100 * r["random_test"] for r in rows], "o", label="random search + WS")
    ax.plot(seeds, [100 * r["enas_test"] for r in rows], "s", label="ENAS")
    ax.set_xlabel("seed")
    ax.set_ylabel("test accuracy of the chosen cell, retrained (%)")
    ax.set_xticks(seeds)
    ax.legend(fontsize=8)
    ctx.save_figure("enas_vs_random", fig)

    if len(example) == 2:
        fig, axes = new_figure(1, 2)
        for ax, (name, (hidden, _)) in zip(np.atleast_1d(axes), example.items()):
            im = ax.imshow(hidden.numpy(), aspect="auto", cmap="coolwarm", vmin=-1, vmax=1)
            ax.set_title(f"{name}: hidden state per sampled cell", fontsize=8)
            ax.set_xlabel("hidden unit")
            ax.set_ylabel("sampled architecture")
        fig.colorbar(im, ax=axes)
        ctx.save_figure("controller_hidden_states", fig)

        fig, axes = new_figure(1, 2)
        for ax, (name, (hidden, archs)) in zip(np.atleast_1d(axes), example.items()):
            c = hidden_graph_correlation(hidden, archs)
            ax.plot(c.graph_similarity, -c.hidden_similarity, ".", ms=2, alpha=0.4)
            ax.set_xlabel("graph similarity (labelled-edge Jaccard)")
            ax.set_ylabel("hidden-state L2 distance")
            ax.set_title(f"{name}: Spearman r = {c.r:.2f}", fontsize=8)
        ctx.save_figure("hidden_vs_graph_similarity", fig)

    if positions:
        fig, ax = new_figure()
        width = 0.8 / len(positions)
        for k, (name, vals) in enumerate(positions.items()):
            v = _nanmean_rows(vals)
            ax.bar(np.arange(len(v)) + k * width, np.nan_to_num(v), width, label=name)
        ax.set_xlabel("decision position (op_0, input_1, op_1, ...)")
        ax.set_ylabel("Spearman r (hidden sim. vs agreement)")
        ax.set_title("what the hidden state remembers (uniform cells)", fontsize=8)
        ax.legend(fontsize=7)
        ctx.save_figure("hidden_state_memory_by_position", fig)
