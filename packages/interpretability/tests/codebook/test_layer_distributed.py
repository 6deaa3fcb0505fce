"""CodebookLayer under DistributedDataParallel: the codebook replicas and the usage counts stay
the same on every rank when the ranks see different data and dead codes get replaced."""

from __future__ import annotations

import datetime
import os
import socket
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from neuronkit.interpretability.codebook.layer import CodebookLayer

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason="torch.distributed with the gloo backend is not available in this torch build",
)

_WORLD = 2
_STEPS = 5  # replacements at forward calls 2 and 4; call 5 leaves counts to compare
_BATCH = 6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, port: int, out_dir: str) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group(
        "gloo", rank=rank, world_size=_WORLD, timeout=datetime.timedelta(seconds=60)
    )
    try:
        torch.set_num_threads(1)
        torch.manual_seed(0)  # the same initial replica on every rank
        linear, layer = nn.Linear(4, 8), CodebookLayer(8, 16, replace_after_steps=2)
        model = nn.Sequential(linear, layer)
        ddp = nn.parallel.DistributedDataParallel(model)
        opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
        data = torch.Generator().manual_seed(10 + rank)  # different data on every rank
        codebooks = []
        for _ in range(_STEPS):
            x = torch.randn(_BATCH, 4, generator=data) + 3.0 * rank
            opt.zero_grad()
            out = ddp(x)
            (out.pow(2).mean() + layer.reconstruction_loss()).backward()
            opt.step()
            codebooks.append(layer.codebook.detach().clone())
        # sync_ranks=False: local bookkeeping, no collective (rank r calls it r + 1 times: a
        # collective would wait for the other rank and time out)
        local = CodebookLayer(8, 16, sync_ranks=False)
        for _ in range(rank + 1):
            local(torch.randn(_BATCH, 8, generator=data))
        torch.save(
            {
                "codebooks": torch.stack(codebooks),
                "counts": layer.counts.clone(),
                "local_counts": local.counts.clone(),
                "replaced_total": layer.replaced_total,
                "weight": linear.weight.detach().clone(),
            },
            Path(out_dir) / f"rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


def test_codebook_replicas_and_counts_stay_identical_under_ddp(tmp_path: Path) -> None:
    # spawned workers import torch and, in DDP's constructor, torch._dynamo afresh (~45 s on
    # a loaded 2-core machine). On Linux the workers come from a fork server that imported
    # both once: a fork of this (multi-threaded) test process itself can deadlock in the child.
    # The deadline only catches a hang (a collective that never returns raises after the
    # process group's 60 s): the test takes 8 s alone, 35 s beside three xdist workers running
    # the federated and training tests, and over 120 s in a full `nox -s lowest` run on 2 cores
    method = "forkserver" if sys.platform == "linux" else "spawn"
    if method == "forkserver":
        mp.set_forkserver_preload(["torch", "torch._dynamo", "torch.distributed"])
    ctx = mp.start_processes(
        _worker,
        args=(_free_port(), str(tmp_path)),
        nprocs=_WORLD,
        join=False,
        start_method=method,
    )
    deadline = time.monotonic() + 300
    while not ctx.join(timeout=1):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail("the DDP workers did not finish within 300 s")
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(_WORLD))
    # the run does replace dead codes (the part that used to drift)
    assert r0["replaced_total"] > 0
    torch.testing.assert_close(r0["weight"], r1["weight"], rtol=0, atol=1e-6)
    for step, (c0, c1) in enumerate(zip(r0["codebooks"], r1["codebooks"], strict=True)):
        diff = (c0 - c1).abs().max().item()
        assert diff <= 1e-6, f"codebook replicas differ after step {step}: max |diff| = {diff:.3g}"
    assert r0["replaced_total"] == r1["replaced_total"]
    # the counts are global: every vector of both ranks of the last step (after the last
    # replacement reset them) counted once on each rank
    assert torch.equal(r0["counts"], r1["counts"]), (r0["counts"], r1["counts"])
    assert int(r0["counts"].sum()) == _WORLD * _BATCH
    # without sync_ranks each rank counts only its own vectors
    assert [int(r["local_counts"].sum()) for r in (r0, r1)] == [_BATCH, 2 * _BATCH]
