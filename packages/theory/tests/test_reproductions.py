"""The quick reproductions of neuronkit-theory hold (each ~10-30 s on 2 CPU cores)."""

import pytest

from neuronkit.common.testing import assert_quick_reproduction

IDS = [
    "theory.active_dendrites",
    "theory.multitask_hebbian",
    "theory.neural_collapse",
    "theory.grok_corrupted",
    "theory.rich_lazy",
    "theory.grokking_lazy_rich",
    "theory.local_complexity",
    "theory.wide_deep_optimality",
    "theory.quadratic",
    "theory.bandlimited",
    "theory.simplicity_bias",
    "theory.timescales",
    "theory.scaling_mlps",
    "theory.mpnp",
    "theory.mgno",
    "theory.nested_dynamical",
    "theory.skan",
]

# Checks whose paper effect does not show, or only marginally, at quick scale (explained in
# each report and in docs/papers.md). They run and are reported; every other check must hold.
KNOWN_FAILING = {
    # Since 0.6.9 the rank checks run the paper's RNN (Fig. 1); quick trains one seed at
    # h = 100, where the ratios are noisy: seed 0 gives 1.54 / 2.19, but an audit measured the
    # weight-change ratio below 1 on 3 of 8 seeds (both 0.97 with --seed 3).
    "theory.rich_lazy": {"weight_change_low_over_high", "kernel_change_low_over_high"},
    # Single-head tau growth with the reference's sequence lengths ([N+2, N+2+3N), 0.6.11) and
    # its 50-batch test set: 1.16 (needs 1.2) on earlier machines, 1.26 on the 2026-12-01 one;
    # seeds 1-4 hold (1.36, 1.36, 1.22, 1.35: the seed survey of 2026-11-30). Since 0.6.27
    # (hand-written backward, two threads) seed 0 gives 1.38; kept listed as the value moves
    # with the arithmetic. It passed (1.24) with 1.5 N lengths from an unmerged branch and a
    # one-batch test that declared stages solved at 0.95.
    "theory.timescales": {"single_tau_growth"},
    # Since 0.6.12 the kernel check reads the laziest alpha's test loss once the training set is
    # interpolated (train loss <= 0.1%), where kernel regression applies; it read it at 10%,
    # where even the linearized network is 6-24% above the kernel error. Quick's alpha = 8
    # learns features from the start and falls through the kernel line: 0.546 (needs 0.1).
    "theory.grokking_lazy_rich": {"plateau_kernel_rel_error"},
    # Since 0.6.12 the output layer is fitted by plain least squares, the paper's loss
    # minimization; the old floor came from an unsourced ridge 1e-6. tanh features with band
    # omega / 4 then fit sin(20 x) to ~1e-9: no floor (narrow_floor 4e-10, needs >= 0.1).
    "theory.bandlimited": {"narrow_floor"},
    # The Hilbert-kernel classifier's excess risk over Bayes shrinks slowly with n: with exact
    # risks and draws ~ 1/n (0.6.10) seeds 0-2 give 0.497, 0.465, 0.443 against <= 0.5, so a
    # pass by a small margin; the n = 3000 mean of 3 draws still moves it by a few hundredths.
    "theory.wide_deep_optimality": {"singular_excess_ratio"},
    # On 8x8 digits at equal parameters the plain MLP (a ~2.7x wider embedding) beats the
    # inverted-bottleneck MLP at the largest quick scale (ratio 1.29; seeds 0-4 give 0.76-1.29,
    # a few test images either way; full 2.57). The paper compares at equal width (0.49).
    "theory.scaling_mlps": {"bottleneck_over_plain_error"},
    # MPNP beats the NP baseline by 0.020 nats in quick mode (held-out batches of 16 as in the
    # BNP/TNP evaluation); seeds 0-4 give +0.002 to +0.070, other settings tried -0.02 to
    # +0.05; full mode: +0.144.
    "theory.mpnp": {"ll_gap_vs_np"},
    # S-KAN after the three stages (full, top-2 selective, pruned to one space per node) is
    # within 10% of the best single-space KAN on 1 of 7 tasks (needs 5; full 0 of 7) since the
    # Fourier space uses FourierKAN's frequencies (0.6.11; 3 of 7 before); at these step
    # budgets no model converges and the pruned net has fewer steps in its space.
    "theory.skan": {"tasks_within_best_kan"},
    # The paper's 100% test accuracy with corrupted labels coexisting holds at seeds 0 and 4 of
    # 0-4 and depends on the machine: seed 0 gave 1.0 on the CPU of one 2026-12-01 session and
    # of the 2026-12-03 one, and 0.994 (2 of 336 test pairs) on others, with the same code.
    "theory.grok_corrupted": {"coexist_test_acc"},
}


@pytest.mark.reproduction
@pytest.mark.slow
@pytest.mark.parametrize("reproduction_id", IDS)
def test_quick_reproduction_holds(reproduction_id: str, tmp_path) -> None:
    assert_quick_reproduction(reproduction_id, tmp_path, KNOWN_FAILING.get(reproduction_id, ()))
