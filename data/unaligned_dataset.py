"""Unpaired low-light / normal-light training data."""

from __future__ import annotations

import logging
import os
import random

import torch
from torch.utils.data import Dataset

from data.image_folder import load_rgb, require_images
from data.transforms import get_transform
from nerco.runtime import UserError

logger = logging.getLogger(__name__)

_CONTENTS = {"A": "low-light", "B": "normal-light"}


class UnalignedDataset(Dataset):
    """Unpaired images from ``<root>/<phase>A`` (low light) and ``<root>/<phase>B`` (normal).

    Item ``i`` pairs the ``i % |A|``-th image of A with a random image of B (or the
    ``i % |B|``-th with ``serial_batches``), drawn with Python's ``random.randint`` as in the
    reference code. With ``direction='BtoA'`` the two folders swap roles.

    A file that cannot be read is skipped with a warning naming it (the next readable image
    of its folder takes its place) and not tried again by this process; when no image of a
    folder can be read, UserError stops the run.

    Args:
        root: Dataset root (``--dataroot``).
        phase: Folder prefix, e.g. ``'train'`` or ``'test'``.
        direction: ``'AtoB'`` or ``'BtoA'``.
        preprocess: See :func:`data.transforms.get_transform`.
        load_size: See :func:`data.transforms.get_transform`.
        crop_size: See :func:`data.transforms.get_transform`.
        no_flip: See :func:`data.transforms.get_transform`.
        serial_batches: Pair images in order instead of drawing B at random.
        max_dataset_size: Keep at most this many images of each folder.

    Raises:
        UserError: ``root`` or one of the folders is missing, or a folder holds no image,
            or ``direction`` / ``preprocess`` is not valid.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        phase: str = "train",
        direction: str = "AtoB",
        preprocess: str = "resize_and_crop",
        load_size: int = 512,
        crop_size: int = 512,
        no_flip: bool = False,
        serial_batches: bool = False,
        max_dataset_size: float = float("inf"),
    ) -> None:
        root = os.fspath(root)
        if direction not in ("AtoB", "BtoA"):
            raise UserError(f"--direction {direction!r} is not valid: use AtoB or BtoA")
        if not os.path.isdir(root):
            raise UserError(
                f"dataset root {root} does not exist: create it with {phase}A (low-light) "
                f"and {phase}B (normal-light) image folders inside"
            )
        self.root = root
        self.phase = phase
        self.direction = direction
        self.serial_batches = serial_batches
        first, second = ("A", "B") if direction == "AtoB" else ("B", "A")
        self.dir_A = os.path.join(root, phase + first)
        self.dir_B = os.path.join(root, phase + second)
        self.A_paths = require_images(self.dir_A, _CONTENTS[first], max_dataset_size)
        self.B_paths = require_images(self.dir_B, _CONTENTS[second], max_dataset_size)
        self.A_size = len(self.A_paths)
        self.B_size = len(self.B_paths)
        self.transform_A = get_transform(
            preprocess=preprocess, load_size=load_size, crop_size=crop_size, no_flip=no_flip
        )
        self.transform_B = get_transform(
            preprocess=preprocess, load_size=load_size, crop_size=crop_size, no_flip=no_flip
        )
        self.unreadable: set[str] = set()
        logger.info(
            "unaligned dataset: %d images in %s, %d in %s",
            self.A_size,
            self.dir_A,
            self.B_size,
            self.dir_B,
        )

    def __len__(self) -> int:
        """Return max(|A|, |B|)."""
        return max(self.A_size, self.B_size)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        """Return one unpaired sample.

        Args:
            index: Item index; taken modulo each folder's size.

        Returns:
            ``{'A': (3, H, W) tensor in [-1, 1], 'B': (3, H, W) tensor in [-1, 1],
            'A_paths': str, 'B_paths': str}``.
        """
        if self.serial_batches:
            index_B = index % self.B_size
        else:
            index_B = random.randint(0, self.B_size - 1)
        A_path, A = self._load(self.A_paths, index % self.A_size, self.dir_A, self.transform_A)
        B_path, B = self._load(self.B_paths, index_B, self.dir_B, self.transform_B)
        return {"A": A, "B": B, "A_paths": A_path, "B_paths": B_path}

    def _load(
        self, paths: list[str], index: int, folder: str, transform
    ) -> tuple[str, torch.Tensor]:
        """Load ``paths[index]``, or the next readable image of the folder after it."""
        first_error = None
        for step in range(len(paths)):
            path = paths[(index + step) % len(paths)]
            if path in self.unreadable:
                continue
            try:
                return path, transform(load_rgb(path))
            except UserError as err:
                self.unreadable.add(path)
                first_error = first_error or err
                logger.warning("skipping unreadable image: %s", err)
        raise UserError(
            f"no image in {folder} can be read ({len(self.unreadable)} unreadable, "
            f"e.g. {first_error or 'see the warnings above'}): replace or remove "
            f"the broken files"
        )
