"""Flower wrappers of HideNseek in one process (neuronkit.pruning.federated.flower).

The multi-process federation is tests/federated/test_flower_loopback.py.
"""

import io
import math
import pickle

import pytest
import torch
from torch import nn

pytest.importorskip("flwr", reason="the flwr extra (neuronkit-pruning[flwr]) is not installed")

from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays

from neuronkit.pruning.federated import flower
from neuronkit.pruning.federated.loop import LocalConfig
from neuronkit.pruning.federated.supermask import SignSupermask
from neuronkit.pruning.federated.synflow import synflow_prune

LOCAL = LocalConfig(epochs=1, batch_size=8, lr=0.1, optimizer="adam")


def _sign_net() -> SignSupermask:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Flatten(), nn.Linear(8, 12, bias=False), nn.ReLU(), nn.Linear(12, 3, bias=False)
    )
    return SignSupermask(net, synflow_prune(net, 0.5, (1, 8), iterations=5))


def _data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, generator=gen)
    return x, x[:, 0, :3].argmax(1).long()


def test_client_fit_uploads_one_bit_per_unpruned_weight() -> None:
    sm = _sign_net()
    client = flower.make_client(sm, *_data(16, 0), local=LOCAL, seed=0)
    params = client.get_parameters({})
    assert [a.shape for a in params] == [(int(sm.mask(n).sum()),) for n in sm.names]
    out, n, metrics = client.fit(params, {"server_round": 1})
    assert n == 16
    assert metrics["uplink_bits"] == sm.num_unpruned()
    assert len(out) == 1
    assert out[0].dtype.name == "uint8"
    assert out[0].size == math.ceil(sm.num_unpruned() / 8)


def test_strategy_aggregates_packed_signs() -> None:
    sm = _sign_net()
    strategy = flower.make_strategy(
        sm, min_clients=2, x_test=_data(20, 5)[0], y_test=_data(20, 5)[1]
    )
    init = strategy.initialize_parameters(None)
    results = []
    for k in range(2):
        client = flower.make_client(sm, *_data(16, k), local=LOCAL, seed=k)
        arrays, n, metrics = client.fit(parameters_to_ndarrays(init), {"server_round": 1})
        res = FitRes(Status(Code.OK, ""), ndarrays_to_parameters(arrays), n, metrics)
        results.append((None, res))
    params, metrics = strategy.aggregate_fit(1, results, [])
    assert metrics["uplink_bits"] == 2 * sm.num_unpruned()
    assert strategy.history["payload_bits"] == [2 * 8 * math.ceil(sm.num_unpruned() / 8)]
    votes = parameters_to_ndarrays(params)
    assert all(((v >= -1) & (v <= 1)).all() for v in votes)
    loss, m = strategy.evaluate(1, params)
    assert 0.0 <= m["accuracy"] <= 1.0
    assert math.isclose(loss, 1 - m["accuracy"])
    with pytest.raises(RuntimeError, match="failed"):
        strategy.aggregate_fit(2, results, [RuntimeError("gone")])


def test_empty_client_and_bad_arguments() -> None:
    sm = _sign_net()
    x, y = _data(4, 0)
    with pytest.raises(ValueError, match="empty dataset"):
        flower.make_client(sm, x[:0], y[:0], local=LOCAL)
    with pytest.raises(ValueError, match="host:port"):
        flower.start_server("localhost", sm, rounds=1, min_clients=1)
    with pytest.raises(ValueError, match="together"):
        flower.make_strategy(sm, min_clients=1, x_test=x)
    with pytest.raises(TypeError, match="x_test must be Tensor, got list"):  # was "test set x"
        flower.make_strategy(sm, min_clients=1, x_test=x.tolist(), y_test=y)
    with pytest.raises(ValueError, match="min_clients"):
        flower.make_strategy(sm, min_clients=0)
    with pytest.raises(TypeError, match="load_data"):
        flower.client_app(None, sm, local=LOCAL)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="on_finish"):
        flower.server_app(sm, rounds=1, min_clients=2, on_finish=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="min_clients"):
        flower.server_app(sm, rounds=1, min_clients=0)


def test_apps_build() -> None:
    sm = _sign_net()
    assert type(flower.server_app(sm, rounds=1, min_clients=2)).__name__ == "ServerApp"
    app = flower.client_app(lambda ctx: _data(8, 0), sm, local=LOCAL)
    assert type(app).__name__ == "ClientApp"


def test_client_and_strategy_pickle_with_their_state() -> None:
    """The client and the strategy (global scores, history, server-side test set) pickle and
    torch.save; their classes were local to a function and their evaluation a closure."""
    sm = _sign_net()
    x, y = _data(16, 0)
    client = flower.make_client(sm, x, y, local=LOCAL, seed=3)
    client.rounds = 2
    copy = pickle.loads(pickle.dumps(client))
    assert type(copy) is type(client)
    assert (copy.rounds, copy.seed) == (2, 3)
    assert torch.equal(copy.x, x)
    params = zip(copy.get_parameters({}), client.get_parameters({}))
    assert all((a == b).all() for a, b in params)
    strategy = flower.make_strategy(sm, min_clients=2, x_test=x, y_test=y)
    strategy.scores = {n: -s for n, s in strategy.scores.items()}
    strategy.net.set_scores(strategy.scores)
    strategy.history["flips"].append(0.25)
    buf = io.BytesIO()
    torch.save(strategy, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    assert type(loaded) is type(strategy) is flower.HideNseekStrategy
    assert loaded.history == strategy.history
    assert all(torch.equal(loaded.scores[n], s) for n, s in strategy.scores.items())
    assert loaded.evaluate(1, None) == strategy.evaluate(1, None)
