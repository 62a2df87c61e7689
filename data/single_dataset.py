"""Single images at full size, for inference."""

from __future__ import annotations

import os

import torch
from torch.utils.data import Dataset

from data.image_folder import load_rgb, require_images
from data.transforms import to_tensor


class SingleImageDataset(Dataset):
    """A list of images, each returned at its own, untouched size.

    No resize, crop or flip is applied (the enhancer pads internally), so a DataLoader over
    it needs ``batch_size=1`` unless every image has the same size.

    Args:
        paths: Image files, in the order they are returned.
        exif_orientation: Apply each file's EXIF orientation (the pixels an image viewer
            shows, as ``test.py --input`` does); by default pixels come as stored, as the
            datasets of the papers are read.
    """

    def __init__(self, paths: list[str], exif_orientation: bool = False) -> None:
        self.paths = [os.fspath(p) for p in paths]
        self.exif_orientation = exif_orientation

    @classmethod
    def from_folder(
        cls, folder: str | os.PathLike, max_dataset_size: float = float("inf")
    ) -> SingleImageDataset:
        """Build the dataset from every image under ``folder`` (recursively, sorted).

        Args:
            folder: Folder of images.
            max_dataset_size: Keep at most this many images.

        Returns:
            The dataset.

        Raises:
            UserError: The folder does not exist or holds no image.
        """
        return cls(require_images(folder, max_dataset_size=max_dataset_size))

    def __len__(self) -> int:
        """Return the number of images."""
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        """Return ``{'A': (3, H, W) tensor in [-1, 1], 'A_paths': str}`` at full size."""
        path = self.paths[index]
        image = load_rgb(path, exif_orientation=self.exif_orientation)
        return {"A": to_tensor(image), "A_paths": path}
