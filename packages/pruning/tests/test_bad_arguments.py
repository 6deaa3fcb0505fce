"""Every public function and class answers bad arguments with a clear error naming one."""

from pathlib import Path

import pytest

from neuronkit.common.testing import bad_argument_problems

EXEMPT = {  # name: why a string is not a bad argument for it
    "declares_layout": "predicate: answers False for anything that declares no channel layout",
    "leading_dims": "reads a declaration: 0 for anything that declares no leading axes",
    "is_hf_conv1d": "predicate: answers False for anything that is not an HF Conv1D layer",
    "is_hf_model": "predicate: answers False for anything that is not an HF PreTrainedModel",
    "is_last_axis_norm": "predicate: answers False for anything that is not a last-axis norm",
}


def test_public_callables_reject_bad_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a callable that took the string for a path writes here
    assert bad_argument_problems("neuronkit.pruning", EXEMPT) == []


def test_seeds_beyond_64_bits_are_named() -> None:
    """They failed inside torch with "Overflow when unpacking long long"."""
    from neuronkit.pruning import dirichlet_partition

    with pytest.raises(ValueError, match=r"seed must be < 2\*\*64"):
        dirichlet_partition([0, 1, 0, 1], 2, 1.0, seed=2**70)
