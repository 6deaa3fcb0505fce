"""Federated rounds in-process (neuronkit.pruning.federated.loop)."""

import copy

import pytest
import torch
from torch import nn

from neuronkit.pruning.federated.loop import (
    LocalConfig,
    aggregate_mask_votes,
    aggregate_sign_votes,
    fedavg_aggregate,
    hidenseek_client_update,
    run_binary_supermask,
    run_fedavg,
    run_hidenseek,
)
from neuronkit.pruning.federated.supermask import BinarySupermask, SignSupermask
from neuronkit.pruning.federated.synflow import synflow_prune

LOCAL = LocalConfig(epochs=1, batch_size=8, lr=0.1, optimizer="adam")


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(8, 16, bias=False), nn.ReLU(), nn.Linear(16, 3, bias=False)
    )


def _data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, generator=gen)
    y = (x[:, 0, :3].argmax(1)).long()
    return x, y


def _sign_net() -> SignSupermask:
    net = _net()
    return SignSupermask(net, synflow_prune(net, 0.5, (1, 8), iterations=5))


def test_sign_vote_is_weighted_majority_with_tie_keeping_previous() -> None:
    sm = _sign_net()
    n1 = int(sm.mask("1.weight").sum())
    n3 = int(sm.mask("3.weight").sum())
    plus = {
        "1.weight": torch.ones(n1, dtype=torch.int8),
        "3.weight": torch.ones(n3, dtype=torch.int8),
    }
    minus = {k: -v for k, v in plus.items()}
    prev = sm.get_scores()
    # weights 3:1 -> vote +0.5 everywhere
    out = aggregate_sign_votes(sm, [plus, minus], [3, 1], prev)
    assert torch.allclose(out["1.weight"][sm.mask("1.weight")], torch.tensor(0.5))
    # exact tie -> the previous sign survives with a tiny magnitude
    tie = aggregate_sign_votes(sm, [plus, minus], [1, 1], prev)
    m = sm.mask("1.weight")
    assert torch.equal(tie["1.weight"][m] >= 0, prev["1.weight"][m] >= 0)
    assert float(tie["1.weight"][m].abs().max()) <= 1e-3 + 1e-9
    with pytest.raises(ValueError, match="shape"):
        aggregate_sign_votes(
            sm, [{"1.weight": torch.ones(2), "3.weight": plus["3.weight"]}], [1], prev
        )
    with pytest.raises(ValueError, match="weights"):
        aggregate_sign_votes(sm, [plus], [0], prev)
    with pytest.raises(ValueError, match="must hold only -1 and \\+1"):
        aggregate_sign_votes(sm, [{k: 5 * v for k, v in plus.items()}], [1], prev)
    with pytest.raises(ValueError, match="previous lacks"):
        aggregate_sign_votes(sm, [plus], [1], {})


def test_mask_vote_and_fedavg_aggregate() -> None:
    bm = BinarySupermask(_net(), {"1.weight": 0.5, "3.weight": 0.5}, seed=0)
    s0 = bm.get_scores()
    keep_all = {k: torch.ones_like(v, dtype=torch.bool) for k, v in s0.items()}
    keep_none = {k: torch.zeros_like(v, dtype=torch.bool) for k, v in s0.items()}
    out = aggregate_mask_votes(bm, [keep_all, keep_none], [1, 3], s0)
    c = float(s0["1.weight"].abs().max())
    torch.testing.assert_close(out["1.weight"], 0.25 * c + 1e-3 * s0["1.weight"].abs())
    # bad arguments named (a missing initial score was a bare KeyError; a 0/2 float "mask"
    # gave votes outside the documented [0, 1])
    with pytest.raises(ValueError, match=r"initial lacks the scores of '1\.weight'"):
        aggregate_mask_votes(bm, [keep_all], [1], {})
    twos = {k: 2.0 * v.float() for k, v in keep_all.items()}
    with pytest.raises(TypeError, match=r"masks\[0\]\['1.weight'\] must be a bool tensor"):
        aggregate_mask_votes(bm, [twos], [1], s0)
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(3)}
    avg = fedavg_aggregate([a, b], [1, 3])
    torch.testing.assert_close(avg["w"], torch.tensor([2.5, 5.0]))
    assert int(avg["n"]) == 3


def test_client_update_does_not_touch_the_shared_net() -> None:
    sm = _sign_net()
    before = copy.deepcopy(sm.state_dict())
    x, y = _data(24, 0)
    signs = hidenseek_client_update(sm, sm.get_scores(), x, y, LOCAL, seed=0)
    assert set(signs) == set(sm.names)
    for k, v in sm.state_dict().items():
        assert torch.equal(v, before[k])


def test_empty_client_raises_and_leaves_model_unchanged() -> None:
    sm = _sign_net()
    before = copy.deepcopy(sm.state_dict())
    x, y = _data(10, 1)
    clients = [(x, y), (x[:0], y[:0])]
    with pytest.raises(ValueError, match=r"clients\[1\] has an empty dataset"):
        run_hidenseek(sm, clients, x, y, rounds=1, local=LOCAL)
    with pytest.raises(ValueError, match="empty dataset"):
        hidenseek_client_update(sm, sm.get_scores(), x[:0], y[:0], LOCAL, seed=0)
    net = _net()
    dense_before = copy.deepcopy(net.state_dict())
    with pytest.raises(ValueError, match="empty dataset"):
        run_fedavg(net, clients, x, y, rounds=1, local=LOCAL)
    for k, v in sm.state_dict().items():
        assert torch.equal(v, before[k])
    for k, v in net.state_dict().items():
        assert torch.equal(v, dense_before[k])
    with pytest.raises(ValueError, match="at least one client"):
        run_hidenseek(sm, [], x, y, rounds=1, local=LOCAL)


def test_bad_test_set_callback_and_states_are_named() -> None:
    """The test set was named "test set x" and its bad labels "y" (after a round of training);
    a non-callable callback failed with "'int' object is not callable" after the first round;
    lists in a state failed with "'list' object has no attribute 'is_floating_point'"."""
    clients = [_data(10, 0)]
    x, y = _data(10, 1)
    for run, make in ((run_hidenseek, _sign_net), (run_fedavg, _net)):
        with pytest.raises(TypeError, match="x_test must be Tensor, got list"):
            run(make(), clients, x.tolist(), y, rounds=1, local=LOCAL)
        with pytest.raises(ValueError, match=r"y_test must hold class labels in \[0, 2\]"):
            run(make(), clients, x, y + 5, rounds=1, local=LOCAL)
        with pytest.raises(TypeError, match="callback must be a callable"):
            run(make(), clients, x, y, rounds=1, local=LOCAL, callback=3)
    with pytest.raises(TypeError, match=r"states\[0\]\['w'\] must be Tensor, got list"):
        fedavg_aggregate([{"w": [1.0]}, {"w": [2.0]}], [1, 1])
    with pytest.raises(TypeError, match=r"states\[1\]\['w'\] must be Tensor, got list"):
        fedavg_aggregate([{"w": torch.ones(1)}, {"w": [2.0]}], [1, 1])


def test_three_methods_run_and_account_uplink() -> None:
    sm = _sign_net()
    clients = [_data(20, k) for k in range(3)]
    xt, yt = _data(30, 9)
    busy = LocalConfig(epochs=4, batch_size=4, lr=0.2, optimizer="adam")  # enough to flip signs
    h = run_hidenseek(sm, clients, xt, yt, rounds=2, local=busy, seed=1)
    assert len(h.accuracy) == 2
    assert all(0.0 <= a <= 1.0 for a in h.accuracy)
    assert h.uplink_bits == [3 * sm.num_unpruned()] * 2
    assert h.payload_bits == [3 * 8 * -(-sm.num_unpruned() // 8)] * 2
    assert h.flips[0] > 0
    again = run_hidenseek(sm, clients, xt, yt, rounds=2, local=busy, seed=1)
    assert again.accuracy == h.accuracy  # seeded
    bm = BinarySupermask(_net(), {"1.weight": 0.5, "3.weight": 0.5}, seed=0)
    hb = run_binary_supermask(bm, clients, xt, yt, rounds=1, local=LOCAL)
    assert hb.uplink_bits == [3 * (8 * 16 + 16 * 3)]
    hf = run_fedavg(_net(), clients, xt, yt, rounds=1, local=LocalConfig(epochs=1, lr=0.05))
    assert hf.uplink_bits == [3 * 32 * (8 * 16 + 16 * 3)]
    assert hf.payload_bits == hf.uplink_bits


def test_local_config_validation() -> None:
    with pytest.raises(ValueError, match="epochs"):
        LocalConfig(epochs=0)
    with pytest.raises(ValueError, match="optimizer"):
        LocalConfig(optimizer="rmsprop")
    assert LocalConfig(epochs=2, batch_size=8).train_config(17).iterations == 6


def test_run_loops_equal_rounds_of_the_public_client_updates() -> None:
    """The run_* loops reuse one local network; the result equals fresh copies per client."""
    from neuronkit.pruning.federated.loop import (
        binary_client_update,
        fedavg_client_update,
    )

    clients = [_data(20, 1), _data(13, 2), _data(9, 3)]
    sizes = [len(y) for _, y in clients]
    x_test, y_test = _data(30, 9)
    sm = _sign_net()
    hist = run_hidenseek(sm, clients, x_test, y_test, rounds=2, local=LOCAL, seed=4)
    scores = sm.get_scores()
    for r in range(2):
        msgs = [
            hidenseek_client_update(sm, scores, x, y, LOCAL, seed=4 * 1_000_003 + r * 1009 + k)
            for k, (x, y) in enumerate(clients)
        ]
        scores = aggregate_sign_votes(sm, msgs, sizes, scores)
    assert all(torch.equal(scores[n], hist.scores[n]) for n in scores)

    bm = BinarySupermask(_net(), {"1.weight": 0.5, "3.weight": 0.5}, seed=0)
    hist = run_binary_supermask(bm, clients, x_test, y_test, rounds=2, local=LOCAL, seed=4)
    initial = bm.get_scores()
    scores = initial
    for r in range(2):
        masks = [
            binary_client_update(bm, scores, x, y, LOCAL, seed=4 * 1_000_003 + r * 1009 + k)
            for k, (x, y) in enumerate(clients)
        ]
        scores = aggregate_mask_votes(bm, masks, sizes, initial)
    assert all(torch.equal(scores[n], hist.scores[n]) for n in scores)

    net = _net()
    dense = LocalConfig(epochs=1, batch_size=8, lr=0.05, optimizer="sgd", momentum=0.9)
    hist = run_fedavg(net, clients, x_test, y_test, rounds=2, local=dense, seed=4)
    state = copy.deepcopy(net.state_dict())
    for r in range(2):
        states = [
            fedavg_client_update(net, state, x, y, dense, seed=4 * 1_000_003 + r * 1009 + k)
            for k, (x, y) in enumerate(clients)
        ]
        state = fedavg_aggregate(states, sizes)
    assert all(torch.equal(state[n], hist.scores[n]) for n in state)


def test_client_updates_and_runs_ignore_the_callers_grad_mode() -> None:
    """Under torch.no_grad() local training failed with torch's own message; client inputs
    that require grad got their ``.grad`` filled."""
    sm = _sign_net()
    x, y = _data(24, 0)
    ref = hidenseek_client_update(sm, sm.get_scores(), x, y, LOCAL, seed=0)
    leaf = x.clone().requires_grad_(True)
    clients = [(leaf, y), _data(13, 2)]
    x_test, y_test = _data(30, 9)
    dense = LocalConfig(epochs=1, batch_size=8, lr=0.05, optimizer="sgd")
    run = run_fedavg(_net(), [(x, y), clients[1]], x_test, y_test, rounds=1, local=dense, seed=4)
    with torch.no_grad():
        signs = hidenseek_client_update(sm, sm.get_scores(), leaf, y, LOCAL, seed=0)
        again = run_fedavg(_net(), clients, x_test, y_test, rounds=1, local=dense, seed=4)
    assert leaf.grad is None
    assert all(torch.equal(signs[n], ref[n]) for n in ref)
    assert all(torch.equal(again.scores[n], run.scores[n]) for n in run.scores)
    with torch.inference_mode():
        with pytest.raises(RuntimeError, match=r"^hidenseek_client_update needs autograd"):
            hidenseek_client_update(sm, sm.get_scores(), x, y, LOCAL, seed=0)
        with pytest.raises(RuntimeError, match=r"^run_fedavg needs autograd"):
            run_fedavg(_net(), clients, x_test, y_test, rounds=1, local=dense, seed=4)
