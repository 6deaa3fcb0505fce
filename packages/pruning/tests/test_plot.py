import pytest
import torch
from torch import nn

from neuronkit.common import new_figure
from neuronkit.pruning import LayerWidth, layer_widths, plot_widths, prune_model


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(10, 8)
        self.conv = nn.Conv1d(8, 16, 3, padding=1)
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.fc = nn.Linear(16, 12)
        self.head = nn.Linear(12, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.conv(self.embed(ids).transpose(1, 2)).transpose(1, 2)
        h = h + self.attn(h, h, h, need_weights=False)[0]
        return self.head(torch.relu(self.fc(h))).mean(1)


@pytest.fixture
def pair():
    model = _Net().eval()
    ids = torch.randint(0, 10, (2, 5), generator=torch.Generator().manual_seed(1))
    return model, prune_model(model, ids, 0.5, ignored_layers=["head"])


def test_layer_widths_pair_the_layers_by_name(pair):
    model, pruned = pair
    rows = layer_widths(model, pruned)
    assert [r.name for r in rows] == ["embed", "conv", "attn", "attn.out_proj", "fc", "head"]
    assert rows[0] == LayerWidth("embed", "Embedding", 8, pruned.embed.embedding_dim)
    by_name = {r.name: r for r in rows}
    assert by_name["conv"].before == 16
    assert by_name["conv"].after == pruned.conv.out_channels < 16
    assert by_name["attn"].after == pruned.attn.embed_dim
    assert (by_name["fc"].before, by_name["fc"].after) == (12, 6)
    assert (by_name["head"].before, by_name["head"].after) == (3, 3)  # kept whole
    assert [r.kind for r in rows][-2:] == ["Linear", "Linear"]


def test_plot_widths_draws_before_and_after(pair):
    model, pruned = pair
    rows = layer_widths(model, pruned)
    ax = plot_widths(model, pruned)
    before, after = ax.containers
    assert [bar.get_height() for bar in before] == [r.before for r in rows]
    assert [bar.get_height() for bar in after] == [r.after for r in rows]
    assert [t.get_text() for t in ax.get_xticklabels()] == [r.name for r in rows]
    kept = sum(r.after for r in rows) / sum(r.before for r in rows)
    assert ax.get_title() == f"6 layers, {kept:.0%} of their total width kept"
    _, axes = new_figure(1, 2)
    shares = plot_widths(model, pruned, fraction=True, ax=axes[1])
    assert shares is axes[1]
    assert [bar.get_height() for bar in shares.containers[0]] == [r.after / r.before for r in rows]
    assert not axes[0].containers


def test_bad_arguments(pair):
    model, pruned = pair
    with pytest.raises(TypeError, match="original must be Module"):
        layer_widths("model", pruned)
    with pytest.raises(TypeError, match="pruned must be Module"):
        layer_widths(model, None)
    with pytest.raises(ValueError, match="share no layer with a width"):
        layer_widths(model, nn.Sequential(nn.ReLU()))
    with pytest.raises(TypeError, match="fraction must be bool"):
        plot_widths(model, pruned, fraction="yes")
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes"):
        plot_widths(model, pruned, ax=object())


class _AttentionBlock(nn.Module):
    """Like a Hugging Face attention block (OPTAttention, GPTJAttention) or a whole model
    (BloomModel): not a layer, but it stores an ``embed_dim`` int."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.embed_dim = 8
        self.proj = nn.Linear(8, width)


def test_only_the_documented_layer_kinds_are_listed():
    rows = layer_widths(_AttentionBlock(8), _AttentionBlock(4))
    assert rows == [LayerWidth("proj", "Linear", 8, 4)]  # no row for the block itself
    mha = nn.MultiheadAttention(8, 2)
    assert layer_widths(mha, mha)[0] == LayerWidth("", "MultiheadAttention", 8, 8)
