"""LayerRecorder / layer_activations: recording, clear errors, and no leaked hooks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neuronkit.interpretability import (
    EpsilonRule,
    LayerRecorder,
    get_layer,
    layer_activations,
    layer_names,
    lrp,
    similarity_influence,
)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(4, 8),
        nn.ReLU(),
        nn.Sequential(nn.Linear(8, 6), nn.Tanh()),
        nn.Linear(6, 3),
    )


def _n_hooks(model: nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        for m in model.modules()
    )


def test_records_activations_of_named_layers() -> None:
    net = _net()
    x = torch.randn(5, 4)
    with LayerRecorder(net, ["1", "2.1"]) as rec:
        out = net(x)
    expected_relu = torch.relu(net[0](x))
    torch.testing.assert_close(rec.activations["1"], expected_relu)
    torch.testing.assert_close(rec.activations["2.1"], net[2](expected_relu))
    assert not rec.activations["1"].requires_grad
    assert out.shape == (5, 3)


def test_records_gradients_with_respect_to_layer_outputs() -> None:
    net = _net()
    x = torch.randn(3, 4)
    with LayerRecorder(net, "2.1", gradients=True) as rec:
        net(x).sum().backward()
    # d sum(W h + b) / d h = column sums of W
    expected = net[3].weight.sum(0).expand(3, -1)
    torch.testing.assert_close(rec.gradients["2.1"], expected)


def test_undetached_activations_keep_the_graph() -> None:
    net = _net()
    x = torch.randn(2, 4, requires_grad=True)
    with LayerRecorder(net, "0", detach=False) as rec:
        net(x)
    rec.activations["0"].sum().backward()
    assert x.grad is not None


def test_accumulate_and_layer_activations_batches() -> None:
    net = _net()
    x = torch.randn(7, 4)
    acts = layer_activations(net, x, ["1", "3"], batch_size=3)
    assert acts["1"].shape == (7, 8)
    torch.testing.assert_close(acts["3"], net(x).detach())
    with LayerRecorder(net, "1", accumulate=True) as rec:
        net(x[:2])
        net(x[2:])
    torch.testing.assert_close(rec.stacked("1"), acts["1"])


def test_hooks_are_removed_on_exit() -> None:
    net = _net()
    before = _n_hooks(net)
    with LayerRecorder(net, ["0", "2.0"]) as rec:
        assert _n_hooks(net) == before + 2
        assert rec.active
    assert _n_hooks(net) == before
    assert not rec.active


def test_hooks_are_removed_when_the_body_raises() -> None:
    net = _net()
    before = _n_hooks(net)
    with pytest.raises(RuntimeError, match="boom"), LayerRecorder(net, ["0", "1"]):
        net(torch.randn(1, 4))
        raise RuntimeError("boom")
    assert _n_hooks(net) == before


def test_hooks_are_removed_when_the_forward_pass_raises() -> None:
    net = _net()
    before = _n_hooks(net)
    with pytest.raises(RuntimeError), LayerRecorder(net, "1"):
        net(torch.randn(2, 5))  # wrong feature size
    assert _n_hooks(net) == before


def test_layer_activations_cleans_up_on_error_too() -> None:
    net = _net()
    before = _n_hooks(net)
    with pytest.raises(RuntimeError):
        layer_activations(net, torch.randn(2, 9), ["1"])
    assert _n_hooks(net) == before


def test_cannot_enter_twice_and_remove_is_idempotent() -> None:
    net = _net()
    rec = LayerRecorder(net, "0")
    with rec, pytest.raises(RuntimeError, match="already active"):
        rec.__enter__()
    rec.remove()
    assert _n_hooks(net) == 0


def test_unknown_layer_is_named_with_close_matches() -> None:
    net = _net()
    with pytest.raises(ValueError, match=r"layers\[1\] must name.*'2\.3'.*did you mean") as info:
        LayerRecorder(net, ["0", "2.3"])
    assert "2.1" in str(info.value)
    assert _n_hooks(net) == 0
    with pytest.raises(ValueError, match="layer must name"):
        get_layer(net, "")
    with pytest.raises(ValueError, match="layer must name"):  # one name given as a string
        layer_activations(net, torch.randn(2, 4), "9")
    # the caller's argument, not the helper's (each said "layer must name" before)
    with pytest.raises(ValueError, match=r"layers\[1\] must name a submodule"):
        similarity_influence(net, torch.randn(3, 4), torch.randn(2, 4), ["0", "9"])
    with pytest.raises(ValueError, match="rules key must name a submodule"):
        lrp(net, torch.randn(2, 4), 0, rules={"9": EpsilonRule()})


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"model": "net", "layers": "0"}, TypeError),
        ({"layers": []}, ValueError),
        ({"layers": ["0", "0"]}, ValueError),
        ({"layers": [0]}, TypeError),
        ({"layers": 3}, TypeError),
    ],
)
def test_bad_arguments(kwargs, error) -> None:
    args = {"model": _net(), "layers": "0", **kwargs}
    with pytest.raises(error):
        LayerRecorder(args["model"], args["layers"])


def test_layer_activations_bad_inputs() -> None:
    net = _net()
    with pytest.raises(TypeError, match="inputs"):
        layer_activations(net, [[1.0] * 4], ["0"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="inputs"):
        layer_activations(net, torch.zeros(0, 4), ["0"])
    with pytest.raises(ValueError, match="batch_size"):
        layer_activations(net, torch.zeros(2, 4), ["0"], batch_size=0)
    with pytest.raises(ValueError, match="no outputs"):
        LayerRecorder(net, "0").stacked("0")


def test_layer_names_lists_submodules() -> None:
    assert layer_names(_net()) == ["0", "1", "2", "2.0", "2.1", "3"]
    with pytest.raises(TypeError, match="model"):
        layer_names("net")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="name"):
        get_layer(_net(), 0)  # type: ignore[arg-type]


def test_tuple_outputs_record_their_first_tensor() -> None:
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4, batch_first=True)
    model = nn.Sequential()
    model.add_module("rnn", lstm)
    with LayerRecorder(model, "rnn") as rec:
        out, _ = lstm(torch.randn(2, 5, 3))
    torch.testing.assert_close(rec.activations["rnn"], out.detach())


def test_layer_activations_rejects_a_module_that_runs_twice_per_pass() -> None:
    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.f1, self.f2, self.relu = nn.Linear(4, 4), nn.Linear(4, 4), nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.relu(self.f2(self.relu(self.f1(x))))

    model = Shared()
    with pytest.raises(ValueError, match=r"layers: 'relu' produced 4 tensor outputs in 2"):
        layer_activations(model, torch.randn(6, 4), "relu", batch_size=3)
    assert layer_activations(model, torch.randn(6, 4), "f2", batch_size=3)["f2"].shape == (6, 4)
    assert _n_hooks(model) == 0


def test_flags_must_be_real_bools() -> None:
    net = _net()
    for flag in ("gradients", "detach", "accumulate"):
        with pytest.raises(TypeError, match=flag):
            LayerRecorder(net, "0", **{flag: "no"})
    with pytest.raises(TypeError, match="flatten"):
        layer_activations(net, torch.rand(2, 4), "0", flatten="no")


def test_layer_activations_rejects_non_finite_and_wrong_dtype_inputs() -> None:
    net = _net()
    with pytest.raises(ValueError, match="inputs must be finite"):
        layer_activations(net, torch.full((2, 4), float("nan")), "0")
    with pytest.raises(TypeError, match=r"inputs must have the model's parameter dtype"):
        layer_activations(net, torch.ones(2, 4, dtype=torch.long), "0")
    with pytest.raises(TypeError, match=r"inputs must have the model's parameter dtype"):
        layer_activations(net, torch.rand(2, 4, dtype=torch.float64), "0")
    # integer inputs a model takes (an embedding) still work: nothing is cast or refused
    emb = nn.Sequential(nn.Embedding(5, 3))
    acts = layer_activations(emb, torch.tensor([0, 4]), "0")["0"]
    assert acts.shape == (2, 3)


def test_layer_activations_names_a_layer_with_a_scalar_output() -> None:
    class Total(nn.Module):
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return z.sum()

    net = nn.Sequential(nn.Linear(4, 3), Total())
    for batch_size in (None, 2):
        with pytest.raises(ValueError, match="'1' returned a 0-d"):
            layer_activations(net, torch.rand(4, 4), "1", batch_size=batch_size)


def test_errors_inside_a_token_model_are_not_blamed_on_the_input_dtype() -> None:
    class Buggy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(5, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.embed(x)
            return h.masked_fill(torch.ones_like(h), 0.0)  # a bug of the model's own

    with pytest.raises(RuntimeError, match="masked_fill"):  # not "inputs must have ... dtype"
        layer_activations(Buggy(), torch.randint(0, 5, (2, 4)), ["embed"])


def test_an_in_place_op_after_the_layer_does_not_change_the_record() -> None:
    torch.manual_seed(0)
    # torchvision's ResNets: BatchNorm followed by ReLU(inplace=True)
    model = nn.Sequential(
        nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(inplace=True), nn.Linear(6, 2)
    )
    model.eval()
    x = torch.randn(8, 4)
    expected = model[1](model[0](x)).detach()
    assert (expected < 0).any()
    acts = layer_activations(model, x, ["1"])
    torch.testing.assert_close(acts["1"], expected)
    with LayerRecorder(model, "1", gradients=True, detach=False) as rec:
        model(x).sum().backward()
    torch.testing.assert_close(rec.activations["1"].detach(), expected)
    # the gradient is with respect to the module's output (before the in-place ReLU)
    grad = (expected > 0).float() * model[3].weight.sum(0)
    torch.testing.assert_close(rec.gradients["1"], grad)


def test_gradients_of_a_module_called_twice_are_those_of_the_recorded_call() -> None:
    torch.manual_seed(0)
    lin1, lin2, act = nn.Linear(4, 4), nn.Linear(4, 3), nn.Tanh()
    model = nn.ModuleDict({"lin1": lin1, "lin2": lin2, "act": act})
    x = torch.randn(5, 4)
    with LayerRecorder(model, ["act", "lin2"], gradients=True) as rec:
        first = act(lin1(x))
        out = act(lin2(first))  # act is called twice; its second output is `out`
        (out * torch.arange(1.0, 4.0)).sum().backward()
    torch.testing.assert_close(rec.activations["act"], out.detach())
    torch.testing.assert_close(rec.gradients["act"], torch.arange(1.0, 4.0).expand(5, 3))


class _TimeMajor(nn.Module):
    """A model whose hidden layer is time-major, as a spiking network's: [B, F] -> [T, B, H]."""

    def __init__(self, steps: int = 3) -> None:
        super().__init__()
        self.steps = steps
        self.hidden = nn.Linear(4, 5)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = (
            x.unsqueeze(0).expand(self.steps, -1, -1)
            * torch.arange(1.0, self.steps + 1)[:, None, None]
        )
        return self.act(self.hidden(seq)).sum(0)


def test_layer_activations_reads_time_major_layers_with_batch_dim() -> None:
    torch.manual_seed(0)
    model, x = _TimeMajor(), torch.randn(6, 4)
    acts = layer_activations(model, x, "act", batch_dim=1, batch_size=4, flatten=False)["act"]
    assert acts.shape == (6, 3, 5)  # [N, T, H]: each input's whole response
    for n in range(6):  # row n is input n at every step, also across the two chunks
        seq = torch.stack([x[n] * (t + 1) for t in range(3)])
        torch.testing.assert_close(acts[n], torch.relu(model.hidden(seq)))
    flat = layer_activations(model, x, "act", batch_dim=1)["act"]
    assert flat.shape == (6, 15)
    # read batch-first, the time axis would pass for the inputs: a clear error instead
    with pytest.raises(ValueError, match=r"shape \(3, 6, 5\).*need batch_dim=1"):
        layer_activations(model, x, "act")
    with pytest.raises(ValueError, match="batch_dim"):
        layer_activations(model, x, "act", batch_dim=-1)


def test_stacked_concatenates_on_the_batch_axis_of_time_major_outputs() -> None:
    torch.manual_seed(0)
    model = _TimeMajor(steps=5)
    x = torch.randn(7, 4)
    with LayerRecorder(model, "act", accumulate=True) as rec:
        model(x[:4])
        model(x[4:])  # [5, 4, 5] then [5, 3, 5]
    stacked = rec.stacked("act", batch_dim=1)
    assert stacked.shape == (5, 7, 5)  # [T, N, H]: the layout kept, the inputs in order
    acts = layer_activations(model, x, "act", batch_dim=1, flatten=False)["act"]  # [N, T, H]
    torch.testing.assert_close(stacked, acts.movedim(0, 1))
    # read batch-first, the batches of different sizes do not stack: a clear error
    with pytest.raises(ValueError, match=r"except on axis batch_dim=0.*\(5, 4, 5\), \(5, 3, 5\)"):
        rec.stacked("act")
    with pytest.raises(ValueError, match=r"batch_dim=3"):
        rec.stacked("act", batch_dim=3)
    with pytest.raises(ValueError, match="batch_dim"):
        rec.stacked("act", batch_dim=-1)


def test_a_compiled_model_is_refused_with_a_pointer_to_the_module_it_compiles() -> None:
    # hooks added after torch.compile are skipped by the compiled code: nothing was recorded
    net = _net()
    compiled = torch.compile(net, backend="eager")
    x = torch.randn(3, 4)
    with pytest.raises(TypeError, match=r"model must not be a torch.compile'd .*model\._orig_mod"):
        LayerRecorder(compiled, "_orig_mod.1")
    with pytest.raises(TypeError, match=r"model\._orig_mod"):
        layer_activations(compiled, x, "_orig_mod.1")
    torch.testing.assert_close(
        layer_activations(compiled._orig_mod, x, "1")["1"], torch.relu(net[0](x)).detach()
    )


def test_copies_made_while_recording_do_not_record() -> None:
    """A model deep-copied (as the pruner does) or pickled inside the recorder's context gets
    inert hooks: its outputs do not overwrite the recorder's, before or after the context."""
    import copy
    import io

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = torch.randn(5, 3)
    expected = model[0](x).detach()
    with LayerRecorder(model, ["0"], accumulate=True) as rec:
        model(x)
        twin = copy.deepcopy(model)
        buffer = io.BytesIO()
        torch.save(model, buffer)
        buffer.seek(0)
        loaded = torch.load(buffer, weights_only=False)
        with torch.no_grad():
            twin[0].weight.add_(1.0)
            loaded[0].weight.add_(2.0)
        twin(x)
        loaded(x)
        torch.testing.assert_close(rec.activations["0"], expected)
        assert len(rec.history["0"]) == 1
    twin(x)
    assert len(rec.history["0"]) == 1
    model(x)  # the recorder's own hook is gone after the context
    assert len(rec.history["0"]) == 1


def test_a_recorder_keeping_the_graph_is_freed() -> None:
    import gc
    import weakref

    # with detach=False the recorder holds the graph that holds its gradient hook: the hook
    # used to keep the recorder (and the graph) alive for good
    model = _net()
    with LayerRecorder(model, ["0"], gradients=True, detach=False) as rec:
        model(torch.randn(2, 4))
    ref = weakref.ref(rec)
    del rec
    gc.collect()
    assert ref() is None


class _Output(dict):  # stands in for a Hugging Face ModelOutput (an OrderedDict subclass)
    pass


class _DictEncoder(nn.Module):
    def __init__(self, wrap: type) -> None:
        super().__init__()
        self.fc, self.wrap = nn.Linear(4, 6), wrap

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor | None]:
        # the first tensor value is recorded: not the None before it, nor the one after
        return self.wrap(mask=None, hidden=torch.relu(self.fc(x)), pooled=x.mean(1))


class _Net(nn.Module):
    def __init__(self, enc: nn.Module) -> None:
        super().__init__()
        self.enc, self.head = enc, nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.enc(x)
        return self.head(torch.zeros(len(x), 6) if out is None else out["hidden"])


@pytest.mark.parametrize("wrap", [dict, _Output])
def test_dict_and_model_outputs_record_their_first_tensor_value(wrap: type) -> None:
    torch.manual_seed(0)
    net, x = _Net(_DictEncoder(wrap)), torch.randn(5, 4)
    expected = torch.relu(net.enc.fc(x)).detach()
    with LayerRecorder(net, "enc") as rec:
        net(x)
    torch.testing.assert_close(rec.activations["enc"], expected)
    torch.testing.assert_close(layer_activations(net, x, "enc")["enc"], expected)
    assert _n_hooks(net) == 0


def test_a_layer_returning_no_tensor_is_named_not_called_unrun() -> None:
    class Nothing(nn.Module):
        def forward(self, x: torch.Tensor) -> None:
            return None

    net = _Net(Nothing())
    with pytest.raises(TypeError, match=r"layer 'enc' returned NoneType, which holds no tensor"):
        layer_activations(net, torch.randn(5, 4), "enc")
    with pytest.raises(TypeError, match="holds no tensor"), LayerRecorder(net, "enc"):
        net(torch.randn(5, 4))
    assert _n_hooks(net) == 0
