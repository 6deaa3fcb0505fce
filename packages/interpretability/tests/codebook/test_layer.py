"""CodebookLayer: cosine top-k, mean/sum of codes, straight-through, dead codes, record/force."""

from __future__ import annotations

import copy
import io
import json
import pickle

import numpy as np
import pytest
import torch

from neuronkit.interpretability.codebook.layer import CodebookLayer, codebook_lookup, cosine_topk


def _layer(**kw: object) -> CodebookLayer:
    kw = {"k": 2, "layer_norm": False, "seed": 0, **kw}
    return CodebookLayer(8, 16, **kw)  # type: ignore[arg-type]


def test_cosine_topk_is_scale_invariant_and_matches_reference() -> None:
    g = torch.Generator().manual_seed(0)
    x, cb = torch.randn(5, 7, 8, generator=g), torch.randn(16, 8, generator=g)
    ids, sim = cosine_topk(x, cb, 3)
    ref = torch.nn.functional.cosine_similarity(x[..., None, :], cb, dim=-1)
    ref_vals, ref_ids = ref.topk(3, dim=-1)
    torch.testing.assert_close(ids, ref_ids)
    torch.testing.assert_close(sim, ref_vals)
    # cosine, not inner product: rescaling codes does not change the choice
    ids2, _ = cosine_topk(x, cb * torch.rand(16, 1, generator=g).add(0.1) * 10, 3)
    torch.testing.assert_close(ids, ids2)


def test_output_is_mean_or_sum_of_chosen_codes() -> None:
    layer = _layer()
    x = torch.randn(3, 4, 8, generator=torch.Generator().manual_seed(1))
    out = layer(x)
    ids = layer.last_codes
    assert ids is not None
    assert ids.shape == (3, 4, 2)
    torch.testing.assert_close(out, layer.codebook[ids].mean(-2))
    summed = _layer(reduce="sum")
    torch.testing.assert_close(summed(x), summed.codebook[summed.last_codes].sum(-2))
    blocked = codebook_lookup(layer.codebook.detach(), torch.tensor([[3, -1]]))
    torch.testing.assert_close(blocked, layer.codebook.detach()[[3]] / 2)


def test_straight_through_gradient_and_codebook_gradient() -> None:
    layer = _layer()
    x = torch.randn(2, 5, 8, requires_grad=True)
    w = torch.randn(2, 5, 8)
    (layer(x) * w).sum().backward()
    assert x.grad is not None
    torch.testing.assert_close(x.grad, w)  # identity Jacobian through the bottleneck
    assert layer.codebook.grad is not None
    used = torch.zeros(16, dtype=torch.bool)
    used[layer.last_codes.flatten()] = True
    assert layer.codebook.grad[used].abs().sum() > 0
    assert layer.codebook.grad[~used].abs().sum() == 0


def test_reconstruction_loss_trains_only_the_codebook() -> None:
    layer = _layer()
    x = torch.randn(4, 8, requires_grad=True)
    out = layer(x)
    loss = layer.reconstruction_loss()
    torch.testing.assert_close(loss, (out - x).pow(2).sum(-1).mean())
    loss.backward()
    assert x.grad is None or x.grad.abs().sum() == 0
    assert layer.codebook.grad is not None
    assert layer.codebook.grad.abs().sum() > 0


def test_the_layer_does_not_keep_the_upstream_graph() -> None:
    """Between calls the layer holds its last input detached: the network's graph before it
    (every tensor saved for backward) is freed when the caller drops the output."""
    import weakref

    layer = _layer()
    x = torch.randn(4, 8, requires_grad=True)
    hidden = torch.nn.functional.linear(x, torch.eye(8, requires_grad=True))
    alive = weakref.ref(hidden)
    out = layer(hidden)
    del hidden, out
    assert alive() is None
    assert layer.reconstruction_loss().requires_grad  # the codebook's own graph


@pytest.mark.parametrize("groups", [1, 2])
def test_deepcopy_after_a_training_step_keeps_the_loss_and_its_gradients(groups: int) -> None:
    # the last call's activations are tensors of its autograd graph, which deepcopy refuses
    # ("only graph leaves support the deepcopy protocol"): a copy leaves them out, and the
    # original's loss and gradients are those of a twin layer never copied
    x = torch.randn(3, 4, 8, generator=torch.Generator().manual_seed(5))
    w = torch.randn(3, 4, 8, generator=torch.Generator().manual_seed(6))

    def step(net: CodebookLayer, copy_after_forward: bool) -> tuple[torch.Tensor, object]:
        loss = (net(x) * w).sum() + net.reconstruction_loss()
        copied = copy.deepcopy(net) if copy_after_forward else None
        loss.backward()
        return loss.detach(), copied

    layer, twin = (CodebookLayer(8, 16, k=2, groups=groups) for _ in range(2))
    loss, copied = step(layer, True)
    want, _ = step(twin, False)
    torch.testing.assert_close(loss, want, rtol=0, atol=0)
    for got, ref in zip(layer.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(got.grad, ref.grad, rtol=0, atol=0)
    # the copy: nothing run yet (a zero loss), then the loss and gradients of the original
    assert isinstance(copied, CodebookLayer)
    assert float(copied.reconstruction_loss().detach()) == 0.0
    torch.testing.assert_close(copied.last_codes, layer.last_codes)
    again, _ = step(copied, False)
    torch.testing.assert_close(again, loss, rtol=0, atol=0)
    for got, ref in zip(copied.parameters(), layer.parameters(), strict=True):
        torch.testing.assert_close(got.grad, ref.grad, rtol=0, atol=0)


def test_a_copy_made_in_a_record_or_force_block_starts_without_them() -> None:
    layer = _layer()
    x = torch.randn(4, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        free = layer(x)
        with layer.record() as store, layer.force(3):
            copied = copy.deepcopy(layer)
        # the blocks ended on the original only; the copy must not stay forced or recording
        torch.testing.assert_close(copied(x), free)
    assert store == []
    assert copied._records == []


def test_a_layer_pickled_before_sync_ranks_existed_loads_with_the_syncing_default() -> None:
    layer = _layer(sync_ranks=False)
    x = torch.randn(4, 8, generator=torch.Generator().manual_seed(2))
    del layer.__dict__["sync_ranks"]  # the state a 0.5.29 pickle holds
    loaded = pickle.loads(pickle.dumps(layer))
    assert loaded.sync_ranks is True
    assert "sync_ranks" not in repr(loaded)
    loaded.train()
    loaded(x)  # a training-mode call reads sync_ranks
    assert int(loaded.counts.sum()) == 4 * 2


def test_state_dict_resumes_dead_code_replacement_schedule() -> None:
    # a layer loaded from a checkpoint mid-way between replacements continues the schedule (the
    # forward calls since the last replacement, the replacement draws) exactly as the saved one
    xs = [torch.randn(6, 8, generator=torch.Generator().manual_seed(i)) for i in range(9)]
    saved = CodebookLayer(8, 32, replace_after_steps=3, seed=1).train()
    with torch.no_grad():
        for x in xs[:4]:
            saved(x)
    buffer = io.BytesIO()
    torch.save(saved.state_dict(), buffer)
    buffer.seek(0)
    loaded = CodebookLayer(8, 32, replace_after_steps=3, seed=1).train()
    loaded.load_state_dict(torch.load(buffer, weights_only=True))
    with torch.no_grad():
        for x in xs[4:]:
            saved(x), loaded(x)
    torch.testing.assert_close(loaded.codebook, saved.codebook, rtol=0, atol=0)
    assert torch.equal(loaded.counts, saved.counts)
    assert loaded.replaced_total == saved.replaced_total > 0
    # a state dict without the bookkeeping (saved by an older version) still loads strictly
    old = {k: v for k, v in saved.state_dict().items() if k != "_extra_state"}
    CodebookLayer(8, 32, replace_after_steps=3, seed=1).load_state_dict(old, strict=True)
    # JSON, as neuronkit.common.save_weights keeps extra state
    via_json = CodebookLayer(8, 32, replace_after_steps=3, seed=1)
    via_json.set_extra_state(json.loads(json.dumps(saved.get_extra_state())))
    assert torch.equal(via_json._generator.get_state(), saved._generator.get_state())


def test_counts_and_dead_code_replacement() -> None:
    layer = CodebookLayer(8, 16, k=1, layer_norm=False, replace_after_steps=3, replace_rho=0.0)
    with torch.no_grad():
        layer.codebook.data[:] = (
            torch.eye(16, 8)[torch.arange(16) % 8] * torch.arange(1, 17)[:, None]
        )
    x = torch.zeros(10, 8)
    x[:, 0] = 1.0  # only codes pointing at e_0 (0 and 8) can win
    layer.train()
    layer(x)
    assert int(layer.counts.sum()) == 10
    assert layer.active_codes == 1
    layer(x)
    layer(x)  # third step: replacement of the 15 dead codes by rows of x
    assert layer.replaced_total == 15
    assert int(layer.counts.sum()) == 0
    dead = [i for i in range(16) if i != int(layer.last_codes[0, 0])]
    torch.testing.assert_close(layer.codebook.data[dead], x[:1].expand(15, 8))
    layer.eval()
    layer(x)  # no replacement in eval mode
    assert layer.replaced_total == 15


def test_initialize_from_draws_inputs() -> None:
    layer = CodebookLayer(8, 4, replace_rho=0.0, layer_norm=False)
    x = torch.arange(80.0).reshape(10, 8)
    layer.initialize_from(x)
    rows = {tuple(r.tolist()) for r in x}
    assert all(tuple(r.tolist()) in rows for r in layer.codebook.data)


def test_record_and_force() -> None:
    layer = _layer()
    x = torch.randn(2, 6, 8)
    with layer.record() as rec:
        layer(x)
        layer(x[:, :3])
    assert [r.shape for r in rec] == [(2, 6, 2), (2, 3, 2)]
    layer(x)
    assert len(rec) == 2  # recording stopped
    with layer.force([5, 7], positions=[-1, 0]):
        out = layer(x)
    ids = layer.last_codes
    assert ids[:, [0, -1]].tolist() == [[[5, 7], [5, 7]]] * 2
    expected = layer.codebook[[5, 7]].mean(0)
    torch.testing.assert_close(out[:, -1], expected.expand(2, 8))
    with layer.force(torch.tensor([[1], [2]])):  # one code per sequence, second slot blocked
        out = layer(x)
    assert layer.last_codes[0, :, 0].eq(1).all()
    assert layer.last_codes[1, :, 0].eq(2).all()
    torch.testing.assert_close(out[1, 3], layer.codebook[2] / 2)
    after = layer(x)
    assert not torch.allclose(after[:, -1], expected)


def test_disabled_layer_is_identity() -> None:
    layer = _layer()
    layer.enabled = False
    x = torch.randn(3, 8)
    assert layer(x) is x


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="k must be <= 16"):
        CodebookLayer(8, 16, k=17)
    with pytest.raises(ValueError, match="reduce"):
        CodebookLayer(8, 16, reduce="max")
    with pytest.raises(TypeError, match="layer_norm"):
        CodebookLayer(8, 16, layer_norm=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="sync_ranks"):
        CodebookLayer(8, 16, sync_ranks="no")  # type: ignore[arg-type]
    layer = _layer()
    with pytest.raises(ValueError, match=r"x must have shape \[\.\.\., 8\]"):
        layer(torch.randn(2, 7))
    with pytest.raises(ValueError, match="codes must be ids"), layer.force([16]):
        pass
    with pytest.raises(ValueError, match="1 <= k <= 2"), layer.force([1, 2, 3]):
        pass
    with pytest.raises(ValueError, match="x must be finite"):
        layer.initialize_from(torch.full((3, 8), float("nan")))
    with pytest.raises(ValueError, match="codebook must have 2 dimensions"):
        cosine_topk(torch.randn(3, 8), torch.randn(8))


def test_nested_forcing_at_different_positions() -> None:
    layer = _layer(k=1)
    x = torch.randn(2, 5, 8)
    with layer.force(torch.tensor([[1], [2]]), positions=[0]), layer.force([3], positions=[-1]):
        layer(x)
        ids = layer.last_codes
    assert ids is not None
    assert ids[:, 0, 0].tolist() == [1, 2]
    assert ids[:, -1, 0].tolist() == [3, 3]
    with layer.record() as outer, layer.record() as inner:
        layer(x)
    assert len(outer) == len(inner) == 1
    assert not layer._forced
    assert not layer._records


def _split_layers(grouped: CodebookLayer) -> list[CodebookLayer]:
    """G plain layers holding the grouped layer's codebooks and layer-norm weights."""
    layers = []
    for g in range(grouped.groups):
        layer = CodebookLayer(grouped.group_dim, grouped.num_codes, k=grouped.k)
        with torch.no_grad():
            layer.codebook.copy_(grouped.codebook[g])
            layer.norm.weight.copy_(grouped.norm.weight[g])  # type: ignore[index]
            layer.norm.bias.copy_(grouped.norm.bias[g])  # type: ignore[index]
        layers.append(layer)
    return layers


def test_groups_match_one_codebook_per_chunk() -> None:
    torch.manual_seed(0)
    grouped = CodebookLayer(12, 10, k=2, groups=3, seed=1)
    with torch.no_grad():  # non-trivial layer-norm weights, different per group
        grouped.norm.weight.uniform_(0.5, 1.5)  # type: ignore[operator]
        grouped.norm.bias.uniform_(-0.2, 0.2)  # type: ignore[operator]
    assert grouped.codebook.shape == (3, 10, 4)
    assert grouped.counts.shape == (3, 10)
    parts = _split_layers(grouped)
    x = torch.randn(2, 5, 12, requires_grad=True)
    w = torch.randn(2, 5, 12)
    out = grouped(x)
    ids = grouped.last_codes
    assert ids is not None
    assert ids.shape == (2, 5, 3, 2)
    (out * w).sum().backward()
    xs = x.detach().chunk(3, dim=-1)
    grads = []
    for g, layer in enumerate(parts):
        xg = xs[g].clone().requires_grad_(True)
        ref = layer(xg)
        torch.testing.assert_close(out[..., 4 * g : 4 * g + 4], ref)
        assert torch.equal(ids[..., g, :], layer.last_codes)
        (ref * w[..., 4 * g : 4 * g + 4]).sum().backward()
        torch.testing.assert_close(grouped.codebook.grad[g], layer.codebook.grad)
        assert torch.equal(grouped.counts[g], layer.counts)
        grads.append(xg.grad)
    torch.testing.assert_close(x.grad, torch.cat(grads, -1))  # straight-through per group
    # the reconstruction loss is the sum of the groups' losses
    sum_parts = sum(layer.reconstruction_loss() for layer in parts)
    torch.testing.assert_close(grouped.reconstruction_loss(), sum_parts)


def test_groups_force_record_and_replace() -> None:
    layer = CodebookLayer(8, 6, k=1, groups=2, layer_norm=False, replace_rho=0.0)
    x = torch.randn(3, 4, 8)
    with layer.record() as rec, layer.force(torch.tensor([[1], [5]]), positions=[-1]):
        out = layer(x)
    assert rec[0].shape == (3, 4, 2, 1)
    assert rec[0][:, -1, :, 0].tolist() == [[1, 5]] * 3
    expected = torch.cat([layer.codebook[0, 1], layer.codebook[1, 5]])
    torch.testing.assert_close(out[:, -1], expected.expand(3, 8))
    per_seq = torch.tensor([[[0], [1]], [[2], [3]], [[4], [5]]])  # [B, G, k]
    with layer.force(per_seq, positions=torch.tensor([0, 2, -1]), per_sequence=True):
        layer(x)
    ids = layer.last_codes
    assert ids is not None
    assert ids[0, 0, :, 0].tolist() == [0, 1]
    assert ids[1, 2, :, 0].tolist() == [2, 3]
    assert ids[2, 3, :, 0].tolist() == [4, 5]
    unforced = layer(x)
    torch.testing.assert_close(out[:, :-1], unforced[:, :-1])  # only the forced tokens moved
    # dead codes: group 0 chose only codes seen in this batch, the rest are replaced per group
    layer.reset_counts()
    layer(x)
    dead = int((layer.counts == 0).sum())
    assert layer.replace_dead_codes(x) == dead
    assert layer.replaced_total == dead
    assert layer.active_codes == 0


def test_per_sequence_positions_force_one_token_per_sequence() -> None:
    layer = _layer(k=1)
    x = torch.randn(3, 5, 8)
    base = layer(x).detach()
    with layer.force(torch.tensor([[1], [2], [3]]), positions=[1, 4, -2], per_sequence=True):
        out = layer(x)
    ids = layer.last_codes
    assert ids is not None
    assert [int(ids[0, 1, 0]), int(ids[1, 4, 0]), int(ids[2, 3, 0])] == [1, 2, 3]
    changed = ~torch.isclose(out, base).all(-1)
    keep = torch.ones(3, 5, dtype=torch.bool)
    keep[0, 1] = keep[1, 4] = keep[2, 3] = False
    assert not changed[keep].any()
    with (
        pytest.raises(ValueError, match="one position per sequence"),
        layer.force([1], positions=[0, 1], per_sequence=True),
    ):
        layer(x)
    with (
        pytest.raises(ValueError, match="positions must give one position"),
        layer.force([1], per_sequence=True),
    ):
        pass


def test_groups_bad_inputs() -> None:
    with pytest.raises(ValueError, match="groups must divide dim=8"):
        CodebookLayer(8, 4, groups=3)
    layer = CodebookLayer(8, 4, groups=2)
    with (
        pytest.raises(ValueError, match=r"codes must be \[G, k\] or \[B, G, k\]"),
        layer.force([1]),
    ):
        pass
    with (
        pytest.raises(ValueError, match="codes must be ids"),
        layer.force(torch.tensor([[1], [4]])),
    ):
        pass


def test_codebook_lookup_checks_ids() -> None:
    book = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"ids must lie in \[-1, 3\]"):
        codebook_lookup(book, torch.tensor([[5]]))
    with pytest.raises(ValueError, match=r"ids must lie in \[-1, 3\]"):
        codebook_lookup(book, torch.tensor([[-2]]))
    with pytest.raises(TypeError, match="ids must be an integer tensor"):
        codebook_lookup(book, torch.tensor([[1.0]]))
    torch.testing.assert_close(codebook_lookup(book, torch.tensor([[1, -1]])), book[1:2] / 2)


def test_codebook_layer_names_a_dtype_mismatch() -> None:
    layer = CodebookLayer(4, 8)
    with pytest.raises(TypeError, match="x must have the codebook's dtype"):
        layer(torch.randn(2, 4, dtype=torch.float64))


def test_codebook_layer_snaps_a_low_precision_input_under_autocast() -> None:
    """Under autocast the layer before a codebook returns bfloat16: snapped in the codebook's
    float32, the same codes as the input cast by hand."""
    layer = CodebookLayer(4, 8, k=2, seed=0)
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0)).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x)
    codes = layer.last_codes
    torch.testing.assert_close(out, layer(x.float()))
    assert codes is not None
    torch.testing.assert_close(codes, layer.last_codes)


@pytest.mark.filterwarnings("error::UserWarning")
def test_layer_with_several_codes_exports() -> None:
    """The blocked-code test read values and stopped ``torch.export``; traced, the mask is
    applied unconditionally (the same numbers). Exporting leaves ``last_codes`` and the
    recordings alone (no tensor attributes assigned while tracing, which torch warns of)."""
    layer = CodebookLayer(8, 16, k=2, seed=0).eval()
    x = torch.randn(2, 3, 8, generator=torch.Generator().manual_seed(0))
    with layer.record() as codes:
        exported = torch.export.export(layer, (x,)).module()
    assert codes == []
    assert layer.last_codes is None
    torch.testing.assert_close(exported(x), layer(x))


@pytest.mark.parametrize("groups", [1, 2])
def test_forcing_some_positions_keeps_the_straight_through_gradient_elsewhere(groups: int) -> None:
    layer = CodebookLayer(4, 6, k=1, groups=groups, seed=0).double()
    x = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 3, 4, dtype=torch.float64)
    codes = [2] if groups == 1 else [[2], [3]]
    with layer.force(codes, positions=[0]):
        out = layer(x)
    (grad,) = torch.autograd.grad((out * w).sum(), x)
    assert float(grad[:, 0].abs().max()) == 0.0  # the intervention: the codes alone
    plain = layer(x)
    (expected,) = torch.autograd.grad((plain * w).sum(), x)
    torch.testing.assert_close(grad[:, 1:], expected[:, 1:])  # unforced: as without forcing
    torch.testing.assert_close(out[:, 1:], plain[:, 1:])


@pytest.mark.parametrize("position", [1, np.int64(1), torch.tensor(1), np.array(1), [1]])
def test_a_single_position_is_accepted_in_every_integer_form(position) -> None:
    layer = _layer().eval()
    x = torch.randn(2, 4, 8)
    with layer.force([5], positions=[1]):
        expected = layer(x)
    with layer.force([5], positions=position):
        torch.testing.assert_close(layer(x), expected)


@pytest.mark.parametrize("position", [1.5, torch.tensor(1.0), [True], "1"])
def test_non_integer_positions_are_named(position) -> None:
    with (
        pytest.raises(ValueError, match="positions must be an int or a non-empty"),
        _layer().force([5], positions=position),
    ):
        pass


def test_cosine_topk_rejects_a_dtype_mismatch_by_name() -> None:
    with pytest.raises(TypeError, match=r"x must have the codebook's dtype torch\.float32"):
        cosine_topk(torch.randn(3, 4, dtype=torch.float64), torch.randn(5, 4))


def test_cosine_topk_rejects_non_floating_tensors_by_name() -> None:
    codebook = torch.randn(6, 4)
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        cosine_topk(torch.ones(3, 4, dtype=torch.int64), codebook)
    with pytest.raises(TypeError, match="codebook must be a floating-point tensor"):
        cosine_topk(torch.randn(3, 4), codebook > 0)


def test_non_integer_codes_non_float_activations_and_codebooks_are_refused_by_name() -> None:
    layer = CodebookLayer(4, 6, k=2)
    for codes in ([1.5], torch.tensor([True]), torch.tensor([2.0])):  # truncated / taken as 0, 1
        with pytest.raises(TypeError, match="codes must be integer code ids"), layer.force(codes):
            pass
    for codes in ("3", None):
        with pytest.raises(TypeError, match="codes must be integer code ids"), layer.force(codes):
            pass
    for dtype in (torch.long, torch.bool):
        with pytest.raises(TypeError, match="x must be a floating-point tensor"):
            layer.initialize_from(torch.ones(3, 4, dtype=dtype))
        with pytest.raises(TypeError, match="x must be a floating-point tensor"):
            layer.replace_dead_codes(torch.ones(3, 4, dtype=dtype))
    with pytest.raises(ValueError, match="x must hold at least one vector"):
        layer.replace_dead_codes(torch.ones(0, 4))
    with pytest.raises(TypeError, match="codebook must be a floating-point tensor"):
        codebook_lookup(torch.ones(4, 3, dtype=torch.bool), torch.tensor([[1]]))
