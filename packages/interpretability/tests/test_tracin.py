"""TracIn: the sum written out, restrictions to layers, checkpoints on disk, the paper's
mislabelled-example finding, and bad input (Captum agreement: test_attribution_captum.py)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuronkit.interpretability import tracin_influence, tracin_self_influence


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _mlp(seed: int = 0) -> nn.Module:
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Dropout(0.5), nn.Linear(6, 3)).double()
    torch.random.set_rng_state(state)
    return model


X = torch.randn(7, 4, generator=_gen(1), dtype=torch.float64)
Y = torch.tensor([0, 1, 2, 0, 1, 2, 0])
XT = torch.randn(3, 4, generator=_gen(2), dtype=torch.float64)
YT = torch.tensor([2, 0, 1])
CHECKPOINTS = [_mlp(seed).state_dict() for seed in (3, 4)]
RATES = [0.5, 0.1]


def _gradients(state: dict, x: torch.Tensor, y: torch.Tensor, names: list[str]) -> torch.Tensor:
    """Each example's loss gradient at ``state``, one backward pass per example."""
    model = _mlp()
    model.load_state_dict(state)
    model.eval()
    rows = []
    for xi, yi in zip(x, y, strict=True):
        loss = F.cross_entropy(model(xi[None]), yi[None])
        params = [dict(model.named_parameters())[n] for n in names]
        rows.append(torch.cat([g.flatten() for g in torch.autograd.grad(loss, params)]))
    return torch.stack(rows)


def _written_out(names: list[str]) -> torch.Tensor:
    total = torch.zeros(3, 7, dtype=torch.float64)
    for state, lr in zip(CHECKPOINTS, RATES, strict=True):
        total += lr * _gradients(state, XT, YT, names) @ _gradients(state, X, Y, names).T
    return total


def test_influence_is_the_sum_over_checkpoints_written_out() -> None:
    names = [n for n, _ in _mlp().named_parameters()]
    got = tracin_influence(_mlp(), CHECKPOINTS, (X, Y), (XT, YT), learning_rates=RATES)
    torch.testing.assert_close(got, _written_out(names))
    looped = tracin_influence(
        _mlp(), CHECKPOINTS, (X, Y), (XT, YT), learning_rates=RATES, vectorize=False, batch_size=2
    )
    torch.testing.assert_close(looped, got)


def test_layers_restrict_the_gradient() -> None:
    got = tracin_influence(
        _mlp(), CHECKPOINTS, (X, Y), (XT, YT), learning_rates=RATES, layers=["3"]
    )
    torch.testing.assert_close(got, _written_out(["3.weight", "3.bias"]))
    full = tracin_influence(_mlp(), CHECKPOINTS, (X, Y), (XT, YT), learning_rates=RATES)
    assert not torch.allclose(got, full)


def test_one_linear_layer_never_forms_the_example_gradients(monkeypatch) -> None:
    """The last layer's TracIn from the factors ``(g . g') (a . a' + 1)``: the sum written out,
    without a per-example gradient (those raise here); self-influence too, batch by batch."""
    from neuronkit.interpretability.tracin import _ExampleGradients

    def refuse(*_: object) -> None:
        raise AssertionError("per-example gradients formed")

    monkeypatch.setattr(_ExampleGradients, "gradients", refuse)
    kwargs = {"learning_rates": RATES, "layers": ["3"], "batch_size": 3}
    got = tracin_influence(_mlp(), CHECKPOINTS, (X, Y), (XT, YT), **kwargs)
    torch.testing.assert_close(got, _written_out(["3.weight", "3.bias"]))
    own = tracin_self_influence(_mlp(), CHECKPOINTS, (X, Y), **kwargs)
    both = tracin_influence(_mlp(), CHECKPOINTS, (X, Y), (X, Y), **kwargs)
    torch.testing.assert_close(own, both.diagonal())
    torch.manual_seed(6)
    no_bias = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3, bias=False)).double()
    got = tracin_influence(no_bias, [no_bias.state_dict()], (X, Y), (XT, YT), layers=["2"])
    weight = [no_bias[2].weight]  # (g . g') (a . a')
    expected = (
        _example_gradients(no_bias, weight, XT, YT) @ _example_gradients(no_bias, weight, X, Y).T
    )
    torch.testing.assert_close(got, expected)


def _example_gradients(model: nn.Module, params: list, x: torch.Tensor, y: torch.Tensor):
    """``[n, P]`` loss gradients of ``params``, one backward pass per example."""
    rows = []
    for xi, yi in zip(x, y, strict=True):
        loss = F.cross_entropy(model(xi[None]), yi[None])
        rows.append(torch.cat([g.flatten() for g in torch.autograd.grad(loss, params)]))
    return torch.stack(rows)


def test_a_hidden_linear_layer_before_an_in_place_activation() -> None:
    torch.manual_seed(7)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(inplace=True), nn.Linear(6, 3)).double()
    got = tracin_self_influence(model, [model.state_dict()], (X, Y), layers=["0"])
    grads = _example_gradients(model, [model[0].weight, model[0].bias], X, Y)
    torch.testing.assert_close(got, grads.square().sum(1))


def test_a_linear_layer_on_sequences_takes_the_example_gradients() -> None:
    """A layer applied at every position of ``[n, T, H]`` inputs has no single factor pair:
    the gradients are taken (the written-out sum, by autograd per example)."""
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(6, 3)).double()
    x, xt = X.reshape(7, 2, 2), XT.reshape(3, 2, 2)
    got = tracin_influence(model, [model.state_dict()], (x, Y), (xt, YT), layers=["0"])
    params = [model[0].weight, model[0].bias]
    expected = _example_gradients(model, params, xt, YT) @ _example_gradients(model, params, x, Y).T
    torch.testing.assert_close(got, expected)


def test_self_influence_is_the_diagonal() -> None:
    both = tracin_influence(_mlp(), CHECKPOINTS, (X, Y), (X, Y), learning_rates=RATES)
    own = tracin_self_influence(_mlp(), CHECKPOINTS, (X, Y), learning_rates=RATES, batch_size=3)
    torch.testing.assert_close(own, both.diagonal())
    assert (own > 0).all()


def test_checkpoint_files_and_the_model_left_alone(tmp_path) -> None:
    paths = []
    for k, state in enumerate(CHECKPOINTS):
        paths.append(tmp_path / f"ckpt{k}.pt")
        torch.save(state, paths[-1])
    model = _mlp(9).train()
    before = copy.deepcopy(model.state_dict())
    from_files = tracin_influence(model, paths, (X, Y), (XT, YT), learning_rates=RATES)
    in_memory = tracin_influence(model, CHECKPOINTS, (X, Y), (XT, YT), learning_rates=RATES)
    torch.testing.assert_close(from_files, in_memory)
    assert model.training
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_self_influence_finds_mislabelled_training_examples() -> None:
    """The paper's use: rank training examples by self-influence and inspect the top. With
    10% of the labels of three Gaussian classes flipped, the flipped ones lead the ranking."""
    torch.manual_seed(0)
    centres = torch.tensor([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    y = torch.arange(3).repeat_interleave(60)
    x = centres[y] + 0.6 * torch.randn(180, 2)
    flipped = torch.randperm(180)[:18]
    noisy = y.clone()
    noisy[flipped] = (y[flipped] + 1 + torch.randint(0, 2, (18,))) % 3
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    checkpoints = []
    for epoch in range(60):
        for batch in torch.randperm(180).split(30):
            opt.zero_grad()
            F.cross_entropy(model(x[batch]), noisy[batch]).backward()
            opt.step()
        if epoch % 15 == 14:
            checkpoints.append(copy.deepcopy(model.state_dict()))
    scores = tracin_self_influence(model, checkpoints, (x, noisy), learning_rates=0.1)
    top = set(scores.topk(18).indices.tolist())
    precision = len(top & set(flipped.tolist())) / 18
    assert precision >= 0.7  # chance: 0.1
    # the loss alone at the last checkpoint ranks them too; TracIn must not do worse
    with torch.no_grad():
        losses = F.cross_entropy(model(x), noisy, reduction="none")
    by_loss = len(set(losses.topk(18).indices.tolist()) & set(flipped.tolist())) / 18
    assert precision >= by_loss - 1 / 18


class _Counting(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net, self.calls = _mlp(), 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.net(x)


def test_bad_checkpoints_are_refused_before_any_work(tmp_path) -> None:
    model = _Counting()
    good = {f"net.{k}": v for k, v in CHECKPOINTS[0].items()}
    bad = dict(list(good.items())[:2])
    with pytest.raises(ValueError, match=r"checkpoints\[1\] lacks .*net\.3\.bias"):
        tracin_influence(model, [good, bad], (X, Y), (XT, YT))
    with pytest.raises(FileNotFoundError, match=r"checkpoints\[1\]: no file"):
        tracin_influence(model, [good, tmp_path / "missing.pt"], (X, Y), (XT, YT))
    assert model.calls == 0
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(TypeError, match=r"checkpoints\[0\] must hold a state dict"):
        tracin_influence(model, [tmp_path / "list.pt"], (X, Y), (XT, YT))
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=r"checkpoints\[0\] lacks"):
        tracin_influence(model, [tmp_path / "bad.pt"], (X, Y), (XT, YT))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"checkpoints": CHECKPOINTS[0]}, TypeError, "checkpoints must be a sequence"),
        ({"checkpoints": []}, ValueError, "at least one checkpoint"),
        ({"checkpoints": [{"0.weight": torch.zeros(6, 4)}]}, ValueError, r"lacks .*0\.bias"),
        ({"checkpoints": [3]}, TypeError, r"checkpoints\[0\] must be a state dict"),
        ({"learning_rates": [1.0]}, ValueError, "one rate per checkpoint"),
        ({"learning_rates": -1.0}, ValueError, "learning_rates"),
        ({"layers": ["9"]}, ValueError, "layer"),
        ({"layers": "3"}, TypeError, "layers must be a non-empty sequence"),
        ({"train": (X, Y[:3])}, ValueError, "train must be non-empty inputs"),
        ({"test": XT}, TypeError, r"test must be a pair"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"loss_fn": lambda out, y: out.sum(1).mean() * torch.ones(2)}, ValueError, "one loss"),
        ({"loss_fn": "ce"}, TypeError, "loss_fn must be callable"),
    ],
)
def test_bad_arguments(kwargs, error, match) -> None:
    args = {"checkpoints": CHECKPOINTS, "train": (X, Y), "test": (XT, YT), **kwargs}
    with pytest.raises(error, match=match):
        tracin_influence(_mlp(), **args)
