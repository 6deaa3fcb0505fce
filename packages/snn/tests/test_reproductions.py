"""The quick reproductions of neuronkit-snn hold (each ~10-30 s on 2 CPU cores)."""

import pytest

from neuronkit.common.testing import assert_quick_reproduction

IDS = [
    "snn.sltt",
    "snn.iir",
    "snn.delays",
    "snn.dynamic_confidence",
    "snn.pdsg_sda",
]

# Checks whose paper effect does not show, or only marginally, at quick scale (explained in
# each report and in docs/papers.md). They run and are reported; every other check must hold.
KNOWN_FAILING = {
    # PGD through PDSG vs a mismatched fixed surrogate: no gap on small digits SNNs (the
    # paper's gap comes from deep VGG/ResNet SNNs).
    "snn.pdsg_sda": {"pgd_pdsg_minus_mismatched"},
    # Seed 0 holds (8.77 >= 5 since 0.3.13's reset to 0), but the margin depends on the seed
    # (seeds 0-8: 8.77, 15.0, 7.99, 11.6, 6.68, 6.42, 1.82, 6.60, 3.73) and on the positions'
    # learning rate, which follows the reference's rule; rounding the delays for evaluation,
    # as the reference does, costs ~23 points against the Gaussian taps.
    "snn.delays": {"learned_minus_fixed"},
    # With every stage trained to ~98% at T = 5, T = 1 keeps 0.964 of it (needs 0.97), and
    # since the reference's spike-driven threshold calibration (0.3.13) scratch training at
    # T = 1 beats IIR by 2.5 points on 8x8 digits (0.3.29; full mode, twice the epochs, gave
    # 0.972 and -1.63 with 0.3.13, 0.971 and -2.22 with 0.3.29).
    "snn.iir": {"t1_over_t5_accuracy", "iir_minus_scratch_t1_points"},
}


@pytest.mark.reproduction
@pytest.mark.slow
@pytest.mark.parametrize("reproduction_id", IDS)
def test_quick_reproduction_holds(reproduction_id: str, tmp_path) -> None:
    assert_quick_reproduction(reproduction_id, tmp_path, KNOWN_FAILING.get(reproduction_id, ()))
