"""The image sizes the training preprocessing produces, known before any image is decoded.

:mod:`data.transforms` resizes with these rules, and the option checks use them to refuse,
before anything is built, a dataset whose images would not stack into one batch or pair
with each other (``--preprocess none`` and ``scale_width`` keep each image's own shape).
Nothing here imports torch, so a bad option is reported in a fraction of a second.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from PIL import Image

from nerco.runtime import UserError

PREPROCESS_CHOICES = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")
#: Modes that end with a ``crop_size`` square crop: every sample has one size.
CROPPING = ("resize_and_crop", "crop", "scale_width_and_crop")
#: Modes that keep each image's aspect ratio: sizes depend on the images.
WHOLE_IMAGE = ("scale_width", "none")
#: The generators halve the image twice, so sides must be multiples of this.
MULTIPLE = 4


def scale_width_size(width: int, height: int, target: int, min_height: int) -> tuple[int, int]:
    """``scale_width``: the width becomes ``target``, the height ``int(max(target·h/w,
    min_height))``; an image already ``target`` wide and ``min_height`` tall is kept."""
    if width == target and height >= min_height:
        return width, height
    return target, int(max(target * height / width, min_height))


def nearest_multiple_size(width: int, height: int, base: int = MULTIPLE) -> tuple[int, int]:
    """``none``: each side rounded to the nearest multiple of ``base`` (Python's round, halves
    to the even multiple), at least ``base``."""
    return (max(base, int(round(width / base) * base)), max(base, int(round(height / base) * base)))


def preprocessed_size(
    preprocess: str, width: int, height: int, load_size: int, crop_size: int
) -> tuple[int, int]:
    """The (width, height) that ``get_transform(preprocess, load_size, crop_size)`` gives a
    ``width`` × ``height`` image (a flip keeps the size)."""
    if preprocess in CROPPING:
        return crop_size, crop_size
    if preprocess == "scale_width":
        return scale_width_size(width, height, load_size, crop_size)
    if preprocess == "none":
        return nearest_multiple_size(width, height)
    raise ValueError(f"unknown preprocess {preprocess!r}")


def header_size(path: str) -> tuple[int, int] | None:
    """(width, height) from the file's header without decoding it; None if PIL cannot open it
    (the dataset skips such files with a warning)."""
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        return None


def _sizes(
    paths: Iterable[str], preprocess: str, load_size: int, crop_size: int
) -> list[tuple[str, tuple[int, int]]]:
    found = ((path, header_size(path)) for path in paths)
    return [
        (path, preprocessed_size(preprocess, *size, load_size, crop_size))
        for path, size in found
        if size is not None
    ]


def _show(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def check_whole_image_sizes(
    paths_A: Sequence[str],
    paths_B: Sequence[str],
    *,
    preprocess: str,
    load_size: int,
    crop_size: int,
    serial_batches: bool,
    batch_size: int,
    smallest: int,
) -> None:
    """Refuse a training set whose whole images would not go through the networks together.

    With ``preprocess`` in :data:`WHOLE_IMAGE`, each sample keeps its image's shape. The
    images of a batch are stacked, and the mask of each A image gates its B partner (spec §2),
    so the A and B images that can meet must come out of the preprocessing with one size:
    every image, or with ``serial_batches`` and batches of one, each pair ``A[i % |A|]``,
    ``B[i % |B|]``. Each side must also be a multiple of 4 and at least ``smallest``.

    Args:
        paths_A: The A images (``<dataroot>/<phase>A`` with ``--direction AtoB``).
        paths_B: The B images.
        preprocess: ``--preprocess``; other modes crop to one size and are not checked.
        load_size: ``--load_size``.
        crop_size: ``--crop_size`` (``scale_width``'s least height).
        serial_batches: ``--serial_batches``.
        batch_size: ``--batch_size``.
        smallest: Least side the networks accept.

    Raises:
        UserError: naming two files whose sizes differ, or a file whose size the networks
            cannot take, and what to do.
    """
    if preprocess not in WHOLE_IMAGE:
        return
    sized_A = _sizes(paths_A, preprocess, load_size, crop_size)
    sized_B = _sizes(paths_B, preprocess, load_size, crop_size)
    how = "rounded to multiples of 4" if preprocess == "none" else f"scaled to width {load_size}"
    fix = f"resize the images to one size or use a cropping --preprocess ({', '.join(CROPPING)})"
    for path, size in sized_A + sized_B:
        if min(size) < smallest or size[0] % MULTIPLE or size[1] % MULTIPLE:
            raise UserError(
                f"--preprocess {preprocess}: {path} becomes {_show(size)} ({how}); "
                f"the networks need sides that are multiples of {MULTIPLE} and at "
                f"least {smallest}: {fix}"
            )
    if not sized_A or not sized_B:
        return  # no readable image: the dataset reports it
    if serial_batches and batch_size == 1:
        count = max(len(sized_A), len(sized_B))
        pairs = ((sized_A[i % len(sized_A)], sized_B[i % len(sized_B)]) for i in range(count))
        why = "with --serial_batches each A image meets the B image of its index"
    else:
        everything = sized_A + sized_B
        pairs = ((everything[0], other) for other in everything[1:])
        why = (
            "a batch stacks whole images"
            if batch_size > 1
            else "each A image meets a random B image"
        )
        why += " and the mask of an A image gates its B partner"
    for (path_1, size_1), (path_2, size_2) in pairs:
        if size_1 != size_2:
            raise UserError(
                f"--preprocess {preprocess} with --batch_size {batch_size} keeps whole images "
                f"({how}), which must then have one size ({why}): {path_1} becomes "
                f"{_show(size_1)} but {path_2} becomes {_show(size_2)}; {fix}"
            )
