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
    # Passes here by 1.25 points (6.25 >= 5 with the reference's protocol: no extra training
    # for the learned network, rounded delays, sum-of-softmax readout, the reference's
    # position learning rate in kernel spans) and is sensitive to that rate (the unscaled
    # 100 x lr_w or an absolute 0.1 land below 5); rounding the delays costs ~22 points
    # against the Gaussian taps. A CPU with other kernels may land below.
    "snn.delays": {"learned_minus_fixed"},
    # With every stage trained to ~98% at T = 5, T = 1 keeps 0.959 of it (needs 0.97), and
    # since the reference's spike-driven threshold calibration (0.3.13) scratch training at
    # T = 1 beats IIR by 3.2 points on 8x8 digits (full mode, twice the epochs: 0.972, -1.63).
    "snn.iir": {"t1_over_t5_accuracy", "iir_minus_scratch_t1_points"},
}


@pytest.mark.reproduction
@pytest.mark.slow
@pytest.mark.parametrize("reproduction_id", IDS)
def test_quick_reproduction_holds(reproduction_id: str, tmp_path) -> None:
    assert_quick_reproduction(reproduction_id, tmp_path, KNOWN_FAILING.get(reproduction_id, ()))
