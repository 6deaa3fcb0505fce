"""The MAC counter against hand counts."""

import warnings

import pytest
import torch
from torch import nn

from neuronkit.pruning import SmallViT, count_macs, count_params


def test_linear_and_conv_counts() -> None:
    assert count_macs(nn.Linear(5, 7), torch.randn(3, 5)) == 3 * 5 * 7
    conv = nn.Conv2d(4, 6, 3, padding=1, groups=2)
    assert count_macs(conv, torch.randn(1, 4, 5, 5)) == 6 * 25 * 2 * 9
    assert count_params(nn.Linear(5, 7)) == 42


def test_attention_products_count() -> None:
    model = SmallViT(dim=16, heads=2, depth=1, mlp_ratio=1, image_size=8, patch=4).eval()
    n, e = 5, 16  # 4 patches + class token
    expected = (
        4 * 3 * 16 * 16  # patch embedding conv
        + 4 * n * e * e  # q, k, v, out projections
        + 2 * n * n * e  # scores and weighted values
        + 2 * n * e * e  # MLP
        + 10 * e  # head on the class token
    )
    assert count_macs(model, torch.randn(1, 3, 8, 8)) == expected


def test_bad_inputs() -> None:
    with pytest.raises(TypeError, match="model"):
        count_macs("x", torch.randn(1))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="example_inputs"):
        count_macs(nn.Linear(2, 2), 3)


def test_transposed_conv_counts() -> None:
    # each of the 1 x 4 x 4 x 4 input elements feeds 6 x 2 x 2 outputs (stride 2, no overlap)
    layer = nn.ConvTranspose2d(4, 6, 2, stride=2, bias=False)
    assert count_macs(layer, torch.randn(1, 4, 4, 4)) == 4 * 4 * 4 * 6 * 2 * 2
    grouped = nn.ConvTranspose2d(4, 6, 3, groups=2)
    assert count_macs(grouped, torch.randn(1, 4, 5, 5)) == 4 * 5 * 5 * 3 * 3 * 3


def test_attention_with_separate_key_and_value_dims_counts() -> None:
    attn = nn.MultiheadAttention(8, 2, kdim=5, vdim=3, batch_first=True)
    q, k, v = torch.randn(2, 4, 8), torch.randn(2, 6, 5), torch.randn(2, 6, 3)
    # projections 2 x (4 x 8 x 8 + 6 x 8 x 5 + 6 x 8 x 3), scores and mixing 2 x 2 x 4 x 6 x 8,
    # output projection 2 x 4 x 8 x 8
    expected = 2 * (4 * 8 * 8 + 6 * 8 * 5 + 6 * 8 * 3) + 2 * 2 * 4 * 6 * 8 + 2 * 4 * 8 * 8
    assert count_macs(attn, (q, k, v)) == expected


class _Einsum(nn.Module):
    def __init__(self, equation: str) -> None:
        super().__init__()
        self.equation = equation
        self.weight = nn.Parameter(torch.randn(4, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum(self.equation, x, self.weight)


class _BilinearByKeyword(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(6, 4, 5))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return nn.functional.bilinear(a, b, weight=self.weight)


class _Chain(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ij,jk,kl->il", [a, b, c])


class _Packed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(5, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # lengths 4 and 2: 6 tokens
        return self.rnn(nn.utils.rnn.pack_padded_sequence(x, torch.tensor([4, 2])))[1]


def test_einsum_bilinear_and_recurrent_counts() -> None:
    # these used to count 0
    x = torch.randn(2, 3, 4)
    for equation in ("bij,jk->bik", "...j,jk->...k", "bij,jk"):
        assert count_macs(_Einsum(equation), x) == 2 * 3 * 4 * 5
    chain = (torch.randn(2, 3), torch.randn(3, 4), torch.randn(4, 5))
    assert count_macs(_Chain(), chain) == 2 * 3 * 4 + 2 * 4 * 5  # (ab) first, then (ab)c
    assert count_macs(nn.Bilinear(4, 5, 6), (torch.randn(2, 4), torch.randn(2, 5))) == 2 * 120
    assert count_macs(_BilinearByKeyword(), (torch.randn(2, 4), torch.randn(2, 5))) == 2 * 120
    h, i, tokens = 7, 5, 3 * 2
    lstm = nn.LSTM(i, h, num_layers=2, bidirectional=True)  # layer 2 reads both directions
    per_token = 2 * 4 * h * (i + h) + 2 * 4 * h * (2 * h + h)
    assert count_macs(lstm, torch.randn(3, 2, i)) == tokens * per_token
    with warnings.catch_warnings():  # some builds: "LSTM with projections ... oneDNN"
        warnings.simplefilter("ignore", UserWarning)
        projected = count_macs(nn.LSTM(i, h, proj_size=3), torch.randn(3, 2, i))
    assert projected == tokens * (4 * h * (i + 3) + 3 * h)
    assert count_macs(nn.GRU(i, h, batch_first=True), torch.randn(2, 3, i)) == tokens * 3 * h * 12
    assert count_macs(nn.RNN(i, h), torch.randn(3, i)) == 3 * h * 12  # unbatched
    assert count_macs(nn.LSTMCell(i, h), torch.randn(2, i)) == 2 * 4 * h * 12
    assert count_macs(_Packed(), torch.randn(4, 2, i)) == 6 * 3 * h * 12


class _KeywordProducts(nn.Module):
    """Products whose operands are passed by keyword (BLOOM: ``alibi.baddbmm(batch1=q,
    batch2=k)``; counting them crashed with an IndexError)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = torch.zeros(x.shape[0], x.shape[1], x.shape[1])
        scores = bias.baddbmm(batch1=x, batch2=x.transpose(1, 2), alpha=0.5)  # [B, T, T]
        attn = torch.nn.functional.scaled_dot_product_attention(query=x, key=x, value=x)
        return torch.matmul(input=scores, other=attn)


def test_products_with_keyword_operands() -> None:
    b, t, d = 2, 3, 4
    sdpa = 2 * b * t * d * t  # q @ k^T and attn @ v
    assert (
        count_macs(_KeywordProducts(), torch.randn(b, t, d)) == b * t * t * d + sdpa + b * t * d * t
    )


class _Call(nn.Module):
    def __init__(self, fn) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


W, B3 = torch.randn(8, 16), torch.randn(3, 16, 5)
CHAIN = min(8 * 16 * 4 + 8 * 4 * 2, 16 * 4 * 2 + 8 * 16 * 2)  # the cheaper order


@pytest.mark.parametrize(
    ("fn", "macs"),
    [
        (lambda x: torch.mv(W, x), 128),
        (lambda x: W.mv(x), 128),
        (lambda x: torch.linalg.matmul(W, x), 128),
        (lambda x: torch.addmv(torch.zeros(8), W, x), 128),
        (lambda x: torch.dot(x, x), 16),
        (lambda x: torch.inner(W, W), 8 * 8 * 16),
        (lambda x: torch.tensordot(B3, torch.randn(16, 5, 7), dims=2), 3 * 16 * 5 * 7),
        (lambda x: torch.addbmm(torch.zeros(16, 16), B3, B3.transpose(1, 2)), 3 * 16 * 5 * 16),
        (lambda x: torch.linalg.multi_dot([W, torch.randn(16, 4), torch.randn(4, 2)]), CHAIN),
        (lambda x: torch.linalg.multi_dot([x, W.T, torch.randn(8, 2)]), 16 * 8 + 8 * 2),
    ],
)
def test_every_product_form_counts(fn, macs) -> None:  # type: ignore[no-untyped-def]
    assert count_macs(_Call(fn), torch.randn(16)) == macs


def test_counting_gives_every_submodule_its_own_mode_back() -> None:
    """A BatchNorm frozen in eval inside a training model stays in eval (``model.train()``
    after counting would have switched it back to batch statistics)."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).train()
    model[1].eval()
    count_macs(model, torch.randn(1, 3, 8, 8))
    assert [m.training for m in model] == [True, False, True]
    assert model.training


def test_linear_without_inputs_counts_zero() -> None:
    """An nn.Linear with in_features = 0 is a valid layer (it outputs its bias) doing no MAC;
    the count used to divide by in_features."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: initializing a zero-element weight
        empty_in, empty_out = nn.Linear(0, 3), nn.Linear(4, 0)
    assert count_macs(empty_in, torch.zeros(2, 0)) == 0
    assert count_macs(empty_out, torch.zeros(2, 4)) == 0
    assert count_macs(nn.Linear(5, 7), torch.randn(2, 3, 5)) == 6 * 5 * 7


def test_attention_value_head_size_differs_from_query() -> None:
    # q @ k^T costs L S E, attn @ v costs L S Ev: with Ev != E (multi-head latent attention)
    # the counter used 2 L S E for both
    b, h, lq, s, e, ev = 2, 3, 4, 5, 6, 7
    q, k, v = torch.randn(b, h, lq, e), torch.randn(b, h, s, e), torch.randn(b, h, s, ev)
    assert count_macs(_Attention(), (q, k, v)) == b * h * lq * s * (e + ev)
    assert count_macs(_Attention(), (q, k, k)) == 2 * b * h * lq * s * e  # Ev = E: as before


class _Attention(nn.Module):
    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.scaled_dot_product_attention(q, k, v)
