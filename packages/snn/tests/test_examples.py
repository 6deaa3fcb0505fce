"""The README's examples and the docstrings' ``>>>`` examples run as written."""

from pathlib import Path

import pytest
import torch
from torch import nn

from neuronkit.common.testing import run_docstring_examples, run_readme_examples
from neuronkit.snn.training import StepSequential, sltt_neuron, sltt_train_epoch

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_readme_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # anything an example writes lands here
    assert run_readme_examples(README) >= 1


def test_docstring_examples_run() -> None:
    assert run_docstring_examples("neuronkit.snn") >= 1


def test_readme_sketch_trainer_calls_run_as_written() -> None:
    # the "Paper methods" sketch only has its imports run: its SLTT and SLTT-K calls run here
    calls = [
        line.split("#")[0].strip()
        for line in README.read_text(encoding="utf-8").splitlines()
        if "sltt_train_epoch(net," in line
    ]
    assert any("k=" in call for call in calls)  # SLTT-K is shown as a call, not a comment
    net = StepSequential(nn.Linear(64, 128), sltt_neuron(), nn.Linear(128, 10))
    namespace = {
        "net": net,
        "loader": [(torch.rand(8, 64), torch.randint(0, 10, (8,)))],
        "optimizer": torch.optim.SGD(net.parameters(), lr=0.1),
        "sltt_train_epoch": sltt_train_epoch,
    }
    for call in calls:
        exec(call, namespace)
