"""nerco.training.distributed: collectives on the process's device, and what the processes agree
on."""

from __future__ import annotations

import argparse
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from nerco.runtime import UserError
from nerco.training import distributed
from nerco.training.distributed import Context


class _Recorded(Exception):
    """Raised by the stand-in collective once it has seen the tensor."""


def test_every_collective_uses_the_process_device(monkeypatch):
    """NCCL takes only CUDA tensors: every tensor handed to a collective must be on the
    context's device. The meta device stands for a GPU here (tensors without data)."""
    from nerco.training.trainer import _run_seed  # here: the gloo workers below import this module

    seen = []

    def collective(tensor, *args, **kwargs):
        seen.append(tensor.device)
        raise _Recorded

    monkeypatch.setattr(dist, "all_reduce", collective)
    monkeypatch.setattr(dist, "broadcast", collective)
    context = Context(rank=0, world_size=2, device=torch.device("meta"))
    calls = {
        "seed": lambda: _run_seed(argparse.Namespace(seed=None), context),
        "mean": lambda: context.mean({"G_A": 1.0}),
        "agree": lambda: context.agree(True, None, 3),
        "broadcast_int": lambda: context.broadcast_int(5),
        "rank_zero_first": lambda: context.rank_zero_first(lambda: 1),
    }
    for name, call in calls.items():
        with pytest.raises(_Recorded):
            call()
        assert seen.pop() == torch.device("meta"), name


def test_one_process_needs_no_collective(monkeypatch):
    monkeypatch.setattr(dist, "all_reduce", None)  # any call would fail
    context = Context()
    assert context.agree(True, 12, 4) == (True, (12, 0), 4)
    assert context.agree(False, None, 1) == (False, None, 1)
    assert context.mean({"a": 2.0}) == {"a": 2.0}
    assert context.broadcast_int(9) == 9
    assert context.rank_zero_first(lambda: "x") == "x"


def test_process_device_outside_torchrun(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.process_device(torch.device("cpu")) == torch.device("cpu")


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    context = Context(rank=rank, world_size=2, device=torch.device("cpu"))
    results = {
        "seed": context.broadcast_int(1234 if rank == 0 else 99),
        "mean": context.mean({"a": float(rank), "b": 10.0 * rank}),
        # rank 1 asked to stop; both diverged, rank 1 first (iteration 4 < 6); rank 0 proposes
        "agree": context.agree(rank == 1, 6 if rank == 0 else 4, 7 if rank == 0 else 500),
        "quiet": context.agree(False, None, 2),
        "tie": context.agree(False, 8, 1),  # same iteration: the lower rank reports
    }
    marker = os.path.join(out_dir, "cache")

    def download():
        if rank == 0:
            with open(marker, "w") as handle:
                handle.write("weights")
        with open(marker) as handle:  # the others find it in the cache
            return handle.read()

    results["first"] = context.rank_zero_first(download)

    def offline():
        raise UserError("no CLIP weights")

    try:
        context.rank_zero_first(offline)
        results["error"] = None
    except UserError as err:
        results["error"] = str(err)
    torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


def test_what_two_gloo_processes_agree_on(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    zero, one = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    for results in (zero, one):
        assert results["seed"] == 1234
        assert results["mean"] == {"a": 0.5, "b": 5.0}
        assert results["agree"] == (True, (4, 1), 7)
        assert results["quiet"] == (False, None, 2)
        assert results["tie"] == (False, (8, 0), 1)
        assert results["first"] == "weights"
    assert zero["error"] == "no CLIP weights"
    assert one["error"] == "rank 0 stopped (see its message)"


def test_process_device_under_torchrun_is_local_rank(monkeypatch):
    current = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: current.append(device))
    assert distributed.process_device(torch.device("cuda", 0)) == torch.device("cuda", 1)
    assert current == [torch.device("cuda", 1)]
    monkeypatch.setenv("LOCAL_RANK", "2")
    with pytest.raises(UserError, match="--nproc_per_node 2"):
        distributed.process_device(torch.device("cuda", 0))


def test_train_py_makes_its_gpu_current_before_touching_cuda(monkeypatch, tmp_path):
    """--gpu_ids 1: GPU 1 is the current device before the bf16 check (which asks the
    current device) and before the data loader pins memory (which pins for it)."""
    import nerco.training.cli as train

    events = []
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(train, "select_device", lambda ids: torch.device("cuda", 1))
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: events.append(torch.device(d)))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: events.append("bf16?") or True)

    def setup(device):
        events.append(("setup", device))
        raise UserError("stop here")

    monkeypatch.setattr(distributed, "setup", setup)
    code = train.main(
        [
            "--dataroot",
            str(tmp_path),
            "--checkpoints_dir",
            str(tmp_path),
            *"--gpu_ids 1 --amp bf16 --display_id 0".split(),
        ]
    )
    assert code == 2
    assert events == [torch.device("cuda", 1), "bf16?", ("setup", torch.device("cuda", 1))]


def test_edge_projection_is_drawn_on_the_image_device(monkeypatch):
    """Official objective: a fresh projection per call, made where the image is (on a GPU:
    no CPU draw and copy). The meta device stands for the GPU."""
    from nerco.networks.edge import EdgeOperator

    drawn = []
    original = torch.nn.init.kaiming_uniform_
    monkeypatch.setattr(
        torch.nn.init,
        "kaiming_uniform_",
        lambda tensor, *a, **k: drawn.append(tensor.device) or original(tensor, *a, **k),
    )
    edge = EdgeOperator(random_projection=True).to("meta")
    out = edge(torch.empty(1, 3, 8, 8, device="meta"))
    assert out.device.type == "meta" and drawn == [torch.device("meta")]


def test_torchrun_with_one_process_joins_a_group(monkeypatch):
    """``torchrun --nproc_per_node 1`` runs the multi-process code (a group of one), so a job
    script that always uses torchrun exercises NCCL and DDP even on one GPU."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for name, value in {
        "TORCHELASTIC_RUN_ID": "one",
        "RANK": "0",
        "LOCAL_RANK": "0",
        "WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }.items():
        monkeypatch.setenv(name, value)
    context = distributed.setup(torch.device("cpu"))
    try:
        assert context.distributed and context.world_size == 1
        assert context.backend == "gloo"
        assert context.mean({"a": 2.5}) == {"a": 2.5}
        assert context.broadcast_int(7) == 7
        assert context.agree(True, 3, 5) == (True, (3, 0), 5)
    finally:
        distributed.teardown(context)
    assert not dist.is_initialized()
    monkeypatch.delenv("TORCHELASTIC_RUN_ID")
    assert not distributed.launched_by_torchrun()  # WORLD_SIZE 1 by hand: one process
