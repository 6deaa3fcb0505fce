"""Iterative SynFlow masks (neuronkit.pruning.federated.synflow)."""

import pytest
import torch
from torch import nn

from neuronkit.pruning.federated.synflow import synflow_prune, synflow_scores


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3)
    )


def test_scores_match_closed_form_for_two_linear_layers() -> None:
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(5, 4, bias=False), nn.Linear(4, 3, bias=False))
    s = synflow_scores(net, (5,))
    w1 = net[0].weight.detach().double().abs()
    w2 = net[1].weight.detach().double().abs()
    # R = 1^T |W2| |W1| 1  =>  dR/dW1[i, j] = sum_k |W2|[k, i];  dR/dW2[k, i] = sum_j |W1|[i, j]
    expected1 = w1 * w2.sum(0)[:, None]
    expected2 = w2 * w1.sum(1)[None, :]
    torch.testing.assert_close(s["0.weight"], expected1)
    torch.testing.assert_close(s["1.weight"], expected2)


def test_masked_weights_score_zero() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Flatten(), nn.Linear(16, 12, bias=False), nn.ReLU(), nn.Linear(12, 3, bias=False)
    )
    masks = {"1.weight": torch.zeros(12, 16, dtype=torch.bool)}
    s = synflow_scores(net, (1, 4, 4), masks=masks)
    assert float(s["1.weight"].abs().sum()) == 0.0
    assert float(s["3.weight"].sum()) == 0.0  # without biases no flow reaches later layers


@pytest.mark.parametrize("density", [0.5, 0.1, 0.02])
def test_prune_keeps_exact_count_and_every_layer(density: float) -> None:
    net = _mlp()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    masks = synflow_prune(net, density, (1, 4, 4), iterations=20)
    total = sum(m.numel() for m in masks.values())
    assert sum(int(m.sum()) for m in masks.values()) == round(density * total)
    assert all(int(m.sum()) > 0 for m in masks.values())  # no layer collapse
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])  # the model is untouched
    assert set(masks) == {"1.weight", "3.weight", "5.weight"}


def test_prune_is_deterministic_and_iterative_differs_from_one_shot() -> None:
    net = _mlp()
    a = synflow_prune(net, 0.05, (1, 4, 4), iterations=30)
    b = synflow_prune(net, 0.05, (1, 4, 4), iterations=30)
    assert all(torch.equal(a[k], b[k]) for k in a)
    one = synflow_prune(net, 0.05, (1, 4, 4), iterations=1)
    assert any(not torch.equal(a[k], one[k]) for k in a)


def test_linear_schedule_and_density_one() -> None:
    net = _mlp()
    full = synflow_prune(net, 1.0, (1, 4, 4), iterations=3, schedule="linear")
    assert all(bool(m.all()) for m in full.values())


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"density": 0.0}, ValueError),
        ({"density": 1.5}, ValueError),
        ({"iterations": 0}, ValueError),
        ({"schedule": "cubic"}, ValueError),
        ({"input_shape": "1,4,4"}, TypeError),
        ({"input_shape": (0, 4)}, ValueError),
    ],
)
def test_bad_inputs(kwargs: dict, error: type) -> None:
    args = {"density": 0.5, "input_shape": (1, 4, 4), **kwargs}
    with pytest.raises(error):
        synflow_prune(_mlp(), args.pop("density"), args.pop("input_shape"), **args)


def test_not_a_model() -> None:
    with pytest.raises(TypeError, match="model"):
        synflow_prune("net", 0.5, (4,))  # type: ignore[arg-type]


def test_selection_equals_the_stable_descending_sort() -> None:
    """The partition-based selection keeps the prefix of a stable descending sort, ties too."""
    from neuronkit.pruning.federated.synflow import _first_k_descending

    gen = torch.Generator().manual_seed(0)
    for n in (1, 2, 50, 3000):
        for values in (
            torch.randn(n, generator=gen, dtype=torch.float64),
            torch.randint(0, 3, (n,), generator=gen).double(),  # ties at the threshold
            torch.where(torch.rand(n, generator=gen) < 0.5, 1.0, -1.0).double(),
            torch.tensor([float("nan")] + [0.0] * (n - 1), dtype=torch.float64),
        ):
            for keep in {1, max(1, n // 3), max(1, n // 2), n}:
                expected = torch.zeros(n, dtype=torch.bool)
                order = torch.sort(values, descending=True, stable=True).indices
                expected[order[:keep]] = True
                assert torch.equal(_first_k_descending(values, keep), expected)


def test_grad_mode_and_frozen_weights_do_not_change_the_masks() -> None:
    """Under torch.no_grad() SynFlow failed with torch's "element 0 of tensors does not
    require grad"; under torch.inference_mode() the error names the function."""
    ref = synflow_prune(_mlp(), 0.3, (16,), iterations=3)
    frozen = _mlp().requires_grad_(False)
    with torch.no_grad():
        masks = synflow_prune(frozen, 0.3, (16,), iterations=3)
    assert masks.keys() == ref.keys()
    assert all(torch.equal(masks[n], ref[n]) for n in ref)
    with torch.inference_mode():
        with pytest.raises(RuntimeError, match=r"^synflow_prune needs autograd"):
            synflow_prune(_mlp(), 0.3, (16,), iterations=3)
        with pytest.raises(RuntimeError, match=r"^synflow_scores needs autograd"):
            synflow_scores(_mlp(), (16,))


class _DictOutput(nn.Module):
    """The MLP's logits returned as the first value of a dict (as Hugging Face models do)."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.body(x), "other": torch.zeros(1)}


def test_scores_read_the_logits_of_a_dict_output() -> None:
    plain = synflow_scores(_mlp(), (1, 4, 4))
    wrapped = synflow_scores(_DictOutput(_mlp()), (1, 4, 4))
    assert plain.keys() == {k.removeprefix("body.") for k in wrapped}
    for k, v in wrapped.items():
        torch.testing.assert_close(v, plain[k.removeprefix("body.")])

    class NoTensor(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> dict[str, float]:
            return {"loss": float(self.fc(x).detach().sum())}

    with pytest.raises(TypeError, match="SynFlow needs a tensor output"):
        synflow_scores(NoTensor(), (2,))
