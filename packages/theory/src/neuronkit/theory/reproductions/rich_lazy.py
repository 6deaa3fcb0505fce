"""Reproduction: low-rank initial connectivity makes learning richer, unless task-aligned.

Liu, Baratin, Cornford, Mihalas, Shea-Brown & Lajoie (ICLR 2024). Rank (Fig. 1, as the authors'
code ``Helena-Yuhan-Liu/BioRNN_RichLazy`` runs it): a ReLU RNN learns the two-alternative
perceptual decision task by SGD with momentum from initial recurrent weights that are rank-``r``
truncations of one Gaussian matrix rescaled to its Frobenius norm; richness is the relative
change of ``W_hh`` and ``1 -`` the alignment between the initial and final tangent kernels of
``W_hh``. Alignment (Section 3, Proposition 1; a two-layer network): a two-layer tanh network
``f(x) = v . tanh(W x) / sqrt(h)`` learns ``y = tanh(2 beta . x)`` from a rank-1 ``W_0`` with a
random row space or with row space ``beta``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from neuronkit.common import Check, RunContext, new_figure, reproduction
from neuronkit.theory.lazy_rich import (
    ReluRNN,
    TwoLayerTanhNet,
    low_rank_weight,
    train_recurrent_rich_lazy,
    train_rich_lazy,
    truncated_rank_weight,
)

_RNN_KEYS = (
    "effective_rank_init",
    "weight_change",
    "kernel_alignment",
    "kernel_distance",
    "ntk_change",
    "representation_alignment",
    "final_loss",
    "accuracy",
)
_FF_KEYS = (
    "effective_rank_init",
    "weight_change",
    "weight_kernel_distance",
    "kernel_distance",
    "kernel_change",
    "alignment_init",
    "alignment_final",
    "final_loss",
)


def _mean_rows(results: dict[str, list], keys: tuple[str, ...]) -> list[dict[str, float | str]]:
    rows = []
    for name, runs in results.items():
        row: dict[str, float | str] = {"init": name}
        for key in keys:
            row[key] = float(np.mean([getattr(r, key) for r in runs]))
        rows.append(row)
    return rows


def _by_init(rows: list[dict[str, float | str]]) -> dict[str, dict[str, float]]:
    """The rows of :func:`_mean_rows` keyed by their init."""
    return {str(r["init"]): {k: float(v) for k, v in r.items() if k != "init"} for r in rows}


@reproduction(
    id="theory.rich_lazy",
    paper="How connectivity structure shapes rich and lazy learning in neural circuits",
    claim=(
        "low-rank initial weights produce larger relative weight and kernel change (richer) than "
        "high-rank ones of equal norm; a low-rank init aligned with the task is lazy again"
    ),
    checks=[
        Check("weight_change_low_over_high", ">", 1.0, "RNN: rank-1 / full-rank relative dW_hh"),
        Check(
            "kernel_change_low_over_high",
            ">",
            1.0,
            "RNN: rank-1 / full-rank 1 - alignment(K_0, K_T) of W_hh's tangent kernel",
        ),
        Check("aligned_over_random_weight_change", "<", 1.0, "aligned / random rank-1 dW"),
    ],
    seed=0,
    threads=1,  # small matrices: extra threads only add contention
)
def run(ctx: RunContext) -> None:
    if ctx.quick:
        hidden, rnn_seeds = 100, 1
        rnn_ranks = [1, hidden]
        dim, width, n, steps, seeds = 20, 100, 200, 500, 3
    else:
        hidden, rnn_seeds = 300, 3
        rnn_ranks = [1, 30, 100, hidden]
        dim, width, n, steps, seeds = 40, 400, 600, 2000, 5
    iterations, lr_rnn = 10000, 0.003
    base = int(ctx.rng.integers(0, 2**31))

    # --- rank: the RNN experiment of Fig. 1 --------------------------------------------------
    rnn: dict[str, list] = {f"rank {r}": [] for r in rnn_ranks}
    jobs = [(s, r) for s in range(rnn_seeds) for r in rnn_ranks]
    for s, r in ctx.progress(jobs, desc="RNN runs"):
        g = torch.Generator().manual_seed(base + 1000 + s)
        w0 = 1.25 * torch.randn(hidden, hidden, generator=g, dtype=torch.float64)
        w0 = w0 / math.sqrt(hidden)
        # nn.Linear's default init (the reference leaves input and readout weights at it)
        w_ih = (2 * torch.rand(hidden, 3, generator=g, dtype=torch.float64) - 1) / math.sqrt(3)
        w_ho = (2 * torch.rand(3, hidden, generator=g, dtype=torch.float64) - 1) / math.sqrt(hidden)
        model = ReluRNN(w_ih, truncated_rank_weight(w0, r), w_ho, dtype=torch.float32)
        res = train_recurrent_rich_lazy(
            model, iterations=iterations, lr=lr_rnn, momentum=0.9, seed=base + 2000 + s
        )
        rnn[f"rank {r}"].append(res)
    rnn_rows = _mean_rows(rnn, _RNN_KEYS)
    ctx.table(f"RNN, perceptual decision task (mean over {rnn_seeds} seeds)", rnn_rows)
    ctx.metric("rnn_per_init", rnn_rows)
    ctx.metric(
        "rnn_weight_change_ratio_per_seed",
        [
            rnn["rank 1"][s].weight_change / rnn[f"rank {hidden}"][s].weight_change
            for s in range(rnn_seeds)
        ],
    )
    by = _by_init(rnn_rows)
    low, high = by["rank 1"], by[f"rank {hidden}"]
    ctx.check("weight_change_low_over_high", low["weight_change"] / high["weight_change"])
    ctx.check("kernel_change_low_over_high", low["kernel_distance"] / high["kernel_distance"])
    ctx.metric("rnn_ntk_change_low_over_high", low["ntk_change"] / high["ntk_change"])

    # --- alignment: a two-layer network (Section 3) --------------------------------------------
    ff: dict[str, list] = {"rank 1": [], f"rank {dim}": [], "rank 1 aligned": []}
    for s in ctx.progress(range(seeds), desc="two-layer seeds"):
        g = torch.Generator().manual_seed(base + s)
        x = torch.randn(n, dim, generator=g, dtype=torch.float64)
        beta = torch.randn(dim, generator=g, dtype=torch.float64)
        beta = beta / torch.linalg.norm(beta)
        y = torch.tanh(2.0 * x @ beta)
        v = torch.randn(width, generator=g, dtype=torch.float64)
        gauss = torch.randn(width, dim, generator=g, dtype=torch.float64) / math.sqrt(dim)
        norm = float(torch.linalg.norm(gauss))
        inits = {
            "rank 1": truncated_rank_weight(gauss, 1),
            f"rank {dim}": gauss,
            "rank 1 aligned": low_rank_weight(
                width, dim, 1, norm, row_space=beta[None], seed=base + 100 + s
            ),
        }
        for name, w in inits.items():
            ff[name].append(train_rich_lazy(TwoLayerTanhNet(w, v), x, y, steps=steps, lr=0.5))
    ff_rows = _mean_rows(ff, _FF_KEYS)
    ctx.table(f"Two-layer tanh network (mean over {seeds} seeds)", ff_rows)
    ctx.metric("two_layer_per_init", ff_rows)
    fb = _by_init(ff_rows)
    aligned, rand1 = fb["rank 1 aligned"], fb["rank 1"]
    ctx.check(
        "aligned_over_random_weight_change", aligned["weight_change"] / rand1["weight_change"]
    )
    ctx.metric(
        "aligned_over_random_kernel_distance",
        aligned["weight_kernel_distance"] / rand1["weight_kernel_distance"],
    )

    fig, (ax1, ax2, ax3) = new_figure(1, 3)
    names = [str(r["init"]) for r in rnn_rows]
    ax1.bar(names, [r["weight_change"] for r in rnn_rows], color="tab:blue")
    ax1.set_ylabel("RNN ||W_T - W_0|| / ||W_0||")
    ax2.bar(names, [r["kernel_alignment"] for r in rnn_rows], color="tab:orange")
    ax2.set_ylabel("RNN tangent kernel alignment (W_hh)")
    ax3.bar([str(r["init"]) for r in ff_rows], [r["weight_change"] for r in ff_rows])
    ax3.set_ylabel("two-layer ||W_T - W_0|| / ||W_0||")
    for ax in (ax1, ax2, ax3):
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    ctx.save_figure("richness_by_rank", fig)
    ctx.note(
        f"Rank (Fig. 1, the authors' BioRNN_RichLazy main.py): ReLU RNN h_t = relu(W_ih x_t + "
        f"W_hh h_(t-1)), y_t = W_ho h_t, no biases, h = {hidden}; the two-alternative perceptual "
        "decision task (neurogym PerceptualDecisionMaking-v0 at dt = 100 ms: 7 stimulus steps, "
        "1 decision step, coherences 0-51.2%, noise 0.1), cross-entropy on every step; SGD "
        f"lr {lr_rnn}, momentum 0.9, {iterations} iterations of 32 fresh trials; every weight "
        "trained. W_hh,0 = the rank-r truncated SVD of one 1.25 N(0, 1/h) matrix rescaled to "
        "its Frobenius norm (the full rank is the Gaussian itself); W_ih and W_ho at nn.Linear's "
        "default init. Kernel: the tangent kernel of W_hh over 32 trials x 8 steps x 3 "
        "outputs; checked: 1 - <K_0, K_T> / (||K_0|| ||K_T||) (the paper's tangent kernel "
        "alignment); reported too: the relative change of the NTK over all weights (ntk_change, "
        "our earlier measure; large because the readout starts small). Unlike the reference, "
        "the ranks of one seed share W_ih, W_ho, the data stream and the kernel trials "
        f"(paired comparison), and we average {rnn_seeds} seed(s). Quick mode uses h = 100 "
        "(the reference's h < 150 setting), ranks 1 and 100 and one seed: at that width one "
        "seed is noisy (an audit measured the weight-change ratio below 1 on 3 of 8 seeds, "
        "and both ratios at 0.97 with --seed 3); at the reference's h = 300 (full mode) "
        "the weight-change ratio was 1.14-1.31 on 4 seeds, but 1.02 and 1.04 on two more "
        "(0.6.12 audit), and the rank-1 kernel alignment 0.05-0.20 against 0.57-0.73 for full "
        "rank. Alignment (Section 3, Proposition 1; the paper "
        "uses a two-layer linear student-teacher network): a two-layer tanh network "
        f"f(x) = v . tanh(W x) / sqrt({width}) on D = {dim} Gaussian inputs, {n} samples, "
        "target tanh(2 beta.x); W_0 = a N(0, 1/D) matrix (full rank), its rank-1 truncation, "
        "or rank 1 with row space beta, all of the same Frobenius norm; full-batch GD (lr 0.5, "
        f"{steps} steps), both layers trained."
    )
