"""TokFSM: a tokenized finite-state-machine language (Tamkin, Taufeeque & Goodman, "Codebook
Features: Sparse and Discrete Interpretability for Neural Networks", 2023, Section 4).

A random FSM has ``n_states`` states; each state has ``n_edges`` distinct successors chosen at
random, each taken with probability ``1 / n_edges``. A trajectory starts in a uniformly random
state and follows the transitions. Each state is written as its ``digits``-long base-``base``
representation (state 7 with base 10 and 100 states is ``"07"``), and a sequence is a
beginning-of-sequence token followed by the digits of its states, one token per digit. The
transformer therefore never sees a state directly: it has to assemble the state from several
tokens, and there are more states than neurons in a small model (the paper's setting: 100 states,
10 edges, base 10, a 128-wide model), so a state is not one neuron.

Tokens: the digits ``0 .. base - 1`` are tokens ``0 .. base - 1``; :attr:`TokFSM.bos` ``= base``
is the beginning-of-sequence token; the vocabulary has ``base + 1`` tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from neuronkit.common import (
    as_float_array,
    check_ndim,
    check_number,
    check_seed,
    check_type,
    host_array,
    integer_dtype,
)

__all__ = ["TokFSM", "TokFSMSample", "random_tokfsm"]


def _digits_needed(n_states: int, base: int) -> int:
    digits = 1
    while base**digits < n_states:
        digits += 1
    return digits


@dataclass(frozen=True)
class TokFSMSample:
    """Sequences sampled from a :class:`TokFSM`.

    Attributes:
        tokens: ``[B, 1 + S * digits]`` long, BOS then the digits of ``S`` states.
        states: ``[B, S]`` long, the state trajectory.
        token_states: ``[B, 1 + S * digits]`` long, the state each token belongs to (-1 for BOS).
        digit_index: ``[B, 1 + S * digits]`` long, which digit of its state a token is (-1 for
            BOS); ``digit_index == digits - 1`` marks the token that completes a state.
    """

    tokens: torch.Tensor
    states: torch.Tensor
    token_states: torch.Tensor
    digit_index: torch.Tensor

    def state_end_labels(self) -> torch.Tensor:
        """``[B, T]`` long: the state at tokens that complete a state, -1 elsewhere."""
        last = int(self.digit_index.max())
        return torch.where(self.digit_index == last, self.token_states, -1)

    def __len__(self) -> int:
        return int(self.tokens.shape[0])


class TokFSM:
    """A finite-state machine whose states are emitted as multi-token digit strings.

    Args:
        transition: ``[N, N]`` row-stochastic transition matrix (``transition[i, j]`` is the
            probability of going from state ``i`` to state ``j``).
        base: the digit base; the vocabulary is ``base`` digits plus a BOS token.

    Use :func:`random_tokfsm` for the paper's random FSM.
    """

    def __init__(self, transition: np.ndarray, base: int = 10) -> None:
        check_number("base", base, ge=2, integer=True)
        arr = as_float_array("transition", transition)
        check_ndim("transition", arr, 2, "[N, N]")
        if arr.shape[0] != arr.shape[1] or arr.shape[0] < 2:
            raise ValueError(
                f"transition must be a square [N, N] matrix with N >= 2, got shape {arr.shape}"
            )
        if not np.isfinite(arr).all() or (arr < 0).any():
            raise ValueError("transition must hold finite non-negative probabilities")
        if not np.allclose(arr.sum(1), 1.0, atol=1e-8):
            raise ValueError(
                f"transition rows must sum to 1, got row sums in "
                f"[{arr.sum(1).min():.4g}, {arr.sum(1).max():.4g}]"
            )
        self.transition = arr.copy()
        self.transition.setflags(write=False)
        self.n_states = int(arr.shape[0])
        self.base = int(base)
        self.digits = _digits_needed(self.n_states, self.base)
        self.bos = self.base
        self.vocab_size = self.base + 1
        powers = self.base ** np.arange(self.digits - 1, -1, -1)
        #: ``[N, digits]`` the digit tokens of every state (most significant first).
        self.state_digits = (np.arange(self.n_states)[:, None] // powers[None, :]) % self.base

    # ------------------------------------------------------------------ structure
    def successors(self, state: int) -> np.ndarray:
        """The states reachable from ``state`` in one step, sorted: ``[n_edges]`` int."""
        self._check_state("state", state)
        return np.flatnonzero(self.transition[state] > 0)

    def is_transition(self, src: int, dst: int) -> bool:
        """Whether the FSM can go from ``src`` to ``dst``."""
        self._check_state("src", src)
        self._check_state("dst", dst)
        return bool(self.transition[src, dst] > 0)

    def encode(self, states: torch.Tensor | np.ndarray, *, bos: bool = True) -> torch.Tensor:
        """Tokens of state trajectories: ``[B, S]`` states -> ``[B, bos + S * digits]`` long."""
        check_type("bos", bos, bool)
        arr = self._check_states(states)
        toks = self.state_digits[arr].reshape(arr.shape[0], -1)
        if bos:
            toks = np.concatenate([np.full((arr.shape[0], 1), self.bos), toks], axis=1)
        return torch.as_tensor(toks, dtype=torch.long)

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """States written by digit tokens: ``[B, S * digits]`` (no BOS) -> ``[B, S]`` long.

        A group containing a non-digit token or a number ``>= n_states`` decodes to -1.
        """
        check_type("tokens", tokens, torch.Tensor)
        check_ndim("tokens", tokens, 2, "[B, S * digits]")
        _check_integer("tokens", tokens)
        if tokens.shape[1] % self.digits:
            raise ValueError(
                f"tokens must hold a multiple of digits={self.digits} tokens per row, got "
                f"{tokens.shape[1]}"
            )
        groups = tokens.reshape(tokens.shape[0], -1, self.digits).long()
        powers = torch.as_tensor(self.base ** np.arange(self.digits - 1, -1, -1))
        bad = (groups < 0) | (groups >= self.base)
        value = (groups.clamp(0, self.base - 1) * powers).sum(-1)
        bad_state = bad.any(-1) | (value >= self.n_states)
        return torch.where(bad_state, torch.full_like(value, -1), value)

    # ------------------------------------------------------------------ sampling
    def sample(
        self, n_sequences: int, n_states: int, *, seed: int | np.random.Generator
    ) -> TokFSMSample:
        """Sample ``n_sequences`` trajectories of ``n_states`` states each.

        Args:
            n_sequences: batch size ``B``.
            n_states: states per sequence ``S`` (the sequence has ``1 + S * digits`` tokens).
            seed: an int or a ``numpy.random.Generator``.
        """
        check_number("n_sequences", n_sequences, ge=1, integer=True)
        check_number("n_states", n_states, ge=1, integer=True)
        rng = _rng(seed)
        states = np.empty((n_sequences, n_states), dtype=np.int64)
        states[:, 0] = rng.integers(0, self.n_states, size=n_sequences)
        cdf = np.cumsum(self.transition, axis=1)
        cdf[:, -1] = 1.0
        for t in range(1, n_states):
            u = rng.random(n_sequences)
            rows = cdf[states[:, t - 1]]
            states[:, t] = (u[:, None] >= rows).sum(1)
        return self.sample_from_states(states)

    def sample_from_states(self, states: torch.Tensor | np.ndarray) -> TokFSMSample:
        """Tokens and labels of given trajectories ``[B, S]`` (validity is not required)."""
        arr = self._check_states(states)
        tokens = self.encode(arr)
        b, s = arr.shape
        token_states = np.concatenate(
            [np.full((b, 1), -1), np.repeat(arr, self.digits, axis=1)], axis=1
        )
        digit_index = np.concatenate(
            [np.full((b, 1), -1), np.tile(np.arange(self.digits), (b, s))], axis=1
        )
        return TokFSMSample(
            tokens=tokens,
            states=torch.as_tensor(arr),
            token_states=torch.as_tensor(token_states, dtype=torch.long),
            digit_index=torch.as_tensor(digit_index, dtype=torch.long),
        )

    # ------------------------------------------------------------------ ground truth
    def next_token_distribution(self, tokens: torch.Tensor) -> torch.Tensor:
        """The true distribution of the next token after every prefix.

        Args:
            tokens: ``[B, T]`` long, BOS followed by digit tokens of a trajectory (as made by
                :meth:`sample`; the trajectory must be valid).

        Returns:
            ``[B, T, vocab_size]`` float64: entry ``[b, t]`` is ``P(tokens[b, t + 1] | tokens[b,
            : t + 1])``. The first state is uniform over all states; later states follow the
            transitions of the previous (fully observed) state, and within a state the
            remaining digits are constrained by the digits already seen. The BOS column is 0.
        """
        toks = self._check_tokens(tokens)
        b, t_len = toks.shape
        out = np.zeros((b, t_len, self.vocab_size))
        uniform = np.full(self.n_states, 1.0 / self.n_states)
        for t in range(t_len):
            n_digits_seen = t  # digits after BOS, up to and including position t
            state_idx, digit_pos = divmod(n_digits_seen, self.digits)
            # predicting digit `digit_pos` of state number `state_idx`
            if state_idx == 0:
                prior = np.broadcast_to(uniform, (b, self.n_states)).copy()
            else:
                prev_digits = toks[
                    :, 1 + (state_idx - 1) * self.digits : 1 + state_idx * self.digits
                ]
                prev = self._digits_to_state(prev_digits)
                if (prev < 0).any():
                    raise ValueError("tokens must be a valid TokFSM trajectory after BOS")
                prior = self.transition[prev].copy()
            start = 1 + state_idx * self.digits
            for j in range(digit_pos):
                prior *= self.state_digits[None, :, j] == toks[:, start + j, None]
            mass = prior.sum(1, keepdims=True)
            if (mass <= 0).any():
                raise ValueError(
                    f"tokens must be a valid TokFSM trajectory; the prefix up to position {t} "
                    "has probability 0"
                )
            prior /= mass
            nxt = self.state_digits[:, digit_pos]
            for d in range(self.base):
                out[:, t, d] = prior[:, nxt == d].sum(1)
        return torch.as_tensor(out)

    def valid_next_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[B, T, vocab_size]`` bool: tokens with non-zero probability after each prefix."""
        return self.next_token_distribution(tokens) > 0

    def next_token_accuracy(
        self, logits: torch.Tensor, tokens: torch.Tensor, *, criterion: str = "valid"
    ) -> float:
        """Fraction of positions whose argmax prediction is correct under the FSM.

        Args:
            logits: ``[B, T, V]`` next-token logits for ``tokens`` (position ``t`` predicts
                token ``t + 1``; ``V >= vocab_size``, extra columns are ignored).
            tokens: ``[B, T]`` valid TokFSM sequences.
            criterion: ``"valid"``: the predicted token is any token the FSM can emit next
                (non-zero true probability, as the paper's transition accuracy);
                ``"argmax"``: the predicted token has the largest true probability (ties
                count as correct).

        The last position (no next token in the sequence) is included: its prediction is still
        judged against the FSM.
        """
        check_type("logits", logits, torch.Tensor)
        check_ndim("logits", logits, 3, "[B, T, V]")
        if logits.dtype == torch.bool or logits.is_complex():
            raise TypeError(f"logits must be a real-valued tensor, got dtype {logits.dtype}")
        if logits.is_floating_point() and bool(logits.isnan().any()):  # -inf: a masked token
            raise ValueError("logits must not hold NaN")
        toks = self._check_tokens(tokens)
        if tuple(logits.shape[:2]) != toks.shape or logits.shape[2] < self.vocab_size:
            raise ValueError(
                f"logits must have shape [{toks.shape[0]}, {toks.shape[1]}, >={self.vocab_size}], "
                f"got {tuple(logits.shape)}"
            )
        if criterion not in ("valid", "argmax"):
            raise ValueError(f"criterion must be 'valid' or 'argmax', got {criterion!r}")
        pred = logits[..., : self.vocab_size].detach().argmax(-1).cpu().numpy()
        dist = self.next_token_distribution(tokens).numpy()
        p = np.take_along_axis(dist, pred[..., None], axis=-1)[..., 0]
        correct = p > 0 if criterion == "valid" else p >= dist.max(-1) - 1e-12
        return float(correct.mean())

    # ------------------------------------------------------------------ helpers
    def _digits_to_state(self, digits: np.ndarray) -> np.ndarray:
        powers = self.base ** np.arange(self.digits - 1, -1, -1)
        value = (digits * powers).sum(-1)
        bad = (digits < 0).any(-1) | (digits >= self.base).any(-1) | (value >= self.n_states)
        return np.where(bad, -1, value)

    def _check_states(self, states: torch.Tensor | np.ndarray) -> np.ndarray:
        """``states`` as a ``[B >= 1, S]`` int64 array of states in ``[0, n_states)``."""
        arr = np.asarray(host_array(states))
        check_ndim("states", arr, 2, "[B, S]")
        if arr.shape[0] == 0:
            raise ValueError("states must hold at least one trajectory [B >= 1, S], got none")
        if arr.size and arr.dtype.kind not in "iu":  # a float state would be truncated
            raise TypeError(f"states must hold integer states, got dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() >= self.n_states):
            raise ValueError(
                f"states must lie in [0, {self.n_states}), got {arr.min()}..{arr.max()}"
            )
        return arr.astype(np.int64)

    def _check_tokens(self, tokens: torch.Tensor) -> np.ndarray:
        check_type("tokens", tokens, torch.Tensor)
        check_ndim("tokens", tokens, 2, "[B, T]")
        _check_integer("tokens", tokens)
        toks = tokens.detach().cpu().numpy().astype(np.int64)
        if toks.shape[1] < 1 or (toks[:, 0] != self.bos).any():
            raise ValueError(f"tokens must start with the BOS token {self.bos} in every row")
        if ((toks[:, 1:] < 0) | (toks[:, 1:] >= self.base)).any():
            raise ValueError(f"tokens after BOS must be digits in [0, {self.base})")
        return toks

    def _check_state(self, name: str, state: int) -> None:
        check_number(name, state, ge=0, lt=self.n_states, integer=True)

    def __repr__(self) -> str:
        edges = int((self.transition > 0).sum(1).max())
        return (
            f"TokFSM(n_states={self.n_states}, max_edges={edges}, base={self.base}, "
            f"digits={self.digits})"
        )


def _check_integer(name: str, tokens: torch.Tensor) -> None:
    if tokens.numel() and not integer_dtype(tokens):
        raise TypeError(f"{name} must be an integer tensor of token ids, got dtype {tokens.dtype}")


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    check_seed(seed)
    return np.random.default_rng(seed)


def random_tokfsm(
    n_states: int = 100, n_edges: int = 10, base: int = 10, *, seed: int | np.random.Generator = 0
) -> TokFSM:
    """The paper's random FSM: each state gets ``n_edges`` distinct successors, uniformly.

    Defaults are the paper's (100 states, 10 edges, base 10, so two tokens per state). Self
    loops are allowed, as in the reference construction.

    Returns:
        a :class:`TokFSM` whose transition matrix has ``n_edges`` entries ``1 / n_edges`` per row.
    """
    check_number("n_states", n_states, ge=2, integer=True)
    check_number("n_edges", n_edges, ge=1, le=n_states, integer=True)
    check_number("base", base, ge=2, integer=True)
    rng = _rng(seed)
    transition = np.zeros((n_states, n_states))
    for i in range(n_states):
        transition[i, rng.choice(n_states, size=n_edges, replace=False)] = 1.0 / n_edges
    return TokFSM(transition, base=base)
