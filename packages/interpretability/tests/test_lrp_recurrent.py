"""LRP through recurrent layers: Arras, Montavon, Müller & Samek (2017), "Explaining Recurrent
Neural Network Predictions in Sentiment Analysis"."""

import pytest
import torch
from torch import nn

from neuronkit.interpretability import EpsilonRule, GammaRule, lrp

X = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(31), dtype=torch.float64)
T = torch.tensor([0, 2, 1])


class _ReadOut(nn.Module):
    """A recurrent layer over ``X`` and a linear read-out of its last layer's final hidden
    states (both directions) and of its outputs' mean over time (``outputs=True``); a cell is
    stepped over time from its zero state (``None``) and its last hidden state read."""

    def __init__(self, rnn: nn.Module, bias: bool = True, outputs: bool = True) -> None:
        super().__init__()
        torch.manual_seed(30)
        self.rnn, self.outputs = rnn, outputs
        self.directions = 2 if getattr(rnn, "bidirectional", False) else 1
        width = self.directions * (getattr(rnn, "proj_size", 0) or rnn.hidden_size)
        cell = isinstance(rnn, nn.RNNCellBase)
        self.out = nn.Linear(width * (2 if outputs and not cell else 1), 3, bias=bias)
        self.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.rnn, nn.RNNCellBase):
            state = None
            for t in range(x.shape[1]):
                state = self.rnn(x[:, t], state)
            return self.out(state[0] if isinstance(state, tuple) else state)
        time = 1 if self.rnn.batch_first else 0
        output, last = self.rnn(x if time else x.transpose(0, 1))
        h_n = last[0] if isinstance(self.rnn, nn.LSTM) else last
        h = torch.cat(list(h_n[-self.directions :]), -1)
        return self.out(torch.cat([h, output.mean(time)], -1) if self.outputs else h)


def _sign(z: torch.Tensor) -> torch.Tensor:
    return torch.where(z >= 0, 1.0, -1.0).to(z.dtype)


def _arras(model: _ReadOut, x: torch.Tensor, target: torch.Tensor, eps: float) -> torch.Tensor:
    """Arras et al.'s (2017) epsilon-LRP of a bidirectional one-layer LSTM read out from its
    final hidden states, in relevance form, example by example: the output layer's and the
    cell input's epsilon rule, the cell state's sum split ``f c_prev : i g`` by the epsilon
    rule, the gates taking nothing (signal-take-all), ``h = o tanh(c)`` handing ``c`` all of
    ``h``'s relevance; biases keep their share."""
    lstm, read = model.rnn, model.out
    n = lstm.hidden_size
    result = torch.zeros_like(x)
    for b in range(x.shape[0]):
        runs = []
        for d, seq in enumerate((x[b], x[b].flip(0))):
            suffix = "_l0" + ("_reverse" if d else "")
            w_ih = getattr(lstm, "weight_ih" + suffix).detach()
            w_hh = getattr(lstm, "weight_hh" + suffix).detach()
            bias = (getattr(lstm, "bias_ih" + suffix) + getattr(lstm, "bias_hh" + suffix)).detach()
            h, c = torch.zeros(n, dtype=x.dtype), torch.zeros(n, dtype=x.dtype)
            steps = []
            for t in range(seq.shape[0]):
                pre = w_ih @ seq[t] + w_hh @ h + bias
                i, f, o = (torch.sigmoid(pre[k * n : (k + 1) * n]) for k in (0, 1, 3))
                g = torch.tanh(pre[2 * n : 3 * n])
                c_prev, h_prev = c, h
                c = f * c + i * g
                h = o * torch.tanh(c)
                steps.append((pre[2 * n : 3 * n], i, f, g, c_prev, c, h_prev))
            runs.append((seq, w_ih[2 * n : 3 * n], w_hh[2 * n : 3 * n], steps, h))
        h_last = torch.cat([runs[0][4], runs[1][4]])
        z = read.weight.detach() @ h_last + read.bias.detach()
        r_out = torch.zeros_like(z)
        r_out[target[b]] = z[target[b]]
        r_last = h_last * (read.weight.detach().T @ (r_out / (z + eps * _sign(z))))
        for d, (seq, w_ig, w_hg, steps, _) in enumerate(runs):
            r_h, r_c = r_last[d * n : (d + 1) * n], torch.zeros(n, dtype=x.dtype)
            r_x = torch.zeros_like(seq)
            for t in reversed(range(seq.shape[0])):
                pre_g, i, f, g, c_prev, c, h_prev = steps[t]
                r_c = r_c + r_h
                share = r_c / (c + eps * _sign(c))
                r_g, r_c = i * g * share, f * c_prev * share
                q = r_g / (pre_g + eps * _sign(pre_g))
                r_x[t] = seq[t] * (w_ig.T @ q)
                r_h = h_prev * (w_hg.T @ q)
            result[b] += r_x if d == 0 else r_x.flip(0)
    return result


@pytest.mark.parametrize(("eps", "attention"), [(1e-3, "constant"), (0.0, "uniform")])
def test_lrp_of_an_lstm_equals_arras_et_al(eps, attention) -> None:
    """Under either attention rule: an LSTM's gates are held whatever ``attention`` says."""
    model = _ReadOut(nn.LSTM(4, 6, batch_first=True, bidirectional=True), outputs=False)
    with torch.no_grad():
        for name, p in model.rnn.named_parameters():
            if "bias" in name:
                p.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(32))
    rules = {nn.LSTM: EpsilonRule(eps), nn.Linear: EpsilonRule(eps)}
    got = lrp(model, X, T, rules=rules, attention=attention)
    torch.testing.assert_close(got, _arras(model, X, T, eps), rtol=1e-9, atol=1e-12)


_LAYERS = {
    "lstm": lambda bias: nn.LSTM(4, 6, 2, bias=bias, batch_first=True, bidirectional=True),
    "lstm_projected": lambda bias: nn.LSTM(4, 6, bias=bias, proj_size=3),
    "gru": lambda bias: nn.GRU(4, 6, 2, bias=bias, batch_first=True, bidirectional=True),
    "rnn_tanh": lambda bias: nn.RNN(4, 6, bias=bias, batch_first=True),
    "rnn_relu": lambda bias: nn.RNN(4, 6, 2, bias=bias, nonlinearity="relu"),
    "lstm_cell": lambda bias: nn.LSTMCell(4, 6, bias=bias),
    "gru_cell": lambda bias: nn.GRUCell(4, 6, bias=bias),
    "rnn_cell": lambda bias: nn.RNNCell(4, 6, bias=bias),
}


@pytest.mark.parametrize("kind", sorted(_LAYERS))
def test_lrp_0_conserves_relevance_through_recurrent_layers(kind) -> None:
    """Without biases (nor an initial state) the gates held and the epsilon rule at 0 leave
    every relevance on the inputs; with them the model's outputs are unchanged."""
    model = _ReadOut(_LAYERS[kind](False), bias=False)
    rules = {t: EpsilonRule(0.0) for t in (nn.RNNBase, nn.RNNCellBase, nn.Linear)}
    relevance, delta = lrp(model, X, T, rules=rules, return_convergence_delta=True)
    with torch.no_grad():
        scale = model(X).abs().max()
    assert delta.abs().max() < 1e-12 * scale
    assert relevance.abs().sum() > 1e-3 * scale
    biased = _ReadOut(_LAYERS[kind](True))
    relevance, delta = lrp(biased, X, T, return_convergence_delta=True)
    with torch.no_grad():
        selected = biased(X)[torch.arange(3), T]
    torch.testing.assert_close(relevance.sum((1, 2)) + delta, selected)


class _OneSequence(nn.Module):
    """An LSTM over one sequence ``[1, T, F]`` from a given state, unbatched (``[T, F]``) or
    as a batch of one, the state positional or (``keyword``) as ``hx=``."""

    def __init__(self, unbatched: bool = True, keyword: bool = False) -> None:
        super().__init__()
        torch.manual_seed(33)
        self.lstm, self.unbatched, self.keyword = (
            nn.LSTM(4, 6, bidirectional=True),
            unbatched,
            keyword,
        )
        self.out = nn.Linear(12, 3)
        self.state = (torch.randn(2, 6), torch.randn(2, 6))
        self.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state = tuple(s.double() if self.unbatched else s.double().unsqueeze(1) for s in self.state)
        x = x[0] if self.unbatched else x.transpose(0, 1)
        output, _ = self.lstm(x, hx=state) if self.keyword else self.lstm(x, state)
        return self.out(output[-1]).reshape(1, 3)


def test_lrp_takes_unbatched_sequences_and_given_states_and_refuses_what_it_cannot_redo() -> None:
    relevance = lrp(_OneSequence(), X[:1], 1)
    torch.testing.assert_close(relevance, lrp(_OneSequence(unbatched=False), X[:1], 1))
    assert relevance.abs().sum() > 0
    with pytest.raises(ValueError, match=r"could not recompute LSTM's output: call it with"):
        lrp(_OneSequence(keyword=True), X[:1], 1)  # the hook does not see keyword arguments
    with pytest.raises(TypeError, match=r"rules for 'rnn' \(GRU\) must be EpsilonRule"):
        lrp(_ReadOut(nn.GRU(4, 6, batch_first=True)), X, T, rules={"rnn": GammaRule()})


class _Packed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru, self.out = nn.GRU(4, 6, batch_first=True), nn.Linear(6, 3)
        self.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lengths = torch.full((x.shape[0],), x.shape[1])
        _, h = self.gru(nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True))
        return self.out(h[-1])


def test_lrp_refuses_packed_sequences() -> None:
    with pytest.raises(TypeError, match=r"needs GRU's input as a tensor \(pad packed sequences\)"):
        lrp(_Packed(), X, T)


class _Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):  # type: ignore[no-untyped-def]
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):  # type: ignore[no-untyped-def]
        (x,) = ctx.saved_tensors
        return 2 * x * grad


class _Fused(nn.Module):
    """A layer without a rule computing with an operation LRP's function mode cannot see."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Square.apply(x)


def test_layers_without_a_rule_computing_what_lrp_cannot_see_are_refused() -> None:
    """Before 0.5.45 such a layer (``nn.LSTM``'s fused kernel too) took its plain gradient."""
    torch.manual_seed(34)
    model = nn.Sequential(nn.Linear(4, 4), _Fused(), nn.Linear(4, 3)).double()
    with pytest.raises(TypeError, match=r"'1' \(_Fused\), which computes with an operation lrp"):
        lrp(model, X[:, 0], T)


class _WrittenCell(nn.Module):
    """An LSTM or GRU cell written out with functions (``layers``: sigmoid and tanh as
    ``nn.Sigmoid`` / ``nn.Tanh``), with the weights of ``cell``, stepped over ``X`` from its
    zero state and read out as :class:`_ReadOut` reads the cell itself."""

    def __init__(self, cell: nn.RNNCellBase, out: nn.Linear, layers: bool) -> None:
        super().__init__()
        self.cell, self.out, self.layers = cell, out, layers
        self.sigmoid, self.tanh = nn.Sigmoid(), nn.Tanh()

    def _act(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, name)(x) if self.layers else getattr(torch, name)(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cell, lstm = self.cell, isinstance(self.cell, nn.LSTMCell)
        h = c = x.new_zeros(x.shape[0], cell.hidden_size)
        for t in range(x.shape[1]):
            gx = nn.functional.linear(x[:, t], cell.weight_ih, cell.bias_ih)
            gh = nn.functional.linear(h, cell.weight_hh, cell.bias_hh)
            if lstm:
                i, f, g, o = (gx + gh).chunk(4, 1)
                i, f, o = (self._act("sigmoid", a) for a in (i, f, o))
                c = f * c + i * self._act("tanh", g)
                h = o * self._act("tanh", c)
            else:
                (x_r, x_z, x_n), (h_r, h_z, h_n) = gx.chunk(3, 1), gh.chunk(3, 1)
                r, z = self._act("sigmoid", x_r + h_r), self._act("sigmoid", x_z + h_z)
                n = self._act("tanh", x_n + r * h_n)
                h = (1 - z) * n + z * h
        return self.out(h)


@pytest.mark.parametrize("layers", [False, True])
@pytest.mark.parametrize(("kind", "bias"), [("lstm_cell", True), ("gru_cell", False)])
def test_constant_rule_gives_written_out_cells_the_rules_of_recurrent_layers(kind, bias, layers):
    """Under ``"constant"`` the gate rule finds an LSTM's and a GRU's gates written out with
    functions or activation layers (a sigmoid's output, or ``1 -`` one, against a ``tanh``'s):
    LRP-0 equals that of the torch cell (Arras et al.'s rules with epsilon 0). The GRU is
    bias-free: at its first step its reset gate multiplies the hidden bias alone, a constant,
    which the gate rule reads as a scaling, not a gate."""
    reference = _ReadOut(_LAYERS[kind](bias))
    written = _WrittenCell(reference.rnn, reference.out, layers)
    rules = {t: EpsilonRule(0.0) for t in (nn.RNNCellBase, nn.Linear)}
    expected = lrp(reference, X, T, rules=rules)
    torch.testing.assert_close(lrp(written, X, T, rules=rules), expected, rtol=1e-9, atol=1e-12)
