"""Resumable, shardable sample order for training.

An interrupted run resumes exactly only if the samples it has not seen yet, and the random
augmentation (crop, flip, the random B partner) of each of them, do not depend on where it
stopped or on how many worker processes load the data. Two pieces give that:

* :class:`EpochSampler` draws epoch ``e``'s order from ``seed + e`` alone, can start part-way
  into an epoch, and splits the order between the processes of a distributed run (every
  rank sees ``ceil(n / world_size)`` samples, the order padded by wrapping around, as
  PyTorch's DistributedSampler does). It yields ``(index, item_seed)`` pairs.
* :class:`SeededItems` wraps a dataset: before loading item ``index`` it seeds Python's
  ``random`` and torch with ``item_seed``, and afterwards puts the previous generator states
  back, so the augmentation of a sample is fixed by the run seed, the epoch and the sample's
  position, and loading never consumes the training process's random streams.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

import torch
from torch.utils.data import Dataset, Sampler

_SEED_SPACE = 2**63 - 1


class EpochSampler(Sampler):
    """The sample order of one epoch, shared by all ranks, as ``(index, item_seed)`` pairs.

    Args:
        size: Number of samples in the dataset.
        seed: Run seed; epoch ``e`` uses the permutation drawn from ``seed + e``.
        shuffle: Draw a permutation (True) or go through the samples in order.
        rank, world_size: This process's share of the order: positions
            ``rank, rank + world_size, …`` of the (padded) epoch order.
    """

    def __init__(
        self, size: int, seed: int, shuffle: bool = True, rank: int = 0, world_size: int = 1
    ) -> None:
        if size <= 0:
            raise ValueError("EpochSampler needs at least one sample")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        self.size = size
        self.seed = int(seed)
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.per_rank = math.ceil(size / world_size)
        self.epoch = 1
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Yield epoch ``epoch``'s order, skipping this rank's first ``start`` samples."""
        self.epoch = epoch
        self.start = start

    def order(self, epoch: int) -> list[int]:
        """The whole epoch's order (all ranks), padded to a multiple of ``world_size``."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + epoch)
            indices = torch.randperm(self.size, generator=generator).tolist()
        else:
            indices = list(range(self.size))
        padded = self.per_rank * self.world_size
        return (indices * math.ceil(padded / self.size))[:padded]

    def item_seed(self, epoch: int, position: int) -> int:
        """Seed of the sample at ``position`` (in the whole epoch order) of ``epoch``."""
        return random.Random(f"{self.seed}/{epoch}/{position}").randrange(_SEED_SPACE)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = self.order(self.epoch)
        for position in range(
            self.rank + self.start * self.world_size, len(order), self.world_size
        ):
            yield order[position], self.item_seed(self.epoch, position)

    def __len__(self) -> int:
        return max(0, self.per_rank - self.start)


class SeededItems(Dataset):
    """``dataset[index]`` loaded under ``item_seed``; indexed by ``(index, item_seed)``."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]):
        index, item_seed = key
        python_state = random.getstate()
        try:
            with torch.random.fork_rng(devices=[]):
                # The CPU generator only: the transforms draw from it, and the CUDA ones
                # belong to the training process.
                torch.default_generator.manual_seed(item_seed)
                random.seed(item_seed)
                return self.dataset[index]
        finally:
            random.setstate(python_state)
