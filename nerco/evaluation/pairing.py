"""Pairing predictions with their ground truth (and inputs) by file stem.

Files are matched by stem (file name without extension) at any depth. When the prediction
folder holds test.py output (any ``<stem>_fake_B.*``), only the ``_fake_B`` files are
predictions (``a_fake_B.png`` pairs with ``a.png``) and ``<stem>_real_A.*`` beside them are
the inputs (shown on the page, used by LOE). A prediction without ground truth, or ground
truth without prediction, is an error naming them; ``--allow_missing`` scores the pairs
found instead and reports the unpaired names. Sizes must match exactly (an error names the
file); they are read from the file headers, before any image is decoded. Several methods
(``--pred NAME=DIR``, repeated) are named, paired with the one reference and checked all
together before anything is scored.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.image_folder import load_rgb, require_images
from nerco.runtime import UserError

logger = logging.getLogger("evaluate")

PRED_SUFFIX, INPUT_SUFFIX = "_fake_B", "_real_A"


@dataclass(frozen=True)
class Pair:
    """One scored image: its name, the prediction, the ground truth (None: no-reference
    scores only), optionally the low-light input."""

    name: str
    pred: str
    gt: str | None
    input: str | None = None


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def index_by_stem(paths: Sequence[str], what: str) -> dict[str, str]:
    """Map stem → path; two files with one stem are an error naming both."""
    index: dict[str, str] = {}
    for path in paths:
        other = index.setdefault(_stem(path), path)
        if other != path:
            raise UserError(
                f"{what}: {other} and {path} have the same name {_stem(path)!r}; keep one"
            )
    return index


def _names(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(sorted(names)[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def index_predictions(pred_dir: str) -> tuple[dict[str, str], dict[str, str]]:
    """``{stem: prediction}`` and ``{stem: input}`` of a folder (test.py's _fake_B/_real_A).

    Raises:
        UserError: missing folder, no image or duplicate stems.
    """
    pred_paths = require_images(pred_dir, "predicted")
    if not any(_stem(p).endswith(PRED_SUFFIX) for p in pred_paths):
        return index_by_stem(pred_paths, pred_dir), {}
    strip = len(PRED_SUFFIX)
    found = [
        {
            k[:-strip]: v
            for k, v in index_by_stem(
                [p for p in pred_paths if _stem(p).endswith(suffix)], pred_dir
            ).items()
        }
        for suffix in (PRED_SUFFIX, INPUT_SUFFIX)
    ]
    return found[0], found[1]


def unpaired_names(
    preds: dict,
    refs: dict,
    pred_dir: str,
    ref_dir: str,
    allow_missing: bool,
    prefix: str = "",
    kind: str = "ground truth",
) -> dict[str, list[str]]:
    """Names on one side only; an error naming them (a warning with ``allow_missing``).

    Returns:
        ``{"pred_without_gt": [...], "gt_without_pred": [...]}``.
    """
    unpaired = {
        "pred_without_gt": sorted(set(preds) - set(refs)),
        "gt_without_pred": sorted(set(refs) - set(preds)),
    }
    for key, text in (
        ("pred_without_gt", f"predictions without {kind} in {ref_dir}"),
        ("gt_without_pred", f"{kind} without prediction in {pred_dir}"),
    ):
        if unpaired[key] and not allow_missing:
            raise UserError(
                f"{prefix}{len(unpaired[key])} {text}: {_names(unpaired[key])} "
                f"(files pair by name; --allow_missing scores the pairs found)"
            )
        if unpaired[key]:
            logger.warning(
                "warning: %s%d %s: %s", prefix, len(unpaired[key]), text, _names(unpaired[key])
            )
    return unpaired


def pair_folders(
    pred_dir: str, gt_dir: str, input_dir: str | None = None, allow_missing: bool = False
) -> tuple[list[Pair], dict]:
    """Pair predictions with ground truth by stem (module docstring for the rules).

    Returns:
        The pairs sorted by name, and ``{"pred_without_gt": [...], "gt_without_pred": [...]}``.

    Raises:
        UserError: missing folder, no image, duplicate stems, unpaired files (unless
            ``allow_missing``) or no pair at all.
    """
    preds, inputs = index_predictions(pred_dir)
    if input_dir:
        inputs = index_by_stem(require_images(input_dir, "input"), input_dir)
    gts = index_by_stem(require_images(gt_dir, "ground-truth"), gt_dir)
    unpaired = unpaired_names(preds, gts, pred_dir, gt_dir, allow_missing)
    pairs = [Pair(n, preds[n], gts[n], inputs.get(n)) for n in sorted(set(preds) & set(gts))]
    if not pairs:
        raise UserError(
            f"no prediction in {pred_dir} has a ground truth of the same name in {gt_dir}"
        )
    return pairs, unpaired


def check_sizes(
    pred_path: str,
    pred_size: tuple[int, int],
    other_path: str,
    other_size: tuple[int, int],
    what: str = "ground truth",
) -> None:
    """Different (width, height) are an error naming both files."""
    if tuple(pred_size) != tuple(other_size):
        raise UserError(
            f"{pred_path} is {pred_size[0]}x{pred_size[1]} but its {what} "
            f"{other_path} is {other_size[0]}x{other_size[1]}: sizes must match"
        )


def image_size(image: np.ndarray) -> tuple[int, int]:
    return image.shape[1], image.shape[0]


def read_pair(pair: Pair) -> tuple[np.ndarray, np.ndarray]:
    """Both images as (H, W, 3) uint8; different sizes are an error naming the file."""
    pred, gt = np.asarray(load_rgb(pair.pred)), np.asarray(load_rgb(pair.gt))
    check_sizes(pair.pred, image_size(pred), pair.gt, image_size(gt))
    return pred, gt


#: Column labels of the page that a method may not take.
RESERVED = ("input", "ground truth")


def method_name(folder: str) -> str:
    """A bare ``--pred DIR``'s name: the folder's, or ``<name>`` for test.py's
    ``results/<name>/<phase>_<epoch>/images``."""
    parts = Path(os.path.abspath(folder)).parts
    if len(parts) >= 3 and parts[-1] == "images" and "_" in parts[-2]:
        return parts[-3]
    return parts[-1]


def parse_methods(values: Sequence[str]) -> list[tuple[str, str]]:
    """``NAME=DIR`` or ``DIR`` → [(name, folder)].

    Raises:
        UserError: a name used twice, or one the page reserves.
    """
    methods = []
    for value in values:
        name, sep, folder = value.partition("=")
        if not sep or not name or "/" in name or os.sep in name or os.path.isdir(value):
            name, folder = method_name(value), value
        methods.append((name, folder))
    names = [n for n, _ in methods]
    for name in names:
        if names.count(name) > 1:
            raise UserError(
                f"--pred: two methods are named {name!r}; name each one: --pred NAME=DIR"
            )
        if name in RESERVED:
            raise UserError(
                f"--pred: the name {name!r} is taken by the page's {name} column; "
                f"choose another: --pred NAME=DIR"
            )
    return methods


def pair_methods(
    methods: list[tuple[str, str]],
    gt_dir: str | None,
    input_dir: str | None,
    allow_missing: bool,
    need_inputs: bool,
) -> tuple[dict[str, list[Pair]], dict]:
    """Pair every method with the reference; the images all of them share.

    Returns:
        ``{name: pairs sorted by name}`` (one list of names for all) and
        ``{name: {"pred_without_gt": [...], "gt_without_pred": [...]}}``.

    Raises:
        UserError: unpaired names (unless ``allow_missing``), nothing shared, or inputs
            missing for LOE.
    """
    indexed = {name: index_predictions(folder) for name, folder in methods}
    if input_dir:
        inputs = index_by_stem(require_images(input_dir, "input"), input_dir)
    else:
        inputs = next((own for _, own in indexed.values() if own), {})
    if gt_dir:
        refs, ref_dir, kind = (
            index_by_stem(require_images(gt_dir, "ground-truth"), gt_dir),
            gt_dir,
            "ground truth",
        )
    elif input_dir:
        refs, ref_dir, kind = inputs, input_dir, "input"
    else:
        refs, ref_dir, kind = indexed[methods[0][0]][0], methods[0][1], "prediction"
    prefix = len(methods) > 1
    unpaired, common = {}, set(refs)
    for name, folder in methods:
        unpaired[name] = unpaired_names(
            indexed[name][0],
            refs,
            folder,
            ref_dir,
            allow_missing,
            f"{name}: " if prefix else "",
            kind,
        )
        common &= set(indexed[name][0])
    if not common:
        raise UserError(
            f"no prediction in {', '.join(f for _, f in methods)} has a {kind} of "
            f"the same name in {ref_dir}"
        )
    lacking = sorted(n for n in common if n not in inputs)
    if need_inputs and lacking:
        raise UserError(
            f"--loe needs the low-light input of every image: none for "
            f"{len(lacking)} ({', '.join(lacking[:5])}); give --input DIR (or "
            f"score test.py output, which keeps <stem>_real_A files)"
        )
    pairs = {
        name: [
            Pair(n, indexed[name][0][n], refs[n] if gt_dir else None, inputs.get(n))
            for n in sorted(common)
        ]
        for name, _ in methods
    }
    return pairs, unpaired


def check_all_sizes(pairs: dict[str, list[Pair]], loe: bool) -> None:
    """Every prediction's size against its ground truth (and input for LOE), from the file
    headers, before any image is scored."""
    from PIL import Image

    sizes: dict[str, tuple[int, int]] = {}

    def size(path: str) -> tuple[int, int]:
        if path not in sizes:
            try:
                with Image.open(path) as image:
                    sizes[path] = image.size
            except (OSError, ValueError) as err:
                raise UserError(f"{path}: cannot read it as an image ({err})") from None
        return sizes[path]

    for method_pairs in pairs.values():
        for pair in method_pairs:
            if pair.gt is not None:
                check_sizes(pair.pred, size(pair.pred), pair.gt, size(pair.gt))
            if loe and pair.input is not None:
                check_sizes(pair.pred, size(pair.pred), pair.input, size(pair.input), "input")
