"""HideNseek on Flower: a real multi-process / multi-machine deployment.

Vallapuram et al. (2022), "HideNseek: Federated Lottery Ticket via Server-side Pruning and Sign
Supermask". Needs the optional extra ``neuronkit-pruning[flwr]`` (Flower); ``flwr`` is imported
only when a function of this module is called.

Wire protocol (the same client and server steps as the in-process loop,
:mod:`neuronkit.pruning.federated.loop`):

- downlink: the global scores of the unpruned weights, one float32 array per masked layer;
- uplink: one ``uint8`` array, the client's sign supermask packed 1 bit per unpruned weight
  (:func:`~neuronkit.pruning.federated.comm.pack_signs`), plus the metric ``uplink_bits``;
- server: the sample-weighted sign vote
  (:func:`~neuronkit.pruning.federated.loop.aggregate_sign_votes`).

Server and clients build the same :class:`~.supermask.SignSupermask` from a shared seed (the
random initialization and the data-free SynFlow mask are deterministic), so only signs travel.

Two ways to run it:

- Flower's deployment engine (``flower-superlink`` + ``flower-supernode`` + ``flwr run``):
  :func:`server_app` and :func:`client_app` return the ``ServerApp`` and ``ClientApp`` that a
  Flower app project points at. The app is a folder with a module that builds them at import
  (every process builds the same network from the same seed) and a ``pyproject.toml``::

      # hidenseek_app.py
      net = ...  # the shared SignSupermask, built from a fixed seed
      def load_data(context):  # this node's (x [N, ...], y [N])
          k = int(context.node_config["partition-id"])
          ...
      server = flower.server_app(net, rounds=10, min_clients=2, x_test=x_test, y_test=y_test)
      client = flower.client_app(load_data, net, local=LocalConfig())

      # pyproject.toml
      [project]
      name = "hidenseekapp"
      version = "1.0.0"
      [tool.flwr.app]
      publisher = "you"
      [tool.flwr.app.components]
      serverapp = "hidenseek_app:server"
      clientapp = "hidenseek_app:client"

  then, in an environment that already holds neuronkit-pruning and Flower::

      flower-superlink --insecure --port 9091 --disable-runtime-dependency-installation
      flower-supernode --insecure --superlink 127.0.0.1:9091 --port 9094 \\
          --node-config 'partition-id=0 num-partitions=2'   # and one per further node
      flwr run path/to/app my-superlink --stream  # [superlink.my-superlink] in
                                                  # $FLWR_HOME/config.toml: address, insecure

  (``--disable-runtime-dependency-installation``: the SuperLink would otherwise ``uv sync``
  the app's dependencies from a package index before running it; offline, also set
  ``FLWR_TELEMETRY_ENABLED=0`` and ``FLWR_DISABLE_UPDATE_CHECK=1``.) ``server_app(...,
  on_finish=...)`` hands the final strategy (global scores, history) to a callback in the
  ServerApp's process, for example to save the final mask.
  tests/federated/test_flower_deployment.py runs exactly this on loopback.
- the legacy gRPC route, one OS process per party: :func:`start_server`
  (``flwr.server.start_server``) and :func:`start_client`
  (``flwr.compat.client.app.start_client``); both are deprecated in Flower >= 1.13 but still
  shipped in 1.42, and they need nothing but a reachable address.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any

import numpy as np
import torch

from neuronkit.common import check_number, check_seed, check_type
from neuronkit.pruning.lottery import accuracy
from neuronkit.pruning.lottery.rewind import _accuracy, _check_data

from .comm import pack_signs, payload_bits, unpack_signs
from .loop import LocalConfig, _check_xy, aggregate_sign_votes, hidenseek_client_update
from .supermask import SignSupermask

__all__ = [
    "client_app",
    "import_flwr",
    "make_client",
    "make_strategy",
    "server_app",
    "start_client",
    "start_server",
]

EXTRA_HINT = (
    "neuronkit.pruning.federated.flower needs Flower; install the extra: "
    "pip install 'neuronkit-pruning[flwr]'"
)


def import_flwr() -> ModuleType:
    """Import ``flwr`` or raise ``ImportError`` naming the extra ``neuronkit-pruning[flwr]``."""
    try:
        import flwr
    except ImportError as err:  # pragma: no cover - exercised without the extra
        raise ImportError(EXTRA_HINT) from err
    return flwr


def _scores_to_arrays(net: SignSupermask, scores: dict[str, torch.Tensor]) -> list[np.ndarray]:
    return [scores[n][net.mask(n)].detach().float().cpu().numpy() for n in net.names]


def _arrays_to_scores(net: SignSupermask, arrays: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
    if len(arrays) != len(net.names):
        raise ValueError(
            f"parameters must hold one array per masked layer ({len(net.names)}), got {len(arrays)}"
        )
    out = {}
    for n, a in zip(net.names, arrays, strict=True):
        m = net.mask(n)
        a = np.asarray(a)
        if a.shape != (int(m.sum()),):
            raise ValueError(
                f"parameters for {n!r} must have shape ({int(m.sum())},), got {a.shape}"
            )
        full = torch.zeros(m.shape, dtype=torch.float32, device=m.device)
        full[m] = torch.from_numpy(a.astype(np.float32)).to(m.device)
        out[n] = full
    return out


@functools.cache
def _classes() -> tuple[type, type]:
    """Define the Flower subclasses once flwr is importable."""
    import_flwr()
    from flwr.client import NumPyClient
    from flwr.common import FitIns, ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.server.strategy import Strategy

    class HideNseekClient(NumPyClient):
        """A Flower client that trains sign scores and uploads 1 bit per unpruned weight."""

        def __init__(
            self,
            net: SignSupermask,
            x: torch.Tensor,
            y: torch.Tensor,
            local: LocalConfig,
            seed: int,
        ) -> None:
            self.net = net
            self.x, self.y = x, y
            self.local = local
            self.seed = seed
            self.rounds = 0

        def get_parameters(self, config: dict[str, Any]) -> list[np.ndarray]:
            return _scores_to_arrays(self.net, self.net.get_scores())

        def fit(
            self, parameters: list[np.ndarray], config: dict[str, Any]
        ) -> tuple[list[np.ndarray], int, dict[str, Any]]:
            scores = _arrays_to_scores(self.net, parameters)
            rnd = int(config.get("server_round", self.rounds + 1))
            self.rounds += 1
            signs = hidenseek_client_update(
                self.net, scores, self.x, self.y, self.local, seed=self.seed * 1009 + rnd
            )
            packed = pack_signs(signs)
            bits = int(sum(int(s.numel()) for s in signs.values()))
            return [packed], len(self.y), {"uplink_bits": bits}

        def evaluate(
            self, parameters: list[np.ndarray], config: dict[str, Any]
        ) -> tuple[float, int, dict[str, Any]]:
            net = _copy_net(self.net)
            net.set_scores(_arrays_to_scores(self.net, parameters))
            acc = accuracy(net, self.x, self.y)
            return 1.0 - acc, len(self.y), {"accuracy": acc}

    class HideNseekStrategy(Strategy):
        """Server strategy: all clients every round, sample-weighted sign vote."""

        def __init__(
            self,
            net: SignSupermask,
            *,
            min_clients: int,
            evaluate_fn: Callable[[SignSupermask], float] | None = None,
        ) -> None:
            super().__init__()
            self.net = _copy_net(net)
            self.min_clients = min_clients
            self.evaluate_fn = evaluate_fn
            self.scores = self.net.get_scores()
            self.history: dict[str, list[Any]] = {
                "accuracy": [],
                "uplink_bits": [],
                "payload_bits": [],
                "flips": [],
                "clients": [],
            }

        def initialize_parameters(self, client_manager: Any) -> Any:
            return ndarrays_to_parameters(_scores_to_arrays(self.net, self.scores))

        def configure_fit(self, server_round: int, parameters: Any, client_manager: Any) -> Any:
            clients = client_manager.sample(
                num_clients=self.min_clients, min_num_clients=self.min_clients
            )
            ins = FitIns(parameters, {"server_round": server_round})
            return [(c, ins) for c in clients]

        def aggregate_fit(self, server_round: int, results: Any, failures: Any) -> Any:
            if failures or not results:
                raise RuntimeError(
                    f"round {server_round}: {len(failures)} client(s) failed and "
                    f"{len(results)} answered; HideNseek needs every client: {failures!r:.300}"
                )
            sizes = [int(self.net.mask(k).sum()) for k in self.net.names]
            msgs, weights, bits, payload = [], [], 0, 0
            for _, res in results:
                arrays = parameters_to_ndarrays(res.parameters)
                if len(arrays) != 1:
                    raise ValueError(f"a client sent {len(arrays)} arrays, expected 1 packed array")
                payload += payload_bits(arrays)
                bits += int(res.metrics["uplink_bits"])
                unpacked = unpack_signs(arrays[0], sizes)
                msgs.append(dict(zip(self.net.names, unpacked, strict=True)))
                weights.append(res.num_examples)
            new = aggregate_sign_votes(self.net, msgs, weights, self.scores)
            changed = sum(
                int(((new[n] >= 0) != (self.scores[n] >= 0))[self.net.mask(n)].sum())
                for n in self.net.names
            )
            self.history["flips"].append(changed / self.net.num_unpruned())
            self.scores = new
            self.net.set_scores(new)
            self.history["uplink_bits"].append(bits)
            self.history["payload_bits"].append(payload)
            self.history["clients"].append(len(results))
            params = ndarrays_to_parameters(_scores_to_arrays(self.net, self.scores))
            return params, {"uplink_bits": bits}

        def configure_evaluate(
            self, server_round: int, parameters: Any, client_manager: Any
        ) -> Any:
            return []

        def aggregate_evaluate(self, server_round: int, results: Any, failures: Any) -> Any:
            return None, {}

        def evaluate(self, server_round: int, parameters: Any) -> Any:
            if self.evaluate_fn is None or server_round == 0:
                return None
            acc = float(self.evaluate_fn(self.net))
            self.history["accuracy"].append(acc)
            return 1.0 - acc, {"accuracy": acc}

    # pickled by reference, as module attributes (the module's __getattr__ defines them on
    # demand): a client or strategy (with its scores and history) then pickles and
    # torch.saves, and reaches worker processes, like any module-level class
    HideNseekClient.__qualname__ = "HideNseekClient"
    HideNseekStrategy.__qualname__ = "HideNseekStrategy"
    return HideNseekClient, HideNseekStrategy


def __getattr__(name: str) -> Any:
    """``HideNseekClient`` and ``HideNseekStrategy``, the classes of :func:`make_client` and
    :func:`make_strategy` (defined, and ``flwr`` imported, on first use)."""
    if name in ("HideNseekClient", "HideNseekStrategy"):
        client_cls, strategy_cls = _classes()
        return client_cls if name == "HideNseekClient" else strategy_cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _test_accuracy(x_test: torch.Tensor, y_test: torch.Tensor, model: SignSupermask) -> float:
    """The server-side accuracy of :func:`make_strategy` (``x_test`` and ``y_test`` bound)."""
    return _accuracy(model, x_test, y_test, 1024, "x_test", "y_test")


def _copy_net(net: SignSupermask) -> SignSupermask:
    """A deep copy of ``net`` (the Flower wrappers never modify the caller's network)."""
    import copy

    check_type("net", net, SignSupermask)
    return copy.deepcopy(net)


def make_client(
    net: SignSupermask,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    local: LocalConfig,
    seed: int = 0,
) -> Any:
    """A Flower ``NumPyClient`` running HideNseek's client step on ``(x [N, ...], y [N])``.

    Raises ``ValueError`` for an empty dataset (before any connection is made).
    """
    check_type("net", net, SignSupermask)
    _check_xy(x, y, "client")
    check_type("local", local, LocalConfig)
    check_seed(seed)
    client_cls, _ = _classes()
    return client_cls(_copy_net(net), x, y, local, int(seed))


def make_strategy(
    net: SignSupermask,
    *,
    min_clients: int,
    x_test: torch.Tensor | None = None,
    y_test: torch.Tensor | None = None,
) -> Any:
    """A Flower ``Strategy`` for HideNseek (all ``min_clients`` clients every round).

    Args:
        net: the shared :class:`SignSupermask` (copied).
        min_clients: clients sampled (and waited for) each round.
        x_test: optional server-side test inputs ``[M, ...]``; y_test: labels ``[M]``.

    Returns:
        The strategy; after the run, ``strategy.history`` holds per-round ``accuracy``,
        ``uplink_bits`` (the formula: 1 bit per unpruned weight per client), ``payload_bits``
        (measured), ``flips`` and ``clients``; ``strategy.scores`` the final global scores.
    """
    check_type("net", net, SignSupermask)
    check_number("min_clients", min_clients, ge=1, integer=True)
    evaluate_fn: Callable[[SignSupermask], float] | None = None
    if x_test is not None or y_test is not None:
        if x_test is None or y_test is None:
            raise ValueError("x_test and y_test must be given together")
        _check_data(x_test, y_test, "x_test", "y_test")
        # a partial of a module-level function, not a closure: the strategy pickles
        evaluate_fn = functools.partial(_test_accuracy, x_test, y_test)
    _, strategy_cls = _classes()
    return strategy_cls(net, min_clients=int(min_clients), evaluate_fn=evaluate_fn)


def start_server(
    address: str,
    net: SignSupermask,
    *,
    rounds: int,
    min_clients: int,
    x_test: torch.Tensor | None = None,
    y_test: torch.Tensor | None = None,
    round_timeout: float | None = None,
) -> Any:
    """Run a HideNseek Flower server (gRPC) at ``address`` (``"host:port"``) until done.

    Returns:
        The strategy (see :func:`make_strategy`) with its ``history``.
    """
    check_type("address", address, str)
    if ":" not in address:
        raise ValueError(f"address must look like 'host:port', got {address!r}")
    check_number("rounds", rounds, ge=1, integer=True)
    flwr = import_flwr()
    strategy = make_strategy(net, min_clients=min_clients, x_test=x_test, y_test=y_test)
    flwr.server.start_server(
        server_address=address,
        config=flwr.server.ServerConfig(num_rounds=int(rounds), round_timeout=round_timeout),
        strategy=strategy,
    )
    return strategy


def start_client(
    address: str,
    net: SignSupermask,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    local: LocalConfig,
    seed: int = 0,
    max_retries: int | None = 20,
    max_wait_time: float | None = 60.0,
) -> None:
    """Connect a HideNseek client to the server at ``address`` and serve until it is done."""
    check_type("address", address, str)
    if ":" not in address:
        raise ValueError(f"address must look like 'host:port', got {address!r}")
    client = make_client(net, x, y, local=local, seed=seed)
    import_flwr()
    from flwr.compat.client.app import start_client as _start_client

    _start_client(
        server_address=address,
        client=client.to_client(),
        insecure=True,
        max_retries=max_retries,
        max_wait_time=max_wait_time,
    )


def server_app(
    net: SignSupermask,
    *,
    rounds: int,
    min_clients: int,
    x_test: torch.Tensor | None = None,
    y_test: torch.Tensor | None = None,
    on_finish: Callable[[Any, Any], None] | None = None,
) -> Any:
    """A Flower ``ServerApp`` running HideNseek (for ``flower-superlink`` + ``flwr run``).

    Args:
        net: the shared :class:`SignSupermask` (copied for every run).
        rounds: communication rounds of each run.
        min_clients: clients sampled (and waited for) each round.
        x_test: optional server-side test inputs ``[M, ...]``; y_test: labels ``[M]``.
        on_finish: called as ``on_finish(strategy, context)`` in the ServerApp's process once
            all ``rounds`` rounds are aggregated (not after a failed run); ``strategy`` is the
            one :func:`make_strategy` returns (``history``, final ``scores`` and ``net``),
            ``context`` Flower's ``Context`` (``run_config``, ``run_id``).
    """
    check_number("rounds", rounds, ge=1, integer=True)
    check_number("min_clients", min_clients, ge=1, integer=True)
    if on_finish is not None and not callable(on_finish):
        raise TypeError(f"on_finish must be callable or None, got {type(on_finish).__name__}")
    import_flwr()
    from flwr.server import ServerAppComponents, ServerConfig
    from flwr.serverapp import ServerApp

    strategies: list[Any] = []  # the strategy of the run in progress (one run per process)

    def server_fn(context: Any) -> Any:
        strategy = make_strategy(net, min_clients=min_clients, x_test=x_test, y_test=y_test)
        strategies.append(strategy)
        return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=int(rounds)))

    app = ServerApp(server_fn=server_fn)
    if on_finish is not None:

        @app.lifespan()
        def _finish(context: Any) -> Iterator[None]:
            strategies.clear()
            yield  # the run; Flower resumes here whether it finished or raised
            if strategies and len(strategies[-1].history["clients"]) == int(rounds):
                on_finish(strategies[-1], context)

    return app


def client_app(
    load_data: Callable[[Any], tuple[torch.Tensor, torch.Tensor]],
    net: SignSupermask,
    *,
    local: LocalConfig,
    seed: int = 0,
) -> Any:
    """A Flower ``ClientApp`` (for ``flower-supernode``).

    ``load_data(context)`` returns the node's ``(x [N, ...], y [N])``.
    """
    if not callable(load_data):
        raise TypeError(f"load_data must be callable, got {type(load_data).__name__}")
    import_flwr()
    from flwr.clientapp import ClientApp

    def client_fn(context: Any) -> Any:
        x, y = load_data(context)
        return make_client(net, x, y, local=local, seed=seed).to_client()

    return ClientApp(client_fn=client_fn)
