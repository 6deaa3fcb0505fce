"""Effective rank, empirical NTK (torch.func), kernel alignments and relative change."""

import math

import pytest
import torch

from neuronkit.theory.measures import (
    center_kernel,
    effective_rank,
    empirical_ntk,
    kernel_alignment,
    kernel_distance,
    kernel_target_alignment,
    relative_change,
)


def _mlp(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))


def test_effective_rank_of_equal_and_rank_one_spectra() -> None:
    assert effective_rank(torch.eye(5)) == pytest.approx(5.0)
    u = torch.randn(6, 1)
    assert effective_rank(u @ u.T) == pytest.approx(1.0)
    assert effective_rank(torch.zeros(3, 3)) == 0.0
    d = torch.diag(torch.tensor([3.0, 1.0]))
    p = torch.tensor([0.75, 0.25])
    assert effective_rank(d) == pytest.approx(math.exp(-(p * p.log()).sum().item()))


def test_empirical_ntk_matches_autograd_jacobians() -> None:
    model = _mlp()
    x = torch.randn(4, 3)
    rows = []
    for i in range(4):
        for o in range(2):
            model.zero_grad()
            model(x[i : i + 1])[0, o].backward()
            rows.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]))
    jac = torch.stack(rows).reshape(4, 2, -1)
    expected = torch.einsum("aip,bip->ab", jac, jac)
    assert torch.allclose(empirical_ntk(model, x), expected, atol=1e-5)
    full = empirical_ntk(model, x, x[:2], output="full")
    assert full.shape == (4, 2, 2, 2)
    assert torch.allclose(full.diagonal(dim1=2, dim2=3).sum(-1), expected[:, :2], atol=1e-5)


def test_empirical_ntk_of_a_parameter_subset_is_smaller() -> None:
    model = _mlp()
    x = torch.randn(5, 3)
    full = empirical_ntk(model, x)
    last = empirical_ntk(model, x, params={"2.weight": model[2].weight, "2.bias": model[2].bias})
    assert bool((torch.diagonal(full) >= torch.diagonal(last) - 1e-6).all())


def test_empirical_ntk_takes_either_name_of_a_tied_parameter() -> None:
    """``functional_call`` accepts every name of a tied parameter; so does the kernel."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Tanh(), torch.nn.Linear(3, 3))
    model[2].weight = model[0].weight
    x = torch.randn(4, 3)
    by_first = empirical_ntk(model, x, params={"0.weight": model[0].weight})
    by_second = empirical_ntk(model, x, params={"2.weight": model[0].weight})
    torch.testing.assert_close(by_second, by_first)


def test_alignments() -> None:
    k = torch.randn(6, 6, dtype=torch.float64)
    k = k @ k.T
    assert kernel_alignment(k, 3.0 * k) == pytest.approx(1.0)
    assert kernel_distance(k, k) == pytest.approx(0.0, abs=1e-12)
    y = torch.randn(6, dtype=torch.float64)
    assert kernel_target_alignment(torch.outer(y, y), y, centered=False) == pytest.approx(1.0)
    yc = y - y.mean()
    assert kernel_target_alignment(torch.outer(yc, yc), y) == pytest.approx(1.0)
    c = center_kernel(k)
    assert torch.allclose(c.sum(dim=0), torch.zeros(6, dtype=torch.float64), atol=1e-9)


def test_relative_change_of_tensors_and_modules() -> None:
    a = torch.ones(4)
    assert relative_change(2 * a, a) == pytest.approx(1.0)
    m1, m2 = _mlp(0), _mlp(0)
    assert relative_change(m1, m2) == 0.0
    with torch.no_grad():
        for p in m2.parameters():
            p.mul_(1.5)
    assert relative_change(m2, m1) == pytest.approx(0.5)


def test_bad_inputs_name_the_argument() -> None:
    with pytest.raises(ValueError, match="kernel2"):
        kernel_alignment(torch.eye(3), torch.eye(4))
    with pytest.raises(ValueError, match="targets"):
        kernel_target_alignment(torch.eye(3), torch.ones(4))
    with pytest.raises(ValueError, match="after"):
        relative_change(torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError, match="before"):
        relative_change(torch.ones(3), torch.zeros(3))
    with pytest.raises(ValueError, match="x2"):
        empirical_ntk(_mlp(), torch.randn(2, 3), torch.randn(2, 4))
    with pytest.raises(ValueError, match="output"):
        empirical_ntk(_mlp(), torch.randn(2, 3), output="diag")
    with pytest.raises(TypeError, match="model"):
        empirical_ntk("net", torch.randn(2, 3))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="matrix"):
        effective_rank(torch.ones(3))


def test_kernel_target_alignment_names_non_numeric_targets() -> None:
    with pytest.raises(TypeError, match=r"^targets "):
        kernel_target_alignment(torch.eye(3), ["a", "b", "c"])


def test_empirical_ntk_rejects_non_finite_inputs_and_parameters() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    x = torch.rand(5, 3)
    with pytest.raises(ValueError, match=r"^x1 must be finite"):
        empirical_ntk(model, torch.full((2, 3), math.nan))
    with pytest.raises(ValueError, match=r"^x2 must be finite"):
        empirical_ntk(model, x, torch.full((2, 3), math.inf))
    # the ReLU backward masked these NaN weights into a finite kernel
    with pytest.raises(ValueError, match=r"^params\['0.weight'\] must be finite"):
        empirical_ntk(model, x, params={"0.weight": torch.full((4, 3), math.nan)})
    with torch.no_grad():
        model[2].bias[0] = math.inf
    with pytest.raises(ValueError, match=r"model parameter '2\.bias' must be finite"):
        empirical_ntk(model, x)


@pytest.mark.parametrize(
    ("kwargs", "exc", "pattern"),
    [
        ({"params": {"0.weight": 3.0}}, TypeError, r"^params\['0.weight'\] must be a torch"),
        ({"params": {"0.weight": torch.zeros(2, 2)}}, ValueError, r"^params\['0.weight'\] .*shape"),
        ({"x1": torch.ones(2, 3, dtype=torch.long)}, TypeError, r"^x1 of dtype torch.int64"),
        ({"x1": torch.rand(2, 3, dtype=torch.float64)}, TypeError, r"^x1 .*torch.float32"),
        ({"x1": torch.rand(2, 5)}, ValueError, r"^x1 of shape \(2, 5\)"),
        ({"x2": torch.rand(2, 3, dtype=torch.float64)}, TypeError, r"^x2 of dtype"),
        ({"chunk_size": 1.5}, TypeError, r"^chunk_size "),
        ({"chunk_size": 0}, ValueError, r"^chunk_size "),
    ],
)
def test_empirical_ntk_bad_arguments_name_the_argument(kwargs, exc: type, pattern: str) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    args = {"x1": torch.rand(5, 3), **kwargs}
    x1 = args.pop("x1")
    x2 = args.pop("x2", None)
    with pytest.raises(exc, match=pattern):
        empirical_ntk(model, x1, x2, **args)


def test_empirical_ntk_chunked_equals_unchunked() -> None:
    model = _mlp()
    x = torch.randn(5, 3)
    assert torch.allclose(empirical_ntk(model, x, chunk_size=2), empirical_ntk(model, x))


def test_empirical_ntk_under_autocast_is_computed_in_the_models_precision() -> None:
    model = _mlp()
    x = torch.randn(5, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        kernel = empirical_ntk(model, x)
    assert kernel.dtype == next(model.parameters()).dtype
    torch.testing.assert_close(kernel, empirical_ntk(model, x))


class _TimeMajor(torch.nn.Module):
    """``[B, T, I] -> [B, C]`` around the timescale RNN (time-major, logits ``[heads, B, C]``)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.transpose(0, 1))[0]


def _theory_model(name: str) -> tuple[torch.nn.Module, torch.Tensor]:
    from neuronkit.theory import KAN, SKAN, QuadraticNet, TimescaleRNN

    gen = torch.Generator().manual_seed(1)
    if name == "kan":
        return KAN([3, 4, 2], seed=0), 2 * torch.rand(4, 3, generator=gen) - 1
    if name == "skan":
        return SKAN([3, 4, 2], seed=0), 2 * torch.rand(4, 3, generator=gen) - 1
    if name == "quadratic":
        return QuadraticNet([3, 5, 2], init="random", seed=0), torch.randn(4, 3, generator=gen)
    rnn = TimescaleRNN(1, 6, num_classes=2, seed=0)
    return _TimeMajor(rnn), torch.randn(4, 5, 1, generator=gen)


@pytest.mark.parametrize("name", ["kan", "skan", "quadratic", "timescale_rnn"])
def test_empirical_ntk_of_the_theory_models(name: str) -> None:
    """The KANs' fast B-spline path (a custom autograd Function) and the timescale RNN's input
    checks run under torch.func: the kernel equals J J^T from one backward per output."""
    model, x = _theory_model(name)
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    for i in range(len(x)):
        for o in range(2):
            grads = torch.autograd.grad(model(x[i : i + 1])[0, o], params, allow_unused=True)
            flat = [
                (torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(params, grads)
            ]
            rows.append(torch.cat(flat))
    jac = torch.stack(rows).reshape(len(x), 2, -1)
    expected = torch.einsum("aip,bjp->abij", jac, jac)
    assert float(expected.abs().max()) > 1e-3
    torch.testing.assert_close(
        empirical_ntk(model, x, output="full"), expected, atol=1e-5, rtol=1e-4
    )


def test_empirical_ntk_holds_no_graph_of_its_inputs() -> None:
    """Only the parameters were detached: with ``x.requires_grad`` the kernel came back with
    ``requires_grad=True``, holding the vmap/jacrev graph of ``x``."""
    model = _mlp()
    x = torch.randn(4, 3)
    expected = empirical_ntk(model, x)
    leaf = x.clone().requires_grad_(True)
    for k in (empirical_ntk(model, leaf), empirical_ntk(model, leaf * 1.0, leaf[:2] * 1.0)):
        assert not k.requires_grad
        assert k.grad_fn is None
    torch.testing.assert_close(empirical_ntk(model, leaf), expected)
    with torch.inference_mode():
        xi = x.clone()
    torch.testing.assert_close(empirical_ntk(model, xi), expected)


def test_empirical_ntk_of_a_frozen_model_says_why_and_how() -> None:
    """A model without trainable parameters got "params must hold at least one parameter to
    differentiate", not naming requires_grad; every parameter can still be passed."""
    model = _mlp()
    x = torch.randn(4, 3)
    expected = empirical_ntk(model, x)
    model.requires_grad_(False)
    with pytest.raises(ValueError, match=r"^model must have at least one parameter with requires"):
        empirical_ntk(model, x)
    torch.testing.assert_close(
        empirical_ntk(model, x, params=dict(model.named_parameters())), expected
    )
    with pytest.raises(ValueError, match=r"^params must hold at least one parameter"):
        empirical_ntk(model, x, params={})


@pytest.mark.parametrize("layer", [torch.nn.BatchNorm1d(8), torch.nn.Dropout(0.5)])
def test_empirical_ntk_of_a_training_mode_model_names_train_mode(layer) -> None:
    """A BatchNorm or Dropout in training mode failed with a message blaming "a wrong input
    shape, or a model without batching rules"; in eval mode the kernel is computed."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), layer, torch.nn.Linear(8, 2))
    x = torch.randn(4, 3)
    name = type(layer).__name__
    with pytest.raises(ValueError, match=rf"^x1 of shape .*its {name} in training mode: call mod"):
        empirical_ntk(model, x)
    assert empirical_ntk(model.eval(), x).shape == (4, 4)


def _features_kernel_and_labels(n: int = 12) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    feats = torch.randn(n, 4, generator=g, dtype=torch.float64)
    return feats, feats @ feats.T + 0.5, torch.arange(n) % 3


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("form", ["1d", "one_hot"])
def test_kernel_target_alignment_is_kernel_alignment_with_the_target_kernel(
    form: str, centered: bool
) -> None:
    _, k, labels = _features_kernel_and_labels()
    y = labels.double() if form == "1d" else torch.nn.functional.one_hot(labels).double()
    y2 = y[:, None] if form == "1d" else y
    got = kernel_target_alignment(k, y, centered=centered)
    assert got == pytest.approx(kernel_alignment(k, y2 @ y2.T, centered=centered), rel=1e-12)
    assert got < 0.99  # not the trivial value 1


def test_centred_kernel_alignment_is_the_alignment_of_centred_kernels() -> None:
    feats, k1, _ = _features_kernel_and_labels()
    k2 = torch.exp(-torch.cdist(feats, feats))
    got = kernel_alignment(k1, k2, centered=True)
    assert got == pytest.approx(kernel_alignment(center_kernel(k1), center_kernel(k2)), rel=1e-12)
    assert got != pytest.approx(kernel_alignment(k1, k2), rel=1e-3)  # centring matters here


def test_effective_rank_is_the_same_for_numpy_and_torch_inputs() -> None:
    feats, _, _ = _features_kernel_and_labels()
    ref = effective_rank(feats)
    assert 1.5 < ref < 4
    assert effective_rank(feats.numpy()) == pytest.approx(ref, rel=1e-12)
    assert effective_rank(feats.T) == pytest.approx(ref, rel=1e-12)  # a non-contiguous view
    assert effective_rank(feats.numpy().T.copy()) == pytest.approx(ref, rel=1e-12)


def test_empirical_ntk_of_a_model_returning_a_tuple_names_it(tuple_model: torch.nn.Module) -> None:
    with pytest.raises(TypeError, match="model must return a tensor, got tuple"):
        empirical_ntk(tuple_model, torch.randn(4, 2))


def test_effective_rank_of_huge_matrices_does_not_overflow() -> None:
    # the singular values' sum overflowed to inf: every p_i read 0 and the rank 1
    assert effective_rank(torch.eye(30, dtype=torch.float64) * 1e307) == pytest.approx(30.0)
    huge = torch.diag(torch.tensor([1e308, 1e308, 1e308], dtype=torch.float64))
    assert effective_rank(huge) == pytest.approx(3.0)


@pytest.mark.parametrize("n", [3, 5, 7, 11, 13])
@pytest.mark.parametrize(("c1", "c2"), [(0.1, 0.7), (0.1, 0.1), (0.7, 0.3)])
def test_centred_alignment_of_constant_kernels_or_targets_raises(
    n: int, c1: float, c2: float
) -> None:
    # centred, a constant kernel is 0; its rounding noise gave an alignment of +-1 or 5e-17
    const1 = torch.full((n, n), c1, dtype=torch.float64)
    const2 = torch.full((n, n), c2, dtype=torch.float64)
    with pytest.raises(ValueError, match="after centring"):
        kernel_alignment(const1, const2, centered=True)
    with pytest.raises(ValueError, match="after centring"):
        kernel_alignment(const1, torch.eye(n, dtype=torch.float64), centered=True)
    with pytest.raises(ValueError, match="after centring"):
        kernel_target_alignment(const1, torch.full((n,), c2, dtype=torch.float64))
    x = torch.linspace(-1.0, 1.0, n, dtype=torch.float64)[:, None]
    with pytest.raises(ValueError, match="after centring"):
        kernel_target_alignment(x @ x.T, torch.full((n,), c2, dtype=torch.float64))
    # a tiny but real centred part on top of a constant is kept
    k = const1 + 1e-6 * (x @ x.T)
    assert kernel_alignment(k, x @ x.T, centered=True) == pytest.approx(1.0, rel=1e-6)
