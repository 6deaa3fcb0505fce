import copy

import pytest
import torch
from torch import nn

from neuronkit.interpretability import (
    Alpha1Beta0Rule,
    AlphaBetaRule,
    EpsilonRule,
    FlatRule,
    GammaRule,
    IdentityRule,
    WSquareRule,
    ZBoxRule,
    input_x_gradient,
    layer_lrp,
    lrp,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _mlp(bias: bool = True, inplace: bool = False) -> nn.Module:
    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(6, 12, bias=bias),
        nn.ReLU(inplace),
        nn.Linear(12, 8, bias=bias),
        nn.ReLU(inplace),
        nn.Linear(8, 3, bias=bias),
    ).double()
    torch.random.set_rng_state(state)
    return model


X = torch.randn(4, 6, generator=_gen(1), dtype=torch.float64)
T = torch.tensor([0, 1, 2, 0])


def test_lrp_0_of_a_bias_free_relu_net_is_gradient_times_input_and_conserves() -> None:
    model = _mlp(bias=False)
    rules = {name: EpsilonRule(0.0) for name in ("0", "2", "4")}
    relevance, delta = lrp(model, X, T, rules=rules, return_convergence_delta=True)
    torch.testing.assert_close(relevance, input_x_gradient(model, X, T), rtol=1e-10, atol=1e-12)
    assert delta.abs().max() < 1e-12


class _Residual(nn.Module):
    """A bias-free ReLU net with a residual block, functional average pooling and scaling:
    operations outside modules that LRP-0 must split by contribution."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(4)
        self.conv = nn.Conv1d(2, 4, 3, padding=1, bias=False)
        self.r1, self.r2, self.r3 = nn.ReLU(), nn.ReLU(), nn.ReLU()
        self.block = nn.Conv1d(4, 4, 3, padding=1, bias=False)
        self.out = nn.Linear(4, 3, bias=False)
        self.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.r1(self.conv(x.view(len(x), 2, 3)))
        h = self.r3(h + self.r2(self.block(h)))
        return self.out(0.5 * h.mean(2))


def test_lrp_0_splits_residual_sums_and_functional_pooling_by_contribution() -> None:
    """LRP-0 of a bias-free ReLU net equals gradient x input, skip connections included, and
    relevance is conserved through the block: a sum hands each branch its own share (Captum's
    LRP and earlier versions handed both branches the sum's whole relevance)."""
    model = _Residual()
    rules = {name: EpsilonRule(0.0) for name in ("conv", "block", "out")}
    relevance, delta = lrp(model, X, T, rules=rules, return_convergence_delta=True)
    torch.testing.assert_close(relevance, input_x_gradient(model, X, T), rtol=1e-10, atol=1e-12)
    assert delta.abs().max() < 1e-12
    with torch.no_grad():
        out = model(X)[torch.arange(4), T]
    for layer, layer_input in (("r1", False), ("block", True), ("r2", False), ("r3", True)):
        got = layer_lrp(model, X, layer, T, rules=rules, layer_input=layer_input)
        if layer in ("block", "r2"):  # one branch of the sum: less than the whole
            assert (got.sum((1, 2)) - out).abs().max() > 1e-3
        else:
            torch.testing.assert_close(got.sum((1, 2)), out)


class _BasicBlock(nn.Module):
    """torchvision's ResNet block (in-place sum, in-place ReLUs) with bias-free batch norms."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(5)
        self.c1, self.c2 = (nn.Conv2d(2, 2, 3, padding=1, bias=False) for _ in range(2))
        self.b1, self.b2 = nn.BatchNorm2d(2), nn.BatchNorm2d(2)
        self.r1, self.r2 = nn.ReLU(inplace=True), nn.ReLU(inplace=True)
        self.pool, self.out = nn.AdaptiveAvgPool2d(1), nn.Linear(2, 3, bias=False)
        with torch.no_grad():
            for bn in (self.b1, self.b2):
                bn.running_var.uniform_(0.5, 1.5)
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.zero_()
        self.double().eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(len(x), 2, 1, 3).expand(-1, -1, 3, -1)
        h = self.r1(self.b1(self.c1(x)))
        h = self.b2(self.c2(h))
        h += x
        return self.out(self.pool(self.r2(h)).flatten(1))


def test_lrp_0_through_a_resnet_block_is_gradient_times_input() -> None:
    """Before 0.5.43, a skip connection handed relevance divided by one branch's tiny outputs
    on to the other: relevances of 1e14 on torchvision's ResNet-18."""
    model = _BasicBlock()
    rules = {name: EpsilonRule(0.0) for name in ("c1", "c2", "b1", "b2", "pool", "out")}
    relevance, delta = lrp(model, X, T, rules=rules, return_convergence_delta=True)
    torch.testing.assert_close(relevance, input_x_gradient(model, X, T), rtol=1e-10, atol=1e-12)
    assert delta.abs().max() < 1e-12


class _Encoder(nn.Module):
    """A bias-free transformer classifier over 3 tokens: an embedding, one encoder layer
    (self-attention, layer norms, ReLU feed-forward, residual sums), mean pooling, a read-out."""

    def __init__(self, norm_first: bool, bias: bool = False) -> None:
        super().__init__()
        torch.manual_seed(7)
        self.embed = nn.Linear(2, 8, bias=False)
        self.layer = nn.TransformerEncoderLayer(
            8, 2, 16, dropout=0.0, bias=bias, batch_first=True, norm_first=norm_first
        )
        self.out = nn.Linear(8, 3, bias=False)
        self.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.layer(self.embed(x.view(len(x), 3, 2))).mean(1))


def _frozen_norm(module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
    """A forward hook: the norm's output on its input with ``1 / std`` (``1 / rms``) frozen."""
    (x,) = args
    eps = torch.finfo(x.dtype).eps if module.eps is None else module.eps
    if isinstance(module, nn.RMSNorm):
        return x / (x.square().mean(-1, keepdim=True) + eps).sqrt().detach() * module.weight
    g = x.view(len(x), module.num_groups, -1) if isinstance(module, nn.GroupNorm) else x
    y = (g - g.mean(-1, keepdim=True)) / (
        g.var(-1, correction=0, keepdim=True) + eps
    ).sqrt().detach()
    return y.view(x.shape) * module.weight


def _share(a: torch.Tensor, share: float) -> torch.Tensor:
    """``a`` with ``share`` of its gradient."""
    return a * share + (a * (1 - share)).detach()


def _attention_reference(rule: str, q, k, v):  # type: ignore[no-untyped-def]
    """Query, key and value for gradient x input to equal LRP-0 under ``rule``: query and key
    detached (``"constant"``), or with 1/4 of their gradient and the values with 1/2
    (``"uniform"``: the uniform rule at both products, AttnLRP)."""
    if rule == "constant":
        return q.detach(), k.detach(), v
    return _share(q, 0.25), _share(k, 0.25), _share(v, 0.5)


def _frozen_gradient_x_input(
    model: nn.Module, x: torch.Tensor, attention: str = "constant"
) -> torch.Tensor:
    """Gradient x input with every attention's query, key and value as ``attention`` takes them
    and every norm's scale held constant: what LRP-0 with Ali et al.'s (2022) AH and LN rules
    (or AttnLRP's) equals on a bias-free ReLU net."""
    handles = []
    for m in model.modules():
        if isinstance(m, nn.MultiheadAttention):
            handles.append(
                m.register_forward_pre_hook(
                    lambda m, a: (*_attention_reference(attention, *a[:3]), *a[3:])
                )
            )
        elif isinstance(m, (nn.LayerNorm, nn.RMSNorm, nn.GroupNorm)):
            handles.append(m.register_forward_hook(_frozen_norm))
    leaf = x.clone().requires_grad_(True)
    model(leaf)[torch.arange(len(x)), T].sum().backward()
    for h in handles:
        h.remove()
    return (leaf.grad * x).detach()


@pytest.mark.parametrize("norm_first", [False, True])
def test_lrp_0_of_a_transformer_holds_attention_and_normalization_scale_constant(norm_first):
    """Ali et al. (2022), "XAI for Transformers: Better Explanations through Conservative
    Propagation": with the attention weights and the layer norms' 1 / std held constant,
    LRP-0 is gradient x input of the rest, and relevance is conserved. AttnLRP's attention
    rule (``attention="uniform"``) is gradient x input with the shares of
    :func:`_attention_reference`."""
    model = _Encoder(norm_first)
    rules = {n: EpsilonRule(0.0) for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    rules.update({"layer.self_attn": EpsilonRule(0.0), "layer.norm1": EpsilonRule(0.0)})
    rules["layer.norm2"] = EpsilonRule(0.0)
    relevance, delta = lrp(model, X, T, rules=rules, return_convergence_delta=True)
    torch.testing.assert_close(relevance, _frozen_gradient_x_input(model, X), rtol=1e-9, atol=1e-12)
    assert delta.abs().max() < 1e-12
    uniform = lrp(model, X, T, rules=rules, attention="uniform")
    expected = _frozen_gradient_x_input(model, X, "uniform")
    torch.testing.assert_close(uniform, expected, rtol=1e-9, atol=1e-12)
    assert (uniform - relevance).abs().max() > 1e-6  # the queries and keys take a share
    # at a layer inside an encoder layer with biases, run without a graph up to it (torch's
    # fused eval-mode path, which would skip its submodules, stays off while hooks are on)
    if not norm_first:  # post-norm: the last norm's output
        biased = _Encoder(norm_first, bias=True)
        with torch.no_grad():
            out = biased(X)[torch.arange(4), T]
        got = layer_lrp(biased, X, "layer.norm2", T, rules={"out": EpsilonRule(0.0)})
        torch.testing.assert_close(got.sum((1, 2)), out)
    # the default rules run too (epsilon 1e-9): nearly the same
    torch.testing.assert_close(lrp(model, X, T), relevance, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    "norm", [lambda: nn.LayerNorm(4, bias=False), lambda: nn.RMSNorm(4), lambda: nn.GroupNorm(2, 4)]
)
def test_lrp_0_holds_every_normalization_scale_constant(norm) -> None:
    torch.manual_seed(8)
    model = nn.Sequential(
        nn.Linear(6, 4, bias=False), norm(), nn.ReLU(), nn.Linear(4, 3, bias=False)
    )
    model = model.double()
    with torch.no_grad():
        model[1].weight.uniform_(0.5, 1.5)
        if getattr(model[1], "bias", None) is not None:
            model[1].bias.zero_()
    rules = dict.fromkeys(("0", "1", "3"), EpsilonRule(0.0))
    relevance, delta = lrp(model, X, T, rules=rules, return_convergence_delta=True)
    torch.testing.assert_close(relevance, _frozen_gradient_x_input(model, X), rtol=1e-9, atol=1e-12)
    assert delta.abs().max() < 1e-12


class _InstanceNormNet(nn.Module):
    """Bias-free ``[B, 6] -> [B, 2, 3]``, a 1x1 convolution to 4 channels, an instance norm
    (affine; ``running``: eval mode with running statistics, an affine map), ReLU, linear;
    ``frozen`` holds each instance's ``1 / std`` (the reference); ``wrapped`` runs it inside a
    module with a forward of its own (LRP's function mode)."""

    def __init__(self, running: bool = False, frozen: bool = False) -> None:
        super().__init__()
        torch.manual_seed(9)
        self.conv = nn.Conv1d(2, 4, 1, bias=False)
        self.norm = nn.InstanceNorm1d(4, affine=True, track_running_stats=running)
        self.out, self.frozen = nn.Linear(12, 3, bias=False), frozen
        with torch.no_grad():
            self.norm.weight.uniform_(0.5, 1.5)
            self.norm.bias.zero_()
            if running:
                self.norm.running_mean.uniform_(-0.5, 0.5)
                self.norm.running_var.uniform_(0.5, 1.5)
        self.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x.view(-1, 2, 3))
        if self.frozen and not self.norm.track_running_stats:
            std = (h.var(-1, correction=0, keepdim=True) + self.norm.eps).sqrt().detach()
            h = (h - h.mean(-1, keepdim=True)) / std * self.norm.weight.view(1, -1, 1)
        else:
            h = self.norm(h)
        return self.out(torch.relu(h).flatten(1))


@pytest.mark.parametrize("running", [False, True])
@pytest.mark.parametrize("wrapped", [False, True])
def test_lrp_0_holds_an_instance_norms_scale_constant(running, wrapped) -> None:
    """An instance norm (nnU-Net's) takes the LN rule per instance; with running statistics
    in eval mode it is affine and takes its gradient (before 0.5.45 it was refused)."""
    model = _InstanceNormNet(running)
    if not wrapped:  # the same layers in sequence: no function mode
        model = nn.Sequential(  # type: ignore[assignment]
            nn.Unflatten(1, (2, 3)), model.conv, model.norm, nn.ReLU(), nn.Flatten(), model.out
        )
    rules = {t: EpsilonRule(0.0) for t in (nn.Conv1d, nn.InstanceNorm1d, nn.Linear)}
    relevance, delta = lrp(model, X, T, rules=rules, return_convergence_delta=True)
    expected = input_x_gradient(_InstanceNormNet(running, frozen=True), X, T)
    torch.testing.assert_close(relevance, expected, rtol=1e-9, atol=1e-12)
    # conserved, but for what the running mean absorbs as a bias does
    assert (delta.abs().max() > 1e-6) if running else (delta.abs().max() < 1e-12)


class _SdpaBlock(nn.Module):
    """Pre-norm self-attention written with functions, bias-free, over 3 tokens: by
    ``F.scaled_dot_product_attention`` (as timm and Hugging Face ``sdpa``; positional or
    keyword arguments) or by a softmax and matrix products (``"eager"``: Hugging Face's, with
    its float32 softmax, cast back, and dropout; ``"method"``: ``(q @ k^T).softmax() @ v``;
    ``"module"``: an ``nn.Softmax`` layer; ``"einsum"``). ``reference`` takes query, key and
    value as :func:`_attention_reference` does for that rule."""

    def __init__(self, style: str) -> None:
        super().__init__()
        torch.manual_seed(11)
        self.style, self.reference = style, None
        self.embed = nn.Linear(2, 8, bias=False)
        self.norm = nn.LayerNorm(8, bias=False)
        self.qkv = nn.Linear(8, 24, bias=False)
        self.proj = nn.Linear(8, 8, bias=False)
        self.out = nn.Linear(8, 3, bias=False)
        self.softmax = nn.Softmax(-1)
        self.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x.view(len(x), 3, 2))
        q, k, v = self.qkv(self.norm(h)).view(len(x), 3, 3, 2, 4).permute(2, 0, 3, 1, 4)
        if self.reference is not None:
            q, k, v = _attention_reference(self.reference, q, k, v)
        functional = nn.functional
        if self.style == "keywords":
            a = functional.scaled_dot_product_attention(query=q, key=k, value=v)
        elif self.style == "positional":
            a = functional.scaled_dot_product_attention(q, k, v)
        elif self.style == "module":  # timm's Swin: an nn.Softmax layer
            a = self.softmax(q @ k.transpose(-2, -1) * 0.5) @ v
        elif self.style == "einsum":
            w = (torch.einsum("bhqd,bhkd->bhqk", q, k) * 0.5).softmax(-1)
            a = torch.einsum("bhqk,bhkd->bhqd", w, v)
        elif self.style == "eager":
            w = functional.softmax(
                torch.matmul(q, k.transpose(2, 3)) * 0.5, -1, dtype=torch.float32
            )
            w = functional.dropout(w.to(q.dtype), p=0.1, training=False)
            a = torch.matmul(w, v)
        else:
            a = (q @ k.transpose(-2, -1) * 0.5).softmax(dim=-1) @ v
        h = h + self.proj(a.transpose(1, 2).reshape(len(x), 3, 8))
        return self.out(h.mean(1))


@pytest.mark.parametrize("attention", ["constant", "uniform"])
@pytest.mark.parametrize("style", ["positional", "keywords", "eager", "method", "module", "einsum"])
def test_lrp_takes_the_attention_rule_where_attention_is_functional(style, attention) -> None:
    """Attention written with functions takes the AH rule too (relevance conserved), or
    AttnLRP's: under the uniform rule at both products and the softmax by its gradient, the
    query and key keep 1/4 of their gradient and the values 1/2, the fused kernel and the
    written-out products alike."""
    model = _SdpaBlock(style)
    rules = {nn.Linear: EpsilonRule(0.0), nn.LayerNorm: EpsilonRule(0.0)}
    relevance, delta = lrp(
        model, X, T, rules=rules, attention=attention, return_convergence_delta=True
    )
    model.reference = attention
    expected = _frozen_gradient_x_input(model, X)
    torch.testing.assert_close(relevance, expected, rtol=1e-9, atol=1e-12)
    if attention == "constant":
        assert delta.abs().max() < 1e-12


class _FromEmbeddings(nn.Module):
    """A Hugging Face model's logits from its input embeddings ``[B, tokens, width]``: ``[B,
    labels]``, or a causal LM's at the last token (``last``) ``[B, vocabulary]``."""

    def __init__(self, model: nn.Module, last: bool = False) -> None:
        super().__init__()
        self.model, self.last = model, last

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        logits = self.model(inputs_embeds=embeds).logits
        return logits[:, -1] if self.last else logits


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_lrp_conserves_relevance_through_a_hugging_face_bert(tiny_bert, attention) -> None:
    """A tiny BERT (either attention, built from its config) with its biases and position and
    token-type embeddings at 0, attributed to its input embeddings: its embedding lookups need
    no rule, HF's GELU class takes the identity rule by type, and relevance is conserved."""
    bert = tiny_bert(13, attn_implementation=attention)
    from transformers.activations import GELUActivation

    with torch.no_grad():
        for name, p in bert.named_parameters():
            if name.endswith("bias") or "position_embeddings" in name or "token_type" in name:
                p.zero_()

    rules = {GELUActivation: IdentityRule(), nn.Linear: EpsilonRule(0.0)}
    rules[nn.LayerNorm] = EpsilonRule(0.0)
    embeds = torch.randn(2, 5, 16, generator=_gen(14), dtype=torch.float64)
    relevance, delta = lrp(
        _FromEmbeddings(bert), embeds, 1, rules=rules, return_convergence_delta=True
    )
    assert delta.abs().max() < 1e-12
    assert relevance.abs().sum() > 0


class _Product(nn.Module):
    """A bias-free ReLU net with a product of two (``"mul"``: a gated unit, ``"matmul"``,
    ``"einsum"``) or three (``"einsum3"``) branches of the input, homogeneous of that degree;
    ``"scaled"`` multiplies one branch by a tensor made from a parameter (degree 1)."""

    def __init__(self, style: str) -> None:
        super().__init__()
        torch.manual_seed(12)
        self.style = style
        self.a, self.b, self.c = (nn.Linear(6, 4, bias=False) for _ in range(3))
        self.relu = nn.ReLU()
        self.scale = nn.Parameter(torch.randn(4))
        self.out = nn.Linear(4, 3, bias=False)
        self.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.relu(self.a(x)), self.b(x)
        if self.style == "mul":
            h = a * b
        elif self.style == "matmul":
            h = (a.view(-1, 2, 2) @ b.view(-1, 2, 2)).flatten(1)
        elif self.style == "einsum":
            h = torch.einsum("bij,bjk->bik", [a.view(-1, 2, 2), b.view(-1, 2, 2)]).flatten(1)
        elif self.style == "einsum3":
            h = torch.einsum("bi,bi,bi->bi", a, b, self.c(x))
        else:
            h = a * self.scale.exp().view(1, 4)
        return self.out(h)


@pytest.mark.parametrize(
    ("style", "degree", "attention"),
    [
        ("mul", 2, "uniform"),
        ("matmul", 2, "constant"),
        ("einsum", 2, "constant"),
        ("einsum3", 3, "constant"),
        ("scaled", 1, "constant"),
    ],
)
def test_lrp_0_splits_products_of_activations_evenly(style, degree, attention) -> None:
    """The uniform rule of Achtibat et al. (2024, AttnLRP): each of the n operands of a product
    that depend on the input gets 1/n of its relevance. On a net homogeneous of degree n that
    is gradient x input / n (Euler: it sums to f); a factor made from a parameter is not an
    operand. Only a gate (``"mul"``: a ReLU's output times a linear branch) is held under
    ``"constant"`` (the next test)."""
    model = _Product(style)
    relevance, delta = lrp(
        model,
        X,
        T,
        rules={nn.Linear: EpsilonRule(0.0)},
        attention=attention,
        return_convergence_delta=True,
    )
    expected = input_x_gradient(model, X, T) / degree
    torch.testing.assert_close(relevance, expected, rtol=1e-10, atol=1e-12)
    assert delta.abs().max() < 1e-12
    assert all(p.requires_grad for p in model.parameters())  # frozen while it ran, only


class _GatedUnit(nn.Module):
    """``out(act(a x) * b x)``, bias-free, with the activation as a layer (``"layer"``), a
    function (``"function"``), a function followed by dropout and a cast (``"carried"``) or a
    ReLU (``"relu"``), or ``out(x * sigmoid(a x))`` (``"se"``, a squeeze-and-excitation-like
    gate); ``hold`` detaches the gate (the reference)."""

    def __init__(self, style: str, hold: bool = False) -> None:
        super().__init__()
        torch.manual_seed(14)
        self.style, self.hold = style, hold
        self.a = nn.Linear(6, 5 if style != "se" else 6, bias=False)
        self.b = nn.Linear(6, 5, bias=False)
        self.act = nn.SiLU()
        self.out = nn.Linear(5 if style != "se" else 6, 3, bias=False)
        self.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.style == "layer":
            gate = self.act(self.a(x))
        elif self.style == "function":
            gate = nn.functional.silu(self.a(x))
        elif self.style == "carried":
            gate = nn.functional.dropout(nn.functional.silu(self.a(x)), 0.1, False).double()
        else:
            gate = torch.relu(self.a(x)) if self.style == "relu" else torch.sigmoid(self.a(x))
        gate = gate.detach() if self.hold else gate
        return self.out(gate * (x if self.style == "se" else self.b(x)))


@pytest.mark.parametrize("style", ["layer", "function", "carried", "relu", "se"])
def test_constant_rule_holds_a_gate(style) -> None:
    """Under ``"constant"`` (LXT's CP-LRP; Arras et al. 2017's signal-take-all) an activation's
    output times a tensor that is not one is a gate, held constant: LRP-0 is gradient x input
    with the gate detached, and relevance is conserved. ``"uniform"`` splits it evenly."""
    rules = {nn.Linear: EpsilonRule(0.0)}
    got, delta = lrp(_GatedUnit(style), X, T, rules=rules, return_convergence_delta=True)
    torch.testing.assert_close(got, input_x_gradient(_GatedUnit(style, hold=True), X, T))
    assert delta.abs().max() < 1e-12
    uniform = lrp(_GatedUnit(style), X, T, rules=rules, attention="uniform")
    assert (uniform - got).abs().max() > 1e-6


class _Gated(nn.Module):
    """``gelu(a x) * sigmoid(b x)``, bias-free, the activations as layers or as functions."""

    def __init__(self, functional: bool) -> None:
        super().__init__()
        torch.manual_seed(13)
        self.functional = functional
        self.a, self.b = nn.Linear(6, 5, bias=False), nn.Linear(6, 5, bias=False)
        self.gelu, self.sigmoid = nn.GELU(), nn.Sigmoid()
        self.out = nn.Linear(5, 3, bias=False)
        self.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.functional:
            return self.out(nn.functional.gelu(self.a(x)) * torch.sigmoid(self.b(x)))
        return self.out(self.gelu(self.a(x)) * self.sigmoid(self.b(x)))


def test_functional_activations_pass_relevance_through_as_their_layers_do() -> None:
    rules = {nn.Linear: EpsilonRule(0.0)}
    got, delta = lrp(_Gated(True), X, T, rules=rules, return_convergence_delta=True)
    torch.testing.assert_close(got, lrp(_Gated(False), X, T, rules=rules), rtol=1e-12, atol=1e-14)
    assert delta.abs().max() < 1e-12


class _RMSNorm(nn.Module):
    """Hand-written RMS norm (as Hugging Face's ``LlamaRMSNorm``); ``frozen`` detaches the
    scale."""

    frozen = False

    def __init__(self, width: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.linspace(0.5, 1.5, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)
        return self.weight * (x * (scale.detach() if self.frozen else scale))


class _VarLayerNorm(_RMSNorm):
    """Hand-written layer norm by ``var`` and a division by ``sqrt``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        std = (x.var(-1, unbiased=False, keepdim=True) + 1e-5).sqrt()
        return self.weight * (x - x.mean(-1, keepdim=True)) / (std.detach() if self.frozen else std)


class _StdLayerNorm(_RMSNorm):
    """Hand-written layer norm by ``std`` (the Annotated Transformer's)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        std = x.std(-1, keepdim=True)
        std = std.detach() if self.frozen else std
        return self.weight * (x - x.mean(-1, keepdim=True)) / (std + 1e-6)


class _FunctionalLayerNorm(_RMSNorm):
    """A layer norm by ``F.layer_norm`` (nanoGPT's)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.frozen:
            std = (x.var(-1, unbiased=False, keepdim=True) + 1e-5).sqrt().detach()
            return self.weight * (x - x.mean(-1, keepdim=True)) / std
        return nn.functional.layer_norm(x, self.weight.shape, self.weight, None, 1e-5)


class _LayerNorm2d(nn.LayerNorm):
    """Channels-first layer norm over ``[B, C, H, W]`` (torchvision's and timm's ConvNeXt)."""

    frozen = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        if self.frozen:
            std = (x.var(-1, unbiased=False, keepdim=True) + self.eps).sqrt().detach()
            x = (x - x.mean(-1, keepdim=True)) / std * self.weight + self.bias
        else:
            x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


@pytest.mark.parametrize(
    "norm", [_RMSNorm, _VarLayerNorm, _StdLayerNorm, _FunctionalLayerNorm, _LayerNorm2d]
)
def test_lrp_0_holds_the_scale_of_hand_written_normalizations(norm) -> None:
    """A normalization with a forward of its own (a class named ``...Norm``, or a torch norm
    overriding its forward) takes the LN rule too: its scale held constant."""
    torch.manual_seed(9)
    if norm is _LayerNorm2d:
        layers = [nn.Unflatten(1, (1, 2, 3)), nn.Conv2d(1, 4, 1, bias=False), norm(4)]
        layers += [nn.ReLU(), nn.Flatten(), nn.Linear(24, 3, bias=False)]
    else:
        layers = [nn.Linear(6, 4, bias=False), norm(4), nn.ReLU(), nn.Linear(4, 3, bias=False)]
    model = nn.Sequential(*layers).double()
    if norm is _LayerNorm2d:
        with torch.no_grad():
            model[2].bias.zero_()
    rules = {nn.Linear: EpsilonRule(0.0), nn.Conv2d: EpsilonRule(0.0), norm: EpsilonRule(0.0)}
    relevance, delta = lrp(model, X, T, rules=rules, return_convergence_delta=True)
    norm.frozen = True
    try:
        expected = input_x_gradient(model, X, T)
    finally:
        norm.frozen = False
    torch.testing.assert_close(relevance, expected, rtol=1e-9, atol=1e-12)
    assert delta.abs().max() < 1e-12


def test_lrp_conserves_relevance_through_a_hugging_face_llama() -> None:
    """A tiny Llama (grouped-query attention, rotary positions, hand-written RMS norms in
    float32, a gated SiLU MLP) attributed to its input embeddings: its RMS norms hold their
    scale, its MLP's gate is held (its up projection takes the relevance), its rotary table
    carries none, and relevance is conserved (to the float32 of its norms)."""
    transformers = pytest.importorskip(
        "transformers", reason="transformers is an optional extra (neuronkit-interpretability)"
    )
    torch.manual_seed(15)
    config = transformers.LlamaConfig(
        vocab_size=50,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=16,
    )
    llama = transformers.LlamaForCausalLM(config).double().eval()

    model = _FromEmbeddings(llama, last=True)
    embeds = torch.randn(2, 5, 16, generator=_gen(16), dtype=torch.float64)
    rules = {nn.Linear: EpsilonRule(0.0)}
    relevance, delta = lrp(model, embeds, 3, rules=rules, return_convergence_delta=True)
    with torch.no_grad():
        scale = model(embeds)[:, 3].abs().max()
    assert delta.abs().max() < 1e-4 * scale
    assert relevance.abs().sum() > scale


def test_blooms_gelu_passes_relevance_through_as_gelu_does() -> None:
    """BLOOM's ``BloomGelu`` (a custom autograd function, which LRP cannot see through) is an
    activation: it gives what ``nn.GELU("tanh")``, the same function, gives (before 0.5.45 it
    was refused; before the check of unseen operations it took its plain gradient)."""
    bloom = pytest.importorskip(
        "transformers.models.bloom.modeling_bloom",
        reason="transformers is an optional extra (neuronkit-interpretability)",
    )
    models = []
    for act in (bloom.BloomGelu(), nn.GELU(approximate="tanh")):
        torch.manual_seed(18)
        models.append(nn.Sequential(nn.Linear(6, 5), act, nn.Linear(5, 3)).double())
    torch.testing.assert_close(lrp(models[0], X, T), lrp(models[1], X, T), rtol=1e-6, atol=1e-9)


def test_hugging_face_conv1d_is_a_linear_layer_to_every_rule() -> None:
    """GPT-2's ``Conv1D`` (a linear layer with its weight transposed) takes the rules a linear
    layer takes, z^B included, with the same numbers."""
    transformers = pytest.importorskip(
        "transformers", reason="transformers is an optional extra (neuronkit-interpretability)"
    )
    torch.manual_seed(17)
    conv1d = transformers.pytorch_utils.Conv1D(5, 6).double()
    linear = nn.Linear(6, 5).double()
    with torch.no_grad():
        conv1d.bias.normal_()
        linear.weight.copy_(conv1d.weight.T)
        linear.bias.copy_(conv1d.bias)
    head = nn.Linear(5, 3).double()
    for rule in (EpsilonRule(0.1), GammaRule(0.25), Alpha1Beta0Rule(), ZBoxRule(-3.0, 3.0)):
        got = lrp(nn.Sequential(conv1d, nn.ReLU(), head), X, T, rules={"0": rule})
        expected = lrp(nn.Sequential(linear, nn.ReLU(), head), X, T, rules={"0": rule})
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_lrp_conserves_relevance_through_a_hugging_face_gpt2(attention) -> None:
    """A tiny GPT-2 (``Conv1D`` layers, HF's GELU class) with its biases and position
    embeddings at 0 conserves relevance with no rules given but LRP-0."""
    transformers = pytest.importorskip(
        "transformers", reason="transformers is an optional extra (neuronkit-interpretability)"
    )
    torch.manual_seed(18)
    config = transformers.GPT2Config(
        vocab_size=50, n_embd=16, n_layer=2, n_head=2, n_positions=16, attn_implementation=attention
    )
    gpt2 = transformers.GPT2LMHeadModel(config).double().eval()
    with torch.no_grad():
        for name, p in gpt2.named_parameters():
            if name.endswith("bias") or "wpe" in name:
                p.zero_()

    rules = {transformers.pytorch_utils.Conv1D: EpsilonRule(0.0), nn.Linear: EpsilonRule(0.0)}
    rules[nn.LayerNorm] = EpsilonRule(0.0)
    embeds = torch.randn(2, 5, 16, generator=_gen(19), dtype=torch.float64)
    model = _FromEmbeddings(gpt2, last=True)
    relevance, delta = lrp(model, embeds, 1, rules=rules, return_convergence_delta=True)
    assert delta.abs().max() < 1e-12
    assert relevance.abs().sum() > model(embeds)[:, 1].abs().max()


class _Permute(nn.Module):
    def __init__(self, *dims: int) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)


class _DropPath(nn.Module):
    """Stochastic depth: the identity in eval mode."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        keep = torch.rand(len(x), *(1,) * (x.ndim - 1)) > 0.1
        return x * keep / 0.9


class _LayerScale(nn.Module):
    """timm's ``LayerScale2d``: a parameter times the input."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((width,), 0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma.view(1, -1, 1, 1)


class _ConvNeXtBlock(nn.Module):
    """torchvision's and timm's ConvNeXt block: depthwise convolution, ``Permute`` to
    channels-last, layer norm, inverted MLP, ``Permute`` back, layer scale, stochastic depth,
    residual sum; bias-free."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False),
            _Permute(0, 2, 3, 1),
            nn.LayerNorm(width, bias=False),
            nn.Linear(width, 4 * width, bias=False),
            nn.GELU(),
            nn.Linear(4 * width, width, bias=False),
            _Permute(0, 3, 1, 2),
        )
        self.layer_scale = _LayerScale(width)
        self.drop_path = _DropPath()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop_path(self.layer_scale(self.block(x)))


def test_lrp_0_conserves_relevance_through_a_convnext_block() -> None:
    """Layers without a rule that compute only what is linear in their input (stochastic
    depth in eval mode, ``Permute``, a layer scale) or a rectifier need none, nor do padding
    and upsampling; one that computes something else is refused as it runs, naming what it
    computes."""
    torch.manual_seed(20)
    model = nn.Sequential(
        nn.Unflatten(1, (1, 2, 3)),
        nn.Conv2d(1, 8, 2, padding=1, bias=False),
        nn.ZeroPad2d(1),
        nn.Upsample(scale_factor=2),
        _ConvNeXtBlock(8),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 3, bias=False),
    ).double()
    rules = {nn.Conv2d: EpsilonRule(0.0), nn.Linear: EpsilonRule(0.0)}
    rules.update({nn.LayerNorm: EpsilonRule(0.0), nn.AdaptiveAvgPool2d: EpsilonRule(0.0)})
    relevance, delta = lrp(model, X, T, rules=rules, return_convergence_delta=True)
    assert delta.abs().max() < 1e-12
    assert relevance.abs().sum() > 0
    model[4].drop_path.forward = torch.relu  # a rectifier's gradient is its pass-through
    assert lrp(model, X, T, rules=rules, return_convergence_delta=True)[1].abs().max() < 1e-12
    model[4].drop_path.forward = lambda x: x.abs()
    with pytest.raises(TypeError, match=r"'4.drop_path' \(_DropPath\), which computes abs from"):
        lrp(model, X, T, rules=rules)


class _Moves(nn.Module):
    """A layer without a rule that only moves values with torch-namespace functions (as
    torchvision's MaxViT ``SwapAxes`` does): ``[B, 6] -> [B, 6]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.swapaxes(x.view(-1, 2, 3), 1, 2)
        x = torch.moveaxis(x, 2, 1).flatten(1)
        return torch.narrow(torch.tile(x, (1, 2)), 1, 3, 6)


def test_lrp_0_through_a_layer_that_moves_values_with_torch_functions() -> None:
    """Before 0.5.45 ``torch.swapaxes`` and the like (the method forms were known) were refused
    as nonlinear in a layer without a rule (torchvision's MaxViT)."""
    torch.manual_seed(21)
    model = nn.Sequential(
        nn.Linear(6, 6, bias=False), _Moves(), nn.ReLU(), nn.Linear(6, 3, bias=False)
    ).double()
    rules = {nn.Linear: EpsilonRule(0.0)}
    relevance, delta = lrp(model, X, T, rules=rules, return_convergence_delta=True)
    torch.testing.assert_close(relevance, input_x_gradient(model, X, T), rtol=1e-10, atol=1e-12)
    assert delta.abs().max() < 1e-12


class _TokenPool(nn.Module):
    """Patches to tokens and their average, as ViTs pool: ``[B, C, H, W] -> [B, C]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).transpose(1, 2).mean(1)


def test_lrp_0_through_a_batch_norm_before_tokens_at_one_example() -> None:
    """A batch norm whose output is pooled as tokens: at one example the gradient reaching the
    norm has channels-last strides with a batch stride of ``C``, with which torch 2.15's CPU
    batch-norm backward is wrong; LRP hands the norm a gradient in its output's layout and
    conserves relevance."""
    torch.manual_seed(22)
    model = nn.Sequential(
        nn.Unflatten(1, (1, 2, 3)),
        nn.Conv2d(1, 8, 1, bias=False),
        nn.BatchNorm2d(8),
        _TokenPool(),
        nn.Linear(8, 3, bias=False),
    ).double()
    with torch.no_grad():
        model[2].bias.zero_()
        model[2].running_var.uniform_(0.5, 2.0)
    rules = {nn.Conv2d: EpsilonRule(0.0), nn.Linear: EpsilonRule(0.0)}
    rules[nn.BatchNorm2d] = EpsilonRule(0.0)
    for x in (X[:1], X):
        _, delta = lrp(model, x, T[: len(x)], rules=rules, return_convergence_delta=True)
        assert delta.abs().max() < 1e-12


def test_transformer_errors_name_the_problem() -> None:
    model = _Encoder(False)
    with pytest.raises(TypeError, match=r"'layer.norm1' \(LayerNorm\) must be EpsilonRule or"):
        lrp(model, X, T, rules={"layer.norm1": GammaRule()})
    with pytest.raises(ValueError, match="MultiheadAttention"):
        layer_lrp(model, X, "layer.self_attn", T, layer_input=True)
    attention = nn.MultiheadAttention(2, 1, batch_first=True).double()

    class _ByKeyword(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attention = attention

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = x.view(len(x), 3, 2)
            return self.attention(query=h, key=h, value=h)[0].flatten(1)

    with pytest.raises(TypeError, match="query, key and value as positional"):
        lrp(_ByKeyword(), X, T)

    class _PowerNorm(nn.Module):  # its scale by a power: not recognized
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * (x.square().mean(-1, keepdim=True) + 1e-6).pow(-0.5)

    model = nn.Sequential(nn.Linear(6, 4), _PowerNorm(), nn.Linear(4, 3)).double()
    with pytest.raises(TypeError, match=r"no scale to hold constant in normalization '1' \(_Power"):
        lrp(model, X, T)
    assert lrp(model, X, T, rules={"1": IdentityRule()}).shape == X.shape

    class _LinearNorm(nn.Module):  # a container named ...Norm (timm's ConvNorm): not a norm
        def __init__(self) -> None:
            super().__init__()
            self.linear, self.norm = nn.Linear(6, 4), nn.BatchNorm1d(4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.norm(self.linear(x))

    assert lrp(nn.Sequential(_LinearNorm(), nn.Linear(4, 3)).double(), X, T).shape == X.shape
    with pytest.raises(TypeError, match=r"'1' \(_PowerNorm\) must be EpsilonRule or Identity"):
        lrp(model, X, T, rules={"1": GammaRule()})


def test_rules_by_layer_type() -> None:
    """A type's rule reaches every layer of that type (not containers); a layer's own wins."""
    model = _mlp()
    by_name = {"0": GammaRule(0.5), "2": EpsilonRule(0.25), "4": EpsilonRule(0.25)}
    expected = lrp(model, X, T, rules=by_name)
    torch.testing.assert_close(
        lrp(model, X, T, rules={nn.Linear: EpsilonRule(0.25), "0": GammaRule(0.5)}), expected
    )
    container = {nn.Sequential: IdentityRule(), nn.Linear: EpsilonRule(0.25), "0": GammaRule(0.5)}
    torch.testing.assert_close(lrp(model, X, T, rules=container), expected)
    with pytest.raises(TypeError, match=r"'layer.norm1' \(LayerNorm\) must be EpsilonRule"):
        lrp(_Encoder(False), X, T, rules={nn.LayerNorm: Alpha1Beta0Rule()})


def test_z_box_rule_in_closed_form_and_conserving() -> None:
    """z^B at the input layer (Montavon et al. 2017): R_i = sum_j (x_i w_ij - l_i w+_ij -
    h_i w-_ij) R_j / z_j; the first layer's bias cancels, so relevance is conserved."""
    torch.manual_seed(9)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3, bias=False)).double()
    x = X.clamp(-1.0, 2.0)
    rules = {"0": ZBoxRule(-1.0, 2.0), "2": EpsilonRule(0.0)}
    got, delta = lrp(model, x, T, rules=rules, return_convergence_delta=True)
    w, w2 = model[0].weight.detach(), model[2].weight.detach()
    with torch.no_grad():
        r_h = model[1](model[0](x)) * w2[T]  # LRP-0 at the top: h_j w_tj
        low, high = torch.full_like(x, -1.0), torch.full_like(x, 2.0)
        pos, neg = w.clamp(min=0), w.clamp(max=0)
        s = r_h / (x @ w.T - low @ pos.T - high @ neg.T)
        expected = x * (s @ w) - low * (s @ pos) - high * (s @ neg)
    torch.testing.assert_close(got, expected)
    assert delta.abs().max() < 1e-8  # the 1e-9 stabilizer only
    first = layer_lrp(model, x, "0", T, rules=rules, layer_input=True)
    torch.testing.assert_close(first, got)


def test_z_box_rule_with_per_channel_bounds_on_a_convolution() -> None:
    torch.manual_seed(10)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16, 2, bias=False)
    ).double()
    x = torch.rand(2, 3, 4, 4, generator=_gen(2), dtype=torch.float64)
    mean = torch.tensor([0.4, 0.5, 0.6], dtype=torch.float64).view(1, 3, 1, 1)
    rules = {"0": ZBoxRule(-mean, 1 - mean), "3": EpsilonRule(0.0)}
    got, delta = lrp(model, x - mean, 1, rules=rules, return_convergence_delta=True)
    assert got.shape == x.shape
    assert delta.abs().max() < 1e-8
    uniform = lrp(model, x - mean, 1, rules={"0": ZBoxRule(-0.5, 0.5), "3": EpsilonRule(0.0)})
    assert (uniform - got).abs().max() > 1e-6  # the bounds matter


def test_z_box_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="low must be <= high"):
        ZBoxRule(1.0, 0.0)
    with pytest.raises(TypeError, match="low"):
        ZBoxRule("0", 1.0)
    with pytest.raises(TypeError, match=r"ZBoxRule needs a linear or convolution layer, got '1'"):
        lrp(_mlp(), X, T, rules={"1": ZBoxRule(0.0, 1.0)})
    with pytest.raises(
        ValueError, match="ZBoxRule, WSquareRule and FlatRule apply to the layer that reads"
    ):
        lrp(_mlp(), X, T, rules={"2": ZBoxRule(0.0, 1.0)})
    with pytest.raises(ValueError, match="high must broadcast to the layer's input"):
        lrp(_mlp(), X, T, rules={"0": ZBoxRule(0.0, torch.ones(5))})


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_a_zero_output_passes_no_relevance_in_half_precision(dtype) -> None:
    """The default epsilon (1e-9) is below float16's smallest normal number: a unit whose
    output is exactly 0 still passes 0, not 0 / 0."""
    torch.manual_seed(12)
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))
    with torch.no_grad():
        model[0].weight[1] = 0.0
        model[0].bias[1] = 0.0
    relevance = lrp(model.to(dtype), X.to(dtype), T)
    expected = lrp(model.double(), X, T)
    torch.testing.assert_close(relevance.double(), expected, rtol=0.05, atol=0.02)


def test_one_forward_pass_with_every_rule() -> None:
    model = _mlp()
    calls = []
    model.register_forward_pre_hook(lambda module, args: calls.append(1))
    lrp(model, X, T, rules={"0": GammaRule(0.25), "1": IdentityRule(), "2": Alpha1Beta0Rule()})
    assert len(calls) == 1


def test_epsilon_and_biases_absorb_relevance() -> None:
    model = _mlp(bias=False)
    with torch.no_grad():
        out = model(X)[torch.arange(4), T]
    rules = {"0": EpsilonRule(0.0), "2": EpsilonRule(0.0), "4": EpsilonRule(10.0)}
    relevance = lrp(model, X, T, rules=rules)
    # the last layer keeps z / (z + 10 sign z) of the output's relevance, the others all of it
    torch.testing.assert_close(relevance.sum(1), out * out / (out + 10.0 * out.sign()))
    _, delta = lrp(_mlp(), X, T, return_convergence_delta=True)
    assert delta.abs().max() > 1e-3  # the biases take a share


def test_alpha1_beta0_gives_no_negative_relevance_to_positive_inputs() -> None:
    model = _mlp(bias=False)
    x = X.abs()
    rules = {name: Alpha1Beta0Rule() for name in ("0", "2", "4")}
    relevance = lrp(model, x, T, rules=rules)
    with torch.no_grad():
        out = model(x)[torch.arange(4), T]
    positive = out > 0
    assert positive.any()
    assert (relevance[positive] >= 0).all()
    assert not (lrp(model, x, T)[positive] >= 0).all()  # the epsilon rule has negative ones


def test_gamma_interpolates_between_epsilon_and_alpha1_beta0() -> None:
    model = _mlp()
    names = ("0", "2", "4")
    eps = lrp(model, X, T)
    torch.testing.assert_close(lrp(model, X, T, rules=dict.fromkeys(names, GammaRule(0.0))), eps)
    huge = lrp(model, X, T, rules=dict.fromkeys(names, GammaRule(1e8, set_bias_to_zero=True)))
    positive = lrp(model, X, T, rules=dict.fromkeys(names, Alpha1Beta0Rule(set_bias_to_zero=True)))
    torch.testing.assert_close(huge, positive, rtol=1e-6, atol=1e-9)
    assert not torch.allclose(huge, eps, rtol=1e-3)


def test_identity_rule_passes_relevance_unchanged() -> None:
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.Linear(5, 3)).double().eval()
    with torch.no_grad():
        model[1].running_mean.uniform_(-1, 1)
        z1 = model[0](X)
        h = model[1](z1)
        out = model(X)[torch.arange(4), T]
    w1, w2 = model[0].weight.detach(), model[2].weight.detach()
    eps = 1e-9
    r_h = h * w2[T] * (out / (out + eps * out.sign()))[:, None]  # the last layer's rule
    expected = X * ((r_h / (z1 + eps * z1.sign())) @ w1)  # r_h reaches z1 unchanged
    torch.testing.assert_close(lrp(model, X, T, rules={"1": IdentityRule()}), expected)
    assert not torch.allclose(lrp(model, X, T), expected)  # the batch norm's epsilon rule


def test_gamma_rule_in_closed_form_on_the_original_activations() -> None:
    """Layers above a gamma layer read the original network's activations, not those its
    modified weights would give."""
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).double()
    w1, b1 = model[0].weight.detach(), model[0].bias.detach()
    w2 = model[2].weight.detach()
    with torch.no_grad():
        z1 = model[0](X)
        out = model(X)[torch.arange(4), T]
    h, eps = torch.relu(z1), 1e-9
    r_h = h * w2[T] * (out / (out + eps * out.sign()))[:, None]  # epsilon rule, original h
    w1g = w1 + 0.5 * w1.clamp(min=0)
    z1g = X @ w1g.T + b1
    expected = X * ((r_h / (z1g + eps * torch.where(z1g >= 0, 1.0, -1.0))) @ w1g)
    torch.testing.assert_close(lrp(model, X, T, rules={"0": GammaRule(0.5)}), expected)
    # what reaches the hidden layer: at the ReLU's output and at the last layer's input
    for layer, layer_input in (("1", False), ("2", True)):
        got = layer_lrp(model, X, layer, T, rules={"0": GammaRule(0.5)}, layer_input=layer_input)
        torch.testing.assert_close(got, r_h)
    # at the gamma layer's input (its weights rerun there) it is the input relevance
    got = layer_lrp(model, X, "0", T, rules={"0": GammaRule(0.5)}, layer_input=True)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(layer_lrp(model, X, "0", T, rules={"0": GammaRule(0.5)}), r_h)


def _decoder(transposed: bool) -> nn.Module:
    """Conv, ReLU, a stride-1 transposed convolution (or the convolution equal to it: weights
    transposed and flipped), ReLU, linear read-out; with biases."""
    torch.manual_seed(5)
    first, up = nn.Conv2d(2, 4, 3, padding=1), nn.ConvTranspose2d(4, 3, 3, padding=1)
    out = nn.Linear(3 * 4 * 4, 3)
    layer: nn.Module = up
    if not transposed:
        layer = nn.Conv2d(4, 3, 3, padding=1)
        with torch.no_grad():
            layer.weight.copy_(up.weight.transpose(0, 1).flip(-1, -2))
            layer.bias.copy_(up.bias)
    return nn.Sequential(first, nn.ReLU(), layer, nn.ReLU(), nn.Flatten(), out).double()


def test_transposed_convolutions_take_the_rules_of_convolutions() -> None:
    """A transposed convolution (zennit's rules take them; Captum refuses them) gives what the
    convolution equal to it gives, under the epsilon, gamma and alpha1-beta0 rules."""
    x = torch.randn(4, 2, 4, 4, generator=_gen(6), dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(_decoder(True)(x), _decoder(False)(x))
    # a rule by default, as a convolution (before 0.5.45 it needed one named)
    torch.testing.assert_close(lrp(_decoder(True), x, T), lrp(_decoder(False), x, T))
    for rule in (EpsilonRule(0.1), GammaRule(0.5), Alpha1Beta0Rule()):
        got = lrp(_decoder(True), x, T, rules={"2": rule})
        torch.testing.assert_close(got, lrp(_decoder(False), x, T, rules={"2": rule}))


def test_adaptive_max_pools_take_the_rule_of_max_pools() -> None:
    """Before 0.5.45 an adaptive max pool (a CNN head's) was refused without a named rule."""
    x = torch.randn(4, 2, 4, 4, generator=_gen(7), dtype=torch.float64)
    torch.manual_seed(6)
    conv, out = nn.Conv2d(2, 3, 3, padding=1), nn.Linear(12, 3)
    models = [
        nn.Sequential(conv, nn.ReLU(), pool, nn.Flatten(), out).double()
        for pool in (nn.AdaptiveMaxPool2d(2), nn.MaxPool2d(2))
    ]
    torch.testing.assert_close(lrp(models[0], x, T), lrp(models[1], x, T))


@pytest.mark.parametrize("flat", [False, True])
def test_w_square_and_flat_rules_in_closed_form(flat) -> None:
    """At the layer reading the inputs, the w^2 rule spreads each output's relevance by the
    squared weights, the flat rule evenly, whatever the inputs' values; conserved there."""
    model = _mlp()
    rule = FlatRule() if flat else WSquareRule()
    relevance = lrp(model, X, T, rules={"0": rule})
    above = layer_lrp(model, X, "0", T)  # [4, 12]: what reaches the layer's outputs
    w = torch.ones_like(model[0].weight) if flat else model[0].weight.detach().square()
    expected = (above / (w.sum(1) + 1e-9)) @ w
    torch.testing.assert_close(relevance, expected)
    torch.testing.assert_close(relevance.sum(1), above.sum(1))
    with pytest.raises(TypeError, match=r"(WSquare|Flat)Rule needs a linear or convolution"):
        lrp(model, X, T, rules={"1": rule})
    with pytest.raises(ValueError, match="apply to the layer that reads the inputs"):
        lrp(model, X, T, rules={"2": rule})


def test_alpha_beta_rule_checks_and_captums_alpha1_beta0_where_they_agree() -> None:
    """Above a ReLU (inputs >= 0) of a bias-free layer, ``AlphaBetaRule(1, 0)`` is Captum's
    alpha1-beta0; alpha - beta must be 1, and the rule needs weights (zennit: test_lrp_zennit)."""
    model = _mlp(bias=False)
    torch.testing.assert_close(
        lrp(model, X, T, rules={"2": AlphaBetaRule(1.0, 0.0)}),
        lrp(model, X, T, rules={"2": Alpha1Beta0Rule()}),
    )
    with pytest.raises(ValueError, match=r"alpha - beta must be 1 .* got alpha=2, beta=2"):
        AlphaBetaRule(2, 2)
    with pytest.raises(ValueError, match="beta"):
        AlphaBetaRule(0.5, -0.5)
    with pytest.raises(TypeError, match=r"AlphaBetaRule needs a linear or convolution layer"):
        lrp(model, X, T, rules={"1": AlphaBetaRule()})


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_alpha_beta_rule_with_no_contributions_of_one_sign(dtype) -> None:
    """A unit whose contributions are all of one sign (inputs 0 after a ReLU, a bias of that
    sign) hands the other sign nothing: not ``z / 1e-9`` times 0 contributions, which
    overflows a float16 gradient (or float32 at huge inputs) into NaN."""
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, -1.0]]))
        model[0].bias.zero_()
        model[2].weight.copy_(torch.tensor([[1.0, -1.0]]))
    scale = 1e30 if dtype == torch.float32 else 1.0
    with torch.no_grad():
        model[2].bias.copy_(torch.tensor([-0.5 * scale]))
    x = torch.tensor([[2.0, 3.0]])  # hidden (2, 0): z+ = 2, z- = -0.5 at the output (scaled)
    rules = {nn.Linear: AlphaBetaRule(2.0, 1.0)}
    relevance = lrp(model.to(dtype), (x * scale).to(dtype), 0, rules=rules)
    # the output hands its input 2 * 1.5 / 2 * 2 = 3 (the bias takes the negative part); the
    # first layer's second unit is 0 (no relevance); its first has no negative contributions
    expected = torch.tensor([[3.0 * 2.0, 0.0]]) * scale
    torch.testing.assert_close(relevance.float(), expected, rtol=1e-3, atol=0.0)


class _Twice(nn.Module):
    """One linear layer applied twice; the gamma rule reads each call's own activations."""

    def __init__(self, shared: bool) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.a = nn.Linear(6, 6)
        self.b = self.a if shared else copy.deepcopy(self.a)
        self.relu, self.out = nn.ReLU(), nn.Linear(6, 3)
        self.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.relu(self.b(self.relu(self.a(x)))))


def test_a_layer_called_twice_equals_two_copies() -> None:
    shared, separate = _Twice(True), _Twice(False)
    got = lrp(shared, X, T, rules={"a": GammaRule(0.5)})
    expected = lrp(separate, X, T, rules={"a": GammaRule(0.5), "b": GammaRule(0.5)})
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)


def test_in_place_relus_model_weights_and_flags_are_left_alone() -> None:
    model, in_place = _mlp(), _mlp(inplace=True).train()
    before = {k: v.clone() for k, v in in_place.state_dict().items()}
    x = X.clone()
    rules = {"0": GammaRule(0.25), "2": Alpha1Beta0Rule()}
    torch.testing.assert_close(lrp(in_place, x, T, rules=rules), lrp(model, X, T, rules=rules))
    assert torch.equal(x, X)
    assert in_place.training
    assert all(torch.equal(v, before[k]) for k, v in in_place.state_dict().items())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in in_place.modules())


def test_elementwise_activations_pass_relevance_through() -> None:
    """GELU (which Captum's LRP refuses) passes relevance unchanged, as ReLU does: LRP-0 in
    closed form, with the GELU's output as the last layer's activation."""
    torch.manual_seed(6)
    model = nn.Sequential(nn.Linear(6, 5, bias=False), nn.GELU(), nn.Linear(5, 3, bias=False))
    model = model.double()
    got = lrp(model, X, T, rules={"0": EpsilonRule(0.0), "2": EpsilonRule(0.0)})
    with torch.no_grad():
        z1 = model[0](X)
        h = torch.nn.functional.gelu(z1)
    w1, w2 = model[0].weight.detach(), model[2].weight.detach()
    r_h = h * w2[T]  # the top relevance f_t(x), divided by z = f_t(x), times h w
    torch.testing.assert_close(got, X * ((r_h / z1) @ w1))


def test_layer_relevance_is_conserved_layer_by_layer_under_lrp_0() -> None:
    model = _mlp(bias=False)
    rules = {name: EpsilonRule(0.0) for name in ("0", "2", "4")}
    with torch.no_grad():
        out = model(X)[torch.arange(4), T]
    for layer in ("0", "1", "2", "3"):
        for layer_input in (False, True):
            got, delta = layer_lrp(
                model,
                X,
                layer,
                T,
                rules=rules,
                layer_input=layer_input,
                return_convergence_delta=True,
            )
            torch.testing.assert_close(got.sum(1), out)
            assert delta.abs().max() < 1e-12
    # a ReLU passes relevance through: its input's relevance is its output's
    torch.testing.assert_close(
        layer_lrp(model, X, "1", T, layer_input=True), layer_lrp(model, X, "1", T)
    )
    torch.testing.assert_close(
        layer_lrp(model, X, "0", T, layer_input=True), lrp(model, X, T), rtol=1e-12, atol=1e-14
    )


def test_layer_version_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="layer"):
        layer_lrp(_mlp(), X, "9", T)
    with pytest.raises(ValueError, match="batch_dim"):
        layer_lrp(_mlp(), X, "1", T, batch_dim=-1)
    with pytest.raises(ValueError, match="on axis 1"):
        layer_lrp(_mlp(), X, "1", T, batch_dim=1)
    with pytest.raises(TypeError, match="layer_input"):
        layer_lrp(_mlp(), X, "1", T, layer_input=1)


def test_errors_name_the_problem() -> None:
    model = nn.Sequential(nn.Linear(6, 4), nn.LogSoftmax(1), nn.Linear(4, 2))
    with pytest.raises(TypeError, match=r"lrp has no rule for module '1' \(LogSoftmax\), which"):
        lrp(model, X.float(), 0)
    lrp(model, X.float(), 0, rules={"1": IdentityRule()})  # an explicit rule lets it through
    with pytest.raises(TypeError, match="rules values must be EpsilonRule"):
        lrp(_mlp(), X, T, rules={"0": "epsilon"})
    with pytest.raises(ValueError, match="attention"):
        lrp(_mlp(), X, T, attention="attnlrp")
    with pytest.raises(ValueError, match="epsilon"):
        EpsilonRule(-1.0)
    with pytest.raises(ValueError, match="gamma"):
        GammaRule(-0.1)
    with pytest.raises(TypeError, match="model must be"):
        lrp(lambda v: v, X)
