"""Listing and loading image files.

``make_dataset`` walks a folder for image files; ``load_rgb`` opens any image PIL can read
and returns it as an 8-bit RGB image, handling the modes a plain ``convert("RGB")`` gets
wrong (16-bit greyscale, floating point).
"""

from __future__ import annotations

import logging
import os

import numpy as np
from PIL import Image

from nerco.errors import UserError

logger = logging.getLogger(__name__)

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".tif", ".tiff")

# Exceptions PIL raises for files it cannot decode (UnidentifiedImageError is an OSError).
_READ_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


def is_image_file(name: str) -> bool:
    """Tell whether a file name has one of :data:`IMG_EXTENSIONS`, in any letter case.

    Args:
        name: A file name or path.

    Returns:
        True for names such as ``a.jpg``, ``b.PNG`` or ``c.Tiff``.
    """
    return name.lower().endswith(IMG_EXTENSIONS)


def make_dataset(folder: str | os.PathLike, max_dataset_size: float = float("inf")) -> list[str]:
    """List every image file under ``folder``, recursively.

    Args:
        folder: The folder to walk. Sub-folders are visited too (symbolic links to folders
            below it are not followed).
        max_dataset_size: Keep at most this many paths (after sorting); ``inf`` keeps all.

    Returns:
        The full paths, sorted with Python's ``sorted``, then truncated. An empty list when
        the folder holds no image; callers decide whether that is an error.

    Raises:
        UserError: ``folder`` does not exist or is not a folder.
    """
    folder = os.fspath(folder)
    if not os.path.exists(folder):
        raise UserError(f"folder {folder} does not exist: create it and put images in it")
    if not os.path.isdir(folder):
        raise UserError(f"{folder} is not a folder: give the folder that holds the images")
    images = []
    for root, dirs, fnames in os.walk(folder):
        dirs.sort()
        images.extend(os.path.join(root, f) for f in fnames if is_image_file(f))
    images = sorted(images)
    if max_dataset_size != float("inf"):
        images = images[: max(0, int(max_dataset_size))]
    return images


def require_images(
    folder: str | os.PathLike, what: str = "", max_dataset_size: float = float("inf")
) -> list[str]:
    """:func:`make_dataset`, raising UserError when the folder is missing or holds no image.

    Args:
        folder: Folder of images.
        what: Kind of image the folder should hold, for the message (e.g. ``"low-light"``).
        max_dataset_size: Keep at most this many images.
    """
    folder = os.fspath(folder)
    hint = f"put {what + ' ' if what else ''}images ({' '.join(IMG_EXTENSIONS)}) in it"
    if not os.path.isdir(folder):
        raise UserError(f"folder {folder} does not exist: {hint}")
    paths = make_dataset(folder, max_dataset_size)
    if not paths:
        raise UserError(f"folder {folder} holds no image: {hint}")
    return paths


def _one_line(exc: BaseException) -> str:
    """Squash an exception's message onto one line."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _grey_array_to_rgb(values: np.ndarray) -> Image.Image:
    """Turn an (H, W) array of 8-bit-scale values into an RGB image (rounded, clipped)."""
    values = np.nan_to_num(values, nan=0.0, posinf=255.0, neginf=0.0)
    grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.fromarray(grey).convert("RGB")


def _to_rgb(im: Image.Image) -> Image.Image:
    """Convert an opened (loaded) image of any mode into a new 8-bit RGB image.

    16-bit and 32-bit integer greyscale (``I;16*``, ``I``) is read as 0..65535 and divided
    by 257, so 65535 becomes 255 and 32768 becomes 128. Floating point (``F``) is read as
    0..1 when its maximum is at most 1, else as 0..255. Every other mode (L, LA, RGBA, P,
    CMYK, ...) goes through PIL's ``convert("RGB")``, which drops any alpha channel.
    """
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(im).astype(np.float32)
        return _grey_array_to_rgb(values / 257.0)
    if mode == "F":
        values = np.asarray(im).astype(np.float32)
        finite = values[np.isfinite(values)]
        peak = float(finite.max()) if finite.size else 0.0
        return _grey_array_to_rgb(values * 255.0 if peak <= 1.0 else values)
    # convert() always returns a new image, even when the mode is already RGB, so the
    # result outlives the closed file.
    return im.convert("RGB")


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Open an image file as an 8-bit RGB PIL image.

    The EXIF orientation tag is deliberately ignored (as in the reference implementation):
    pixels come back in stored order. Multi-frame files give their first frame.

    Args:
        path: The image file.

    Returns:
        A PIL image in mode ``RGB`` with the file's width and height, values 0..255.

    Raises:
        UserError: PIL cannot open or decode the file; the message names the file.
    """
    try:
        with Image.open(path) as im:
            im.load()
            return _to_rgb(im)
    except _READ_ERRORS as exc:
        raise UserError(f"cannot read image {os.fspath(path)}: {_one_line(exc)}") from exc

