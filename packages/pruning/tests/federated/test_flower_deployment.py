"""HideNseek on Flower's deployment engine, on loopback, as a user deploys it.

One ``flower-superlink --insecure``, two ``flower-supernode --insecure`` (each with its
``partition-id`` node config) and ``flwr run`` submitting a Flower app whose components are the
package's own :func:`~neuronkit.pruning.federated.flower.server_app` and
:func:`~neuronkit.pruning.federated.flower.client_app`. Every port is picked free; Flower's home
(``FLWR_HOME``: the SuperLink connection and the installed app) is a temporary folder; the
SuperLink is told not to ``uv sync`` the app's dependencies (that would need a package index),
so the run uses this environment; telemetry and the update check are off (no network use).
The final global sign mask and the accuracies must equal the same rounds computed in this
process with the loop's client and server steps
(:func:`~neuronkit.pruning.federated.loop.hidenseek_client_update`,
:func:`~neuronkit.pruning.federated.loop.aggregate_sign_votes`).

Every process started here, and everything Flower starts under it (SuperExec, ``flwr-serverapp``,
``flwr-clientapp``; some in sessions of their own), carries a marker in its environment and is
killed on teardown, pass or fail. Flower 1.42 starts a fresh ``flwr-clientapp`` process (which
imports Flower and torch) for every message and polls every 3 s, so each round costs several
seconds of process start-up: this test takes about 1-2 minutes on a busy 2-core machine.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("flwr", reason="the flwr extra (neuronkit-pruning[flwr]) is not installed")

import torch

ROUNDS = 2
N_NODES = 2
BUDGET_S = 300.0  # whole federation; about 30-40 s on a busy 2-core machine
MARKER = "NEURONKIT_FLOWER_DEPLOYMENT_TEST"

# The Flower app: the network, the data and its partition are rebuilt identically (fixed seeds)
# in the ServerApp process and in every ClientApp process, as in a real deployment.
APP_MODULE = textwrap.dedent(
    f"""
    import json

    import torch
    from torch import nn

    from neuronkit.pruning.federated import LocalConfig, SignSupermask, dirichlet_partition
    from neuronkit.pruning.federated import synflow_prune
    from neuronkit.pruning.federated import flower

    ROUNDS = {ROUNDS}
    N_NODES = {N_NODES}
    LOCAL = LocalConfig(epochs=1, batch_size=8, lr=0.1, optimizer="adam")


    def build():
        gen = torch.Generator().manual_seed(0)
        model = nn.Sequential(
            nn.Flatten(), nn.Linear(8, 24, bias=False), nn.ReLU(), nn.Linear(24, 3, bias=False)
        )
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[1] ** 0.5)
        net = SignSupermask(model, synflow_prune(model, 0.5, (1, 8), iterations=5), rescale=True)
        x = torch.randn(360, 1, 8, generator=gen)
        y = x[:, 0, :3].argmax(1).long()
        parts = dirichlet_partition(y[:240], N_NODES, 0.5, seed=0, min_size=40)
        return net, x, y, parts


    NET, X, Y, PARTS = build()


    def load_data(context):
        k = int(context.node_config["partition-id"])
        if int(context.node_config["num-partitions"]) != N_NODES:
            raise ValueError("num-partitions must be " + str(N_NODES))
        return X[PARTS[k]], Y[PARTS[k]]


    def save(strategy, context):
        with open(str(context.run_config["result-file"]), "w") as f:
            json.dump(
                {{
                    "history": strategy.history,
                    "signs": {{k: v.tolist() for k, v in strategy.net.signs().items()}},
                }},
                f,
            )


    server = flower.server_app(
        NET, rounds=ROUNDS, min_clients=N_NODES, x_test=X[240:], y_test=Y[240:], on_finish=save
    )
    client = flower.client_app(load_data, NET, local=LOCAL)
    """
)

APP_PYPROJECT = textwrap.dedent(
    """
    [project]
    name = "hidenseekapp"
    version = "1.0.0"
    description = "HideNseek on Flower (neuronkit-pruning test)"
    license = "MIT"

    [tool.flwr.app]
    publisher = "neuronkit"

    [tool.flwr.app.components]
    serverapp = "hidenseek_app:server"
    clientapp = "hidenseek_app:client"

    [tool.flwr.app.config]
    result-file = ""
    """
)


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _marked_pids(tag: str) -> list[int]:
    """Processes whose environment holds ``MARKER=tag`` (Linux /proc; [] elsewhere)."""
    needle = f"{MARKER}={tag}".encode()
    pids = []
    for d in Path("/proc").glob("[0-9]*"):
        try:
            if needle in (d / "environ").read_bytes().split(b"\0"):
                pids.append(int(d.name))
        except (OSError, ValueError):
            continue
    return [p for p in pids if p != os.getpid()]


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _stop(p: subprocess.Popen[bytes], hard: bool) -> None:
    """Signal ``p``'s process group (each process here starts its own session)."""
    if p.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if hasattr(os, "killpg"):
            os.killpg(p.pid, signal.SIGKILL if hard else signal.SIGTERM)
        elif hard:
            p.kill()
        else:
            p.terminate()


def _kill_all(procs: list[subprocess.Popen[bytes]], tag: str) -> list[int]:
    """SIGTERM, then SIGKILL, every process started here or below; return the survivors.

    Flower starts its SuperExec in a session of its own, and the SuperExec starts the
    ``flwr-serverapp`` / ``flwr-clientapp`` processes, so process groups are not enough: every
    process whose environment carries the test's marker is signalled too.
    """
    for p in procs:
        _stop(p, hard=False)
    for pid in _marked_pids(tag):
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if all(p.poll() is not None for p in procs) and not _alive(_marked_pids(tag)):
            break
        time.sleep(0.2)
    for p in procs:
        _stop(p, hard=True)
    for pid in _alive(_marked_pids(tag)):
        _signal(pid, signal.SIGKILL)
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=10)
    deadline = time.monotonic() + 5
    while _alive(_marked_pids(tag)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return _alive(_marked_pids(tag))


def _alive(pids: list[int]) -> list[int]:
    """The pids that are running (not zombies waiting for a parent to reap them)."""
    out = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            out.append(pid)
    return out


def _log_tail(path: Path, n: int = 3000) -> str:
    try:
        return f"--- {path.name}\n{path.read_text(errors='replace')[-n:]}"
    except OSError:
        return f"--- {path.name}: (no log)"


def _wait_listening(port: int, proc: subprocess.Popen[bytes], deadline: float) -> bool:
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.25)
    return False


class _Processes:
    """The processes of one test: started with a shared environment, logged, torn down."""

    def __init__(self, tmp_path: Path, tag: str) -> None:
        self.tmp_path, self.tag = tmp_path, tag
        self.home = tmp_path / "flwr-home"  # FLWR_HOME: connections and installed apps
        self.home.mkdir(exist_ok=True)
        bindir = str(Path(sys.executable).parent)  # Flower finds flower-superexec on PATH
        self.env = {
            **os.environ,
            "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
            "FLWR_HOME": str(self.home),
            "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": "1",
            "FLWR_TELEMETRY_ENABLED": "0",  # Flower would post usage events online
            "FLWR_DISABLE_UPDATE_CHECK": "1",  # and ask its server for a newer version
            MARKER: tag,
        }
        self.procs: list[subprocess.Popen[bytes]] = []
        self.servers: dict[str, subprocess.Popen[bytes]] = {}  # serve until stopped
        self.logs: list[Path] = []

    def start(self, name: str, command: list[str], *, server: bool) -> subprocess.Popen[bytes]:
        log = self.tmp_path / f"{name.replace(' ', '-')}.log"
        self.logs.append(log)
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.tmp_path,
                start_new_session=True,
            )
        self.procs.append(proc)
        if server:
            self.servers[name] = proc
        return proc

    def logs_text(self) -> str:
        return "\n".join(map(_log_tail, self.logs))

    def crashed(self) -> str | None:
        """The name of a server that exited (they serve until stopped), if any."""
        return next((n for n, p in self.servers.items() if p.poll() is not None), None)


@contextlib.contextmanager
def _federation(tmp_path: Path, tag: str) -> Iterator[_Processes]:
    """A SuperLink, the SuperNodes and a ``FLWR_HOME`` naming the SuperLink ``loopback``."""
    ps = _Processes(tmp_path, tag)
    ok = False
    try:
        for attempt in range(2):  # a port taken between probing and binding: one more try
            link_port, *node_ports = _free_ports(1 + N_NODES)
            link = ps.start(
                f"superlink {attempt}",
                [
                    "flower-superlink",
                    "--insecure",
                    *("--host", "127.0.0.1", "--port", str(link_port)),
                    "--disable-runtime-dependency-installation",  # no `uv sync` of the app
                ],
                server=False,
            )
            if _wait_listening(link_port, link, time.monotonic() + 120):
                break
        else:
            pytest.fail("flower-superlink did not start:\n" + ps.logs_text())
        ps.servers["superlink"] = link
        address = f"127.0.0.1:{link_port}"
        for k, port in enumerate(node_ports):
            ps.start(
                f"supernode {k}",
                [
                    "flower-supernode",
                    *("--insecure", "--superlink", address),
                    *("--host", "127.0.0.1", "--port", str(port)),  # its own Runtime API
                    *("--node-config", f"partition-id={k} num-partitions={N_NODES}"),
                ],
                server=True,
            )
        (ps.home / "config.toml").write_text(
            f'[superlink]\ndefault = "loopback"\n\n'
            f'[superlink.loopback]\naddress = "{address}"\ninsecure = true\n'
        )
        yield ps
        if (name := ps.crashed()) is not None:
            pytest.fail(f"{name} exited during the test:\n" + ps.logs_text())
        ok = True
    finally:
        survivors = _kill_all(ps.procs, tag)
        if ok:  # (after a failure, its own error is the one to see)
            assert not survivors, f"processes left running after teardown: {survivors}"


def _reference(app_dir: Path) -> dict[str, object]:
    """The same rounds in this process with the loop's client and server steps."""
    import importlib.util

    from neuronkit.pruning.federated.loop import aggregate_sign_votes, hidenseek_client_update
    from neuronkit.pruning.lottery import accuracy

    spec = importlib.util.spec_from_file_location(
        "_neuronkit_test_hidenseek_app", app_dir / "hidenseek_app.py"
    )
    assert spec is not None
    assert spec.loader is not None
    app = importlib.util.module_from_spec(spec)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the Flower processes (OMP_NUM_THREADS=1)
    try:
        spec.loader.exec_module(app)
        net, x, y, parts = app.build()
        scores = net.get_scores()
        accs = []
        for rnd in range(1, ROUNDS + 1):
            # every ClientApp has seed 0, so its data order's seed is 0 * 1009 + round
            msgs = [
                hidenseek_client_update(net, scores, x[p], y[p], app.LOCAL, seed=rnd) for p in parts
            ]
            scores = aggregate_sign_votes(net, msgs, [len(p) for p in parts], scores)
            net.set_scores(scores)
            accs.append(accuracy(net, x[240:], y[240:]))
    finally:
        torch.set_num_threads(threads)
    return {"accuracy": accs, "signs": {k: v.tolist() for k, v in net.signs().items()}}


@pytest.mark.slow
def test_hidenseek_runs_on_flower_superlink_and_supernodes(tmp_path: Path) -> None:
    app_dir = tmp_path / "hidenseekapp"
    app_dir.mkdir()
    (app_dir / "pyproject.toml").write_text(APP_PYPROJECT)
    (app_dir / "hidenseek_app.py").write_text(APP_MODULE)
    result_file = tmp_path / "result.json"
    deadline = time.monotonic() + BUDGET_S
    with _federation(tmp_path, uuid.uuid4().hex) as ps:
        run = ps.start(
            "flwr run",
            [
                *("flwr", "run", str(app_dir), "loopback", "--stream"),  # returns when done
                *("--run-config", f"result-file={json.dumps(str(result_file))}"),
            ],
            server=False,
        )
        while run.poll() is None and ps.crashed() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        if run.poll() is None:
            why = f"{ps.crashed()} exited" if ps.crashed() else f"over {BUDGET_S:.0f} s"
            pytest.fail(f"the Flower run did not finish ({why}):\n" + ps.logs_text())
        if run.returncode != 0 or not result_file.exists():  # (a failed run also exits 0)
            pytest.fail(
                f"the Flower run failed (flwr run exit status {run.returncode}, no result):\n"
                + ps.logs_text()
            )
    result = json.loads(result_file.read_text())
    hist = result["history"]
    signs = {k: torch.tensor(v) for k, v in result["signs"].items()}
    n = sum(int(s.numel()) for s in signs.values())
    assert hist["clients"] == [N_NODES] * ROUNDS
    # 1 bit per unpruned weight per client and round, as reported by the clients
    assert hist["uplink_bits"] == [N_NODES * n] * ROUNDS
    # what actually travelled: the packed signs, whole bytes per client
    assert hist["payload_bits"] == [N_NODES * 8 * math.ceil(n / 8)] * ROUNDS
    assert hist["flips"][0] > 0  # the aggregated sign mask moved
    assert len(hist["accuracy"]) == ROUNDS
    assert all(math.isfinite(a) and 0.0 <= a <= 1.0 for a in hist["accuracy"])
    # the deployment computed exactly what the in-process client and server steps compute
    ref = _reference(app_dir)
    assert result["signs"] == ref["signs"]
    assert hist["accuracy"] == ref["accuracy"]
