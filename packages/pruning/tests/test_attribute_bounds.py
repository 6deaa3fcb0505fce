"""Channel splits and slices at module attributes: YOLOv8's ``split((self.c, self.c), 1)``,
ReXNet's ``x[:, 0:self.in_channels] + shortcut`` and DPN's ``x[:, :self.num_1x1_c]`` follow
the pruning (each piece its own channels, the attribute rewritten to the kept count before
it); a bound written in ``forward`` keeps the channels it counts over."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuronkit.pruning import DependencyGraph, Group, plan_pruning, prune, soft_prune


def _pruned(model: nn.Module, x: torch.Tensor) -> tuple[DependencyGraph, nn.Module]:
    """The graph and the hard-pruned model (50% by L2, the output kept), checked against
    the soft-pruning oracle (and that the oracle changed the output)."""
    graph = DependencyGraph(model, x)
    plan = plan_pruning(graph, "l2", 0.5)
    assert plan.num_removed() > 0
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    with torch.no_grad():
        y, y_hard, y_soft = model(x), hard(x), soft(x)
    torch.testing.assert_close(y_hard, y_soft, atol=1e-5, rtol=0)
    assert not torch.allclose(y_soft, y, atol=1e-4)
    return graph, hard


def _group_of(graph: DependencyGraph, producer: str) -> Group:
    return next(g for g in graph.groups if producer in g.producers)


class _SplitByAttribute(nn.Module):
    """YOLOv8's C2f: ``cv1(x).split((self.c, self.c), 1)`` (``single``: ``split(self.c, 1)``),
    the last piece through a conv, all pieces concatenated: ``[B, 3, H, W] -> [B, 4]``."""

    def __init__(self, single: bool = False) -> None:
        super().__init__()
        self.c, self.single = 6, single
        self.cv1 = nn.Conv2d(3, 2 * self.c, 1)
        self.m = nn.Conv2d(self.c, self.c, 3, padding=1)
        self.cv2 = nn.Conv2d(3 * self.c, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv1(x)
        pieces = list(y.split(self.c, 1) if self.single else y.split((self.c, self.c), 1))
        pieces.append(torch.relu(self.m(pieces[-1])))
        return self.cv2(torch.cat(pieces, 1)).mean((2, 3))


@pytest.mark.parametrize("single", [False, True], ids=["sizes", "one-size"])
def test_split_at_attribute_sizes_follows_the_pruning(single: bool) -> None:
    """Before 0.5.42 the graph called these channels prunable but left ``self.c`` as it was:
    the pruned model failed on its first call (``split_with_sizes expects ...``)."""
    torch.manual_seed(0)
    model = _SplitByAttribute(single).eval()
    graph, hard = _pruned(model, torch.randn(2, 3, 5, 5))
    assert _group_of(graph, "cv1").prunable
    assert graph.size_attributes.keys() == {("", "c")}
    # the two pieces share one size, so they are coupled position by position
    assert hard.c == hard.cv1.out_channels // 2 == hard.m.in_channels
    assert model.c == 6  # the original is untouched


class _TwoAttributeSplit(nn.Module):
    """``split([self.a, self.b], 1)`` with pieces of different widths (4 and 8), each through
    its own conv: ``[B, 3, H, W] -> [B, 4]``."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = 4, 8
        self.stem = nn.Conv2d(3, 12, 1)
        self.pa, self.pb = nn.Conv2d(4, 5, 1), nn.Conv2d(8, 5, 1)
        self.out = nn.Conv2d(5, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.stem(x).split([self.a, self.b], 1)
        return self.out(torch.relu(self.pa(a) + self.pb(b))).mean((2, 3))


def test_split_at_two_attributes_prunes_each_piece_alone() -> None:
    """Pieces sized by different attributes are independent; each attribute becomes the kept
    count of its own piece."""
    torch.manual_seed(0)
    model = _TwoAttributeSplit().eval()
    graph, hard = _pruned(model, torch.randn(2, 3, 5, 5))
    assert graph.size_attributes.keys() == {("", "a"), ("", "b")}
    assert (hard.a, hard.b) == (hard.pa.in_channels, hard.pb.in_channels)
    assert hard.a + hard.b == hard.stem.out_channels < 12


class _PartialResidual(nn.Module):
    """ReXNet's ``LinearBottleneck``: the block widens 6 -> 10 channels and adds its input to
    the first ``self.in_channels`` of them; ``bound="constant"`` writes ``6`` in ``forward``,
    ``bound="computed"`` uses ``self.in_channels`` in arithmetic too. ``[B, 3, H, W] -> [B,
    4]``."""

    def __init__(self, bound: str = "attribute") -> None:
        super().__init__()
        self.in_channels, self.bound = 6, bound
        self.stem = nn.Conv2d(3, 6, 1)
        self.conv = nn.Conv2d(6, 10, 3, padding=1)
        self.head = nn.Conv2d(10, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.stem(x)
        y = self.conv(torch.relu(shortcut))
        c = 6 if self.bound == "constant" else self.in_channels
        y = torch.cat([y[:, 0:c] + shortcut, y[:, c:]], dim=1)
        if self.bound == "computed":
            y = y * (self.in_channels + 1)
        return self.head(y).mean((2, 3))


def test_slice_at_an_attribute_bound_follows_the_pruning() -> None:
    """The residual channels and the block's own extra channels prune; ``in_channels``
    becomes the kept count of the residual channels (before 0.5.42 both froze: "slices
    channels at fixed bounds")."""
    torch.manual_seed(0)
    model = _PartialResidual().eval()
    graph, hard = _pruned(model, torch.randn(2, 3, 5, 5))
    assert all(g.prunable for g in graph.groups if "head" not in g.producers)
    assert graph.size_attributes.keys() == {("", "in_channels")}
    assert hard.in_channels == hard.stem.out_channels
    assert hard.conv.out_channels < 10


def test_slice_at_an_attribute_that_forward_computes_with_freezes() -> None:
    """An attribute that ``forward`` also computes with stays as it was: the channels it cuts
    freeze."""
    torch.manual_seed(0)
    model = _PartialResidual("computed").eval()
    graph = DependencyGraph(model, torch.randn(2, 3, 5, 5))
    conv = _group_of(graph, "conv")
    assert not conv.prunable
    assert "attribute in_channels, and other ops also read it" in conv.reason
    assert not graph.size_attributes


def test_slice_at_a_fixed_bound_keeps_the_channels_before_it() -> None:
    """``y[:, 0:6] + shortcut`` with 6 written in ``forward``: the 6 channels before the bound
    stay (and the shortcut's, added to them), so the bound still cuts between the same
    channels; the 4 after it prune (before 0.5.51 all froze: "slices channels at fixed
    bounds")."""
    torch.manual_seed(0)
    graph, hard = _pruned(_PartialResidual("constant").eval(), torch.randn(2, 3, 5, 5))
    assert hard.stem.out_channels == 6 < hard.conv.out_channels < 10
    assert not graph.size_attributes


class _FusedThreeWay(nn.Module):
    """Phi-3's fused ``qkv``: one conv's 12 channels cut at ``self.a`` and ``self.a +
    self.b`` into pieces of 4, 2 x 2 (``self.b`` counts pairs: ``self.b * 2``) and 4 channels,
    each through its own conv. ``bound="offset"`` cuts at ``self.a + 1`` instead (a sum with a
    literal). ``[B, 3, H, W] -> [B, 4]``."""

    def __init__(self, bound: str = "sum") -> None:
        super().__init__()
        self.a, self.b, self.bound = 4, 2, bound
        self.stem = nn.Conv2d(3, 12, 1)
        self.pa, self.pb, self.pc = (nn.Conv2d(n, 5, 1) for n in (4, 4, 4))
        self.out = nn.Conv2d(5, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        cut = self.a + 1 if self.bound == "offset" else self.a + self.b * 2
        a, b, c = y[:, : self.a], y[:, self.a : cut], y[:, cut:]
        if self.bound == "offset":
            b = F.pad(b, (0, 0, 0, 0, 0, 3))
            c = c[:, :4]
        return self.out(torch.relu(self.pa(a) + self.pb(b) + self.pc(c))).mean((2, 3))


def test_slice_at_a_sum_of_attributes_prunes_each_piece() -> None:
    """A bound that adds attributes (or multiples of one) cuts the channels before it into
    one run per term: each attribute becomes the kept count of its own run (``self.b`` in
    whole pairs) and the last piece follows the channels after the bound."""
    torch.manual_seed(0)
    model = _FusedThreeWay().eval()
    graph, hard = _pruned(model, torch.randn(2, 3, 5, 5))
    assert _group_of(graph, "stem").prunable
    assert graph.size_attributes.keys() == {("", "a"), ("", "b")}
    assert (hard.a, 2 * hard.b) == (hard.pa.in_channels, hard.pb.in_channels)
    assert hard.a + 2 * hard.b + hard.pc.in_channels == hard.stem.out_channels < 12


def test_slice_at_an_attribute_plus_a_literal_keeps_what_it_cuts() -> None:
    """``y[:, self.a : self.a + 1]``: the sum is no attribute's size, so ``self.a`` stays and
    the channels before the bound are kept; the ones no piece reads still prune."""
    torch.manual_seed(0)
    graph, hard = _pruned(_FusedThreeWay("offset").eval(), torch.randn(2, 3, 5, 5))
    assert _group_of(graph, "stem").prunable
    assert not graph.size_attributes
    assert hard.a == 4
    assert (hard.pa.in_channels, hard.pb.in_channels, hard.pc.in_channels) == (4, 4, 4)


class _DualPath(nn.Module):
    """DPN's ``DualPathBlock``: two tensors cut at ``self.num_1x1_c``; the first parts added
    (residual path), the rest concatenated (dense path): ``[B, 3, H, W] -> [B, 4]``."""

    def __init__(self) -> None:
        super().__init__()
        self.num_1x1_c = 6
        self.proj = nn.Conv2d(3, 9, 1)  # 6 residual + 3 dense channels
        self.body = nn.Conv2d(9, 10, 3, padding=1)  # 6 residual + 4 new dense channels
        self.head = nn.Conv2d(13, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.proj(x)
        y = self.body(torch.relu(s))
        resid = s[:, : self.num_1x1_c] + y[:, : self.num_1x1_c]
        out = torch.cat([resid, s[:, self.num_1x1_c :], y[:, self.num_1x1_c :]], dim=1)
        return self.head(torch.relu(out)).mean((2, 3))


def test_dual_path_slices_at_one_attribute() -> None:
    torch.manual_seed(0)
    model = _DualPath().eval()
    graph, hard = _pruned(model, torch.randn(2, 3, 5, 5))
    assert all(g.prunable for g in graph.groups if "head" not in g.producers)
    assert hard.num_1x1_c < 6
    assert hard.head.in_channels == hard.proj.out_channels + hard.body.out_channels - hard.num_1x1_c


def test_slice_with_a_step_freezes() -> None:
    class Strided(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 8, 1), nn.Conv2d(4, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(self.a(x)[:, ::2])

    graph = DependencyGraph(Strided().eval(), torch.randn(1, 3, 4, 4))
    a = _group_of(graph, "a")
    assert not a.prunable
    assert "with a step" in a.reason


class _KeyBiasZeroed(nn.Module):
    """Swin-V2's attention bias: ``b = qkv.bias.clone(); b[n // 3 : 2 * (n // 3)].zero_()``
    with ``n = b.numel()`` (``odd``: a bound ``n // 3 + 1``), then ``F.linear(x, qkv.weight,
    b)`` read by one layer over all 12 channels: ``[B, N, 5] -> [B, N, 3]``."""

    def __init__(self, odd: bool = False) -> None:
        super().__init__()
        self.odd = odd
        self.embed = nn.Linear(5, 8)
        self.qkv = nn.Linear(8, 12)
        self.out = nn.Linear(12, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.qkv.bias.clone()
        length = bias.numel() // 3
        bias[length + 1 if self.odd else length : 2 * length].zero_()
        return self.out(torch.relu(F.linear(self.embed(x), self.qkv.weight, bias)))


def test_slice_at_fractions_of_the_count_couples_the_parts() -> None:
    """The thirds are coupled position by position, so the bounds computed again from the
    pruned count still zero the keys' bias (without the coupling the oracle would differ)."""
    torch.manual_seed(0)
    model = _KeyBiasZeroed().eval()
    graph, hard = _pruned(model, torch.randn(2, 4, 5))
    qkv = next(g for g in graph.groups if "qkv" in g.producers)
    assert qkv.prunable
    assert qkv.size == 4  # 12 channels in 3 coupled parts
    assert hard.qkv.weight.shape[0] == 6


def test_slice_at_other_traced_bounds_freezes() -> None:
    graph = DependencyGraph(_KeyBiasZeroed(odd=True).eval(), torch.randn(2, 4, 5))
    qkv = next(g for g in graph.groups if "qkv" in g.producers)
    assert not qkv.prunable
    assert "traced bounds" in qkv.reason


class _HeadsPerGroup(nn.Module):
    """Falcon-40B's grouped heads: ``proj(x).view(B, T, -1, self.heads // self.groups, d)``
    (2 groups of 2 heads of 3 channels), the groups' heads flattened together and merged back
    with ``reshape(B, T, self.heads * d)``: ``[B, T, 5] -> [B, T, 3]``. ``escape``: ``forward``
    also reads ``self.groups`` (``"float"``: as a Python number; ``"op"``: as an argument of
    a recorded op)."""

    def __init__(self, escape: str = "") -> None:
        super().__init__()
        self.heads, self.groups, self.d, self.escape = 4, 2, 3, escape
        self.proj = nn.Linear(5, 12)
        self.out = nn.Linear(12, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        h = self.proj(x).view(b, t, -1, self.heads // self.groups, self.d).flatten(2, 3)
        h = torch.relu(h).reshape(b, t, self.heads * self.d)
        if self.escape == "float":
            h = h * float(self.groups)
        elif self.escape == "op":
            h = h * self.groups
        return self.out(h)


def test_quotient_of_two_attributes_prunes_whole_groups() -> None:
    """``self.heads // self.groups`` stays 2: a group's heads prune together, ``heads``
    becomes the kept count and ``groups`` the kept count over 2 (before 0.5.51 both were
    constants of ``forward`` and the heads froze)."""
    torch.manual_seed(0)
    graph, hard = _pruned(_HeadsPerGroup().eval(), torch.randn(2, 4, 5))
    proj = _group_of(graph, "proj")
    assert proj.size == 2  # the groups, 6 rows each
    assert graph.quotient_attributes == {("", "groups"): ("heads", 2)}
    assert (hard.heads, hard.groups, hard.proj.out_features) == (2, 1, 6)


@pytest.mark.parametrize("escape", ["float", "op"])
def test_quotient_whose_denominator_forward_reads_freezes(escape: str) -> None:
    graph = DependencyGraph(_HeadsPerGroup(escape).eval(), torch.randn(2, 4, 5))
    proj = _group_of(graph, "proj")
    assert not proj.prunable
    assert "forward also computes with it" in proj.reason
    assert not graph.quotient_attributes


class _QueriesAndOneKeyValue(nn.Module):
    """transformers 5.25's Falcon-7B, reduced: ``proj(x).view(B, T, -1, d).split([self.heads,
    1, 1], dim=-2)`` into 4 query heads and one key and one value head of 2 channels, the
    key and value broadcast to every query head (``unflatten``: the heads then split as
    ``unflatten(-2, (self.heads, 3))``, each head's three together): ``[B, T, 5] ->
    [B, T, 3]``."""

    def __init__(self, unflatten: bool = False) -> None:
        super().__init__()
        self.heads, self.d, self.unflatten = 4, 2, unflatten
        self.proj = nn.Linear(5, 24 if unflatten else 12)
        self.out = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        h = self.proj(x).view(b, t, -1, self.d)
        if self.unflatten:
            q, k, v = h.unflatten(-2, (self.heads, 3)).unbind(-2)
        else:
            q, k, v = h.split([self.heads, 1, 1], dim=-2)
        y = torch.relu(q * k) + v  # [B, T, heads, d]
        return self.out(y.reshape(b, t, self.heads * self.d))


@pytest.mark.parametrize("unflatten", [False, True])
def test_split_at_an_attribute_and_literals_keeps_the_literal_pieces(unflatten: bool) -> None:
    """``split([self.heads, 1, 1])``: the query heads prune (``heads`` rewritten), the key and
    value head stay; ``unflatten(-2, (self.heads, 3))``: whole heads prune (before 0.5.51
    both froze)."""
    torch.manual_seed(0)
    graph, hard = _pruned(_QueriesAndOneKeyValue(unflatten).eval(), torch.randn(2, 4, 5))
    assert _group_of(graph, "proj").prunable
    assert hard.heads == 2
    assert hard.proj.out_features == (12 if unflatten else 8)
