"""ONNX route: prune exported models; the result runs in onnxruntime and equals the oracle."""

import io
import math
from typing import Any

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")

from neuronkit.pruning import (  # noqa: E402
    DenseNetStyle,
    MobileNetV2Style,
    ResNetStyle,
    SmallViT,
    zoo,
)
from neuronkit.pruning.onnx import OnnxDependencyGraph, prune_onnx  # noqa: E402


def _export(
    model: torch.nn.Module, x: torch.Tensor, dynamic_axes: dict[str, Any] | None = None
) -> "onnx.ModelProto":
    f = io.BytesIO()
    torch.onnx.export(
        model.eval(),
        (x,),
        f,
        dynamo=False,
        input_names=["x"],
        output_names=["y"],
        dynamic_axes=dynamic_axes,
    )
    return onnx.load_from_string(f.getvalue())


def _run(model: "onnx.ModelProto", x: torch.Tensor) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x.numpy()})[0]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize(
    "ctor",
    [
        lambda: ResNetStyle(widths=(8, 16, 16), blocks=1),
        lambda: MobileNetV2Style(expand=2),
        lambda: DenseNetStyle(growth=4, layers=2),
        lambda: torch.nn.Sequential(  # grouped convolution (ResNeXt / RegNet)
            torch.nn.Conv2d(3, 16, 1),
            torch.nn.BatchNorm2d(16),
            torch.nn.ReLU(),
            torch.nn.Conv2d(16, 24, 3, padding=1, groups=4),
            torch.nn.ReLU(),
            torch.nn.Conv2d(24, 8, 1),
            torch.nn.Flatten(),
            torch.nn.Linear(8 * 16 * 16, 10),
        ),
    ],
)
def test_pruned_onnx_runs_and_matches_soft_oracle(ctor, tmp_path) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    x = torch.randn(2, 3, 16, 16)
    proto = _export(ctor(), x)
    before = proto.SerializeToString()
    path = tmp_path / "pruned.onnx"
    hard = prune_onnx(proto, 0.5, output_path=path)
    soft = prune_onnx(proto, 0.5, soft=True)
    assert proto.SerializeToString() == before  # input untouched
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-5, rtol=0)
    assert np.abs(_run(proto, x) - _run(soft, x)).max() > 1e-4
    assert len(hard.SerializeToString()) < 0.8 * len(before)
    assert _run(onnx.load(str(path)), x).shape == (2, 10)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_onnx_bad_inputs() -> None:
    proto = _export(ResNetStyle(widths=(4, 4, 4), blocks=1), torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match="ratio"):
        prune_onnx(proto, 1.0)
    with pytest.raises(ValueError, match="nope"):
        prune_onnx(proto, 0.5, ignored=["nope"])
    with pytest.raises(TypeError, match="model"):
        OnnxDependencyGraph(42)
    graph = OnnxDependencyGraph(proto)
    assert any(not g.prunable and g.reason == "model output" for g in graph.groups)


def _vit(batch: int) -> "tuple[onnx.ModelProto, torch.Tensor]":
    torch.manual_seed(0)
    model = SmallViT(image_size=8, patch=4, dim=32, depth=2, heads=4, mlp_ratio=2)
    with torch.no_grad():  # LayerNorm scales/shifts away from 1/0, so the oracle is not trivial
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    x = torch.randn(batch, 3, 8, 8)
    return _export(model, x), x


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("batch", [1, 2])  # 1: unit batch axis; 2: heads merged with the batch
@pytest.mark.parametrize("ratio", [0.25, 0.5])
def test_vit_onnx_prunes_residual_mlp_and_whole_heads(batch: int, ratio: float) -> None:
    proto, x = _vit(batch)
    graph = OnnxDependencyGraph(proto)
    frozen = [g for g in graph.groups if not g.prunable]
    assert [g.reason for g in frozen] == ["model output"]  # only the classifier's logits
    assert any("patch_embed.weight" in g.producers for g in graph.prunable_groups())
    heads = [g for g in graph.groups if any(m.module.endswith("in_proj_bias") for m in g.members)]
    assert len(heads) == 2  # one attention group per block
    assert all(g.size == 4 for g in heads)  # of 4 heads each
    d, hd = 32, 8
    for g in heads:
        bias = next(m for m in g.members if m.module.endswith("in_proj_bias"))
        for h, pos in enumerate(bias.positions):  # a head: hd rows each of q, k and v
            rows = list(range(h * hd, (h + 1) * hd))
            assert pos == rows + [r + d for r in rows] + [r + 2 * d for r in rows]
    hard = prune_onnx(proto, ratio)
    soft = prune_onnx(proto, ratio, soft=True)
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-5, rtol=0)
    assert np.abs(_run(proto, x) - _run(soft, x)).max() > 1e-3
    sizes = {t.name: tuple(t.dims) for t in hard.graph.initializer}
    left = d - math.floor(ratio * d)  # residual width
    heads_left = 4 - math.floor(ratio * 4)
    assert sizes["patch_embed.weight"][0] == left
    for b in range(2):
        assert sizes[f"blocks.{b}.attn.in_proj_bias"] == (3 * heads_left * hd,)
        assert sizes[f"blocks.{b}.attn.out_proj.weight"] == (left, heads_left * hd)
        assert sizes[f"blocks.{b}.fc1.bias"] == (64 - math.floor(ratio * 64),)
    ratio_bytes = len(hard.SerializeToString()) / len(proto.SerializeToString())
    assert ratio_bytes < (0.8 if ratio == 0.25 else 0.55)


def _const(name: str, value: list[int]) -> "onnx.NodeProto":
    return onnx.helper.make_node(
        "Constant", [], [name], value=onnx.numpy_helper.from_array(np.array(value, np.int64))
    )


def _model(nodes: list, inits: dict[str, np.ndarray], x_shape: list[int]) -> "onnx.ModelProto":
    h = onnx.helper
    graph = h.make_graph(
        nodes,
        "g",
        [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, x_shape)],
        [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [x_shape[0], 4])],
        [onnx.numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()],
    )
    # IR version 8 goes with opset 17; without it onnx writes its newest, which an older
    # onnxruntime refuses to load
    return h.make_model(graph, ir_version=8, opset_imports=[h.make_opsetid("", 17)])


def test_reshape_target_shared_by_two_branches_is_rewritten_per_branch() -> None:
    # regression: one Constant shape fed both branches' Reshape; pruning them differently
    # (one branch ignored) rewrote the shared constant twice and broke the first branch
    rng = np.random.default_rng(0)
    h = onnx.helper
    nodes = [
        h.make_node("Conv", ["x", "w1"], ["c1"]),
        h.make_node("Conv", ["x", "w2"], ["c2"]),
        _const("s", [2, 8, 16]),
        h.make_node("Reshape", ["c1", "s"], ["r1"]),
        h.make_node("Reshape", ["c2", "s"], ["r2"]),
        h.make_node("Concat", ["r1", "r2"], ["cat"], axis=1),
        h.make_node("Flatten", ["cat"], ["flat"], axis=1),
        h.make_node("Gemm", ["flat", "w3"], ["y"], transB=1),
    ]
    inits = {
        "w1": rng.normal(size=(8, 3, 1, 1)),
        "w2": rng.normal(size=(8, 3, 1, 1)),
        "w3": rng.normal(size=(4, 256)),
    }
    proto = _model(nodes, inits, [2, 3, 4, 4])
    x = torch.randn(2, 3, 4, 4)
    hard = prune_onnx(proto, 0.5, ignored=["w1"])
    soft = prune_onnx(proto, 0.5, soft=True, ignored=["w1"])
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-5, rtol=0)
    assert {t.name: tuple(t.dims) for t in hard.graph.initializer}["w3"] == (4, 192)


def test_shape_of_channels_used_in_arithmetic_keeps_its_exported_value() -> None:
    # y = conv(x) / C, C read with Shape -> Gather (batch axis dynamic): C is a static extent,
    # folded to the exported 8 as torch's constant folding leaves a static export, so the
    # pruned model divides by 8 like the zeroed oracle
    h = onnx.helper
    rng = np.random.default_rng(0)
    nodes = [
        h.make_node("Conv", ["x", "w1"], ["c1"]),
        h.make_node("Shape", ["c1"], ["sh"]),
        _const("i", [1]),
        h.make_node("Gather", ["sh", "i"], ["n"], axis=0),
        h.make_node("Cast", ["n"], ["nf"], to=onnx.TensorProto.FLOAT),
        h.make_node("Div", ["c1", "nf"], ["d"]),
        h.make_node("Flatten", ["d"], ["flat"], axis=1),
        h.make_node("Gemm", ["flat", "w3"], ["y"], transB=1),
    ]
    inits = {"w1": rng.normal(size=(8, 3, 1, 1)), "w3": rng.normal(size=(4, 128))}
    model = _model(nodes, inits, ["batch", 3, 4, 4])
    graph = OnnxDependencyGraph(model)
    assert next(g for g in graph.groups if "w1" in g.producers).prunable
    hard, soft = prune_onnx(model, 0.5), prune_onnx(model, 0.5, soft=True)
    x = torch.randn(3, 3, 4, 4)
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-5, rtol=0)
    assert {t.name: tuple(t.dims) for t in hard.graph.initializer}["w1"] == (4, 3, 1, 1)
    assert "Shape" not in {n.op_type for n in hard.graph.node}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("name", ["mlp", "vgg", "resnet", "mobilenetv2", "densenet", "vit"])
def test_dynamic_batch_export_prunes_like_a_static_one(name: str) -> None:
    # exporters usually leave the batch axis dynamic: its shape arithmetic (e.g. B * heads in
    # nn.MultiheadAttention) stays, channel counts read with Shape become constants
    torch.manual_seed(0)
    ctor, shape = zoo()[name]
    model = ctor().eval()
    x1 = torch.randn(1, *shape)
    static = _export(model, x1)
    dynamic = _export(model, x1, {"x": {0: "batch"}, "y": {0: "batch"}})

    def prunable(proto: "onnx.ModelProto", **kw: Any) -> int:
        return sum(g.size for g in OnnxDependencyGraph(proto, **kw).prunable_groups())

    assert prunable(dynamic) == prunable(static) == prunable(dynamic, dims={"batch": 2}) > 0
    assert prunable(dynamic, dims={"batch": np.int64(2)}) == prunable(static)  # numpy sizes
    hard, soft = prune_onnx(dynamic, 0.5), prune_onnx(dynamic, 0.5, soft=True)
    x = torch.randn(3, *shape)
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-5, rtol=0)
    assert np.abs(_run(dynamic, x) - _run(soft, x)).max() > 1e-4
    assert len(hard.SerializeToString()) < 0.5 * len(dynamic.SerializeToString())
    assert hard.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_dynamic_image_size() -> None:
    torch.manual_seed(0)
    model, x = ResNetStyle(widths=(8, 16, 16), blocks=1), torch.randn(1, 3, 16, 16)
    proto = _export(model, x, {"x": {0: "batch", 2: "h", 3: "w"}, "y": {0: "batch"}})
    static = _export(model, x)
    sizes = [
        sum(g.size for g in OnnxDependencyGraph(m, **kw).prunable_groups())
        for m, kw in [(static, {}), (proto, {}), (proto, {"dims": {"h": 16, "w": 16}})]
    ]
    assert sizes[0] == sizes[1] == sizes[2] > 0
    x = torch.randn(3, 3, 24, 20)
    hard, soft = prune_onnx(proto, 0.5), prune_onnx(proto, 0.5, soft=True)
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-5, rtol=0)


def test_dims_must_map_names_to_positive_sizes() -> None:
    model, x = ResNetStyle(widths=(4, 4, 4), blocks=1), torch.randn(1, 3, 8, 8)
    proto = _export(model, x, {"x": {0: "batch"}})
    with pytest.raises(TypeError, match="dims"):
        OnnxDependencyGraph(proto, dims=[("batch", 1)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dims"):
        prune_onnx(proto, 0.5, dims={"batch": 1.5})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="dims"):
        prune_onnx(proto, 0.5, dims={"batch": 0})
    with pytest.raises(ValueError, match=r"dims: \['bacth'\] are not symbolic.*\['batch'\]"):
        prune_onnx(proto, 0.5, dims={"bacth": 2})
    with pytest.raises(ValueError, match="none"):
        OnnxDependencyGraph(_export(model, x), dims={"batch": 2})


class _HeadsAttention(torch.nn.Module):
    """Separate q/k/v projections split as ``view(B, N, H, hd).transpose(1, 2)`` (the Hugging
    Face layout); ``sdpa`` reads ``head_dim`` from the exported graph with ``Shape``."""

    def __init__(self, sdpa: bool, d: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.sdpa, self.heads = sdpa, heads
        self.inp, self.norm = torch.nn.Linear(12, d), torch.nn.LayerNorm(d)
        self.q, self.k, self.v, self.o = (torch.nn.Linear(d, d) for _ in range(4))
        self.head = torch.nn.Linear(d, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inp(x)
        b, n, d = x.shape
        h = self.norm(x)
        q, k, v = (
            f(h).view(b, n, self.heads, -1).transpose(1, 2) for f in (self.q, self.k, self.v)
        )
        if self.sdpa:
            a = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        else:
            a = torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5, -1) @ v
        x = x + self.o(a.transpose(1, 2).reshape(b, n, d))
        return self.head(x.mean(1))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("sdpa", [False, True])
@pytest.mark.parametrize("dynamic", [False, True])
def test_separate_qkv_heads_and_shape_read_head_dim(sdpa: bool, dynamic: bool) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 6, 12)
    axes = {"x": {0: "batch", 1: "seq"}, "y": {0: "batch"}} if dynamic else None
    proto = _export(_HeadsAttention(sdpa), x, axes)
    if dynamic:
        x = torch.randn(3, 9, 12)
    graph = OnnxDependencyGraph(proto)
    assert [g.reason for g in graph.groups if not g.prunable] == ["model output"]
    heads = next(g for g in graph.groups if any(m.module == "q.bias" for m in g.members))
    assert heads.size == 4  # whole heads: q, k, v and o's input rows together
    assert {m.module for m in heads.members} >= {"q.bias", "k.bias", "v.bias"}
    hard = prune_onnx(proto, 0.5)
    soft = prune_onnx(proto, 0.5, soft=True)
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-5, rtol=0)
    assert {t.name: tuple(t.dims) for t in hard.graph.initializer}["q.bias"] == (16,)


def _dynamo_export(model: torch.nn.Module, x: torch.Tensor, dims: dict[int, Any]) -> Any:
    pytest.importorskip("onnxscript", reason="torch's dynamo exporter needs onnxscript")
    program = torch.onnx.export(
        model.eval(),
        (x,),
        dynamo=True,
        input_names=["x"],
        output_names=["y"],
        dynamic_shapes=(dims,),
        verbose=False,
    )
    return program.model_proto


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize("name", ["resnet", "vit"])
def test_dynamo_export_with_dynamic_batch(name: str) -> None:
    # torch's default exporter (torch.export): different op patterns, symbolic batch
    torch.manual_seed(0)
    ctor, shape = zoo()[name]
    model = ctor()
    proto = _dynamo_export(model, torch.randn(2, *shape), {0: torch.export.Dim("batch")})
    static = _export(model, torch.randn(1, *shape))
    graph = OnnxDependencyGraph(proto)
    assert [g.reason for g in graph.groups if not g.prunable] == ["model output"]
    assert sum(g.size for g in graph.groups) == sum(
        g.size for g in OnnxDependencyGraph(static).groups
    )
    x = torch.randn(3, *shape)
    hard, soft = prune_onnx(proto, 0.5), prune_onnx(proto, 0.5, soft=True)
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-5, rtol=0)


class _Logits(torch.nn.Module):
    """A Hugging Face causal LM's logits ``[B, T, vocab]`` for ``input_ids [B, T]``."""

    def __init__(self, lm: torch.nn.Module) -> None:
        super().__init__()
        self.lm = lm

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lm(input_ids=ids, use_cache=False).logits


def _lm_groups(lm: torch.nn.Module, max_seq: int) -> list[tuple[int, bool]]:
    """Export ``lm`` (vocabulary 100) with dynamo, batch and sequence dynamic; check the pruned
    model against the oracle on 3 x 11 tokens; return its groups' sorted (size, prunable)."""
    dims = {0: torch.export.Dim("batch"), 1: torch.export.Dim("seq", max=max_seq)}
    proto = _dynamo_export(_Logits(lm), torch.randint(0, 100, (2, 16)), dims)
    hard, soft = prune_onnx(proto, 0.5), prune_onnx(proto, 0.5, soft=True)
    x = torch.randint(0, 100, (3, 11))
    out = _run(hard, x)
    np.testing.assert_allclose(out, _run(soft, x), atol=1e-5, rtol=0)
    assert out.shape == (3, 11, 100)
    assert (100, 32) in {tuple(t.dims) for t in hard.graph.initializer}  # the token embedding
    return sorted((g.size, g.prunable) for g in OnnxDependencyGraph(proto).groups)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
def test_hugging_face_gpt2_dynamo_export_with_dynamic_batch_and_sequence() -> None:
    transformers = pytest.importorskip("transformers", reason="the transformers extra")
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(
        n_layer=2, n_embd=64, n_head=4, n_positions=32, vocab_size=100, use_cache=False
    )
    # residual width, and per layer its 4 heads (sdpa decomposed, IsNaN / Where included)
    # and its MLP channels; the logits stay
    assert _lm_groups(transformers.GPT2LMHeadModel(cfg), 32) == [
        (4, True),
        (4, True),
        (64, True),
        (100, False),
        (256, True),
        (256, True),
    ]


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize("dynamic", [False, True])
def test_layernorm_written_out_in_ops_prunes_like_the_layernorm_op(dynamic: bool) -> None:
    # below opset 17 torch writes LayerNorm out (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt,
    # Div, Mul, Add); its statistics then run over the kept channels, as LayerNormalization's
    torch.manual_seed(0)
    model = _HeadsAttention(sdpa=False)
    with torch.no_grad():
        model.norm.weight.uniform_(0.5, 1.5)
        model.norm.bias.uniform_(-1.0, 1.0)
    x = torch.randn(2, 6, 12)
    axes = {"x": {0: "batch", 1: "seq"}} if dynamic else None
    hard = {}
    for opset in (14, 17):
        f = io.BytesIO()
        torch.onnx.export(model.eval(), (x,), f, dynamo=False, opset_version=opset,
                          input_names=["x"], output_names=["y"], dynamic_axes=axes)  # fmt: skip
        proto = onnx.load_from_string(f.getvalue())
        ops = {n.op_type for n in proto.graph.node}
        assert ("LayerNormalization" in ops) == (opset == 17)
        graph = OnnxDependencyGraph(proto)
        assert [g.reason for g in graph.groups if not g.prunable] == ["model output"]
        hard[opset] = _run(prune_onnx(proto, 0.5), x)
        np.testing.assert_allclose(
            hard[opset], _run(prune_onnx(proto, 0.5, soft=True), x), atol=1e-5, rtol=0
        )
    np.testing.assert_allclose(hard[14], hard[17], atol=1e-5, rtol=0)


@pytest.mark.parametrize("op", ["ReduceMean", "ReduceSum"])
def test_statistic_over_channels_is_taken_over_the_kept_ones(op: str) -> None:
    # y = c - mean_C(c) (or the sum) on a conv output: channel axis 1, not the last
    h = onnx.helper
    rng = np.random.default_rng(0)
    reduce = (  # opset 17: ReduceSum takes its axes as an input, ReduceMean as an attribute
        [_const("axes", [1]), h.make_node(op, ["c1", "axes"], ["m"], keepdims=1)]
        if op == "ReduceSum"
        else [h.make_node(op, ["c1"], ["m"], axes=[1], keepdims=1)]
    )
    nodes = [
        h.make_node("Conv", ["x", "w1", "b1"], ["c1"]),
        *reduce,
        h.make_node("Sub", ["c1", "m"], ["d"]),
        h.make_node("Flatten", ["d"], ["flat"], axis=1),
        h.make_node("Gemm", ["flat", "w3"], ["y"], transB=1),
    ]
    inits = {
        "w1": rng.normal(size=(8, 3, 1, 1)),
        "b1": rng.normal(size=8),
        "w3": rng.normal(size=(4, 128)),
    }
    model = _model(nodes, inits, [2, 3, 4, 4])
    assert next(g for g in OnnxDependencyGraph(model).groups if "w1" in g.producers).prunable
    hard, soft = prune_onnx(model, 0.5), prune_onnx(model, 0.5, soft=True)
    assert {t.name: tuple(t.dims) for t in hard.graph.initializer}["b1"] == (4,)
    x = torch.randn(2, 3, 4, 4)
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-5, rtol=0)
    assert np.abs(_run(hard, x) - _run(model, x)).max() > 1e-3


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
def test_hugging_face_llama_dynamo_export_rmsnorm_rope_and_grouped_query_attention() -> None:
    transformers = pytest.importorskip("transformers", reason="the transformers extra")
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=100,
        max_position_embeddings=64,
        use_cache=False,
    )
    lm = transformers.LlamaForCausalLM(cfg)
    with torch.no_grad():
        for module in lm.modules():
            if type(module).__name__ == "LlamaRMSNorm":
                module.weight.uniform_(0.5, 1.5)
    # residual width (RMSNorm written out in ops), per layer 2 kv heads each with its 2 query
    # heads (rotary halves sliced and swapped, repeat_kv expanded) and the MLP channels
    assert _lm_groups(lm, 64) == [
        (2, True),
        (2, True),
        (64, True),
        (100, False),
        (128, True),
        (128, True),
    ]


def test_soft_oracle_sets_removed_divisors_to_one() -> None:
    rng = np.random.default_rng(0)
    h = onnx.helper
    nodes = [
        h.make_node("MatMul", ["x", "w1"], ["a"]),
        h.make_node("Div", ["a", "d"], ["s"]),  # a per-channel divisor
        h.make_node("MatMul", ["s", "w2"], ["y"]),
    ]
    inits = {
        "w1": rng.standard_normal((6, 8)),
        "d": rng.uniform(1.0, 2.0, 8),
        "w2": rng.standard_normal((8, 4)),
    }
    model = _model(nodes, inits, [2, 6])
    x = torch.randn(2, 6)
    hard, soft = prune_onnx(model, 0.5), prune_onnx(model, 0.5, soft=True)
    assert np.isfinite(_run(soft, x)).all()
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-5)


@pytest.mark.parametrize("pool", [False, True])
def test_split_pieces_and_channel_pools_keep_the_oracle(pool: bool) -> None:
    rng = np.random.default_rng(1)
    h = onnx.helper
    if pool:  # channels moved to the last axis, then pooled over (axes after 1)
        nodes = [
            h.make_node("MatMul", ["x", "w1"], ["a"]),  # [2, 5, 8]: channels on axis 2
            h.make_node("MaxPool", ["a"], ["p"], kernel_shape=[3], pads=[1, 1]),
            h.make_node("ReduceMean", ["p"], ["m"], axes=[1], keepdims=0),
            h.make_node("MatMul", ["m", "w2"], ["y"]),
        ]
        inits = {"w1": rng.standard_normal((6, 8)), "w2": rng.standard_normal((8, 4))}
        model, x = _model(nodes, inits, [2, 5, 6]), torch.randn(2, 5, 6)
    else:  # the two halves of a Split swapped before they meet again
        nodes = [
            h.make_node("MatMul", ["x", "w1"], ["a"]),
            h.make_node("Split", ["a"], ["p", "q"], axis=1, num_outputs=2),
            h.make_node("Relu", ["p"], ["r"]),
            h.make_node("Concat", ["q", "r"], ["c"], axis=1),
            h.make_node("MatMul", ["c", "w2"], ["y"]),
        ]
        inits = {"w1": rng.standard_normal((6, 8)), "w2": rng.standard_normal((8, 4))}
        model = _model(nodes, inits, [2, 6])
        model.opset_import[0].version = 18  # Split's num_outputs
        x = torch.randn(2, 6)
    hard, soft = prune_onnx(model, 0.5), prune_onnx(model, 0.5, soft=True)
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-5)


@pytest.mark.parametrize("case", ["transpose_default_perm", "batchnorm_other_axis", "split_attr"])
def test_onnx_layouts_that_crashed_prune_to_a_working_model(case: str) -> None:
    rng = np.random.default_rng(2)
    h = onnx.helper
    inits: dict[str, np.ndarray] = {"w1": rng.standard_normal((6, 8))}
    if case == "transpose_default_perm":  # no perm attribute: the axes are reversed
        nodes = [
            h.make_node("MatMul", ["x", "w1"], ["a"]),
            h.make_node("Transpose", ["a"], ["t"]),
            h.make_node("Transpose", ["t"], ["t2"]),
            h.make_node("MatMul", ["t2", "w2"], ["y"]),
        ]
        inits["w2"] = rng.standard_normal((8, 4))
        model, x = _model(nodes, inits, [2, 6]), torch.randn(2, 6)
    elif case == "batchnorm_other_axis":  # channels on axis 2, BatchNormalization on axis 1
        nodes = [
            h.make_node("MatMul", ["x", "w1"], ["a"]),
            h.make_node("BatchNormalization", ["a", "s", "b", "m", "v"], ["n"]),
            h.make_node("ReduceMean", ["n"], ["r"], axes=[1], keepdims=0),
            h.make_node("MatMul", ["r", "w2"], ["y"]),
        ]
        inits |= {
            "s": rng.uniform(0.5, 1.5, 8),
            "b": rng.uniform(-1, 1, 8),
            "m": rng.uniform(-1, 1, 8),
            "v": rng.uniform(0.5, 2, 8),
            "w2": rng.standard_normal((8, 4)),
        }
        model, x = _model(nodes, inits, [2, 8, 6]), torch.randn(2, 8, 6)
    else:  # opset 11: the split sizes are an attribute
        nodes = [
            h.make_node("MatMul", ["x", "w1"], ["a"]),
            h.make_node("Split", ["a"], ["p", "q"], axis=1, split=[4, 4]),
            h.make_node("Add", ["p", "q"], ["s"]),
            h.make_node("MatMul", ["s", "w2"], ["y"]),
        ]
        inits["w2"] = rng.standard_normal((4, 4))
        model, x = _model(nodes, inits, [2, 6]), torch.randn(2, 6)
        model.opset_import[0].version = 11
    hard, soft = prune_onnx(model, 0.5), prune_onnx(model, 0.5, soft=True)
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_grouped_convolution_units_are_local_channels_of_every_group() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 24, 3, padding=1, groups=4),
        torch.nn.ReLU(),
        torch.nn.Conv2d(24, 4, 1),
    )
    x = torch.randn(2, 3, 6, 6)
    proto = _export(model, x)
    sizes = [(g.size, g.prunable) for g in OnnxDependencyGraph(proto).groups]
    assert sizes[:2] == [(4, True), (6, True)]  # 16 / 4 and 24 / 4 units
    hard, soft = prune_onnx(proto, 0.5), prune_onnx(proto, 0.5, soft=True)
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-5, rtol=0)
    weights = {i.name: i.dims for i in hard.graph.initializer if len(i.dims) == 4}
    assert sorted(tuple(d[:2]) for d in weights.values()) == [(4, 12), (8, 3), (12, 2)]


class _ThresholdFill(torch.nn.Module):
    """A spiking neuron's step as exported: the drive compared with a threshold broadcast to its
    full shape (a fill of one value, not an initializer), the spikes gating the drive."""

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.b = torch.nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        threshold = torch.full_like(h, 0.1)
        spikes = (h - threshold >= 0).to(h.dtype)
        return self.b(spikes * h).mean((2, 3))


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize("dynamo", [False, True])
def test_a_fill_of_one_value_follows_the_channels_as_a_scalar(dynamo: bool) -> None:
    torch.manual_seed(0)
    model, x = _ThresholdFill().eval(), torch.randn(2, 3, 6, 6)
    batch = {0: torch.export.Dim("batch")}
    proto = _dynamo_export(model, x, batch) if dynamo else _export(model, x)
    graph = OnnxDependencyGraph(proto)
    assert [(g.size, g.prunable) for g in graph.groups] == [(8, True), (4, False)]
    x = torch.randn(3 if dynamo else 2, 3, 6, 6)
    np.testing.assert_allclose(_run(prune_onnx(proto, 0.0), x), _run(proto, x), atol=1e-6)
    hard, soft = prune_onnx(proto, 0.5), prune_onnx(proto, 0.5, soft=True)
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-6, rtol=0)
    conv = next(n for n in hard.graph.node if n.op_type == "Conv")
    weight = next(t for t in hard.graph.initializer if t.name == conv.input[1])
    assert weight.dims[0] == 4  # half of the 8 channels, through the threshold test


class _ChannelsLastPad(torch.nn.Module):
    """Swin's ``maybe_pad``: a channels-last map padded on its spatial axes (zero pads on the
    channels), or, with ``pad_channels``, on the channel axis too."""

    def __init__(self, pad_channels: bool) -> None:
        super().__init__()
        self.pad_channels = pad_channels
        self.a, self.b = torch.nn.Linear(4, 8), torch.nn.Linear(8 + pad_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, H, W, 4]
        h = torch.nn.functional.pad(self.a(x), (0, int(self.pad_channels), 0, 1, 0, 1))
        return self.b(h).mean((1, 2))


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize("dynamo", [False, True])
def test_padding_other_axes_keeps_the_channels_prunable(dynamo: bool) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 3, 4)
    export = (lambda m: _dynamo_export(m, x, {})) if dynamo else (lambda m: _export(m, x))
    proto = export(_ChannelsLastPad(pad_channels=False).eval())
    assert [(g.size, g.prunable) for g in OnnxDependencyGraph(proto).groups] == [
        (8, True),
        (3, False),
    ]
    hard, soft = prune_onnx(proto, 0.5), prune_onnx(proto, 0.5, soft=True)
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-6, rtol=0)
    assert np.abs(_run(proto, x) - _run(soft, x)).max() > 1e-4
    padded = OnnxDependencyGraph(export(_ChannelsLastPad(pad_channels=True).eval())).groups[0]
    assert not padded.prunable
    assert "pads the channel axis" in padded.reason


def _value_shapes(model: "onnx.ModelProto") -> dict[str, list[Any]]:
    g = model.graph
    return {
        vi.name: [d.dim_value or d.dim_param for d in vi.type.tensor_type.shape.dim]
        for vi in [*g.value_info, *g.output]
    }


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_shapes_are_inferred_without_the_weights_data() -> None:
    # the weights (> 4096 entries) are graph inputs of their shape on the copy that inference
    # sees; every inferred shape equals inference on the whole model, also when the weights are
    # listed as graph inputs already (IR version < 4 exports), and those prune the same
    from neuronkit.pruning.onnx import _infer_shapes

    torch.manual_seed(0)
    x = torch.randn(2, 3, 16, 16)
    proto = _export(ResNetStyle(widths=(8, 16, 80), blocks=1), x, {"x": {0: "batch"}})
    assert any(math.prod(t.dims) > 4096 for t in proto.graph.initializer)
    full = onnx.shape_inference.infer_shapes(proto, data_prop=True)
    assert _value_shapes(_infer_shapes(proto)) == _value_shapes(full)
    listed = onnx.ModelProto()
    listed.CopyFrom(proto)
    listed.graph.input.extend(
        onnx.helper.make_tensor_value_info(t.name, t.data_type, t.dims)
        for t in proto.graph.initializer
    )
    assert _value_shapes(_infer_shapes(listed)) == _value_shapes(full)
    hard = prune_onnx(listed, 0.5)
    assert list(hard.graph.initializer) == list(prune_onnx(proto, 0.5).graph.initializer)
    np.testing.assert_allclose(
        _run(hard, x), _run(prune_onnx(listed, 0.5, soft=True), x), atol=1e-5, rtol=0
    )


class _SharedWeights(torch.nn.Module):
    """One Linear applied twice and a weight read by two nodes: shared initializers."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.shared = torch.nn.Linear(6, 16), torch.nn.Linear(16, 16)
        self.out = torch.nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.shared(torch.relu(self.a(x))))
        return self.out(torch.relu(self.shared(h)))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_shared_initializers_stay_shared_in_the_pruned_file() -> None:
    # _normalize gives every extra reader its own copy (pruning may cut them differently:
    # here the two uses of `shared` get their own channels); copies still equal after pruning
    # are merged again, so nothing is stored twice that was stored once
    torch.manual_seed(0)
    x = torch.randn(2, 6)
    proto = _export(_SharedWeights(), x)
    hard, soft = prune_onnx(proto, 0.5), prune_onnx(proto, 0.5, soft=True)
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-6, rtol=0)
    same = prune_onnx(proto, 0.0)  # nothing removed: every copy equals what it copies
    names = sorted(t.name for t in same.graph.initializer)
    assert names == sorted(t.name for t in proto.graph.initializer)
    np.testing.assert_allclose(_run(same, x), _run(proto, x), rtol=0, atol=0)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore:ONNX export mode is set to TrainingMode.EVAL")
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize("dynamo", [False, True])
def test_encoder_decoder_onnx_ops_prune(dynamo: bool) -> None:
    # ConvTranspose, InstanceNormalization, PRelu, Resize with scales of 1 on the channels
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.InstanceNorm2d(16, affine=True),
        nn.PReLU(16),
        nn.ConvTranspose2d(16, 12, 2, stride=2),
        nn.PReLU(),
        nn.Upsample(scale_factor=0.5, mode="bilinear"),
        nn.Conv2d(12, 4, 1),
    ).eval()
    x = torch.randn(2, 3, 8, 8)
    if dynamo:
        batch = torch.export.Dim("batch")
        program = torch.onnx.export(model, (x,), dynamo=True, dynamic_shapes=({0: batch},))
        proto, names = program.model_proto, [i.name for i in program.model_proto.graph.input]
        proto.graph.input[0].name = "x"  # as _run feeds it
        for node in proto.graph.node:
            node.input[:] = ["x" if n == names[0] else n for n in node.input]
    else:
        proto = _export(model, x)
    ops = {n.op_type for n in proto.graph.node}
    assert {"ConvTranspose", "InstanceNormalization", "PRelu", "Resize"} <= ops
    assert len(OnnxDependencyGraph(proto).prunable_groups()) == 2
    hard, soft = prune_onnx(proto, 0.5), prune_onnx(proto, 0.5, soft=True)
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-5, rtol=0)
    assert np.abs(_run(proto, x) - _run(soft, x)).max() > 1e-4
    entries = [sum(math.prod(t.dims) for t in m.graph.initializer) for m in (hard, proto)]
    assert entries[0] < 0.5 * entries[1]


def test_a_nan_initializer_is_refused_not_ranked() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    with torch.no_grad():
        model[0].weight[5, 0] = float("nan")
    proto = _export(model, torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"scores of the group of .* must be finite"):
        prune_onnx(proto, 0.5)


def test_a_transposed_weight_read_by_every_step_is_one_weight() -> None:
    # x @ W.T as exporters write it for a large W: one Transpose of the initializer, read by
    # the MatMul of every step of an RNN; its rows and columns are the hidden units of every
    # step (one group), pruned once in the one initializer
    h, rng = onnx.helper, np.random.default_rng(0)
    nodes = [
        h.make_node("Transpose", ["w_ih"], ["w_ih_t"], perm=[1, 0]),
        h.make_node("Transpose", ["w_hh"], ["w_hh_t"]),
        h.make_node("MatMul", ["x", "w_ih_t"], ["u"]),
        h.make_node("Tanh", ["u"], ["h1"]),
    ]
    for t in (1, 2):
        nodes += [
            h.make_node("MatMul", [f"h{t}", "w_hh_t"], [f"r{t}"]),
            h.make_node("Add", ["u", f"r{t}"], [f"s{t}"]),
            h.make_node("Tanh", [f"s{t}"], [f"h{t + 1}"]),
        ]
    nodes.append(h.make_node("Gemm", ["h3", "head_w", "head_b"], ["y"], transB=1))
    inits = {
        "w_ih": rng.standard_normal((12, 5)) / 2,
        "w_hh": rng.standard_normal((12, 12)) / 3,
        "head_w": rng.standard_normal((4, 12)),
        "head_b": rng.standard_normal(4),
    }
    proto = _model(nodes, inits, [2, 5])
    graph = OnnxDependencyGraph(proto)
    assert [(g.size, g.prunable) for g in graph.groups] == [(12, True), (4, False)]
    members = {(m.module, m.dim, m.role) for m in graph.groups[0].members}
    assert members == {
        ("w_ih", 0, "out"),
        ("w_hh", 0, "out"),
        ("w_hh", 1, "in"),
        ("head_w", 1, "in"),
    }
    hard, soft = prune_onnx(proto, 0.5), prune_onnx(proto, 0.5, soft=True)
    x = torch.randn(2, 5)
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-5, rtol=0)
    assert np.abs(_run(proto, x) - _run(soft, x)).max() > 1e-4
    shapes = {t.name: tuple(t.dims) for t in hard.graph.initializer}
    assert shapes == {"w_ih": (6, 5), "w_hh": (6, 6), "head_w": (4, 6), "head_b": (4,)}


class _ElmanRNN(torch.nn.Module):
    """``h = tanh(x_t @ W_ih.T + h @ W_hh.T + b)`` over ``x: [B, 6, 5]`` from a learned initial
    state or a zero one made in ``forward`` (``start``); at this size both exporters fold
    ``W.T`` into one initializer that every step's MatMul reads."""

    def __init__(self, start: str = "learned") -> None:
        super().__init__()
        self.hidden, self.start = 12, start
        self.w_ih = torch.nn.Parameter(torch.randn(12, 5) / 2)
        self.w_hh = torch.nn.Parameter(torch.randn(12, 12) / math.sqrt(12))
        self.b, self.h0 = torch.nn.Parameter(torch.randn(12)), torch.nn.Parameter(torch.randn(12))
        self.head = torch.nn.Linear(12, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.start == "learned":
            h = self.h0.expand(x.shape[0], -1)
        elif self.start == "zeros":  # exported as an Expand of a scalar
            h = torch.zeros(x.shape[0], self.hidden)
        else:  # a ConstantOfShape
            h = x.new_zeros(x.shape[0], self.hidden)
        for t in range(x.shape[1]):
            h = torch.tanh(x[:, t] @ self.w_ih.T + h @ self.w_hh.T + self.b)
        return self.head(h)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize("start", ["learned", "zeros", "new_zeros"])
@pytest.mark.parametrize("dynamo", [False, True])
def test_a_weight_every_step_reads_stays_one_weight(dynamo: bool, start: str) -> None:
    # each reader of a shared initializer gets its own copy (_normalize); copies that are all
    # MatMul weights are one weight: one group of hidden units, the copies merged again. A zero
    # start's width is a constant of its shape, rewritten to the kept count
    torch.manual_seed(0)
    model, x = _ElmanRNN(start), torch.randn(2, 6, 5)
    batch = {0: torch.export.Dim("batch")}
    proto = _dynamo_export(model, x, batch) if dynamo else _export(model, x)
    graph = OnnxDependencyGraph(proto)
    assert [(g.size, g.prunable) for g in graph.groups] == [(12, True), (3, False)]
    hard, soft = prune_onnx(proto, 0.5), prune_onnx(proto, 0.5, soft=True)
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-5, rtol=0)
    assert np.abs(_run(proto, x) - _run(soft, x)).max() > 1e-4
    if dynamo:  # the batch stays dynamic
        x3 = torch.randn(3, 6, 5)
        np.testing.assert_allclose(_run(hard, x3), _run(soft, x3), atol=1e-5, rtol=0)
    names = sorted(t.name for t in proto.graph.initializer)
    assert sorted(t.name for t in hard.graph.initializer) == names  # no copy left
    matrices = sorted(tuple(t.dims) for t in hard.graph.initializer if len(t.dims) == 2)
    assert matrices == [(3, 6), (5, 6), (6, 6)]  # W_ih.T, W_hh.T, head: 12 -> 6 hidden units


class _Recurrent(torch.nn.Module):
    """``[B, 5, 6]`` -> Linear -> a batch-first ``cell`` (two layers, both directions) ->
    the last step -> Linear: what a sequence classifier exports to an ONNX LSTM / GRU / RNN."""

    def __init__(self, cell: type, hidden: int = 12, layers: int = 2) -> None:
        super().__init__()
        self.embed = torch.nn.Linear(6, 8)
        self.rnn = cell(8, hidden, num_layers=layers, batch_first=True, bidirectional=True)
        self.head = torch.nn.Linear(2 * hidden, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.rnn(torch.relu(self.embed(x)))
        return self.head(y[:, -1])


def _hidden_sizes(model: "onnx.ModelProto") -> list[int]:
    return [
        onnx.helper.get_attribute_value(a)
        for n in model.graph.node
        if n.op_type in ("LSTM", "GRU", "RNN")
        for a in n.attribute
        if a.name == "hidden_size"
    ]


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("cell", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("dynamo", [False, True])
def test_recurrent_ops_prune_their_hidden_units(cell: str, dynamo: bool) -> None:
    # a unit is a row of every gate block of W, R and B and a column of R, in both directions
    # (one hidden_size, rewritten); the bidirectional output [T, 2, B, H] is flattened to
    # [T, B, 2H] by a Reshape whose target multiplies extents read with Shape (dynamo).
    # The dynamo exporter writes nn.RNN as one MatMul per step (no RNN op)
    torch.manual_seed(0)
    model, x = _Recurrent(getattr(torch.nn, cell)), torch.randn(2, 5, 6)
    batch = {0: torch.export.Dim("batch")}
    proto = _dynamo_export(model, x, batch) if dynamo else _export(model, x)
    graph = OnnxDependencyGraph(proto)
    assert [g.prunable for g in graph.groups].count(False) == 1  # the head's outputs
    assert 12 in [g.size for g in graph.groups if g.prunable]
    hard, soft = prune_onnx(proto, 0.5), prune_onnx(proto, 0.5, soft=True)
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-5, rtol=0)
    assert np.abs(_run(proto, x) - _run(soft, x)).max() > 1e-4
    if dynamo:
        x3 = torch.randn(3, 5, 6)
        np.testing.assert_allclose(_run(hard, x3), _run(soft, x3), atol=1e-5, rtol=0)
    assert _hidden_sizes(hard) == [6] * len(_hidden_sizes(proto))
    assert len(_hidden_sizes(proto)) == (0 if dynamo and cell == "RNN" else 2)
    size = [sum(math.prod(t.dims) for t in m.graph.initializer) for m in (proto, hard)]
    assert size[1] < 0.4 * size[0]


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_recurrent_weights_assembled_in_the_graph_are_folded() -> None:
    # at this size torch's dynamo exporter slices each direction's weight_hh into gates,
    # reorders and concatenates them in the graph: R becomes one initializer, pruned
    torch.manual_seed(0)
    model, x = _Recurrent(torch.nn.LSTM, hidden=64, layers=1), torch.randn(2, 5, 6)
    proto = _dynamo_export(model, x, {0: torch.export.Dim("batch")})
    assert "rnn.weight_hh_l0" in {n.input[0] for n in proto.graph.node if n.op_type == "Slice"}
    graph = OnnxDependencyGraph(proto)
    assert [(g.size, g.prunable) for g in graph.groups] == [(8, True), (64, True), (3, False)]
    hard, soft = prune_onnx(proto, 0.5), prune_onnx(proto, 0.5, soft=True)
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-5, rtol=0)
    assert np.abs(_run(proto, x) - _run(soft, x)).max() > 1e-4
    names = {t.name for t in hard.graph.initializer}
    assert not names & {"rnn.weight_hh_l0", "rnn.weight_hh_l0_reverse"}  # folded, not kept
    assert _hidden_sizes(hard) == [32]
    assert len(hard.SerializeToString()) < 0.35 * len(proto.SerializeToString())


def _recurrent_graph(op: str, start: str) -> "onnx.ModelProto":
    """x [T=4, B=2, 5] -> ``op`` (hidden 6; an LSTM with peepholes) from initial states
    ``start`` ("input": graph inputs, "learned": initializers) -> Y [T, 1, B, 6] -> Squeeze
    -> MatMul by [6, 3]."""
    h, rng = onnx.helper, np.random.default_rng(0)
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    states = ["h0", "c0"] if op == "LSTM" else ["h0"]
    inits = {
        "W": rng.standard_normal((1, 6 * gates, 5)),
        "R": rng.standard_normal((1, 6 * gates, 6)) / 3,
        "B": rng.standard_normal((1, 12 * gates)),
        **({"P": rng.standard_normal((1, 18))} if op == "LSTM" else {}),
        "head": rng.standard_normal((6, 3)),
    }
    inputs = [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [4, 2, 5])]
    for name in states:
        if start == "input":
            inputs.append(h.make_tensor_value_info(name, onnx.TensorProto.FLOAT, [1, 2, 6]))
        else:
            inits[name] = rng.standard_normal((1, 2, 6))
    args = ["x", "W", "R", "B", "", *states, *(["P"] if op == "LSTM" else [])]
    nodes = [
        h.make_node(op, args, ["Y"], hidden_size=6),
        h.make_node("Squeeze", ["Y", "axis"], ["s"]),
        h.make_node("MatMul", ["s", "head"], ["y"]),
    ]
    tensors = [onnx.numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()]
    tensors.append(onnx.numpy_helper.from_array(np.array([1]), "axis"))
    out = [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [4, 2, 3])]
    graph = h.make_graph(nodes, "g", inputs, out, tensors)
    return h.make_model(graph, ir_version=8, opset_imports=[h.make_opsetid("", 17)])


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_a_recurrent_initial_state_must_follow_the_hidden_units(op: str) -> None:
    # learned initial states (initializers) lose the pruned units' entries, as the peepholes
    # P [1, 3H] do; states given as inputs cannot, so the units are kept
    learned = _recurrent_graph(op, "learned")
    units = OnnxDependencyGraph(learned).groups[0]
    assert (units.size, units.prunable) == (6, True)
    assert ("h0", 2) in {(m.module, m.dim) for m in units.members}
    x = torch.randn(4, 2, 5)
    hard, soft = prune_onnx(learned, 0.5), prune_onnx(learned, 0.5, soft=True)
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-5, rtol=0)
    assert np.abs(_run(learned, x) - _run(soft, x)).max() > 1e-4
    shapes = {t.name: tuple(t.dims) for t in hard.graph.initializer}
    assert shapes["h0"] == (1, 2, 3)
    assert shapes["R"] == (1, 3 * {"LSTM": 4, "GRU": 3, "RNN": 1}[op], 3)
    if op == "LSTM":
        assert (shapes["c0"], shapes["P"]) == ((1, 2, 3), (1, 9))
    given = OnnxDependencyGraph(_recurrent_graph(op, "input")).groups[0]
    assert (given.size, given.prunable) == (6, False)
    assert "initial state whose hidden units are untracked" in given.reason


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_pixel_shuffle_export_prunes_channel_blocks() -> None:
    # torch writes PixelShuffle as DepthToSpace (mode CRD): the r^2 input channels of an
    # output channel are one unit
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1),
        torch.nn.PixelShuffle(2),
        torch.nn.Conv2d(4, 8, 3, padding=1),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 16 * 16, 3),
    )
    x = torch.randn(2, 3, 8, 8)
    proto = _export(model, x)
    assert "DepthToSpace" in {n.op_type for n in proto.graph.node}
    graph = OnnxDependencyGraph(proto)
    assert [g.size for g in graph.prunable_groups()] == [4, 8]
    hard, soft = prune_onnx(proto, 0.5), prune_onnx(proto, 0.5, soft=True)
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-5, rtol=0)
    assert np.abs(_run(proto, x) - _run(soft, x)).max() > 1e-4
    assert [tuple(t.dims)[:2] for t in hard.graph.initializer if len(t.dims) == 4] == [
        (8, 3),
        (4, 2),
    ]


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_depth_to_space_and_back_keep_the_oracle(mode: str) -> None:
    # Conv (16) -> DepthToSpace (4 channels, each 4 inputs at k * 4 + c in DCR) -> Conv (8)
    # -> SpaceToDepth (32: channel c at k * 8 + c) -> Conv (4) -> global pool -> Gemm
    h, rng = onnx.helper, np.random.default_rng(0)
    inits = {
        "w1": rng.standard_normal((16, 3, 1, 1)),
        "w2": rng.standard_normal((8, 4, 1, 1)),
        "w3": rng.standard_normal((4, 32, 1, 1)),
        "w4": rng.standard_normal((4, 4)),
    }
    nodes = [
        h.make_node("Conv", ["x", "w1"], ["a"]),
        h.make_node("DepthToSpace", ["a"], ["b"], blocksize=2, mode=mode),
        h.make_node("Conv", ["b", "w2"], ["c"]),
        h.make_node("SpaceToDepth", ["c"], ["d"], blocksize=2),
        h.make_node("Conv", ["d", "w3"], ["e"]),
        h.make_node("GlobalAveragePool", ["e"], ["f"]),
        h.make_node("Flatten", ["f"], ["g"]),
        h.make_node("MatMul", ["g", "w4"], ["y"]),
    ]
    model = _model(nodes, inits, [2, 3, 4, 4])
    graph = OnnxDependencyGraph(model)
    assert sorted(g.size for g in graph.prunable_groups()) == [4, 4, 8]
    x = torch.randn(2, 3, 4, 4)
    hard, soft = prune_onnx(model, 0.5), prune_onnx(model, 0.5, soft=True)
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-5, rtol=0)
    assert np.abs(_run(model, x) - _run(soft, x)).max() > 1e-4
    shapes = {t.name: tuple(t.dims) for t in hard.graph.initializer}
    assert shapes == {"w1": (8, 3, 1, 1), "w2": (4, 2, 1, 1), "w3": (2, 16, 1, 1), "w4": (2, 4)}


@pytest.mark.parametrize(("axis", "prunable"), [(2, True), (-1, True), (1, False)])
def test_cumulative_sum_passes_channels_unless_it_runs_over_them(axis: int, prunable: bool) -> None:
    h, rng = onnx.helper, np.random.default_rng(0)
    inits = {"w1": rng.standard_normal((8, 3, 1, 1)), "w2": rng.standard_normal((8, 4))}
    nodes = [
        h.make_node("Conv", ["x", "w1"], ["a"]),
        h.make_node("Softsign", ["a"], ["m"]),
        h.make_node("CumSum", ["m", "axis"], ["c"]),
        h.make_node("GlobalAveragePool", ["c"], ["p"]),
        h.make_node("Flatten", ["p"], ["f"]),
        h.make_node("MatMul", ["f", "w2"], ["y"]),
    ]
    model = _model(nodes, inits, [2, 3, 4, 4])
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.array(axis), "axis"))
    group = OnnxDependencyGraph(model).groups[0]
    assert (group.size, group.prunable) == (8, prunable)
    if not prunable:
        assert "cumulative sum over the channels" in group.reason
        return
    x = torch.randn(2, 3, 4, 4)
    hard, soft = prune_onnx(model, 0.5), prune_onnx(model, 0.5, soft=True)
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-5, rtol=0)
    assert {t.name: tuple(t.dims) for t in hard.graph.initializer}["w1"] == (4, 3, 1, 1)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("groups", [16, 4])
def test_grouped_transposed_convolution_keeps_the_same_local_channels(groups: int) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.ConvTranspose2d(16, 16, 2, stride=2, groups=groups),
        torch.nn.Conv2d(16, 4, 1),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
    )
    x = torch.randn(2, 3, 6, 6)
    proto = _export(model, x)
    sizes = [g.size for g in OnnxDependencyGraph(proto).prunable_groups()]
    assert sizes == ([16] if groups == 16 else [4, 4])
    hard, soft = prune_onnx(proto, 0.5), prune_onnx(proto, 0.5, soft=True)
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-5, rtol=0)
    assert np.abs(_run(proto, x) - _run(soft, x)).max() > 1e-4
    up = next(n for n in hard.graph.node if n.op_type == "ConvTranspose")
    group = onnx.helper.get_attribute_value(next(a for a in up.attribute if a.name == "group"))
    assert group == (8 if groups == 16 else 4)


class _ChannelsLastResidual(torch.nn.Module):
    """``fc(x^T)^T + x`` (ConvNeXt's block without its norm), then average pooling and a
    classifier. With the channels-last sum as the first operand the pooled map keeps
    channels-last strides, and torch's dynamo exporter writes the pooling's view as an
    ``as_strided``: a ``Gather`` of the flattened mean at indices it computes (torchvision's
    ConvNeXt head). With ``order``, the flattened mean is read at those indices instead."""

    def __init__(self, order: torch.Tensor | None = None) -> None:
        super().__init__()
        self.order = order
        self.conv, self.fc = torch.nn.Conv2d(3, 16, 3), torch.nn.Linear(16, 16)
        self.head = torch.nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        x = self.fc(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2) + x
        pooled = torch.nn.functional.adaptive_avg_pool2d(x, 1)
        if self.order is not None:
            pooled = pooled.reshape(-1).index_select(0, self.order).reshape(pooled.shape)
        return self.head(pooled.flatten(1))


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize("dynamic", [False, True])
def test_a_gather_reading_a_flattened_tensor_in_order_is_read_through(dynamic: bool) -> None:
    torch.manual_seed(0)
    dims = {0: torch.export.Dim("batch")} if dynamic else {}
    proto = _dynamo_export(_ChannelsLastResidual(), torch.randn(2, 3, 8, 8), dims)
    assert "Gather" in [n.op_type for n in proto.graph.node]  # the pattern under test
    groups = OnnxDependencyGraph(proto).groups
    assert [(g.size, g.prunable) for g in groups] == [(16, True), (5, False)]
    hard, soft = prune_onnx(proto, 0.5), prune_onnx(proto, 0.5, soft=True)
    assert "Gather" not in [n.op_type for n in hard.graph.node]
    x = torch.randn(3 if dynamic else 2, 3, 8, 8)
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-5, rtol=0)
    assert np.abs(_run(proto, x) - _run(soft, x)).max() > 1e-4
    # indices that are not the identity still select channels (here: shift them by one)
    shifted = _ChannelsLastResidual(order=torch.arange(32).roll(1))
    gather = OnnxDependencyGraph(_dynamo_export(shifted, torch.randn(2, 3, 8, 8), {})).groups[0]
    assert not gather.prunable
    assert "selects channels" in gather.reason


class _DenseBlock(torch.nn.Module):
    """Two convolutions whose outputs are concatenated and added to a projection of the input
    (one group of 12 channels); the second's channels are small everywhere, so the 6 lowest
    scores are its 4 and 2 of the first's."""

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.b = torch.nn.Conv2d(8, 4, 3, padding=1)
        self.skip = torch.nn.Conv2d(3, 12, 1)
        self.out = torch.nn.Conv2d(12, 5, 1)
        with torch.no_grad():
            self.b.weight.mul_(1e-3)
            self.skip.weight[8:].mul_(1e-3)
            self.out.weight[:, 8:].mul_(1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.a(x))
        return self.out(torch.cat([h, self.b(h)], 1) + self.skip(x))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_every_concatenated_convolution_keeps_an_output_channel() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 6)
    proto = _export(_DenseBlock().eval(), x)
    assert [g.size for g in OnnxDependencyGraph(proto).prunable_groups()] == [12]
    hard, soft = prune_onnx(proto, 0.5), prune_onnx(proto, 0.5, soft=True)
    convs = [n for n in hard.graph.node if n.op_type == "Conv"]
    out_channels = {t.name: t.dims[0] for t in hard.graph.initializer}
    assert sorted(out_channels[n.input[1]] for n in convs[:2]) == [1, 5]  # b keeps one
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-5, rtol=0)


class _FusedPieces(torch.nn.Module):
    """One projection's 12 channels sliced into three pieces (Phi-3's fused q / k / v), each
    through its own layer; ``cut="step"`` takes every other channel, ``cut="end"`` counts the
    first bound from the end instead: ``[B, 6] -> [B, 4]``."""

    def __init__(self, cut: str = "bounds") -> None:
        super().__init__()
        self.cut = cut
        self.fused = torch.nn.Linear(6, 12)
        self.a, self.b, self.c = (torch.nn.Linear(n, 5) for n in (4, 4, 4))
        self.out = torch.nn.Linear(5, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fused(x)
        if self.cut == "step":
            a, b, c = y[:, ::3], y[:, 1::3], y[:, 2::3]
        elif self.cut == "end":
            a, b, c = y[:, :-8], y[:, 4:8], y[:, 8:]
        else:
            a, b, c = y[:, :4], y[:, 4:8], y[:, 8:]
        return self.out(torch.relu(self.a(a) + self.b(b) + self.c(c)))


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize("dynamic", [False, True])
def test_slices_of_the_channel_axis_at_constant_bounds_prune(dynamic: bool) -> None:
    """Before 0.5.49 a slice of the channel axis froze it ("selects channels"); bounds that
    are constants are now rewritten to the kept count before them, so each piece prunes."""
    torch.manual_seed(0)
    dims = {0: torch.export.Dim("batch")} if dynamic else {}
    proto = _dynamo_export(_FusedPieces(), torch.randn(2, 6), dims)
    groups = OnnxDependencyGraph(proto).groups
    assert [(g.size, g.prunable) for g in groups] == [(12, True), (5, True), (4, False)]
    hard, soft = prune_onnx(proto, 0.5), prune_onnx(proto, 0.5, soft=True)
    x = torch.randn(3 if dynamic else 2, 6)
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-5, rtol=0)
    assert np.abs(_run(proto, x) - _run(soft, x)).max() > 1e-4
    dims_of = {i.name: list(i.dims) for i in hard.graph.initializer}
    pieces = [dims_of[f"{n}.weight"][1] for n in "abc"]
    assert all(pieces)  # each layer keeps an input
    assert sum(pieces) == dims_of["fused.weight"][0] < 12
    fused = OnnxDependencyGraph(_dynamo_export(_FusedPieces("step"), torch.randn(2, 6), {}))
    assert not fused.groups[0].prunable
    assert "selects channels" in fused.groups[0].reason


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
def test_a_slice_bound_counted_from_the_end_keeps_the_tail() -> None:
    """``y[:, :-8]``: the 8 channels after the bound stay, so it still cuts there; the first
    piece prunes (before 0.5.51 the whole projection froze)."""
    torch.manual_seed(0)
    proto = _dynamo_export(_FusedPieces("end"), torch.randn(2, 6), {})
    assert OnnxDependencyGraph(proto).groups[0].prunable
    hard, soft = prune_onnx(proto, 0.5), prune_onnx(proto, 0.5, soft=True)
    x = torch.randn(2, 6)
    np.testing.assert_allclose(_run(hard, x), _run(soft, x), atol=1e-5, rtol=0)
    assert np.abs(_run(proto, x) - _run(soft, x)).max() > 1e-4
    dims_of = {i.name: list(i.dims) for i in hard.graph.initializer}
    assert [dims_of[f"{n}.weight"][1] for n in "abc"] == [2, 4, 4]
    assert dims_of["fused.weight"][0] == 10
