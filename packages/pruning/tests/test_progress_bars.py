"""The ``show_progress`` bars of the long pruning loops (``neuronkit.common.progress``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from neuronkit.common.testing import progress_bar_problems
from neuronkit.pruning import DigitsCNN
from neuronkit.pruning.dynamic import DynamicCNN, FTWTConfig, train_ftwt
from neuronkit.pruning.nas import CellSpace, SearchConfig, enas_search, random_search

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors

SEARCH = SearchConfig(
    epochs=2,
    shared_steps=2,
    batch_size=8,
    hidden=4,
    controller_hidden=4,
    controller_steps=1,
    controller_batch=2,
    reward_batch=8,
    num_candidates=2,
)


def _split() -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 6, generator=g)
    y = torch.arange(32) % 3
    return x[:16], y[:16], x[16:], y[16:]


def _enas(**kw: Any) -> Any:
    return enas_search(CellSpace(num_nodes=2), *_split(), SEARCH, seed=0, **kw)


def _random(**kw: Any) -> Any:
    return random_search(CellSpace(num_nodes=2), *_split(), SEARCH, seed=0, **kw)


def _ftwt(**kw: Any) -> tuple[dict[str, list[float]], dict[str, torch.Tensor]]:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = DigitsCNN(widths=(4, 6, 5))
    head = nn.Sequential(model.pool, nn.Flatten(), model.fc)
    net = DynamicCNN.from_sequential(model.features, head, ratio=0.8)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 1, 8, 8, generator=g)
    y = torch.randint(0, 10, (16,), generator=g)
    hist = train_ftwt(net, x, y, FTWTConfig(epochs=2, batch_size=8), seed=0, **kw)
    return hist, net.state_dict()


def _send(**kw: Any) -> Any:
    pytest.importorskip("transformers", reason="SeND training needs the transformers extra")
    from neuronkit.pruning.send.corpus import WordTokenizer
    from neuronkit.pruning.send.training import SeNDConfig, tiny_gpt_neox, train_send

    lines = ["the capital of a is b .", "x works as a e ."] * 2
    tok = WordTokenizer.from_texts(lines)
    model = tiny_gpt_neox(len(tok), hidden_size=8, layers=2, heads=2, seed=0)
    ids, mask = tok.batch(lines)
    t_ids, t_mask = tok.batch(["the capital of a is"], eos=False)
    cfg = SeNDConfig(steps=3, batch_size=2, checkpoint_every=1, window=2, drop_fraction=0.25)
    return train_send(model, ids, mask, t_ids, t_mask, cfg, seed=0, **kw)


def _imp(**kw: Any) -> Any:
    from neuronkit.pruning.lottery import TrainConfig, iterative_magnitude_pruning

    x, y = _split()[:2]
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    for p in model.parameters():
        nn.init.normal_(p, std=0.3, generator=g)
    cfg = TrainConfig(iterations=2, batch_size=8, lr=0.1)
    return iterative_magnitude_pruning(model, x, y, cfg, rounds=2, **kw)


def _fedavg(**kw: Any) -> Any:
    from neuronkit.pruning.federated import LocalConfig, run_fedavg

    x, y = _split()[:2]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    local = LocalConfig(epochs=1, batch_size=8)
    clients = [(x[:8], y[:8]), (x[8:], y[8:])]
    hist = run_fedavg(model, clients, x, y, rounds=2, local=local, **kw)
    return torch.as_tensor(hist.accuracy).tolist()


def _bricks() -> tuple[Any, Any]:
    from neuronkit.pruning.bricks.model import BrickTransformer
    from neuronkit.pruning.bricks.tasks import make_task_data

    data = make_task_data(["affine"], 16, seq_len=4, n_digits=5, seed=0)
    torch.manual_seed(0)
    return BrickTransformer(data.vocab_size, data.seq_len, d_model=8, n_heads=2, d_ff=16), data


def _multitask(**kw: Any) -> Any:
    from neuronkit.pruning.bricks.model import train_multitask

    return train_multitask(*_bricks(), steps=3, batch_size=4, warmup=1, log_every=1, **kw)


def _router(**kw: Any) -> Any:
    from neuronkit.pruning.bricks.discovery import ffn_activations
    from neuronkit.pruning.bricks.routing import ExpertRouter, split_ffn, train_router

    model, data = _bricks()
    ins, hid, _ = ffn_activations(model.eval(), data, labelled_only=False)
    torch.manual_seed(0)
    router = ExpertRouter(8, 4)
    labels = split_ffn(model.ffns[0], 4, seed=0)
    return train_router(router, ins[0], hid[0], labels, epochs=2, seed=0, **kw)


CASES: dict[str, Callable[..., Any]] = {
    "iterative_magnitude_pruning": _imp,
    "run_fedavg": _fedavg,
    "train_multitask": _multitask,
    "train_router": _router,
    "enas_search": _enas,
    "random_search": _random,
    "train_ftwt": _ftwt,
    "train_send": _send,
}


LABELS: dict[str, str] = {"iterative_magnitude_pruning": "imp_rounds"}


@pytest.mark.parametrize("name", list(CASES))
def test_show_progress(name: str) -> None:
    assert progress_bar_problems(CASES[name], LABELS.get(name, name)) == []


def test_the_bar_leaves_the_numbers_unchanged() -> None:
    hist_on, state_on = _ftwt(show_progress=True)
    hist_off, state_off = _ftwt(show_progress=False)
    assert hist_on == hist_off
    assert state_on.keys() == state_off.keys()
    for k in state_on:
        assert torch.equal(state_on[k], state_off[k]), k


@pytest.mark.parametrize("name", ["run_fedavg", "train_multitask", "train_router"])
def test_the_bar_leaves_the_results_unchanged(name: str) -> None:
    assert CASES[name](show_progress=True) == CASES[name](show_progress=False)
