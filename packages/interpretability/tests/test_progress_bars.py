"""Long-running analyses show a progress bar on stderr when asked (``show_progress``), none by
default off a terminal, and the bar does not change their results."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from neuronkit.common.testing import progress_bar_problems
from neuronkit.interpretability import (
    bootstrap_crossvalidate,
    crossvalidate,
    evaluate_models,
    hessian_influence,
    maximize_activation,
    train_classifier,
)
from neuronkit.interpretability.description import (
    DescriptionLM,
    ExemplarCaptioner,
    ExemplarEncoder,
    Vocabulary,
)
from neuronkit.interpretability.dynamics import track_information_plane
from neuronkit.interpretability.fusion import LateFusionClassifier, StreamCNN, train_head
from neuronkit.interpretability.stimuli import mds_clustering, optimize_stimuli
from neuronkit.interpretability.visualization import channel, visualize_facets


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(64, 2))


def _linear() -> nn.Module:
    torch.manual_seed(0)
    return nn.Linear(4, 2).double()


def _responses() -> nn.Module:
    torch.manual_seed(0)
    return nn.Linear(4, 6)


def _captioner() -> ExemplarCaptioner:
    vocab = Vocabulary.from_descriptions(["red shapes", "blue shapes"])
    return ExemplarCaptioner(vocab, ExemplarEncoder(width=4, seed=0), hidden_size=8, seed=0)


def _fusion() -> LateFusionClassifier:
    torch.manual_seed(0)  # the head
    streams = [StreamCNN(width=4, n_features=4, seed=s) for s in (0, 1)]
    return LateFusionClassifier(*streams, 2, box=(2, 2, 6, 6))


_IMAGES = torch.rand(2, 3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
_RDMS = torch.rand(4, 15, generator=torch.Generator().manual_seed(0)).double().numpy()

RUNS: dict[str, Callable[[bool | None], object]] = {
    "evaluate_models": lambda show: evaluate_models(
        _RDMS[:2], _RDMS[2:], bootstrap="conditions", n_bootstrap=3, show_progress=show
    ).samples.tolist(),
    "evaluate_models (subjects, ranks)": lambda show: evaluate_models(
        _RDMS[:2], _RDMS[2:], "spearman", bootstrap="subjects", n_bootstrap=3, show_progress=show
    ).samples.tolist(),
    "crossvalidate": lambda show: crossvalidate(
        {"fixed": _RDMS[0], "weighted": _RDMS[:2]}, _RDMS[2:], show_progress=show
    ).evaluations.tolist(),
    "bootstrap_crossvalidate": lambda show: bootstrap_crossvalidate(
        _RDMS[:2], _RDMS[2:], bootstrap="conditions", n_bootstrap=3, show_progress=show
    ).samples.tolist(),
    "maximize_activation": lambda show: (
        maximize_activation(
            _cnn(), channel("0", 1), shape=(1, 3, 4, 4), steps=3, show_progress=show
        ).image
    ),
    "visualize_facets": lambda show: (
        visualize_facets(
            _cnn(), channel("0", 1), torch.rand(2, 3, 4, 4), steps=3, show_progress=show
        ).image
    ),
    "train_classifier": lambda show: train_classifier(
        _cnn(), torch.rand(8, 3, 4, 4), torch.arange(8) % 2, epochs=2, show_progress=show
    ),
    "track_information_plane": lambda show: track_information_plane(
        torch.rand(12, 4, generator=torch.Generator().manual_seed(0)),
        torch.arange(12) % 2,
        torch.arange(8),
        hidden=(3,),
        n_runs=1,
        epochs=3,
        n_records=2,
        show_progress=show,
    ).train_accuracy.tolist(),
    "pretrain": lambda show: ExemplarEncoder(width=4, seed=0).pretrain(
        _IMAGES[0], (_IMAGES[0, :, :1] > 0.5).long(), epochs=2, show_progress=show
    ),
    "fit captioner": lambda show: _captioner().fit(
        _IMAGES,
        torch.ones(2, 3, 1, 8, 8),
        [["red shapes"], ["blue shapes"]],
        epochs=2,
        show_progress=show,
    ),
    "fit prior": lambda show: DescriptionLM(Vocabulary(["a", "b"]), seed=0).fit(
        ["a b", "b"], epochs=2, show_progress=show
    ),
    "train_head": lambda show: train_head(
        _fusion(),
        _IMAGES[0, :, :1].expand(3, 1, 8, 8).contiguous(),
        torch.arange(3) % 2,
        epochs=2,
        show_progress=show,
    ),
    "optimize_stimuli": lambda show: optimize_stimuli(
        _responses(), torch.arange(6) % 2, (4,), n_steps=3, show_progress=show
    )[0],
    "mds_clustering": lambda show: (
        mds_clustering(
            _responses(), (4,), 2, n_steps=3, max_iter=2, n_norm_samples=8, show_progress=show
        ).stimuli
    ),
    "hessian_influence (lissa)": lambda show: hessian_influence(
        _linear(),
        (torch.from_numpy(_RDMS[:, :4]), torch.arange(4) % 2),
        (torch.from_numpy(_RDMS[:2, 4:8]), torch.arange(2)),
        damping=1.0,
        method="lissa",
        lissa_depth=3,
        show_progress=show,
    ),
}


@pytest.mark.parametrize("name", RUNS)
def test_show_progress(name: str) -> None:
    run = RUNS[name]
    label = "maximize_activation" if name == "visualize_facets" else name  # its optimizer
    label = "bootstrap" if name.startswith(("evaluate_models", "bootstrap_")) else label
    label = "folds" if name == "crossvalidate" else label
    label = "lissa" if name.startswith("hessian_influence") else label
    assert progress_bar_problems(lambda **kw: run(kw.get("show_progress")), label) == []
    shown, hidden = run(True), run(False)  # the bar leaves the results alone
    if isinstance(shown, torch.Tensor):
        assert torch.equal(shown, hidden)
    else:
        assert shown == hidden


def test_a_bad_callback_fails_before_training() -> None:
    with pytest.raises(TypeError, match="callback must be callable"):
        track_information_plane(
            torch.rand(6, 2),
            torch.arange(6) % 2,
            torch.arange(4),
            callback="x",  # type: ignore[arg-type]
        )
