"""insert_codebooks on plain torch models and the Hugging Face helpers on tiny configs."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn

from neuronkit.interpretability.codebook.wrap import CodebookModel, insert_codebooks


class _Attn(nn.Module):
    """Returns a tuple, like Hugging Face attention blocks."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.proj = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.proj(x), None


class _Net(nn.Module):
    def __init__(self, d: int = 8) -> None:
        super().__init__()
        self.emb = nn.Embedding(5, d)
        self.attn = _Attn(d)
        self.mlp = nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Linear(16, d))
        self.head = nn.Linear(d, 5)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.emb(ids)
        h = h + self.attn(h)[0]
        h = h + self.mlp(h)
        return self.head(h)


def test_plain_model_outputs_go_through_codebooks() -> None:
    torch.manual_seed(0)
    net = _Net()
    ids = torch.randint(0, 5, (3, 4))
    before = net(ids)
    cbm = insert_codebooks(net, ["attn", "mlp"], num_codes=32, k=2, layer_norm=False)
    assert isinstance(cbm, CodebookModel)
    assert [layer.dim for layer in cbm.codebooks.values()] == [8, 8]  # sizes inferred
    with cbm.record_codes() as rec:
        out = cbm(ids)
    codes_attn, codes_mlp = rec["attn"][0], rec["mlp"][0]
    assert codes_attn.shape == codes_mlp.shape == (3, 4, 2)
    # recompute by hand: every block output is replaced by the mean of its chosen codes
    cb_a, cb_m = cbm.codebooks["attn"].codebook, cbm.codebooks["mlp"].codebook
    h = net.emb(ids)
    h = h + cb_a[codes_attn].mean(-2)
    h = h + cb_m[codes_mlp].mean(-2)
    torch.testing.assert_close(out, net.head(h))
    with cbm.disabled():
        torch.testing.assert_close(cbm(ids), before)
    # parameters: the model's and the codebooks'
    assert {id(p) for p in net.parameters()} <= {id(p) for p in cbm.parameters()}
    cbm.remove()
    assert not cbm.attached
    torch.testing.assert_close(net(ids), before)
    with pytest.raises(RuntimeError, match="removed"):
        cbm(ids)


def test_training_reaches_model_and_codebooks() -> None:
    torch.manual_seed(0)
    net = _Net()
    cbm = insert_codebooks(net, {"mlp": 8}, num_codes=16)
    ids = torch.randint(0, 5, (4, 6))
    cbm.initialize_codebooks(ids)
    loss = nn.functional.cross_entropy(cbm(ids).reshape(-1, 5), ids.reshape(-1))
    (loss + cbm.codebook_loss()).backward()
    assert net.mlp[0].weight.grad is not None
    assert net.mlp[0].weight.grad.abs().sum() > 0
    assert cbm.codebooks["mlp"].codebook.grad is not None


def test_initialize_codebooks_uses_the_replaced_activations() -> None:
    torch.manual_seed(0)
    net = _Net()
    cbm = insert_codebooks(net, ["mlp"], num_codes=4, layer_norm=False, replace_rho=0.0)
    ids = torch.randint(0, 5, (2, 3))
    cbm.initialize_codebooks(ids)
    acts = net.mlp(net.emb(ids) + net.attn(net.emb(ids))[0]).reshape(-1, 8)
    for code in cbm.codebooks["mlp"].codebook.detach():
        assert torch.isclose(acts, code).all(-1).any()


def test_force_codes_changes_downstream_only_where_asked() -> None:
    torch.manual_seed(0)
    net = _Net()
    cbm = insert_codebooks(net, ["mlp"], num_codes=8, layer_norm=False)
    ids = torch.randint(0, 5, (2, 5))
    base = cbm(ids)
    with cbm.force_codes({"mlp": [3]}, positions=[2]):
        out = cbm(ids)
    changed = ~torch.isclose(out, base).all(-1)
    assert not changed[:, [0, 1, 3, 4]].any()
    with pytest.raises(ValueError, match="codes must name modules"), cbm.force_codes({"attn": [0]}):
        pass


def test_bad_inputs() -> None:
    net = _Net()
    with pytest.raises(ValueError, match=r"modules\[0\] must name a submodule"):
        insert_codebooks(net, ["nope"], num_codes=4)
    with pytest.raises(TypeError, match="modules must be"):
        insert_codebooks(net, "mlp", num_codes=4)
    with pytest.raises(ValueError, match="distinct"):
        insert_codebooks(net, ["mlp", "mlp"], num_codes=4)
    with pytest.raises(ValueError, match="num_codes"):
        insert_codebooks(net, ["mlp"], num_codes=0)
    # a bad name after a good one: no hook is left on the good one's module
    from neuronkit.interpretability.codebook import CodebookLayer

    with pytest.raises(ValueError, match="layer must name a submodule"):
        CodebookModel(net, {"mlp": CodebookLayer(8, 4), "nope": CodebookLayer(8, 4)})
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())


def test_a_second_codebook_on_the_same_module_is_refused() -> None:
    """insert_codebooks twice on one model stacked hooks: both codebooks snapped in turn and
    the first stayed alive through the model's hooks. Removing the first allows the second."""
    net = _Net()
    first = insert_codebooks(net, ["mlp"], num_codes=4)
    with pytest.raises(ValueError, match=r"already carries a codebook .* remove\(\) first"):
        insert_codebooks(net, ["mlp"], num_codes=4)
    assert len(net.mlp._forward_hooks) == 1
    first.remove()
    second = insert_codebooks(net, ["mlp"], num_codes=4)
    assert second.attached


def test_codebook_on_a_module_input_with_groups() -> None:
    torch.manual_seed(0)
    net = _Net()
    ids = torch.randint(0, 5, (3, 4))
    before = net(ids)
    cbm = insert_codebooks(
        net, ["attn.proj", "mlp"], num_codes=16, groups={"attn.proj": 2}, inputs=["attn.proj"]
    )
    assert cbm.inputs == ["attn.proj"]
    layer = cbm.codebooks["attn.proj"]
    assert (layer.dim, layer.groups) == (8, 2)  # the input size of the Linear, in_features
    cbm.initialize_codebooks(ids)
    cbm.eval()
    with torch.no_grad(), cbm.record_codes() as rec:
        out = cbm(ids)
    assert rec["attn.proj"][0].shape == (3, 4, 2, 1)
    # by hand (the hooked modules' weights called directly): the projection's input is
    # snapped (per half), then projected; the MLP output is snapped
    h = net.emb(ids)
    with torch.no_grad():
        proj = net.attn.proj
        h = h + nn.functional.linear(layer(h), proj.weight, proj.bias)
        h = h + cbm.codebooks["mlp"](net.mlp[2](net.mlp[1](net.mlp[0](h))))
        torch.testing.assert_close(out, net.head(h))
    with cbm.disabled():
        torch.testing.assert_close(cbm(ids), before)
    cbm.remove()
    torch.testing.assert_close(net(ids), before)


@pytest.mark.parametrize("copier", ["deepcopy", "pickle"])
def test_a_copy_owns_its_hooks_and_codebooks(copier: str) -> None:
    # the hooks used to be closures over the original: a deep copy (and a pruned copy, which
    # neuronkit.pruning makes with deepcopy) recorded into and was forced by the original
    torch.manual_seed(0)
    net = _Net()
    ids = torch.randint(0, 5, (3, 4))
    cbm = insert_codebooks(net, ["attn.proj", "mlp"], num_codes=16, k=2, inputs=["attn.proj"])
    (cbm(ids).sum() + cbm.codebook_loss()).backward()  # a copy after a training step too
    cbm.eval()
    with torch.no_grad():
        before = cbm(ids)
        copied = copy.deepcopy(cbm) if copier == "deepcopy" else pickle.loads(pickle.dumps(cbm))
        torch.testing.assert_close(copied(ids), before)
        with copied.record_codes() as mine, cbm.record_codes() as theirs:
            copied(ids)
        assert [len(v) for v in mine.values()] == [1, 1]
        assert [len(v) for v in theirs.values()] == [0, 0]
        with copied.force_codes({"mlp": [3]}):
            forced = copied(ids)
            torch.testing.assert_close(cbm(ids), before)
        assert not torch.allclose(forced, before)
        for layer in copied.codebooks.values():  # editing the copy's codebooks
            layer.codebook.mul_(-1)
        assert not torch.allclose(copied(ids), before)
        torch.testing.assert_close(cbm(ids), before)
        copied.remove()
        assert cbm.attached
        torch.testing.assert_close(cbm(ids), before)
        with cbm.disabled():
            torch.testing.assert_close(copied.model(ids), cbm(ids))


def test_a_compiled_model_is_refused() -> None:
    # its compiled code skips hooks added after compiling: the codebooks would never run
    compiled = torch.compile(_Net(), backend="eager")
    with pytest.raises(TypeError, match=r"model must not be a torch.compile'd .*model\._orig_mod"):
        insert_codebooks(compiled, ["_orig_mod.mlp"], num_codes=4)
    layer = insert_codebooks(_Net(), ["mlp"], num_codes=4).codebooks["mlp"]
    with pytest.raises(TypeError, match=r"model\._orig_mod"):
        CodebookModel(compiled, {"_orig_mod.mlp": layer})
    assert insert_codebooks(compiled._orig_mod, ["mlp"], num_codes=4).attached


def test_inputs_and_groups_bad_inputs() -> None:
    net = _Net()
    with pytest.raises(ValueError, match="inputs must be among modules"):
        insert_codebooks(net, ["mlp"], num_codes=4, inputs=["attn.proj"])
    with pytest.raises(ValueError, match="groups must name modules"):
        insert_codebooks(net, ["mlp"], num_codes=4, groups={"attn": 2})
    with pytest.raises(ValueError, match="groups must divide dim=8"):
        insert_codebooks(net, ["mlp"], num_codes=4, groups=3)
    with pytest.raises(TypeError, match="inputs must be a sequence"):
        insert_codebooks(net, ["mlp"], num_codes=4, inputs="mlp")


def test_in_place_ops_after_a_codebook_leave_its_records_alone() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(4, 6)
    model = nn.Sequential(lin, nn.ReLU(inplace=True), nn.Linear(6, 3))
    cbm = insert_codebooks(model, ["0"], num_codes=8, layer_norm=False, replace_rho=0.0)
    x = torch.randn(8, 4)
    cbm.initialize_codebooks(x)
    layer = cbm.codebooks["0"]
    pre = lin(x).detach()  # what the codebook replaces: before the in-place ReLU
    assert bool((layer.codebook < 0).any())
    assert all(bool((pre == row).all(-1).any()) for row in layer.codebook.detach())
    with cbm.force_codes({"0": [2]}):
        cbm(x)
    code = layer.codebook.detach()[2]
    expected = (code - layer._last_input.detach()).pow(2).sum(-1).mean()
    torch.testing.assert_close(layer.reconstruction_loss().detach(), expected)


class _MhaNet(nn.Module):
    def __init__(self, d: int = 8) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(d, 2, batch_first=True)
        self.head = nn.Linear(d, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.attn(x, x, x)[0])


@pytest.mark.parametrize("inputs", [(), ["attn.out_proj"]])
def test_a_multihead_attention_out_proj_is_refused(inputs) -> None:
    # nn.MultiheadAttention uses out_proj.weight functionally: a hook there never fires
    with pytest.raises(ValueError, match=r"'attn.out_proj'.*never calls it.*'attn'"):
        insert_codebooks(_MhaNet(), ["attn.out_proj"], num_codes=4, inputs=inputs)
    cbm = insert_codebooks(_MhaNet(), ["attn"], num_codes=4)  # the attention's output works
    with torch.no_grad(), cbm.record_codes() as rec:
        cbm(torch.randn(2, 5, 8))
    assert rec["attn"][0].shape == (2, 5, 1)


def test_codebooks_take_the_train_or_eval_mode_of_their_module() -> None:
    net = _Net().eval()
    net.mlp.train()
    cbm = insert_codebooks(net, ["attn", "mlp"], num_codes=8, replace_after_steps=1)
    assert not cbm.training
    assert not cbm.codebooks["attn"].training
    assert cbm.codebooks["mlp"].training
    assert not net.training  # the model's modes are left alone
    assert net.mlp.training
    cbm.remove()
    net.mlp.eval()
    cbm = insert_codebooks(net, ["mlp"], num_codes=8, replace_after_steps=1)
    book = cbm.codebooks["mlp"].codebook.detach().clone()
    ids = torch.randint(0, 5, (2, 6))
    with torch.no_grad():  # eval-mode inference never replaces codes
        first, second = cbm(ids), cbm(ids)
    torch.testing.assert_close(cbm.codebooks["mlp"].codebook.detach(), book)
    torch.testing.assert_close(first, second)


class _SkippingNet(_Net):
    """``_Net`` whose MLP block can be skipped, or give non-finite activations."""

    skip = False
    blow_up = False

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.emb(ids)
        h = h + self.attn(h)[0]
        if not self.skip:
            h = h + self.mlp(h * float("inf") if self.blow_up else h)
        return self.head(h)


def test_a_failed_initialize_codebooks_leaves_every_codebook_as_it_was() -> None:
    # codebooks were initialized one by one: a later module never called (or giving non-finite
    # activations) raised after the earlier codebooks were re-drawn and their counts zeroed
    torch.manual_seed(0)
    net = _SkippingNet()
    cbm = insert_codebooks(net, ["attn", "mlp"], num_codes=4)
    ids = torch.randint(0, 5, (2, 3))
    cbm(ids)  # usage counts
    before = {
        n: (layer.codebook.detach().clone(), layer.counts.clone())
        for n, layer in cbm.codebooks.items()
    }
    assert all(int(counts.sum()) > 0 for _, counts in before.values())

    def unchanged() -> bool:
        return all(
            torch.equal(layer.codebook, before[n][0]) and torch.equal(layer.counts, before[n][1])
            for n, layer in cbm.codebooks.items()
        )

    net.skip = True
    with pytest.raises(RuntimeError, match=r"^module 'mlp' was not called"):
        cbm.initialize_codebooks(ids)
    assert unchanged()
    net.skip, net.blow_up = False, True
    with pytest.raises(ValueError, match="finite"):
        cbm.initialize_codebooks(ids)
    assert unchanged()
    net.blow_up = False
    cbm.initialize_codebooks(ids)  # a good call still initializes both
    assert not unchanged()
    assert all(int(layer.counts.sum()) == 0 for layer in cbm.codebooks.values())


def test_codebook_model_arguments_are_checked_by_name() -> None:
    from neuronkit.interpretability.codebook import CodebookLayer

    net = _Net()
    with pytest.raises(TypeError, match="codebooks must be a mapping"):
        CodebookModel(net, [CodebookLayer(8, 4)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="codebooks keys must be str"):
        CodebookModel(net, {1: CodebookLayer(8, 4)})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"codebooks\['mlp'\] must be CodebookLayer"):
        CodebookModel(net, {"mlp": nn.Linear(8, 8)})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="inputs must be a sequence of module names"):
        CodebookModel(net, {"mlp": CodebookLayer(8, 4)}, inputs=5)  # type: ignore[arg-type]
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())
    cbm = insert_codebooks(net, ["mlp"], num_codes=4)
    with (
        pytest.raises(TypeError, match="names must be a sequence of module names"),
        cbm.record_codes(5),  # type: ignore[arg-type]
    ):
        pass
