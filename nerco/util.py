"""Small image and file-system helpers shared by training, testing and the HTML pages.

The conversion from network output to an 8-bit image follows the original NeRCo /
CycleGAN code bit for bit (map [-1, 1] to [0, 255], then truncate toward zero), so
saved images can be compared with the authors' results pixel by pixel.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


def tensor2im(image: torch.Tensor) -> np.ndarray:
    """Convert a network output in [-1, 1] to an 8-bit RGB image.

    The arithmetic matches the authors' ``tensor2im``: the float32 array is mapped with
    ``(x + 1) / 2.0 * 255.0`` and cast to ``uint8``, which truncates toward zero (so
    0.999 becomes 254, not 255). The only addition is a clip to [0, 255] before the cast,
    which leaves in-range values untouched but stops out-of-range values from wrapping.

    Args:
        image: Float tensor of shape (N, C, H, W) or (C, H, W) with values in [-1, 1] and
            C equal to 1 or 3. For a batch, only the first image is converted. The tensor
            may live on any device and may require grad.

    Returns:
        ``uint8`` array of shape (H, W, 3) with values in [0, 255]. A single-channel image
        is repeated across the three channels.

    Raises:
        TypeError: If ``image`` is not a tensor.
        ValueError: If the shape is not (N, C, H, W) or (C, H, W) with C in {1, 3}, or
            the batch is empty.
    """
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"tensor2im expects a torch.Tensor, got {type(image).__name__}")
    if image.dim() == 4:
        if image.shape[0] == 0:
            raise ValueError("tensor2im got an empty batch")
        image = image[0]
    if image.dim() != 3:
        raise ValueError(
            f"tensor2im expects shape (N, C, H, W) or (C, H, W), got {tuple(image.shape)}"
        )
    channels = image.shape[0]
    if channels not in (1, 3):
        raise ValueError(f"tensor2im expects 1 or 3 channels, got {channels}")

    array = image.detach().cpu().float().numpy()
    if channels == 1:
        array = np.tile(array, (3, 1, 1))
    array = (array.transpose(1, 2, 0) + 1) / 2.0 * 255.0
    array = np.clip(array, 0.0, 255.0)
    return array.astype(np.uint8)


def save_image(array: np.ndarray, path: PathLike) -> None:
    """Write an 8-bit image to ``path`` as PNG, creating missing parent folders.

    Args:
        array: ``uint8`` array of shape (H, W, 3) (RGB) or (H, W) (grayscale), values in
            [0, 255], e.g. the output of :func:`tensor2im`.
        path: Destination file. The PNG format is used whatever the suffix.

    Raises:
        ValueError: If the array is not ``uint8`` or its shape is not (H, W) / (H, W, 3).
    """
    if array.dtype != np.uint8:
        raise ValueError(f"save_image expects a uint8 array, got dtype {array.dtype}")
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ValueError(f"save_image expects shape (H, W) or (H, W, 3), got {array.shape}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array)).save(target, format="PNG")
    logger.debug("saved image %s", target)


def mkdirs(*paths: PathLike) -> None:
    """Create each folder in ``paths`` (with parents); existing folders are fine.

    Args:
        *paths: Folders to create.
    """
    for path in paths:
        Path(path).mkdir(parents=True, exist_ok=True)
