"""Multi-process training through ``torchrun`` (DistributedDataParallel).

``torchrun`` starts one process per GPU (or per CPU slot) and tells each its place through
the environment (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...). Under
``torchrun`` a process group is joined even with ``--nproc_per_node 1``, so a job script
that always uses ``torchrun`` runs the same code (NCCL, DDP) with one GPU as with eight.
Started without it, :func:`setup` returns a single-process context and nothing else
changes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

from nerco.runtime import UserError

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Context:
    """Where this process stands in the run.

    Attributes:
        rank: Global rank (0 logs, displays and saves).
        local_rank: Rank on this node; picks the GPU.
        world_size: Number of processes.
        device: This process's device.
        group: A process group was joined (``torchrun``, also with one process).
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    group: bool = False

    @property
    def distributed(self) -> bool:
        """Collectives and DDP are in use: under torchrun, whatever the number of processes."""
        return self.group or self.world_size > 1

    @property
    def backend(self) -> str | None:
        """``nccl`` or ``gloo`` when a process group was joined."""
        return dist.get_backend() if self.group and dist.is_initialized() else None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def _exchange(self, values: list, dtype: torch.dtype, op=None) -> list:
        """All-reduce ``values`` in a tensor on this process's device (NCCL takes CUDA
        tensors only); return the result as Python numbers: one host transfer."""
        tensor = torch.tensor(values, dtype=dtype, device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM if op is None else op)
        return tensor.tolist()

    def broadcast_int(self, value: int) -> int:
        """Rank 0's ``value`` on every process (identity in a single process)."""
        if not self.distributed:
            return value
        tensor = torch.tensor([value], dtype=torch.int64, device=self.device)
        dist.broadcast(tensor, src=0)
        return int(tensor.tolist()[0])

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Average a dict of floats over all processes (identity in a single process)."""
        if not self.distributed or not values:
            return values
        names = list(values)  # the same order on every process (built by the same code)
        summed = self._exchange([values[n] for n in names], torch.float64)
        return {n: float(v) / self.world_size for n, v in zip(names, summed)}

    def agree(
        self, stop: bool, diverged_at: int | None, proposal: int = 0
    ) -> tuple[bool, tuple[int, int] | None, int]:
        """One all-reduce of this process's flags with everyone else's.

        Args:
            stop: A stop was requested here (SIGINT/SIGTERM).
            diverged_at: The ``total_iters`` at which this process saw a non-finite loss.
            proposal: Rank 0's next check interval (others' values are ignored).

        Returns:
            (stop anywhere, (total_iters, rank) of the first divergence or None, the interval).
        """
        if not self.distributed:
            first = None if diverged_at is None else (diverged_at, self.rank)
            return stop, first, proposal
        # The earliest (iteration, rank) gets the largest key, so a MAX reduces everything.
        key = 0 if diverged_at is None else _KEY_BASE - (diverged_at * self.world_size + self.rank)
        stop_any, best, interval = self._exchange(
            [int(stop), key, proposal if self.is_main else 0], torch.int64, dist.ReduceOp.MAX
        )
        first = divmod(_KEY_BASE - best, self.world_size) if best else None
        return bool(stop_any), first, int(interval)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def rank_zero_first(self, action: Callable[[], T]) -> T:
        """Run ``action`` on rank 0, then on the others (e.g. a download into a cache that
        the others then read). A UserError on rank 0 stops every process in one line."""
        if not self.distributed:
            return action()
        result, failed = None, 0
        if self.is_main:
            try:
                result = action()
            except UserError:
                failed = 1
                self._exchange([failed], torch.int64)
                raise
        if self._exchange([failed if self.is_main else 0], torch.int64)[0]:
            raise UserError("rank 0 stopped (see its message)")
        return result if self.is_main else action()


#: Keys of Context.agree: larger than any total_iters × world_size.
_KEY_BASE = 2**62


def process_device(selected: torch.device) -> torch.device:
    """This process's device, made current before anything else touches CUDA.

    Under torchrun with CUDA: GPU ``LOCAL_RANK``; otherwise ``selected`` (from --gpu_ids).
    Making it current keeps every CUDA context of the process on it: pinned memory, the
    data loader's pinning thread and the checks of ``torch.cuda`` use the current device,
    which is GPU 0 unless set.
    """
    device = selected
    if selected.type == "cuda" and launched_by_torchrun():
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if local_rank >= torch.cuda.device_count():
            raise UserError(
                f"torchrun started {os.environ.get('LOCAL_WORLD_SIZE', '?')} "
                f"processes on this node but only {torch.cuda.device_count()} GPUs "
                f"are visible: use --nproc_per_node {torch.cuda.device_count()}"
            )
        device = torch.device("cuda", local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def launched_by_torchrun() -> bool:
    """Started by torchrun (which sets TORCHELASTIC_RUN_ID), or by hand with WORLD_SIZE > 1."""
    return "TORCHELASTIC_RUN_ID" in os.environ or int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: torch.device) -> Context:
    """Join the process group when started by ``torchrun``; else a one-process context.

    Args:
        device: This process's device, from :func:`process_device`. Its type decides the
            backend under ``torchrun``: NCCL for CUDA (the group bound to the device), gloo
            for the CPU.
    """
    if not launched_by_torchrun():
        return Context(device=device)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    world_size = int(os.environ["WORLD_SIZE"])
    if device.type == "cuda":
        dist.init_process_group(backend="nccl", rank=rank, world_size=world_size, device_id=device)
    else:
        dist.init_process_group(backend="gloo", rank=rank, world_size=world_size)
    return Context(
        rank=rank, local_rank=local_rank, world_size=world_size, device=device, group=True
    )


def teardown(context: Context) -> None:
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()
