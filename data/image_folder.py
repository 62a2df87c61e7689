"""Listing and loading image files.

``make_dataset`` walks a folder for image files; ``load_rgb`` opens any image PIL can read
and returns it as an 8-bit RGB image, handling the modes a plain ``convert("RGB")`` gets
wrong (16-bit greyscale, floating point). ``load_photo`` is ``load_rgb`` for people's own
photos (``test.py --input``): the EXIF orientation applied and the RGB ICC profile kept.
"""

from __future__ import annotations

import logging
import os

import numpy as np
from PIL import Image, ImageOps

from nerco.runtime import UserError

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


def _apply_orientation(im: Image.Image, path: str | os.PathLike) -> None:
    """Turn ``im`` (loaded) in place as its EXIF orientation tag says (1-8), so its pixels
    are those an image viewer shows. Unreadable EXIF data leaves it as stored, with a
    warning: the pixels themselves are fine."""
    try:
        ImageOps.exif_transpose(im, in_place=True)
    except Exception as exc:  # any parse error of the EXIF block
        logger.warning(
            "%s: unreadable EXIF data (%s), orientation left as stored",
            os.fspath(path),
            _one_line(exc),
        )


def _is_rgb_profile(profile: bytes | None) -> bool:
    """True for an ICC profile whose data colour space (header bytes 16-19) is RGB."""
    return bool(profile) and len(profile) >= 20 and profile[16:20] == b"RGB "


def _open_rgb(path: str | os.PathLike, exif_orientation: bool) -> tuple[Image.Image, bytes | None]:
    """The image as 8-bit RGB and the file's ICC profile (None when it has none)."""
    try:
        with Image.open(path) as im:
            im.load()
            profile = im.info.get("icc_profile")
            if exif_orientation:
                _apply_orientation(im, path)
            return _to_rgb(im), profile
    except _READ_ERRORS as exc:
        raise UserError(f"cannot read image {os.fspath(path)}: {_one_line(exc)}") from exc


def load_rgb(path: str | os.PathLike, exif_orientation: bool = False) -> Image.Image:
    """Open an image file as an 8-bit RGB PIL image.

    By default the EXIF orientation tag is ignored (as in the reference implementation):
    pixels come back in stored order, which datasets (``--dataroot``) rely on.
    Multi-frame files give their first frame.

    Args:
        path: The image file.
        exif_orientation: Apply the EXIF orientation tag (1-8) instead, so the pixels are
            those an image viewer shows (orientations 5-8 swap width and height).

    Returns:
        A PIL image in mode ``RGB``, values 0..255, with the file's width and height (or,
        with ``exif_orientation``, those it is displayed with).

    Raises:
        UserError: PIL cannot open or decode the file; the message names the file.
    """
    return _open_rgb(path, exif_orientation)[0]


def load_photo(path: str | os.PathLike) -> tuple[Image.Image, bytes | None]:
    """A person's photo as it is displayed: :func:`load_rgb` with the EXIF orientation
    applied, and the file's ICC profile when it describes RGB data (None otherwise: a
    CMYK or greyscale profile does not fit the RGB pixels returned).

    Raises:
        UserError: PIL cannot open or decode the file; the message names the file.
    """
    image, profile = _open_rgb(path, exif_orientation=True)
    return image, profile if _is_rgb_profile(profile) else None


def displayed_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of the image as :func:`load_photo` returns it, from the header and
    the EXIF orientation (5-8 swap the sides), without decoding the pixels.

    Raises:
        UserError: PIL cannot open the file.
    """
    try:
        with Image.open(path) as im:
            width, height = im.size
            try:
                orientation = im.getexif().get(0x0112, 1)
            except Exception:  # unreadable EXIF: shown as stored
                orientation = 1
    except _READ_ERRORS as exc:
        raise UserError(f"cannot read image {os.fspath(path)}: {_one_line(exc)}") from exc
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)
