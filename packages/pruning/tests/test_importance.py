"""Group-level importance: reference computations, gradients, SynFlow, bad inputs."""

import copy

import pytest
import torch
from torch import nn

from neuronkit.pruning import (
    MLP,
    DependencyGraph,
    GroupImportance,
    MagnitudeImportance,
    SNIPImportance,
    SynFlowImportance,
    TaylorImportance,
    VGGStyle,
    importance,
    plan_pruning,
    tracing,
)
from neuronkit.pruning.graph import GroupMember


def _mlp_graph() -> tuple[MLP, DependencyGraph]:
    torch.manual_seed(0)
    model = MLP(in_features=5, hidden=(7,), num_classes=3)
    return model, DependencyGraph(model, torch.randn(2, 5))


def test_l2_group_score_is_mean_over_members() -> None:
    model, graph = _mlp_graph()
    (group,) = graph.prunable_groups()
    w1, b1, w2 = model.body[0].weight, model.body[0].bias, model.head.weight
    expected = ((w1**2).sum(1) + b1**2 + (w2**2).sum(0)) / 3
    scores = MagnitudeImportance(p=2, normalize=None)(graph)[group.index]
    torch.testing.assert_close(scores, expected.double().detach())
    maxed = MagnitudeImportance(p=1, reduction="max", normalize=None)(graph)[group.index]
    ref = torch.stack([w1.abs().sum(1), b1.abs(), w2.abs().sum(0)]).max(0).values
    torch.testing.assert_close(maxed, ref.double().detach())


def test_flatten_expansion_sums_spatial_positions() -> None:
    model = VGGStyle(widths=(4, 6), image_size=8)
    graph = DependencyGraph(model, torch.randn(2, 3, 8, 8))
    g = graph.layer_groups("features.2.0")[0]
    fc = next(m for m in g.members if m.module == "classifier.1")
    assert all(len(p) == 4 for p in fc.positions)  # 6 channels x (2 x 2) positions
    scores = MagnitudeImportance(roles=("in",), normalize=None)(graph)[g.index]
    w = model.classifier[1].weight.detach().double().reshape(128, 6, 4)
    torch.testing.assert_close(scores, (w**2).sum((0, 2)))


def test_taylor_and_snip_from_a_loss() -> None:
    model, graph = _mlp_graph()
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    (group,) = graph.prunable_groups()
    taylor = TaylorImportance(inputs=x, targets=y, normalize=None, roles=("out",))(graph)
    snip = SNIPImportance(inputs=x, targets=y, normalize=None, roles=("out",))(graph)
    model.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    w, b = model.body[0].weight, model.body[0].bias
    ref_t = (((w * w.grad).sum(1)).abs() + (b * b.grad).abs()) / 2
    ref_s = (((w * w.grad).abs().sum(1)) + (b * b.grad).abs()) / 2
    torch.testing.assert_close(taylor[group.index], ref_t.double().detach())
    torch.testing.assert_close(snip[group.index], ref_s.double().detach())
    assert all(p.grad is not None for p in model.parameters())  # existing .grad path
    TaylorImportance()(graph)


@pytest.mark.parametrize("kind", [TaylorImportance, SNIPImportance])
def test_gradient_importance_leaves_the_global_rng_where_it_was(kind: type) -> None:
    """The loss pass of a model in training mode draws dropout masks from torch's global RNG:
    the scores repeat for the same RNG state, and the caller's stream is not advanced."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Dropout(0.5), nn.Linear(7, 3))
    graph = DependencyGraph(model, torch.randn(2, 5))
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    scorer = kind(inputs=x, targets=y, normalize=None)
    torch.manual_seed(1)
    expected = torch.rand(4)
    torch.manual_seed(1)
    first = scorer(graph)
    assert torch.equal(torch.rand(4), expected)
    torch.manual_seed(1)
    again = scorer(graph)
    torch.manual_seed(2)
    other = scorer(graph)
    for index, scores in first.items():
        assert torch.equal(again[index], scores)
    assert any(not torch.equal(other[i], first[i]) for i in first)  # dropout is in the pass


def test_gradient_importance_needs_gradients() -> None:
    _, graph = _mlp_graph()
    with pytest.raises(ValueError, match="gradients"):
        TaylorImportance()(graph)
    with pytest.raises(ValueError, match="both"):
        TaylorImportance(inputs=torch.randn(2, 5))


def _frozen_net(frozen: tuple[int, ...]) -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    for i in frozen:
        net[i].requires_grad_(False)
    return net


@pytest.mark.parametrize("frozen", [(0, 2, 4), (0, 2)])
@pytest.mark.parametrize("kind", ["taylor", "snip", "synflow"])
def test_gradient_scores_of_frozen_layers_equal_those_of_trainable_ones(
    kind: str, frozen: tuple[int, ...]
) -> None:
    """A fully frozen model failed with "element 0 of tensors does not require grad"; the
    groups of frozen layers in a partly frozen one scored all zeros. Neither the caller's
    grad mode nor the model's flags change the scores, and the model keeps its flags."""
    x, y = torch.randn(4, 6), torch.tensor([0, 1, 2, 0])

    def make() -> SNIPImportance | SynFlowImportance | TaylorImportance:
        if kind == "synflow":
            return SynFlowImportance()
        return (TaylorImportance if kind == "taylor" else SNIPImportance)(x, y)

    expected = make()(DependencyGraph(_frozen_net(()), x))
    net = _frozen_net(frozen)
    graph = DependencyGraph(net, x)
    for scores in (make()(graph), _under_no_grad(make(), graph)):
        assert scores.keys() == expected.keys()
        for k, v in expected.items():
            assert bool((v > 0).any())
            torch.testing.assert_close(scores[k], v)
    assert [p.requires_grad for p in net.parameters()] == [
        i not in frozen for i in (0, 0, 2, 2, 4, 4)
    ]
    assert all(p.grad is None for p in net.parameters())
    with torch.inference_mode(), pytest.raises(RuntimeError, match="Importance needs autograd"):
        make()(graph)


def _under_no_grad(imp: GroupImportance, graph: DependencyGraph) -> dict[int, torch.Tensor]:
    with torch.no_grad():
        return imp(graph)


def test_gradient_importance_leaves_the_callers_inputs_alone() -> None:
    """Inputs that require grad had their ``.grad`` filled; inference tensors failed with
    "Inference tensors cannot be saved for backward"."""
    _, graph = _mlp_graph()
    x, y = torch.randn(8, 5), torch.randint(0, 3, (8,))
    expected = TaylorImportance(x, y)(graph)
    leaf = x.clone().requires_grad_(True)
    soft_targets = nn.functional.one_hot(y, 3).float().requires_grad_(True)
    for cls in (TaylorImportance, SNIPImportance):
        cls(leaf, y)(graph)
        cls(leaf, soft_targets)(graph)
    assert leaf.grad is None
    assert soft_targets.grad is None
    with torch.inference_mode():
        xi, yi = x.clone(), y.clone()
    scores = TaylorImportance(xi, yi)(graph)
    assert scores.keys() == expected.keys()
    assert all(torch.equal(scores[k], v) for k, v in expected.items())
    SNIPImportance({"x": xi}, yi)(graph)  # keyword inputs too


def test_synflow_scores_are_positive_and_usable() -> None:
    _, graph = _mlp_graph()
    scores = SynFlowImportance()(graph)
    assert all(bool((s >= 0).all()) for s in scores.values())
    plan = plan_pruning(graph, SynFlowImportance(), 0.4)
    assert plan.num_removed() == 2


def test_synflow_sees_every_time_step_of_a_time_major_network() -> None:
    """On ``[T, B, C]`` inputs the all-ones input keeps all T steps: units that act only after
    a delay score above 0 (0.5.23 took ``x[:1]``, the first time step, and scored them 0)."""
    snn = pytest.importorskip("neuronkit.snn", reason="needs neuronkit-snn")
    net = nn.Sequential(
        snn.SeqLinear(10, 8),
        snn.Delay(torch.tensor([0, 0, 0, 0, 2, 2, 2, 2])),
        snn.LIF(threshold=0.1),
        snn.SeqLinear(8, 4),
    ).eval()
    x = torch.rand(6, 3, 10)
    scores = SynFlowImportance()(DependencyGraph(net, x))
    (hidden,) = (s for s in scores.values() if s.numel() == 8)
    assert bool((hidden > 0).all())
    one = SynFlowImportance()(DependencyGraph(net, x[:, :1]))  # one sample: the same scores
    torch.testing.assert_close(next(s for s in one.values() if s.numel() == 8), hidden)


def test_bad_importance_arguments() -> None:
    with pytest.raises(ValueError, match="reduction"):
        MagnitudeImportance(reduction="median")
    with pytest.raises(ValueError, match="normalize"):
        MagnitudeImportance(normalize="l2")
    with pytest.raises(ValueError, match="p"):
        MagnitudeImportance(p=3)
    with pytest.raises(ValueError, match="roles"):
        MagnitudeImportance(roles=("weights",))
    with pytest.raises(TypeError, match="graph"):
        MagnitudeImportance()(object())  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", [TaylorImportance, SNIPImportance])
def test_bad_targets_of_the_default_loss_are_named(cls: type) -> None:
    """They failed inside cross_entropy: a TypeError naming its 'target', a ValueError on the
    batch size, an IndexError (a device-side assert on a GPU) or a RuntimeError on the dtype."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    graph = DependencyGraph(model, torch.randn(2, 4))
    x = torch.randn(6, 4)
    with pytest.raises(TypeError, match="targets: expected a tensor"):
        cls(inputs=x, targets=[0, 1, 2, 0, 1, 2])
    with pytest.raises(ValueError, match=r"targets: expected class indices in \[0, 2\]"):
        plan_pruning(graph, cls(inputs=x, targets=torch.tensor([0, 1, 2, 0, 1, 5])))
    for bad in (torch.zeros(5, dtype=torch.long), torch.zeros(6)):
        with pytest.raises(ValueError, match="targets: the default loss"):
            plan_pruning(graph, cls(inputs=x, targets=bad))
    ignored = torch.tensor([0, 1, 2, 0, 1, -100])  # cross_entropy's ignore_index is valid
    plan_pruning(graph, cls(inputs=x, targets=ignored))


def test_taylor_sums_a_channel_before_the_absolute_value() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(48, 5))
    x, y = torch.randn(8, 1, 4, 4), torch.randint(0, 5, (8,))
    imp = TaylorImportance(inputs=x, targets=y, reduction="sum", normalize=None, roles=("in",))
    graph = DependencyGraph(model, torch.zeros(1, 1, 4, 4))
    (scores,) = imp(graph).values()
    model.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    wg = (model[3].weight * model[3].weight.grad).detach().double()  # [5, 48], 16 per channel
    expected = wg.reshape(5, 3, 16).sum((0, 2)).abs()
    torch.testing.assert_close(scores, expected)


def test_synflow_takes_absolute_values_of_bn_statistics_too() -> None:
    # SynFlow scores the linearized network |theta|: the sign of a running mean cannot matter
    def scores(sign: float) -> torch.Tensor:
        torch.manual_seed(0)
        model = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(64, 3),
        ).eval()
        model[1].running_mean.fill_(sign * 0.7)
        graph = DependencyGraph(model, torch.randn(2, 1, 4, 4))
        return torch.cat(list(SynFlowImportance()(graph).values()))

    torch.testing.assert_close(scores(1.0), scores(-1.0))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_l2_scores_of_half_precision_weights_do_not_overflow(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).to(dtype)
    with torch.no_grad():
        model[0].weight[3] = 300.0  # squares above float16's largest value (65504)
    graph = DependencyGraph(model, torch.randn(2, 4, dtype=dtype))
    group = graph.layer_groups("0")[0]
    scores = MagnitudeImportance(p=2)(graph)[group.index]
    assert torch.isfinite(scores).all()
    assert int(scores.argmax()) == 3
    expected = model[0].weight.double().pow(2).sum(1) + model[0].bias.double().pow(2)
    expected = (expected + model[2].weight.double().pow(2).sum(0)) / 3  # mean over 3 members
    # the same up to the group normalization
    torch.testing.assert_close(scores / scores.sum(), expected / expected.sum(), rtol=1e-9, atol=0)


@pytest.mark.parametrize("imp", [TaylorImportance, SNIPImportance])
def test_gradient_scores_of_float16_weights_do_not_underflow(imp: type) -> None:
    """``w * dL/dw`` of small float16 weights fell below float16's smallest value (6e-8):
    29 of 32 channels scored 0 and were removed in index order."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32, bias=False), nn.Tanh(), nn.Linear(32, 4, bias=False))
    with torch.no_grad():
        for layer in (model[0], model[2]):
            layer.weight.mul_(1e-3)
    x, y = torch.randn(8, 16), torch.randint(0, 4, (8,))

    def scores(dtype: torch.dtype) -> torch.Tensor:
        graph = DependencyGraph(copy.deepcopy(model).to(dtype), x.to(dtype))
        return imp(x.to(dtype), y)(graph)[graph.layer_groups("0")[0].index]

    half, reference = scores(torch.float16), scores(torch.float64)
    assert bool((half > 0).all())
    torch.testing.assert_close(half, reference, rtol=0.05, atol=0)


@pytest.mark.parametrize("shape", [(300, 700), (100, 300, 3, 3), (3, 70_000), (0, 5), (4, 0, 3)])
def test_blocked_reduction_equals_one_float64_sum(shape: tuple[int, ...]) -> None:
    """Weights spanning several ~64k-entry blocks (and rows longer than one block) reduce to
    the float64 sums of the whole tensor, for every axis and op; empty weights too."""
    torch.manual_seed(0)
    t = torch.randn(*shape)
    assert t.numel() == 0 or t.numel() > 3 * importance._BLOCK  # several blocks
    for dim in range(t.ndim):
        other = [d for d in range(t.ndim) if d != dim]
        for op, ref in ((None, t), (torch.abs, t.abs()), (importance._square, t * t)):
            got = importance._reduce_other_dims(t, dim, op)
            want = ref.double().sum(other)
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-9)  # dtype and shape too


def test_l2_scores_of_huge_float32_weights_do_not_overflow() -> None:
    """float32 squares overflow above ~1.8e19: such scores are computed again in float64."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    with torch.no_grad():
        model[0].weight.mul_(1e20)
    graph = DependencyGraph(model, torch.randn(2, 4))
    scores = MagnitudeImportance(p=2)(graph)[graph.layer_groups("0")[0].index]
    assert torch.isfinite(scores).all()
    w = model[0].weight.double()
    assert torch.equal(scores.argsort(), w.pow(2).sum(1).argsort())  # the weights dominate


class _Outputs(nn.Module):
    """An MLP whose logits come as a tensor, a tuple, a dict or a Hugging Face ModelOutput."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(5, 7), nn.ReLU())
        self.head = nn.Linear(7, 3)
        self.kind = kind

    def forward(self, x: torch.Tensor) -> object:
        out = self.head(self.body(x))
        if self.kind == "tuple":
            return out, x.sum()
        if self.kind == "dict":
            return {"logits": out, "hidden": x}
        if self.kind == "model_output":
            outputs = pytest.importorskip("transformers.modeling_outputs")
            return outputs.SequenceClassifierOutput(logits=out, hidden_states=(x,))
        return out


@pytest.mark.parametrize("kind", ["tuple", "dict", "model_output"])
def test_synflow_and_the_default_loss_score_the_logits_of_tuples_dicts_and_model_outputs(
    kind: str,
) -> None:
    """A dict or ``ModelOutput`` failed with "'ImageClassifierOutput' object has no attribute
    'sum'" (SynFlow) or "cross_entropy_loss(): argument 'input' must be Tensor" (Taylor, SNIP
    with the default loss; a tuple too): their first tensor, the logits, is scored."""
    x, y = torch.randn(4, 5), torch.tensor([0, 1, 2, 0])
    makers = [SynFlowImportance, lambda: TaylorImportance(x, y), lambda: SNIPImportance(x, y)]
    plain = DependencyGraph(_Outputs("tensor"), x)
    graph = DependencyGraph(_Outputs(kind), x)
    for make in makers:
        expected, scores = make()(plain), make()(graph)
        assert scores.keys() == expected.keys()
        for k, v in expected.items():
            torch.testing.assert_close(scores[k], v)


def test_first_tensor_of_a_model_output() -> None:
    t = torch.ones(2)
    assert tracing.first_tensor(t) is t
    assert tracing.first_tensor({"logits": (t, 1)}) is t
    assert tracing.first_tensor([{"a": t}]) is t
    for nothing in ({}, (), ("text", t), None):
        assert tracing.first_tensor(nothing) is None


def test_gradient_importance_rejects_a_bad_loss_fn() -> None:
    """``loss_fn="mse"`` failed at scoring with "'str' object is not callable"; a per-sample
    loss with "grad can be implicitly created only for scalar outputs"."""
    _, graph = _mlp_graph()
    x, y = torch.randn(4, 5), torch.tensor([0, 1, 2, 0])
    with pytest.raises(TypeError, match=r"loss_fn: expected a callable .* got str"):
        TaylorImportance(x, y, loss_fn="mse")  # type: ignore[arg-type]
    per_sample = lambda out, t: nn.functional.cross_entropy(out, t, reduction="none")  # noqa: E731
    for cls in (TaylorImportance, SNIPImportance):
        with pytest.raises(ValueError, match=r"loss_fn: expected a scalar loss .* shape \(4,\)"):
            cls(x, y, loss_fn=per_sample)(graph)


def test_missing_position_scores_names_the_class() -> None:
    class Missing(GroupImportance):
        pass

    _, graph = _mlp_graph()
    with pytest.raises(NotImplementedError, match="Missing: implement position_scores"):
        Missing()(graph)


def _tensor_of(imp: GroupImportance, graph: DependencyGraph, member: GroupMember) -> torch.Tensor:
    return imp.tensor(graph, member).detach().double()


@pytest.mark.parametrize(
    ("returned", "got"),
    [
        (lambda t, dim: t.abs(), r"shape \(7, 5\)"),  # the whole weight matrix
        (lambda t, dim: torch.ones(t.shape[dim] + 5), r"shape \(12,\)"),
        (lambda t, dim: torch.ones(3), r"shape \(3,\)"),
        (lambda t, dim: torch.ones(t.shape[dim], 1), r"shape \(7, 1\)"),
        (lambda t, dim: [1.0] * t.shape[dim], "list"),
    ],
)
def test_wrong_shaped_position_scores_are_rejected(returned: object, got: str) -> None:
    """A weight matrix was flattened (its first row ranked the channels), extra entries were
    ignored, a short vector failed with a numpy IndexError and a list with AttributeError."""

    class Custom(GroupImportance):
        def position_scores(self, graph: DependencyGraph, member: GroupMember) -> torch.Tensor:
            return returned(_tensor_of(self, graph, member), member.dim)  # type: ignore[operator]

    _, graph = _mlp_graph()
    match = r"Custom\.position_scores: expected a 1-D tensor of 7 scores for body\.0\.weight"
    with pytest.raises(ValueError, match=f"{match} .* in group 'body.0', got {got}"):
        plan_pruning(graph, Custom(), 0.5)


@pytest.mark.parametrize(
    ("returned", "error", "got"),
    [
        (lambda g: {}, ValueError, r"no scores for group 'body.0' \(index 0\), expected a 1-D"),
        (lambda g: torch.ones(g.size), TypeError, "returned Tensor, expected a dict"),
        (lambda g: {g.index: torch.ones(g.size - 4)}, ValueError, r"got shape \(3,\)"),
        (lambda g: {g.index: torch.ones(g.size + 4)}, ValueError, r"got shape \(11,\)"),
        (lambda g: {g.index: torch.ones(g.size, 1)}, ValueError, r"got shape \(7, 1\)"),
        (lambda g: {g.index: list(range(g.size))}, ValueError, "got list"),
    ],
)
def test_plan_pruning_rejects_wrong_shaped_group_scores(
    returned: object, error: type[Exception], got: str
) -> None:
    """Short scores made only their channels candidates; a missing group failed with
    KeyError: 0 and a list with an isfinite() TypeError."""

    class Custom(GroupImportance):
        def __call__(self, graph: DependencyGraph) -> dict[int, torch.Tensor]:
            (group,) = graph.prunable_groups()
            return returned(group)  # type: ignore[operator,no-any-return]

    _, graph = _mlp_graph()
    with pytest.raises(error, match=f"importance: Custom .*{got}"):
        plan_pruning(graph, Custom(), 0.5)


@pytest.mark.parametrize("cls", [TaylorImportance, SNIPImportance])
def test_gradient_importance_refuses_an_empty_batch(cls: type[GroupImportance]) -> None:
    """A batch of 0 samples left every gradient 0: all scores 0 and the first channels of
    every group removed, silently."""
    _, graph = _mlp_graph()
    imp = cls(inputs=torch.randn(0, 5), targets=torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"inputs: every gradient .* is 0 .*shape \(0, 5\)"):
        plan_pruning(graph, imp, 0.5)


def test_synflow_refuses_empty_example_inputs() -> None:
    """SynFlow's all-ones input of an empty batch gave every score 0 (first channels removed)."""
    model = MLP(in_features=5, hidden=(7,), num_classes=3)
    graph = DependencyGraph(model, torch.randn(0, 5))
    with pytest.raises(ValueError, match=r"example_inputs: SynFlow needs non-empty .*\(0, 5\)"):
        plan_pruning(graph, "synflow", 0.5)


@pytest.mark.parametrize("imp", ["l2", "synflow", "taylor"])
def test_scoring_a_meta_model_names_the_parameter(imp: str) -> None:
    """A model on the meta device traces and prunes (shapes only), but scoring it failed
    inside torch ("Tensor.item() cannot be called on meta tensors")."""
    with torch.device("meta"):
        model = MLP(in_features=5, hidden=(7,), num_classes=3)
    graph = DependencyGraph(model, torch.randn(2, 5, device="meta"))
    importance: GroupImportance | str = imp
    if imp == "taylor":
        x, y = torch.randn(2, 5, device="meta"), torch.zeros(2, dtype=torch.long, device="meta")
        importance = TaylorImportance(inputs=x, targets=y)
    with pytest.raises(ValueError, match=r"model: body\.0\.weight is on the meta device"):
        plan_pruning(graph, importance, 0.5)


@pytest.mark.parametrize("normalize", ["mean", "max", "sum"])
def test_normalized_scores_of_a_tiny_scale_group_are_comparable(normalize: str) -> None:
    # normalizing divides by the group's own mean / max / sum however small it is (a floor
    # of 1e-12 left a group of tiny scores tiny: global pruning emptied that layer)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU())
    model.append(nn.Linear(16, 4))
    graph = DependencyGraph(model, torch.randn(2, 8))
    imp = MagnitudeImportance(p=2, roles=("out",), normalize=normalize)
    reference = imp(graph)
    planned = plan_pruning(graph, imp, 0.5, scope="global").removed
    with torch.no_grad():
        model[0].weight.mul_(2.0**-30)  # powers of 2: the same scores scaled exactly
        model[0].bias.mul_(2.0**-30)
    graph = DependencyGraph(model, torch.randn(2, 8))
    scaled = imp(graph)
    for index, scores in reference.items():
        torch.testing.assert_close(scaled[index], scores)
    removed = plan_pruning(graph, imp, 0.5, scope="global").removed
    assert removed.keys() == planned.keys()
    assert all(torch.equal(removed[i], planned[i]) for i in planned)


def test_all_zero_weights_normalize_to_zero_scores() -> None:
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.zero_()
        model[2].weight.zero_()
    graph = DependencyGraph(model, torch.randn(2, 4))
    (scores,) = MagnitudeImportance()(graph).values()
    assert torch.equal(scores, torch.zeros(6, dtype=torch.float64))
    # every channel tied: the lowest indices go first (a stable sort)
    (removed,) = plan_pruning(graph, "l2", 0.5).removed.values()
    assert removed.tolist() == [0, 1, 2]
