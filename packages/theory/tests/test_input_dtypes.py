"""A model fed a tensor of another floating dtype names the argument and both dtypes (it was
torch's bare "expected m1 and m2 to have the same dtype" or "Input type ... and bias type")."""

import math
from collections.abc import Callable

import pytest
import torch

from neuronkit.theory import (
    ConditionalNeuralProcess,
    KANLayer,
    MartingalePosteriorNP,
    MgNO,
    NeuralProcess,
    QuadraticLinear,
    QuadraticMLP,
    QuadraticNet,
    TimescaleRNN,
    UNet2d,
)
from neuronkit.theory.grokking.lazy_rich import ScaledQuadraticNet
from neuronkit.theory.lazy_rich import ReluRNN, TwoLayerTanhNet
from neuronkit.theory.ntk import NTKNetwork, relu_dual
from neuronkit.theory.operators import MgConv
from neuronkit.theory.processes import MultiheadAttentionBlock, PseudoContextGenerator, SetEncoder
from neuronkit.theory.scaling import BottleneckBlock

F32, F64 = torch.float32, torch.float64


def _sets(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return (
        torch.zeros(2, 3, 1, dtype=dtype),
        torch.zeros(2, 3, 1, dtype=dtype),
        torch.zeros(2, 4, 1, dtype=dtype),
    )


CASES: dict[str, tuple[Callable[[], torch.nn.Module], Callable[[torch.dtype], tuple], str]] = {
    "QuadraticMLP": (
        lambda: QuadraticMLP(3, 4, seed=0),
        lambda d: (torch.zeros(2, 6, dtype=d),),
        "x",
    ),
    "QuadraticNet": (
        lambda: QuadraticNet([3, 4, 1], seed=0),
        lambda d: (torch.zeros(2, 3, dtype=d),),
        "x",
    ),
    "QuadraticLinear": (
        lambda: QuadraticLinear(3, 2, seed=0),
        lambda d: (torch.zeros(2, 3, dtype=d),),
        "x",
    ),
    "TimescaleRNN": (
        lambda: TimescaleRNN(1, 4, seed=0),
        lambda d: (torch.zeros(3, 2, 1, dtype=d),),
        "x",
    ),
    "CNP": (lambda: ConditionalNeuralProcess(hidden=8, seed=0), _sets, "xc"),
    "NP": (lambda: NeuralProcess(hidden=8, seed=0), _sets, "xc"),
    "MPNP": (lambda: MartingalePosteriorNP(hidden=8, seed=0), _sets, "xc"),
    "MgNO": (
        lambda: MgNO(width=4, num_layers=1, levels=2, seed=0),
        lambda d: (torch.zeros(1, 1, 7, 7, dtype=d),),
        "x",
    ),
    "UNet2d": (lambda: UNet2d(seed=0), lambda d: (torch.zeros(1, 1, 8, 8, dtype=d),), "x"),
    "KANLayer": (lambda: KANLayer(2, 3, seed=0), lambda d: (torch.zeros(2, 2, dtype=d),), "x"),
    # building blocks and smaller networks (torch's bare dtype errors until 0.6.33)
    "MgConv": (
        lambda: MgConv(1, 2, levels=2),
        lambda d: (torch.zeros(1, 1, 7, 7, dtype=d),),
        "f",
    ),
    "BottleneckBlock": (lambda: BottleneckBlock(4), lambda d: (torch.zeros(2, 4, dtype=d),), "h"),
    "TwoLayerTanhNet": (
        lambda: TwoLayerTanhNet(torch.ones(4, 3), torch.ones(4)).float(),
        lambda d: (torch.zeros(2, 3, dtype=d),),
        "x",
    ),
    "ReluRNN": (
        lambda: ReluRNN(torch.ones(4, 3), torch.eye(4), torch.ones(3, 4), dtype=F32),
        lambda d: (torch.zeros(2, 5, 3, dtype=d),),
        "x",
    ),
    "NTKNetwork": (
        lambda: NTKNetwork(3, 8, 2, relu_dual(), seed=0, dtype=F32),
        lambda d: (torch.zeros(2, 3, dtype=d),),
        "x",
    ),
    "SetEncoder": (
        lambda: SetEncoder(1, 1, 8),
        lambda d: (torch.zeros(2, 3, 1, dtype=d), torch.zeros(2, 3, 1, dtype=d)),
        "x",
    ),
    "MultiheadAttentionBlock": (
        lambda: MultiheadAttentionBlock(8, 2),
        lambda d: (torch.zeros(2, 3, 8, dtype=d), torch.zeros(2, 4, 8, dtype=d)),
        "queries",
    ),
    "PseudoContextGenerator": (
        lambda: PseudoContextGenerator(8, 2),
        lambda d: (torch.zeros(2, 3, 8, dtype=d), 4),
        "context",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("other", [F64, torch.float16])
def test_float32_models_reject_other_dtypes_by_name(case: str, other: torch.dtype) -> None:
    make, inputs, name = CASES[case]
    model = make()
    with torch.no_grad():
        model(*inputs(F32))  # the model's own dtype works
        with pytest.raises(
            TypeError,
            match=rf"^{name} must have the (model|layer)'s dtype torch.float32, got {other}",
        ):
            model(*inputs(other))


def test_models_converted_to_float64_take_float64() -> None:
    for case, (make, inputs, _) in CASES.items():
        with torch.no_grad():
            out = make().double()(*inputs(F64))
        mean = out.mean if hasattr(out, "mean") and not callable(out.mean) else out
        assert mean.dtype == F64, case


def test_scaled_quadratic_net_rejects_float32_input() -> None:
    net = ScaledQuadraticNet(5, 7, seed=0)  # float64 by default
    with pytest.raises(
        TypeError, match=r"^x must have the model's dtype torch.float64, got torch.float32"
    ):
        net(torch.zeros(3, 5))
    assert net(torch.zeros(3, 5, dtype=F64)).shape == (3,)


def test_trainers_feed_their_own_data_in_the_model_dtype() -> None:
    """Trainers that generate the inputs build them in the model's dtype: a float64 model got
    float32 batches and the model's own dtype error about an ``x`` the user never passed."""
    from neuronkit.theory import (
        corrupted_accuracies,
        modular_arithmetic,
        train_curriculum,
        train_modular,
        train_rich_lazy,
    )
    from neuronkit.theory.lazy_rich import TwoLayerTanhNet

    rnn = TimescaleRNN(hidden_size=4, seed=0).double()
    kw = {"batch_size": 4, "test_batch_size": 4, "test_batches": 1, "seed": 0}
    history = train_curriculum(rnn, max_steps=2, steps_per_epoch=1, **kw).history
    assert all(math.isfinite(record["loss"]) for record in history)
    data = modular_arithmetic(5, seed=0)
    quadratic = QuadraticMLP(5, 4, seed=0).double()
    assert len(train_modular(quadratic, data, steps=2, eval_every=1).loss) == 2
    assert set(corrupted_accuracies(quadratic, data)) >= {"train", "test"}
    gen = torch.Generator().manual_seed(0)
    weight, readout = torch.randn(8, 3, generator=gen), torch.randn(8, generator=gen)
    net = TwoLayerTanhNet(weight, readout).float()  # float64 by default
    x, y = torch.randn(6, 3, generator=gen, dtype=F64), torch.randn(6, generator=gen)
    assert math.isfinite(train_rich_lazy(net, x, y, steps=2, kernel_points=4).final_loss)
