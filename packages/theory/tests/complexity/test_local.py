"""Local complexity: cross-polytopes, exact counts on known hyperplanes, boundary points."""

import pytest
import torch

from neuronkit.theory.complexity import (
    cross_polytope,
    decision_boundary_points,
    local_complexity,
    relu_preactivations,
)


def test_cross_polytope_vertices_are_at_radius_and_orthogonal() -> None:
    x = torch.randn(3, 5, dtype=torch.float64)
    v = cross_polytope(x, 0.5, 4, seed=0)
    assert v.shape == (3, 8, 5)
    d = v - x[:, None]
    assert torch.allclose(d.norm(dim=-1), torch.full((3, 8), 0.5, dtype=torch.float64))
    gram = d[0, :4] @ d[0, :4].T
    assert torch.allclose(gram, 0.25 * torch.eye(4, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(d[0, :4], -d[0, 4:])


def test_counts_hyperplanes_that_cut_the_polytope() -> None:
    """Axis-aligned neurons x_i = 0: a neuron counts iff the point is within r of its plane."""
    lin = torch.nn.Linear(2, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.eye(2))
        lin.bias.zero_()
    model = torch.nn.Sequential(lin, torch.nn.ReLU())
    pts = torch.tensor([[0.05, 3.0], [3.0, 3.0], [0.05, -0.05]])
    lc = local_complexity(model, pts, radius=0.1, n_directions=2, seed=0)
    # for a rotated frame the extent along axis i is 0.1 * (|q_i1| + |q_i2|) >= 0.1
    assert lc.tolist() == [1.0, 0.0, 2.0]
    per = local_complexity(model, pts, radius=0.1, n_directions=2, seed=0, per_layer=True)
    assert per.shape == (3, 1)


def test_preactivations_and_callable_form_agree() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 8),
        torch.nn.ReLU(),
        torch.nn.Linear(8, 8),
        torch.nn.ReLU(),
        torch.nn.Linear(8, 3),
    )
    x = torch.randn(10, 4)
    pres = relu_preactivations(model, x)
    assert [p.shape for p in pres] == [(10, 8), (10, 8)]
    a = local_complexity(model, x, radius=0.3, n_directions=3)
    b = local_complexity(lambda v: relu_preactivations(model, v), x, radius=0.3, n_directions=3)
    assert torch.equal(a, b)
    assert bool((a <= 16).all())


def test_boundary_points_sit_on_the_boundary() -> None:
    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
        model.bias.zero_()
    x = torch.randn(50, 2)
    pts = decision_boundary_points(model, x, 10, seed=0)
    assert pts.shape == (10, 2)
    assert bool((pts[:, 0].abs() < 1e-6).all())


def test_bad_inputs_name_the_argument() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU())
    with pytest.raises(ValueError, match="radius"):
        local_complexity(model, torch.zeros(2, 2), radius=0.0)
    with pytest.raises(ValueError, match="n_directions"):
        cross_polytope(torch.zeros(2, 2), 1.0, 3)
    with pytest.raises(ValueError, match="model"):
        relu_preactivations(torch.nn.Linear(2, 2), torch.zeros(1, 2))
    with pytest.raises(TypeError, match="x"):
        local_complexity(model, [[0.0, 0.0]], radius=1.0)  # type: ignore[arg-type]


def test_preactivations_of_an_in_place_relu_are_before_the_relu() -> None:
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 5)
    model = torch.nn.Sequential(lin, torch.nn.ReLU(inplace=True), torch.nn.Linear(5, 2))
    x = torch.randn(8, 3)
    (pre,) = relu_preactivations(model, x)
    assert torch.equal(pre, lin(x).detach())
    assert bool((pre < 0).any())


def test_per_layer_must_be_a_bool() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    with pytest.raises(TypeError, match=r"^per_layer must be bool"):
        local_complexity(model, torch.rand(4, 3), radius=0.1, n_directions=2, per_layer="no")


def test_non_finite_weights_or_preactivations_are_rejected() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    x = torch.rand(4, 3)
    with torch.no_grad():
        model[0].weight.fill_(float("nan"))  # used to give LC 0 everywhere
    with pytest.raises(ValueError, match=r"^model parameter '0.weight' must be finite"):
        local_complexity(model, x, radius=0.1, n_directions=2)
    lin = torch.nn.Linear(3, 8)

    def pre(v: torch.Tensor) -> list[torch.Tensor]:
        out = lin(v).detach()
        out[0, 0] = float("inf")
        return [out]

    with pytest.raises(ValueError, match=r"^model gave NaN or infinite pre-activations"):
        local_complexity(pre, x, radius=0.1, n_directions=2)


def test_dtype_mismatch_and_a_bare_tensor_are_named() -> None:
    # both raised torch's own errors (a dtype RuntimeError, a reshape error)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    x = torch.rand(4, 3)
    with pytest.raises(TypeError, match=r"^x must have the model's parameter dtype"):
        local_complexity(model, x.double(), radius=0.1, n_directions=2)
    lin = torch.nn.Linear(3, 8)
    with pytest.raises(TypeError, match=r"^model must return a list"):
        local_complexity(lambda v: lin(v), x, radius=0.1, n_directions=2)
    lc = local_complexity(model.double(), x.double(), radius=0.1, n_directions=2)
    assert lc.shape == (4,)


def test_points_of_the_wrong_feature_size_name_x() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2))
    with pytest.raises(ValueError, match=r"^x must fit the model's input .* got shape \(3, 5\)"):
        local_complexity(model, torch.randn(3, 5), radius=0.1, n_directions=2)  # was addmm's


def test_errors_of_the_model_other_than_shape_mismatches_pass_through() -> None:
    # every RuntimeError of the first chunk became "x must fit the model's input": an
    # allocation failure or the model's own error was reported as a shape problem
    class Fails(torch.nn.Module):
        def __init__(self, message: str) -> None:
            super().__init__()
            self.message = message

        def forward(self, v: torch.Tensor) -> torch.Tensor:
            raise RuntimeError(self.message)

    for message in (
        "DefaultCPUAllocator: not enough memory: you tried to allocate 123456789 bytes",
        "the model's own failure",
    ):
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), Fails(message))
        with pytest.raises(RuntimeError) as info:
            local_complexity(model, torch.randn(3, 4), radius=0.1, n_directions=2)
        assert type(info.value) is RuntimeError
        assert str(info.value) == message
    # a shape mismatch still names x, with torch's error chained
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2))
    with pytest.raises(ValueError, match=r"^x must fit the model's input") as info:
        local_complexity(model, torch.randn(3, 5), radius=0.1, n_directions=2)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert "mat1 and mat2" in str(info.value.__cause__)


def test_measuring_a_training_model_leaves_it_as_it_was() -> None:
    """A model caught mid-training (BatchNorm, dropout in train mode) is measured in eval mode:
    its statistics, flags and the global RNG are untouched, and the result does not depend on
    the batch size."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(8, 16),
        torch.nn.BatchNorm1d(16),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.5),
        torch.nn.Linear(16, 3),
    ).train()
    x = torch.randn(12, 8)
    buffers = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    lc = local_complexity(model, x, radius=0.1, n_directions=3, batch_size=12)
    assert torch.equal(lc, local_complexity(model, x, radius=0.1, n_directions=3, batch_size=2))
    relu_preactivations(model, x)
    decision_boundary_points(model, x, 3, iters=4, seed=0)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in buffers.items())
    assert all(m.training for m in model.modules())
    assert torch.equal(rng, torch.get_rng_state())


def test_boundary_points_need_a_model_returning_logits(tuple_model: torch.nn.Module) -> None:
    with pytest.raises(
        TypeError, match=r"model must return a tensor of logits \[B, C\], got tuple"
    ):
        decision_boundary_points(tuple_model, torch.randn(6, 2), 2)
