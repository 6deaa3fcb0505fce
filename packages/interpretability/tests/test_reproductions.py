"""The package's quick reproductions, run as tests (select with ``-m reproduction``)."""

from __future__ import annotations

import pytest

from neuronkit.common.testing import assert_quick_reproduction

IDS = [
    "interpretability.trsa",
    "interpretability.diffroar",
    "interpretability.convergent",
    "interpretability.lst",
    "interpretability.info_plane",
    "interpretability.contextual_fusion",
    "interpretability.widedeep",
    "interpretability.mds",
    "interpretability.mfv",
    "interpretability.milan",
    "interpretability.codebook",
]

# Checks whose paper effect does not show at quick scale (explained in each report and in
# docs/papers.md). They run and are reported; every other check must hold.
KNOWN_FAILING: dict[str, set[str]] = {
    # Thresholds are ours (PAPERS.md gives none), fixed before the first run; none holds on
    # digits CNNs (quick and full): the shuffled-image baseline keeps conv-layer correlations
    # high (ratio 1.7 vs 2), the fc layer breaks the depth trend that the conv layers show
    # (Spearman -1 over conv1-3), and lasso needs ~17% of a small layer's units (needs 10%).
    "interpretability.convergent": {
        "matched_over_permuted_min",
        "depth_rank_correlation",
        "median_nonzero_fraction",
    },
    # No input within 10% relative L2 of another digit keeps source confidence >= 0.8 on a
    # 64-pixel digits CNN (a targeted attack from the target finds 0 of 24); LST ends at 0.33.
    "interpretability.lst": {"relative_l2_to_target"},
    # Over the full mode's 3 seeds (quick since 0.5.11) the FGSM gain is +3.1 points (needs 5;
    # full +0.2): the whole-scene attack breaks the fragile context stream too. The old one-seed
    # quick pass (+6.25) was a good draw (seeds 0-5: +6.2, -7.7, +6.0, 0.0, -0.7, +7.5).
    "interpretability.contextual_fusion": {"fgsm_gain"},
    # Quick runs the full mode's 3 digit pairs x 1 seed (12 epochs): facet_ari 0.881 holds; one of
    # 6 facet visualizations (4|7, digit 7) drifts past the midpoint towards the other facet
    # (0.833, needs 1.0). Full mode (3 pairs x 2 seeds, 30 epochs) fails it too: 0.667.
    "interpretability.mfv": {"visualizations_closer_to_own_facet"},
    # As in the reference: one neuron per role (0.5.9), every neuron in both answer orders, a
    # judge that lists every perspective (0.5.10), and layer-2 neurons taking the joined roles
    # of the neurons they read (0.5.13). Over widths 1-8 the 1-layer kappa falls after width 2
    # (0.53 -> 0.39): the mean weighs the least relevant perspectives as much as the decisive
    # ones. Spearman -0.4 (needs 0.7); the gain holds by 0.0002 (+0.0502, needs 0.05).
    "interpretability.widedeep": {"kappa_width_spearman"},
    # With the reference's precision (code firings counted over every token, the most precise
    # code with recall > 1%; 0.5.10) the best quick codebook reaches 0.798 (needs 0.8), the
    # best of seeds 0-3 (mean 0.764); full mode holds (0.851).
    "interpretability.codebook": {"state_code_precision"},
    # Not listed: interpretability.milan passes by a hair (PMI accuracy 0.71, needs 0.70),
    # carried by colour-shape units; shape and position units are mostly missed. Seeds 0-5:
    # 0.71, 0.70, 0.70, 0.62, 0.81, 0.65 (mean 0.698): seed 0 is asserted as it stands.
}


@pytest.mark.reproduction
@pytest.mark.slow
@pytest.mark.parametrize("reproduction_id", IDS)
def test_quick_reproduction_holds(reproduction_id: str, tmp_path) -> None:
    assert_quick_reproduction(reproduction_id, tmp_path, KNOWN_FAILING.get(reproduction_id, ()))
