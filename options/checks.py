"""Checks that involve several options (or the files they name), run right after parsing.

Single values are checked by their argparse types (:mod:`options.values`); what depends on
two options, or on the dataset's image headers, is checked here, before any network, CLIP
or data loader is built. Every failure is a :class:`UserError` whose one line names the
flags and what is allowed.
"""

from __future__ import annotations

import argparse
import os

from data.sizes import CROPPING, MULTIPLE, WHOLE_IMAGE, check_whole_image_sizes
from nerco.runtime import UserError

#: The generators halve the image twice and reflection-pad the quarter-size features by 1,
#: so they need sides of at least 8 (the enhancer's documented minimum).
GENERATOR_SMALLEST = 8


def _patchgan_side(side: int, n_layers: int) -> int:
    """Side after a PatchGAN's ``n_layers`` 4×4 stride-2 convolutions (padding 1)."""
    for _ in range(n_layers):
        side = (side - 2) // 2 + 1
    return side


def smallest_side(netD: str, n_layers_D: int) -> int:
    """Least image side (a multiple of 4) that the generators and ``--netD`` train on.

    A PatchGAN (``basic`` has 3 layers, ``n_layers`` has ``--n_layers_D``) ends with two
    4×4 stride-1 convolutions, the first followed by a norm that needs more than one value
    per channel: the map they get must be at least 3 wide. ``pixel`` has 1×1 convolutions.
    """
    side = GENERATOR_SMALLEST
    if netD != "pixel":
        n_layers = 3 if netD == "basic" else n_layers_D
        while _patchgan_side(side, n_layers) < 3:
            side += MULTIPLE
    return side


def _discriminator_words(opt: argparse.Namespace) -> str:
    if opt.netD == "pixel":
        return "the generators"
    if opt.netD == "basic":
        return "the 70x70 PatchGAN of --netD basic"
    return f"--netD n_layers with --n_layers_D {opt.n_layers_D}"


def _nearest_allowed(value: int, least: int) -> str:
    lower = value // MULTIPLE * MULTIPLE
    upper = lower + MULTIPLE if lower != value else lower
    options = sorted({max(least, lower), max(least, upper)})
    return " or ".join(str(o) for o in options)


def check_sizes(opt: argparse.Namespace) -> None:
    """``--load_size`` / ``--crop_size`` against ``--preprocess`` and the networks.

    Cropping modes need a crop that is a multiple of 4 and at least :func:`smallest_side`,
    cut from an image at least as large (``--load_size`` ≥ ``--crop_size`` for
    ``resize_and_crop`` and ``scale_width_and_crop``); ``scale_width`` needs a
    ``--load_size`` (the width) of that kind. Heights of ``scale_width`` and sizes of ``none``
    depend on the images: see :func:`check_image_sizes`.
    """
    least = smallest_side(opt.netD, opt.n_layers_D)
    needs = (
        f"a multiple of {MULTIPLE} (the generators halve it twice) and at least {least} "
        f"for {_discriminator_words(opt)}"
    )
    mode = opt.preprocess
    if mode in CROPPING:
        crop = opt.crop_size
        if crop % MULTIPLE or crop < least:
            raise UserError(
                f"--crop_size {crop} is not allowed with --preprocess {mode}: the "
                f"crop must be {needs}; use {_nearest_allowed(crop, least)}"
            )
        if mode != "crop" and opt.load_size < crop:
            raise UserError(
                f"--crop_size {crop} is larger than --load_size {opt.load_size}: "
                f"--preprocess {mode} cuts the crop from the image scaled to "
                f"--load_size, so give --load_size >= --crop_size"
            )
    elif mode == "scale_width":
        width = opt.load_size
        if width % MULTIPLE or width < least:
            raise UserError(
                f"--load_size {width} is not allowed with --preprocess scale_width: "
                f"the width it sets must be {needs}; use "
                f"{_nearest_allowed(width, least)}"
            )


def check_image_sizes(opt: argparse.Namespace) -> None:
    """``--preprocess none`` / ``scale_width``: the training images' sizes, from their headers.

    Raises:
        UserError: a data folder is missing or empty, or images that meet in a batch or a
            pair would come out with different sizes (naming two of them), or a size the
            networks cannot take.
    """
    if opt.preprocess not in WHOLE_IMAGE:
        return
    from data.image_folder import require_images

    first, second = ("A", "B") if opt.direction == "AtoB" else ("B", "A")
    kinds = {"A": "low-light", "B": "normal-light"}
    paths = [
        require_images(
            os.path.join(opt.dataroot, opt.phase + side), kinds[side], opt.max_dataset_size
        )
        for side in (first, second)
    ]
    check_whole_image_sizes(
        *paths,
        preprocess=opt.preprocess,
        load_size=opt.load_size,
        crop_size=opt.crop_size,
        serial_batches=opt.serial_batches,
        batch_size=opt.batch_size,
        smallest=smallest_side(opt.netD, opt.n_layers_D),
    )


def check_schedule(opt: argparse.Namespace) -> None:
    """At least one epoch to train, and ``--epoch_count`` within the run."""
    total = opt.n_epochs + opt.n_epochs_decay
    if total < 1:
        raise UserError("--n_epochs 0 --n_epochs_decay 0 trains nothing: give at least one epoch")
    if opt.epoch_count > total:
        raise UserError(
            f"--epoch_count {opt.epoch_count} is past the last epoch, {total} "
            f"(--n_epochs {opt.n_epochs} + --n_epochs_decay {opt.n_epochs_decay})"
        )


def check_clip_weights(opt: argparse.Namespace) -> None:
    """``--clip_weights``: ``random``, or a file that exists."""
    path = opt.clip_weights
    if path is not None and path != "random" and not os.path.isfile(path):
        raise UserError(
            f"--clip_weights {path} does not exist: give OpenAI's RN50.pt or an "
            f"open_clip RN50 checkpoint, or 'random' (smoke tests only)"
        )


def check_folder(flag: str, path: str | None) -> None:
    """A folder the command writes into (created when missing) must not be a file."""
    if path and os.path.exists(path) and not os.path.isdir(path):
        raise UserError(
            f"{flag} {path} is a file, not a folder: give a folder (it is created when missing)"
        )


def format_suffix(opt: argparse.Namespace) -> str:
    """``--suffix`` with ``{option}`` fields filled in from the options.

    Raises:
        UserError: a field that is not an option, or a malformed template.
    """
    try:
        return opt.suffix.format(**vars(opt))
    except KeyError as err:
        raise UserError(
            f"--suffix {opt.suffix!r}: {{{err.args[0]}}} is not an option; use "
            f"option names in braces, e.g. {{netG}}_size{{load_size}}"
        ) from None
    except (IndexError, ValueError, AttributeError) as err:
        raise UserError(
            f"--suffix {opt.suffix!r} is not a valid template ({err}): use option "
            f"names in braces, e.g. {{netG}}_size{{load_size}}; double a brace "
            f"to keep it ({{{{ or }}}})"
        ) from None


def check_training(opt: argparse.Namespace) -> None:
    """Every cross-option check of ``train.py``, cheapest first (image headers last)."""
    check_sizes(opt)
    check_schedule(opt)
    check_clip_weights(opt)
    check_folder("--checkpoints_dir", opt.checkpoints_dir)
    check_folder(f"--name {opt.name}: the run folder", os.path.join(opt.checkpoints_dir, opt.name))
    check_image_sizes(opt)
