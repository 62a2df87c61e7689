"""Score enhanced images against ground truth.

    python -m nerco.evaluate --pred results/LOL/test_latest/images --gt dataset/LOL/testB \\
        [--out report.json] [--html] [--y_channel] [--gt_mean] [--lpips] [--niqe]

Pairing: files are matched by stem (file name without extension) at any depth. When the
prediction folder holds test.py output (any ``<stem>_fake_B.*``), only the ``_fake_B`` files
are predictions (``a_fake_B.png`` pairs with ``a.png``) and ``<stem>_real_A.*`` beside them
are the inputs shown on the page. A prediction without ground truth, or ground truth without
prediction, is an error naming them; ``--allow_missing`` scores the pairs found instead and
reports the unpaired names. Sizes must match exactly (an error names the file).

The metrics and their conventions are in :mod:`nerco.metrics`; the report is
``{"protocol": {...}, "mean": {...}, "per_image": [{"name", "psnr", "ssim", ...}]}`` with
non-finite values (the infinite PSNR of identical images) written as null.
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
from nerco import metrics, niqe
from nerco.errors import UserError
from nerco.runtime import select_device, setup_logging

logger = logging.getLogger("evaluate")

PRED_SUFFIX, INPUT_SUFFIX = "_fake_B", "_real_A"
#: Formats every browser shows; other files (TIFF, PPM) get PNG copies on the page.
BROWSER_FORMATS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
LABELS = {"psnr": "PSNR (dB)", "ssim": "SSIM", "lpips": "LPIPS", "niqe": "NIQE"}


@dataclass(frozen=True)
class Pair:
    """One scored image: its name, the prediction, the ground truth, optionally the input."""

    name: str
    pred: str
    gt: str
    input: str | None = None


@dataclass(frozen=True)
class Protocol:
    """How images are scored (see :mod:`nerco.metrics`)."""

    y_channel: bool = False
    gt_mean: bool = False
    lpips: bool = False
    niqe: bool = False

    def describe(self) -> dict:
        """The protocol spelled out for the report."""
        out = {
            "channels": ("Y of MATLAB rgb2ycbcr (BT.601): 16 + (65.481 R + 128.553 G + "
                         "24.966 B) / 255, not rounded") if self.y_channel else "RGB",
            "psnr": "10 log10(255^2 / MSE), MSE over all pixels and channels; mean = average "
                    "of per-image PSNR",
            "ssim": "Wang et al. 2004 (MATLAB ssim_index): 11x11 Gaussian window sigma 1.5, "
                    "K1 0.01, K2 0.03, L 255, valid region, mean over channels, no downsampling",
            "gt_mean": self.gt_mean,
        }
        if self.gt_mean:
            out["gt_mean_rule"] = ("pred' = clip(k pred, 0, 255) in float, k = mean grey(gt) / "
                                   "mean grey(pred), grey = 0.299 R + 0.587 G + 0.114 B")
        if self.lpips:
            out["lpips"] = "lpips 0.1 AlexNet, RGB in [-1, 1] (after GT-mean when on)"
        if self.niqe:
            out["niqe"] = ("Mittal et al. 2013 (niqe_release), 96x96 patches, on the raw "
                           "prediction's " + ("rounded Y" if self.y_channel else
                                              "MATLAB rgb2gray"))
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


def pair_folders(pred_dir: str, gt_dir: str, input_dir: str | None = None,
                 allow_missing: bool = False) -> tuple[list[Pair], dict]:
    """Pair predictions with ground truth by stem (module docstring for the rules).

    Returns:
        The pairs sorted by name, and ``{"pred_without_gt": [...], "gt_without_pred": [...]}``.

    Raises:
        UserError: missing folder, no image, duplicate stems, unpaired files (unless
            ``allow_missing``) or no pair at all.
    """
    pred_paths = require_images(pred_dir, "predicted")
    if any(_stem(p).endswith(PRED_SUFFIX) for p in pred_paths):
        strip = len(PRED_SUFFIX)
        preds = {k[:-strip]: v for k, v in index_by_stem(
            [p for p in pred_paths if _stem(p).endswith(PRED_SUFFIX)], pred_dir).items()}
        inputs = {k[:-strip]: v for k, v in index_by_stem(
            [p for p in pred_paths if _stem(p).endswith(INPUT_SUFFIX)], pred_dir).items()}
    else:
        preds, inputs = index_by_stem(pred_paths, pred_dir), {}
    if input_dir:
        inputs = index_by_stem(require_images(input_dir, "input"), input_dir)
    gts = index_by_stem(require_images(gt_dir, "ground-truth"), gt_dir)
    unpaired = {"pred_without_gt": sorted(set(preds) - set(gts)),
                "gt_without_pred": sorted(set(gts) - set(preds))}
    for key, text in (("pred_without_gt", f"predictions without ground truth in {gt_dir}"),
                      ("gt_without_pred", f"ground truth without prediction in {pred_dir}")):
        if unpaired[key] and not allow_missing:
            raise UserError(f"{len(unpaired[key])} {text}: {_names(unpaired[key])} (files pair "
                            f"by name; --allow_missing scores the pairs found)")
        if unpaired[key]:
            logger.warning("warning: %d %s: %s", len(unpaired[key]), text, _names(unpaired[key]))
    pairs = [Pair(n, preds[n], gts[n], inputs.get(n)) for n in sorted(set(preds) & set(gts))]
    if not pairs:
        raise UserError(f"no prediction in {pred_dir} has a ground truth of the same name in "
                        f"{gt_dir}")
    return pairs, unpaired


def read_pair(pair: Pair) -> tuple[np.ndarray, np.ndarray]:
    """Both images as (H, W, 3) uint8; different sizes are an error naming the file."""
    pred, gt = np.asarray(load_rgb(pair.pred)), np.asarray(load_rgb(pair.gt))
    if pred.shape != gt.shape:
        raise UserError(f"{pair.pred} is {pred.shape[1]}x{pred.shape[0]} but its ground truth "
                        f"{pair.gt} is {gt.shape[1]}x{gt.shape[0]}: sizes must match")
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
        self.niqe_params = None
        if protocol.lpips:
            self.lpips = metrics.load_lpips(lpips_weights, device)
        if protocol.niqe:
            self.niqe_params = niqe.load_niqe_params(niqe_params)

    def score(self, pair: Pair) -> dict:
        """``{"name", "psnr", "ssim", ["lpips"], ["niqe"], ["gt_mean_scale"], "pred", "gt"}``."""
        pred, gt = read_pair(pair)
        p = self.protocol
        entry: dict = {"name": pair.name}
        aligned, scale = pred.astype(np.float64), None
        if p.gt_mean:
            aligned, scale = metrics.gt_mean_align(aligned, gt)
        a, b = (metrics.to_y(aligned), metrics.to_y(gt)) if p.y_channel else (aligned, gt)
        try:
            entry["psnr"], entry["ssim"] = metrics.psnr(a, b), metrics.ssim(a, b)
            if self.lpips:
                entry["lpips"] = self.lpips(aligned, gt)
            if self.niqe_params:
                grey = np.floor(metrics.to_y(pred) + 0.5) if p.y_channel else \
                    niqe.matlab_rgb2gray(pred)
                entry["niqe"] = niqe.niqe(grey, *self.niqe_params)
        except ValueError as err:
            raise UserError(f"{pair.pred}: {err}") from None
        if scale is not None:
            entry["gt_mean_scale"] = scale
        entry.update(pred=pair.pred, gt=pair.gt)
        return entry


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def evaluate(pairs: Sequence[Pair], scorer: Scorer, extra: dict | None = None) -> dict:
    """Score every pair (tqdm bar); return the report (JSON-ready, non-finite → None)."""
    from tqdm import tqdm

    per_image = [scorer.score(pair) for pair in tqdm(pairs, desc="scoring", unit="image")]
    keys = [k for k in LABELS if k in per_image[0]]
    mean = {k: _finite(float(np.mean([e[k] for e in per_image]))) for k in keys}
    per_image = [{k: _finite(v) for k, v in e.items()} for e in per_image]
    protocol = {**scorer.protocol.describe(), "images": len(per_image), **(extra or {})}
    return {"protocol": protocol, "mean": mean, "per_image": per_image}


def write_json(report: dict, path: str | os.PathLike) -> None:
    """Write the report as strict JSON (UTF-8), creating the folder."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def _fmt(value, key: str) -> str:
    """4 decimals; null is an infinite PSNR (identical images) or an undefined score."""
    if value is None:
        return "inf" if key == "psnr" else "n/a"
    return f"{value:.4f}"


def format_table(report: dict) -> str:
    """The scores as a plain-text table, the mean last."""
    keys = list(report["mean"])
    rows = [(e["name"], *(_fmt(e.get(k), k) for k in keys)) for e in report["per_image"]]
    rows.append((f"mean ({len(rows)})", *(_fmt(report["mean"][k], k) for k in keys)))
    header = ("name", *(LABELS[k] for k in keys))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths)))
                     for row in [header, *rows])


def _page_image(path: str, web_dir: Path, column: str, name: str) -> str:
    """A path relative to the page: a link to ``path``, or a PNG copy for TIFF/PPM files."""
    from nerco.util import save_image

    if path.lower().endswith(BROWSER_FORMATS):
        try:
            return os.path.relpath(os.path.abspath(path), web_dir.resolve())
        except ValueError:  # another drive (Windows): copy below
            pass
    copy = web_dir / "images" / column / f"{name}.png"
    save_image(np.asarray(load_rgb(path)), copy)
    return copy.relative_to(web_dir).as_posix()


def write_page(report: dict, pairs: Sequence[Pair], web_dir: str | os.PathLike, title: str,
               prediction_label: str = "NeRCo", width: int = 256) -> Path:
    """``<web_dir>/index.html``: input | prediction | ground truth and scores, mean on top.

    Images are linked by paths relative to the page (no copies), except TIFF/PPM files,
    which browsers do not show: those get PNG copies in ``<web_dir>/images/<column>/``.
    """
    from nerco.html import write_comparison_page

    web = Path(web_dir)
    web.mkdir(parents=True, exist_ok=True)
    columns = (["input"] if any(p.input for p in pairs) else []) + [prediction_label,
                                                                    "ground truth"]
    keys = list(report["mean"])
    rows = []
    for pair, entry in zip(pairs, report["per_image"], strict=True):
        images = {prediction_label: _page_image(pair.pred, web, "pred", pair.name),
                  "ground truth": _page_image(pair.gt, web, "gt", pair.name)}
        if pair.input:
            images["input"] = _page_image(pair.input, web, "input", pair.name)
        rows.append({"name": pair.name, "images": images,
                     "scores": {LABELS[k]: entry.get(k) for k in keys}})
    mean = {"name": f"mean of {len(rows)}",
            "scores": {LABELS[k]: report["mean"][k] for k in keys}}
    proto = report["protocol"]
    note = (f"{proto['channels'].split(' ')[0]} channels, GT-mean "
            f"{'on' if proto['gt_mean'] else 'off'}; SSIM: 11x11 Gaussian window, sigma 1.5")
    return write_comparison_page(web, title, rows, columns, score_columns=[LABELS[k] for k in keys],
                                 mean=mean, note=note, width=width)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nerco.evaluate", description=__doc__.split(
        "\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--pred", required=True, help="folder of predictions (any depth)")
    parser.add_argument("--gt", required=True, help="folder of ground truth, same file stems")
    parser.add_argument("--input", help="folder of inputs for the page (default: <stem>_real_A "
                                        "files beside <stem>_fake_B predictions)")
    parser.add_argument("--out", help="write the JSON report here")
    parser.add_argument("--html", action="store_true", help="write <web_dir>/index.html")
    parser.add_argument("--web_dir", help="folder of the page (default: folder of --out, else "
                                          "--pred); images are linked relative to it")
    parser.add_argument("--y_channel", action="store_true",
                        help="PSNR/SSIM on MATLAB rgb2ycbcr Y (BT.601) instead of RGB")
    parser.add_argument("--gt_mean", action="store_true", help="scale the prediction by "
                        "mean grey(gt)/mean grey(pred) before scoring (KinD/LLFlow protocol)")
    parser.add_argument("--lpips", action="store_true", help="also LPIPS (AlexNet)")
    parser.add_argument("--lpips_weights", help=f"torchvision's {metrics.ALEXNET_FILE} "
                        f"(default: <torch hub>/checkpoints/); implies --lpips")
    parser.add_argument("--niqe", action="store_true", help="also NIQE of the predictions")
    parser.add_argument("--niqe_params", help="niqe_image_params.mat (or .npz) of the MATLAB "
                        "release (default: <torch hub>/checkpoints/); implies --niqe")
    parser.add_argument("--allow_missing", action="store_true",
                        help="warn about unpaired files and score the pairs found")
    parser.add_argument("--gpu_ids", default="-1", help="device for LPIPS: -1 CPU, 0 first GPU")
    return parser


def run(args: argparse.Namespace) -> dict:
    """Pair, score, print the table, write the report and the page; return the report."""
    protocol = Protocol(y_channel=args.y_channel, gt_mean=args.gt_mean,
                        lpips=args.lpips or bool(args.lpips_weights),
                        niqe=args.niqe or bool(args.niqe_params))
    device = select_device(args.gpu_ids) if protocol.lpips else "cpu"
    scorer = Scorer(protocol, args.lpips_weights, args.niqe_params, device)
    pairs, unpaired = pair_folders(args.pred, args.gt, args.input, args.allow_missing)
    report = evaluate(pairs, scorer, {"pred_dir": args.pred, "gt_dir": args.gt,
                                      "unpaired": unpaired})
    logger.info("%s", format_table(report))
    if args.out:
        write_json(report, args.out)
        logger.info("report %s", args.out)
    if args.html:
        web_dir = args.web_dir or args.pred
        if not args.web_dir and args.out:
            web_dir = os.path.dirname(os.path.abspath(args.out))
        page = write_page(report, pairs, web_dir, f"{args.pred} vs {args.gt}")
        logger.info("page %s", page)
    return report


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; 2 with one ``error:`` line on bad input."""
    setup_logging()
    try:
        run(build_parser().parse_args(argv))
    except UserError as err:
        logger.error("error: %s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
