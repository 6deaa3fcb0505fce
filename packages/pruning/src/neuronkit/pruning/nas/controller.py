"""The ENAS LSTM controller, REINFORCE training, and memory-buffer training of the controller.

Pham et al. (2018), "Efficient Neural Architecture Search via Parameter Sharing" (ENAS);
Adam & Lorraine (2019), "Understanding Neural Architecture Search Techniques"
(arXiv:1904.00438).

Controller (ENAS): an LSTM cell run for the ``2B - 1`` decisions of a :class:`CellSpace`. The
first input is a zero vector; at step ``t`` the hidden state ``h_t`` goes through a
position-specific linear decoder, the logits are shaped as ``tanh_c * tanh(logits / T)``
(ENAS's temperature and tanh constant), a token is sampled, and its embedding (op tokens share
one table, input-node tokens another) is the next input. All weights start uniform in
``[-0.1, 0.1]``, decoder biases at zero. The *hidden state of an architecture* is the LSTM's
hidden state at its last decision, ``h_{2B-1}`` (``[H]``): the state from which the last token is
drawn, after the first ``2B - 2`` tokens have been fed back (the authors' analysis code takes
``hidden[0]`` as returned by the controller's ``sample``; the last token is never fed back).
Adam & Lorraine show that for a vanilla ENAS controller these hardly depend on the sampled
cell, so their distances do not track the cells' graph similarity.

REINFORCE (ENAS): reward ``R`` = validation accuracy with the shared weights plus
``entropy_weight`` times the entropy of the sampled decisions (ENAS adds the entropy bonus to
the reward); baseline ``b <- decay b + (1 - decay) mean(R)`` (initialized with the first
reward), loss ``-mean((R - b) log pi(a))``, Adam.

Memory buffer (Adam & Lorraine): architectures seen during the search are stored in a
buffer, and each controller step adds a self-supervised reconstruction term, the teacher-forced
negative log-likelihood of a batch of buffered architectures,
``L = L_PG + memory_weight * L_sup``, which forces the hidden state to carry the past choices.
:class:`MemoryBuffer` keeps either the best architectures seen (``policy="best"``, replay of
the best past architectures) or a random subset with random replacement once full
(``policy="random"``, the paper's buffer of previously sampled architectures).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from neuronkit.common import check_choice, check_number, check_seed, check_type, grad_enabled

from .space import Architecture, CellSpace, _check_architectures, _generator

__all__ = [
    "ControllerSample",
    "ENASController",
    "MemoryBuffer",
    "ReinforceConfig",
    "ReinforceTrainer",
]


@dataclass
class ControllerSample:
    """Architectures drawn by :meth:`ENASController.sample`.

    Attributes:
        architectures: the ``n`` sampled cells.
        sequences: ``[n, 2B - 1]`` int64 tokens.
        log_prob: ``[n]`` log-probability of each sequence (differentiable).
        entropy: ``[n]`` summed entropy of the decision distributions (differentiable).
        hidden: ``[n, H]`` hidden state at each sequence's last decision (detached; see the
            module docstring).
    """

    architectures: list[Architecture]
    sequences: torch.Tensor
    log_prob: torch.Tensor
    entropy: torch.Tensor
    hidden: torch.Tensor


class ENASController(nn.Module):
    """ENAS's LSTM controller over a :class:`CellSpace` (see the module docstring).

    Args:
        space: the cell search space.
        hidden: LSTM width ``H``.
        tanh_c: tanh constant of the logits (``None``: no tanh shaping).
        temperature: softmax temperature applied before the tanh (``None``: 1).
        seed: seed of the uniform ``[-0.1, 0.1]`` initialization.
    """

    def __init__(
        self,
        space: CellSpace,
        *,
        hidden: int = 64,
        tanh_c: float | None = 2.5,
        temperature: float | None = 5.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_type("space", space, CellSpace)
        check_number("hidden", hidden, ge=1, integer=True)
        if tanh_c is not None:
            check_number("tanh_c", tanh_c, gt=0.0)
        if temperature is not None:
            check_number("temperature", temperature, gt=0.0)
        check_seed(seed)
        self.space = space
        self.hidden = int(hidden)
        self.tanh_c = tanh_c
        self.temperature = temperature
        n_ops = len(space.ops)
        self._token_offset = [0 if op else n_ops for op in space.is_op_position]
        # the default init (overwritten below) leaves the global RNG alone
        with torch.random.fork_rng(devices=[]):
            self.embedding = nn.Embedding(n_ops + space.num_nodes - 1, self.hidden)
            self.lstm = nn.LSTMCell(self.hidden, self.hidden)
            self.decoders = nn.ModuleList(nn.Linear(self.hidden, c) for c in space.choices)
        gen = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.rand(p.shape, generator=gen) * 0.2 - 0.1)
            for name, p in self.decoders.named_parameters():
                if name.endswith("bias"):
                    p.zero_()

    def _logits(self, t: int, h: torch.Tensor) -> torch.Tensor:
        logits = self.decoders[t](h)
        if self.temperature is not None:
            logits = logits / self.temperature
        if self.tanh_c is not None:
            logits = self.tanh_c * torch.tanh(logits)
        return logits

    def _run(
        self, n: int, sequences: torch.Tensor | None, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run the controller; sample tokens unless ``sequences [n, T]`` are teacher-forced."""
        weight = self.embedding.weight  # the states follow its device and dtype
        h = weight.new_zeros(n, self.hidden)
        c = torch.zeros_like(h)
        inp = torch.zeros_like(h)
        tokens, log_prob, entropy = [], [], []
        for t in range(self.space.num_decisions):
            h, c = self.lstm(inp, (h, c))
            logp = torch.log_softmax(self._logits(t, h), dim=-1)
            if sequences is None:
                probs = logp.detach().exp()
                if generator is not None:  # drawn on the generator's device (a seed's: the CPU)
                    probs = probs.to(generator.device)
                tok = torch.multinomial(probs, 1, generator=generator)[:, 0].to(weight.device)
            else:
                tok = sequences[:, t]
            tokens.append(tok)
            log_prob.append(logp.gather(1, tok[:, None])[:, 0])
            entropy.append(-(logp.exp() * logp).sum(dim=-1))
            if t + 1 < self.space.num_decisions:  # the last token is not fed back (reference)
                inp = self.embedding(tok + self._token_offset[t])
        return (
            torch.stack(tokens, dim=1),
            torch.stack(log_prob, dim=1).sum(dim=1),
            torch.stack(entropy, dim=1).sum(dim=1),
            h,
        )

    def sample(
        self, n: int, *, generator: torch.Generator | None = None, seed: int | None = None
    ) -> ControllerSample:
        """Draw ``n`` architectures; log-probabilities and entropies keep their gradients.

        The tokens are drawn on the generator's device (``seed``: a CPU generator, so the same
        architectures whatever device the controller is on)."""
        check_number("n", n, ge=1, integer=True)
        gen = _generator(generator, seed)
        seqs, log_prob, entropy, h = self._run(int(n), None, gen)
        archs = [Architecture.from_sequence(self.space, s) for s in seqs.tolist()]
        return ControllerSample(archs, seqs, log_prob, entropy, h.detach())

    def _sequences(self, architectures: Sequence[Architecture]) -> torch.Tensor:
        archs = _check_architectures("architectures", architectures)
        for a in archs:
            a.validate(self.space)
        return torch.tensor(
            [a.to_sequence() for a in archs],
            dtype=torch.long,
            device=self.embedding.weight.device,
        )

    def log_prob(self, architectures: Sequence[Architecture]) -> torch.Tensor:
        """Teacher-forced log-probability ``[n]`` of each architecture (differentiable)."""
        seqs = self._sequences(architectures)
        return self._run(len(seqs), seqs, None)[1]

    @torch.no_grad()
    def hidden_states(self, architectures: Sequence[Architecture]) -> torch.Tensor:
        """Hidden state ``[n, H]`` of each architecture: the LSTM state at its last decision."""
        seqs = self._sequences(architectures)
        return self._run(len(seqs), seqs, None)[3]

    @torch.no_grad()
    def decision_probabilities(self, architectures: Sequence[Architecture]) -> list[torch.Tensor]:
        """Teacher-forced decision distributions: ``[n, choices[t]]`` for each position ``t``."""
        seqs = self._sequences(architectures)
        n = len(seqs)
        h = self.embedding.weight.new_zeros(n, self.hidden)
        c = torch.zeros_like(h)
        inp = torch.zeros_like(h)
        out = []
        for t in range(self.space.num_decisions):
            h, c = self.lstm(inp, (h, c))
            out.append(torch.softmax(self._logits(t, h), dim=-1))
            inp = self.embedding(seqs[:, t] + self._token_offset[t])
        return out


class MemoryBuffer:
    """A buffer of architectures replayed to train the controller (Adam & Lorraine).

    Args:
        capacity: the most architectures kept.
        policy: ``"best"`` keeps the ``capacity`` distinct architectures with the highest
            reward seen (a re-seen architecture keeps its best reward); ``"random"`` stores
            every architecture offered until full, then each new one replaces a uniformly
            random entry (the paper's buffer of previously sampled architectures; the authors
            store 1,000 samples per epoch up to 10,000, i.e. ten epochs of history, and once
            full replace only 100 per epoch: give a ``capacity`` of several epochs' samples,
            or the buffer holds only the latest ones).
        seed: seed of the random replacement and of :meth:`sample`.
    """

    def __init__(self, capacity: int, *, policy: str = "best", seed: int = 0) -> None:
        check_number("capacity", capacity, ge=1, integer=True)
        check_choice("policy", policy, ("best", "random"))
        check_seed(seed)
        self.capacity = int(capacity)
        self.policy = policy
        self._gen = torch.Generator().manual_seed(int(seed))
        self._archs: list[Architecture] = []
        self._rewards: list[float] = []

    def __len__(self) -> int:
        return len(self._archs)

    @property
    def architectures(self) -> list[Architecture]:
        """The stored architectures (a copy of the list)."""
        return list(self._archs)

    @property
    def rewards(self) -> list[float]:
        """The reward stored with each architecture."""
        return list(self._rewards)

    def add(
        self, architectures: Sequence[Architecture], rewards: Sequence[float] | torch.Tensor
    ) -> None:
        """Offer architectures with their rewards (``len(rewards) == len(architectures)``)."""
        archs = _check_architectures("architectures", architectures)
        if isinstance(rewards, torch.Tensor):
            rs = [float(r) for r in rewards.detach().cpu().reshape(-1).tolist()]
        else:
            rs = [float(r) for r in rewards]
        if len(rs) != len(archs):
            raise ValueError(
                f"rewards must have one value per architecture ({len(archs)}), got {len(rs)}"
            )
        for r in rs:
            check_number("rewards[i]", r)
        for a, r in zip(archs, rs):
            if self.policy == "best":
                self._add_best(a, r)
            elif len(self._archs) < self.capacity:
                self._archs.append(a)
                self._rewards.append(r)
            else:
                k = int(torch.randint(0, self.capacity, (1,), generator=self._gen))
                self._archs[k], self._rewards[k] = a, r

    def _add_best(self, arch: Architecture, reward: float) -> None:
        if arch in self._archs:
            k = self._archs.index(arch)
            self._rewards[k] = max(self._rewards[k], reward)
            return
        if len(self._archs) < self.capacity:
            self._archs.append(arch)
            self._rewards.append(reward)
            return
        k = min(range(len(self._rewards)), key=self._rewards.__getitem__)
        if reward > self._rewards[k]:
            self._archs[k], self._rewards[k] = arch, reward

    def sample(self, k: int) -> list[Architecture]:
        """``k`` architectures drawn uniformly (with replacement) from the buffer."""
        check_number("k", k, ge=1, integer=True)
        if not self._archs:
            raise ValueError("the buffer must hold architectures before sampling, got 0")
        idx = torch.randint(0, len(self._archs), (int(k),), generator=self._gen)
        return [self._archs[i] for i in idx.tolist()]


@dataclass(frozen=True)
class ReinforceConfig:
    """How the controller is trained.

    Attributes:
        lr: Adam learning rate.
        baseline_decay: decay of the moving-average reward baseline.
        entropy_weight: weight of the entropy bonus added to the reward.
        memory_weight: weight of the memory-buffer reconstruction loss (when a buffer batch is
            given to :meth:`ReinforceTrainer.step`).
        grad_clip: clip of the controller gradient norm (``None``: no clipping).
    """

    lr: float = 5e-3
    baseline_decay: float = 0.95
    entropy_weight: float = 1e-4
    memory_weight: float = 1.0
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        check_number("lr", self.lr, gt=0.0)
        check_number("baseline_decay", self.baseline_decay, ge=0.0, lt=1.0)
        check_number("entropy_weight", self.entropy_weight, ge=0.0)
        check_number("memory_weight", self.memory_weight, ge=0.0)
        if self.grad_clip is not None:
            check_number("grad_clip", self.grad_clip, gt=0.0)


class ReinforceTrainer:
    """REINFORCE with a moving-average baseline and entropy bonus, plus memory replay.

    Args:
        controller: the controller trained in place.
        config: :class:`ReinforceConfig`.
    """

    def __init__(self, controller: ENASController, config: ReinforceConfig | None = None) -> None:
        check_type("controller", controller, ENASController)
        config = ReinforceConfig() if config is None else config
        check_type("config", config, ReinforceConfig)
        self.controller = controller
        self.config = config
        self.baseline: float | None = None
        self.optimizer = torch.optim.Adam(controller.parameters(), lr=config.lr)

    @grad_enabled("ReinforceTrainer.step")
    def step(
        self,
        sample: ControllerSample,
        rewards: torch.Tensor,
        memory: Sequence[Architecture] | None = None,
    ) -> dict[str, float]:
        """One controller update from a sample and its rewards ``[n]`` (accuracies).

        Args:
            sample: the architectures (and their differentiable log-probabilities) drawn by
                ``controller.sample``.
            rewards: ``[n]`` reward of each sampled architecture (before the entropy bonus).
            memory: buffered architectures whose reconstruction loss is added (or ``None``).

        Returns:
            ``{"reward", "baseline", "pg_loss", "memory_loss", "entropy"}`` for the step.
        """
        check_type("sample", sample, ControllerSample)
        check_type("rewards", rewards, torch.Tensor)
        n = len(sample.architectures)
        if rewards.shape != (n,):
            raise ValueError(f"rewards must have shape ({n},), got {tuple(rewards.shape)}")
        if not torch.isfinite(rewards).all():
            raise ValueError("rewards must be finite, got NaN or inf")
        if not sample.log_prob.requires_grad:
            raise ValueError(
                "sample must carry the controller's autograd graph, got log-probabilities "
                "without one: draw it with controller.sample outside torch.no_grad()"
            )
        cfg = self.config
        entropy = sample.entropy.detach()
        r = rewards.detach().float().to(entropy.device) + cfg.entropy_weight * entropy
        mean_r = float(r.mean())
        if self.baseline is None:
            self.baseline = mean_r
        else:
            self.baseline = cfg.baseline_decay * self.baseline + (1 - cfg.baseline_decay) * mean_r
        advantage = r - self.baseline
        pg_loss = -(advantage * sample.log_prob).mean()
        loss = pg_loss
        memory_loss = torch.zeros(())
        if memory is not None and cfg.memory_weight > 0:
            memory_loss = -self.controller.log_prob(memory).mean()
            loss = loss + cfg.memory_weight * memory_loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.controller.parameters(), cfg.grad_clip)
        self.optimizer.step()
        # drop an outer autocast's cached low-precision copies of the updated weights
        torch.clear_autocast_cache()
        return {
            "reward": float(rewards.mean()),
            "baseline": float(self.baseline),
            "pg_loss": float(pg_loss.detach()),
            "memory_loss": float(memory_loss.detach()),
            "entropy": float(sample.entropy.detach().mean()),
        }
