"""The README's examples run as written (sketches, which use the reader's objects: imports)."""

from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

from neuronkit.common.testing import run_readme_examples

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_readme_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # anything an example writes lands here
    # Small models and matrices: one torch thread and one BLAS thread. With more, on a CPU
    # shared with other processes (CI's other test worker), threads spin waiting for each
    # other: the GBNN example's L-BFGS alone took 15-60 s instead of 2.5 s. SciPy is imported
    # first so that the limit also reaches its own BLAS (the GBNN example imports it anyway).
    import scipy.optimize  # noqa: F401

    with threadpool_limits(limits=1, user_api="blas"):
        assert run_readme_examples(README) >= 1
