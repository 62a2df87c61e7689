"""Sharing a list of images among the processes of a ``torchrun`` launch (issue 14).

Started by ``torchrun`` (``WORLD_SIZE`` > 1), rank 0 lists the images once and sends the
list to every process; process ``r`` of ``n`` takes images ``r, r + n, r + 2n, ...`` of it:
each image exactly once, the same split in every run with the same number of processes
(on one machine or several: ``RANK`` counts over all of them). The processes exchange only
small Python objects, over a gloo group on the CPU whatever the device, with a timeout of a
week: a process that finishes its share first waits for the others, however long theirs
take (``torchrun`` stops them all if one of them dies).

Started without ``torchrun``, :meth:`Shard.from_env` gives one process that takes
everything, and the exchanges return at once.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from nerco.runtime import UserError

if TYPE_CHECKING:
    import torch

# torch is imported where it is used: test.py checks its options before loading it.

T = TypeVar("T")

#: How long a process waits for the others at an exchange.
TIMEOUT = datetime.timedelta(days=7)


@dataclass(frozen=True)
class Shard:
    """This process's place among ``world_size`` processes (0 ≤ ``rank`` < ``world_size``).

    Attributes:
        rank: Global rank; rank 0 lists the images and writes the page and the scores.
        world_size: Number of processes over all machines.
        local_rank: Rank on this machine: picks its GPU.
        local_world_size: Processes on this machine: they share its CPU cores.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @classmethod
    def from_env(cls) -> Shard:
        """The shard ``torchrun`` describes in the environment (one process without it)."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls()
        return cls(
            rank=int(os.environ["RANK"]),
            world_size=world_size,
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
            local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", "1")),
        )

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def join(self) -> None:
        """Join the other processes (a gloo group); nothing to do for a single process."""
        if self.world_size == 1:
            return
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group(
                "gloo", rank=self.rank, world_size=self.world_size, timeout=TIMEOUT
            )

    def leave(self) -> None:
        if self.world_size == 1:
            return
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()

    def device(self, chosen: torch.device) -> torch.device:
        """``chosen`` (from ``--gpu_ids``) for one process; under ``torchrun`` on CUDA, the
        GPU of this machine with the number ``local_rank``.

        Raises:
            UserError: more processes on this machine than GPUs.
        """
        if self.world_size == 1 or chosen.type != "cuda":
            return chosen
        import torch

        count = torch.cuda.device_count()
        if self.local_rank >= count:
            raise UserError(
                f"torchrun started {self.local_world_size} processes on this "
                f"machine but only {count} GPUs are visible: use "
                f"--nproc_per_node {count}, or --gpu_ids -1 for the CPU"
            )
        torch.cuda.set_device(self.local_rank)
        return torch.device("cuda", self.local_rank)

    def take(self, items: Sequence[T]) -> list[T]:
        """This process's share of ``items``: every ``world_size``-th from ``rank`` on."""
        return list(items[self.rank :: self.world_size])

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every process (others pass anything, e.g. None)."""
        if self.world_size == 1:
            return value
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: Any) -> list[Any]:
        """Every process's ``value``, in rank order, on every process."""
        if self.world_size == 1:
            return [value]
        import torch.distributed as dist

        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()
