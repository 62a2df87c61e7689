"""Multi-process training through ``torchrun`` (DistributedDataParallel).

``torchrun`` starts one process per GPU (or per CPU slot) and tells each its place through
the environment (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...). Started
without it, :func:`setup` returns a single-process context and nothing else changes.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from nerco.errors import UserError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Context:
    """Where this process stands in the run.

    Attributes:
        rank: Global rank (0 logs, displays and saves).
        local_rank: Rank on this node; picks the GPU.
        world_size: Number of processes.
        device: This process's device.
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Average a dict of floats over all processes (identity in a single process)."""
        if not self.distributed or not values:
            return values
        names = list(values)  # the same order on every process (built by the same code)
        tensor = torch.tensor([values[n] for n in names], dtype=torch.float64,
                              device=self.device)
        dist.all_reduce(tensor)
        return {n: float(v) / self.world_size for n, v in zip(names, tensor.tolist())}

    def any(self, flag: bool) -> bool:
        """True on every process when ``flag`` is true on at least one."""
        if not self.distributed:
            return flag
        tensor = torch.tensor([int(flag)], device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return bool(tensor.item())

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: torch.device) -> Context:
    """Join the process group when started by ``torchrun``; else a one-process context.

    Args:
        device: The device picked from ``--gpu_ids`` (single process), whose type decides
            the backend under ``torchrun``: NCCL and GPU ``LOCAL_RANK`` for CUDA, gloo for
            the CPU.
    """
    if not launched_by_torchrun():
        return Context(device=device)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    world_size = int(os.environ["WORLD_SIZE"])
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise UserError(f"torchrun started {os.environ.get('LOCAL_WORLD_SIZE', '?')} "
                            f"processes on this node but only {torch.cuda.device_count()} GPUs "
                            f"are visible: use --nproc_per_node {torch.cuda.device_count()}")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return Context(rank=rank, local_rank=local_rank, world_size=world_size, device=device)


def teardown(context: Context) -> None:
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()
