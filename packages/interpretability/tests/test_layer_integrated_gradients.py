import pytest
import torch
from torch import nn

from neuronkit.interpretability import integrated_gradients, layer_integrated_gradients


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class _Text(nn.Module):
    """Token ids -> embedding -> tanh MLP, mean over tokens -> 3 classes."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        state = torch.random.get_rng_state()
        torch.manual_seed(0)
        self.emb, self.hidden, self.out = nn.Embedding(20, 8), nn.Linear(8, 8), nn.Linear(8, 3)
        torch.random.set_rng_state(state)
        self.inplace = inplace
        self.double()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        e = self.emb(ids)
        e = e.mul_(2.0) if self.inplace else e * 2.0  # an in-place op right after the layer
        return self.out(torch.tanh(self.hidden(e)).mean(1))


IDS = torch.randint(1, 20, (4, 6), generator=_gen(1))
T = torch.tensor([0, 1, 2, 0])


def test_at_an_identity_first_layer_it_is_integrated_gradients() -> None:
    torch.manual_seed(2)
    model = nn.Sequential(nn.Identity(), nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    x = torch.randn(3, 5, generator=_gen(3), dtype=torch.float64)
    base = torch.randn(5, generator=_gen(4), dtype=torch.float64)
    got = layer_integrated_gradients(model, x, "0", 1, baselines=base, n_steps=16)
    torch.testing.assert_close(
        got, integrated_gradients(model[1:], x, 1, baselines=base, n_steps=16)
    )


def test_a_linear_rest_of_the_model_gives_weight_times_difference() -> None:
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 4), nn.Linear(4, 3)).double()
    x = torch.randn(3, 5, generator=_gen(6), dtype=torch.float64)
    with torch.no_grad():
        diff = model[:2](x) - model[:2](torch.zeros(1, 5, dtype=torch.float64))
    w = (model[3].weight @ model[2].weight).detach()[2]  # the linear map after the tanh
    got = layer_integrated_gradients(model, x, "1", 2, n_steps=3)
    torch.testing.assert_close(got, w * diff)


def test_token_attributions_are_complete_and_chunks_change_nothing() -> None:
    model = _Text()
    pad = torch.zeros_like(IDS)
    attr, delta = layer_integrated_gradients(
        model, IDS, "emb", T, baselines=pad, n_steps=64, return_convergence_delta=True
    )
    assert attr.shape == (4, 6, 8)
    assert delta.abs().max() < 1e-8
    with torch.no_grad():
        difference = (model(IDS) - model(pad))[torch.arange(4), T]
    torch.testing.assert_close(attr.sum((1, 2)), difference, rtol=0, atol=1e-8)
    chunked = layer_integrated_gradients(
        model, IDS, "emb", T, baselines=0, n_steps=64, internal_batch_size=12
    )
    torch.testing.assert_close(chunked, attr, rtol=1e-12, atol=1e-15)


def test_in_place_ops_after_the_layer_and_the_layer_input() -> None:
    got = layer_integrated_gradients(_Text(inplace=True), IDS, "emb", T, n_steps=8)
    torch.testing.assert_close(got, layer_integrated_gradients(_Text(), IDS, "emb", T, n_steps=8))
    model = _Text()
    at_input = layer_integrated_gradients(model, IDS, "hidden", T, layer_input=True, n_steps=8)
    assert at_input.shape == (4, 6, 8)
    assert not torch.allclose(
        at_input, layer_integrated_gradients(model, IDS, "hidden", T, n_steps=8)
    )


class _Twice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(self.lin(x))


def test_errors_name_the_problem() -> None:
    model = _Text()
    with pytest.raises(ValueError, match="layer runs more than once"):
        layer_integrated_gradients(_Twice(), torch.zeros(2, 3), "lin", 0)
    with pytest.raises(ValueError, match="layer must be a submodule"):
        layer_integrated_gradients(model, IDS, nn.Linear(2, 2), T)
    with pytest.raises(TypeError, match="must be floating to interpolate"):
        layer_integrated_gradients(model, IDS, "emb", T, layer_input=True)
    with pytest.raises(TypeError, match="baselines must have the inputs' dtype"):
        layer_integrated_gradients(model, IDS, "emb", T, baselines=torch.zeros(6))
    with pytest.raises(ValueError, match="baselines must be a number or have shape"):
        layer_integrated_gradients(model, IDS, "emb", T, baselines=torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="n_steps"):
        layer_integrated_gradients(model, IDS, "emb", T, n_steps=0)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_token_attributions_of_a_hugging_face_classifier(tiny_bert) -> None:
    """The documented use: a BERT classifier's embedding of the token ids, the logits taken
    from its output by a small wrapper module."""
    bert = tiny_bert(7)

    class Logits(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = bert

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.model(input_ids=ids).logits

    ids = torch.randint(5, 50, (2, 8), generator=_gen(8))
    attr, delta = layer_integrated_gradients(
        Logits(),
        ids,
        "model.bert.embeddings.word_embeddings",
        [0, 2],
        baselines=0,
        return_convergence_delta=True,
    )
    assert attr.shape == (2, 8, 16)
    assert delta.abs().max() < 1e-8  # 50 Gauss-Legendre nodes: complete to rounding here
    assert attr.sum(-1).abs().min() > 0  # every token gets a share


@pytest.mark.parametrize(
    ("dtype", "method"), [(torch.bfloat16, "gausslegendre"), (torch.float16, "riemann_trapezoid")]
)
def test_layer_integrated_gradients_sums_half_steps_wide(dtype: torch.dtype, method: str) -> None:
    # one step per chunk: a bfloat16 running sum over 300 Gauss-Legendre steps read 2.86 for 3;
    # the float64 result rounded to the dtype is expected
    model = nn.Sequential(nn.Linear(8, 8, bias=False), nn.Linear(8, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(8))
        model[1].weight.fill_(1.0)
    x = torch.full((2, 8), 3.0)
    wide = model.double()
    ref = layer_integrated_gradients(wide, x.double(), wide[0], 0, n_steps=300, method=method)
    half = model.to(dtype)
    got = layer_integrated_gradients(
        half, x.to(dtype), half[0], 0, n_steps=300, method=method, internal_batch_size=2
    )
    assert got.dtype == dtype
    torch.testing.assert_close(got, ref.to(dtype), rtol=0.0, atol=0.0)
