"""Images in and out of the folder pipeline (:mod:`nerco.inference.pipeline`, issue 14).

Reading gives 8-bit pixels (and the ICC profile to keep); the conversions to the network's
[-1, 1] and back are ``to_tensor``'s and ``tensor2im``'s exact arithmetic, written so that
they can run on any device, one image or a batch at a time; writing goes through a
temporary file, so a result file is always complete.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from data.image_folder import load_photo, load_rgb
from data.transforms import to_tensor


@dataclass(frozen=True)
class Task:
    """One image: its file, the PNG of its result and, optionally (the ``--dataroot``
    layout), a PNG of the network's input."""

    source: str
    result: str
    input_png: str | None = None


@dataclass(frozen=True)
class Failure:
    """An image that was not enhanced, and why (one line that names it)."""

    source: str
    reason: str


@dataclass(frozen=True)
class Decoded:
    """A decoded image: (H, W, 3) uint8 RGB, the ICC profile to embed in its result, and,
    where the conversion runs beside the decoding (CPU), the (3, H, W) network input."""

    pixels: np.ndarray
    icc_profile: bytes | None = None
    tensor: torch.Tensor | None = None


def read_dataset_image(path: str) -> Decoded:
    """``--dataroot``: pixels as stored (the authors' behaviour), no profile kept."""
    return Decoded(np.array(load_rgb(path)))  # writable, for torch.from_numpy


def read_photo(path: str) -> Decoded:
    """``--input``: pixels as displayed (EXIF orientation applied), RGB ICC profile kept."""
    image, profile = load_photo(path)
    return Decoded(np.array(image), profile)


def input_table() -> torch.Tensor:
    """(256,) float32: ``to_tensor``'s value for each 8-bit level, computed by ``to_tensor``
    itself, so a lookup gives its exact numbers on any device (a GPU divides by a scalar
    through its reciprocal, which differs in the last bit)."""
    levels = np.arange(256, dtype=np.uint8)
    return to_tensor(Image.fromarray(np.stack([levels] * 3, axis=-1)[None]))[0, 0]


def to_network(levels: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """(..., H, W, 3) uint8 → (..., 3, H, W) float32 in [-1, 1], contiguous, as
    ``to_tensor``; ``table`` is :func:`input_table` on ``levels``' device."""
    return table[levels.int()].movedim(-1, -3).contiguous()


def to_uint8(y: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) in [-1, 1] → (..., H, W, 3) uint8 with ``tensor2im``'s arithmetic:
    ``(y + 1) / 2 * 255`` in float32, clipped, truncated toward zero."""
    y = ((y.float() + 1) / 2.0 * 255.0).clamp_(0.0, 255.0)
    return y.to(torch.uint8).movedim(-3, -1).contiguous()


def as_pixels(image: torch.Tensor) -> np.ndarray:
    """(H, W, 3) uint8 pixels of a result: already 8-bit, or (3, H, W) in [-1, 1]."""
    return (image if image.dtype == torch.uint8 else to_uint8(image)).numpy()


def write_png(path: str, pixels: np.ndarray, icc_profile: bytes | None = None) -> None:
    """Write (H, W, 3) uint8 ``pixels`` as the PNG ``path`` through a temporary file in the
    same folder (``.<name>.partial``), renamed at the end, so ``path`` never holds a partial
    image; the bytes are those of :func:`nerco.util.save_image`."""
    folder, name = os.path.split(path)
    os.makedirs(folder or ".", exist_ok=True)
    temporary = os.path.join(folder, f".{name}.partial")
    options = {"icc_profile": icc_profile} if icc_profile else {}
    Image.fromarray(np.ascontiguousarray(pixels)).save(temporary, format="PNG", **options)
    os.replace(temporary, path)
