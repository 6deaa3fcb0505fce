"""Every public function and class answers bad arguments with a clear error naming one."""

from pathlib import Path

import pytest

from neuronkit.common.testing import bad_argument_problems

EXEMPT: dict[str, str] = {}  # name: why a string is not a bad argument for it


def test_public_callables_reject_bad_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a callable that took the string for a path writes here
    assert bad_argument_problems("neuronkit.theory", EXEMPT) == []


def test_seed_none_follows_the_global_seed() -> None:
    """``seed=None`` drew numpy / torch generators from the OS: ``seed_everything`` did not
    make such a call repeatable (an audit of determinism)."""
    import numpy as np
    import torch

    from neuronkit.common import seed_everything
    from neuronkit.theory import KAN, diluted_patterns

    draws = []
    for _ in range(2):
        seed_everything(4)
        draws.append((diluted_patterns(3, 50, 0.5), KAN([2, 3, 1]).layers[0].weight.detach()))
    np.testing.assert_array_equal(draws[0][0], draws[1][0])
    assert torch.equal(draws[0][1], draws[1][1])
