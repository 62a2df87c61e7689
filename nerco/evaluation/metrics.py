"""Image-quality metrics with the conventions of the low-light enhancement literature.

Who computes what, and why:

* **PSNR** — :func:`skimage.metrics.peak_signal_noise_ratio`: 10·log10(255² / MSE), the MSE
  taken over every pixel and channel in float64. It is the textbook formula; nothing to redo.
* **SSIM** — :func:`skimage.metrics.structural_similarity` with ``gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False, data_range=255, K1=0.01, K2=0.03``. That is Wang
  et al.'s MATLAB ``ssim_index``: an 11×11 Gaussian window (σ = 1.5, scipy truncates at 3.5σ,
  radius 5), population (co)variances, the SSIM map averaged over the pixels whose window lies
  inside the image (skimage filters the whole image, then crops a 5-pixel border, which equals
  MATLAB's ``filter2(..., 'valid')``), then averaged over R, G, B. No automatic down-sampling
  (the 2011 ``ssim.m`` shrinks large images first; BasicSR and LLIE papers do not).
  ``tests/test_evaluate.py`` checks it against a direct implementation of the formula.
* **Y channel** — :func:`skimage.color.rgb2ycbcr`, MATLAB's ``rgb2ycbcr`` matrix (ITU-R
  BT.601, studio range): Y = 16 + (65.481·R + 128.553·G + 24.966·B) / 255 for R, G, B in
  [0, 255]. Kept in floating point (not rounded), as BasicSR does for PSNR/SSIM.
* **GT-mean alignment** (:func:`gt_mean_align`, by hand: a two-line formula) — the KinD /
  LLFlow / Retinexformer convention of scaling the prediction so its mean grey level
  matches the ground truth's.
* **LPIPS** — the ``lpips`` package (AlexNet, v0.1 linear heads shipped with the package);
  the ImageNet AlexNet backbone is read from a local file (:func:`load_lpips`), never
  downloaded.
* **NIQE** — in :mod:`nerco.evaluation.niqe` (no maintained library reproduces the MATLAB
  release and accepts its parameter file).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from nerco.runtime import UserError

#: ITU-R BT.601 luma weights used for the GT-mean grey level (OpenCV's RGB2GRAY).
GREY_WEIGHTS = np.array([0.299, 0.587, 0.114])
#: torchvision's ImageNet AlexNet file, the backbone LPIPS (net='alex') was trained on.
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
ALEXNET_URL = "https://download.pytorch.org/models/" + ALEXNET_FILE


def to_y(image: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2ycbcr`` luma of an (H, W, 3) RGB image in [0, 255]; (H, W) float64 in
    [16, 235], not rounded."""
    return rgb2ycbcr(np.asarray(image, dtype=np.float64) / 255.0)[..., 0]


def gt_mean_align(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, float]:
    """Scale ``pred`` so its mean grey level equals the ground truth's (GT-mean protocol).

    grey(I) = 0.299·R + 0.587·G + 0.114·B;  k = mean(grey(gt)) / mean(grey(pred));
    pred' = clip(k · pred, 0, 255), kept in float64 (not re-quantised). An all-black
    prediction has no grey level to scale and is returned unchanged (k = 1).

    Args:
        pred, gt: (H, W, 3) RGB arrays in [0, 255].

    Returns:
        (pred', k).
    """
    pred = np.asarray(pred, dtype=np.float64)
    grey_pred = float((pred @ GREY_WEIGHTS).mean())
    grey_gt = float((np.asarray(gt, dtype=np.float64) @ GREY_WEIGHTS).mean())
    k = grey_gt / grey_pred if grey_pred > 0 else 1.0
    return np.clip(k * pred, 0.0, 255.0), k


def psnr(pred: np.ndarray, gt: np.ndarray) -> float:
    """10·log10(255² / MSE) over all pixels (and channels); ``inf`` for identical images."""
    with np.errstate(divide="ignore"):
        return float(
            peak_signal_noise_ratio(
                np.asarray(gt, np.float64), np.asarray(pred, np.float64), data_range=255
            )
        )


def ssim(pred: np.ndarray, gt: np.ndarray) -> float:
    """Wang et al.'s SSIM (11×11 Gaussian σ 1.5, K1 0.01, K2 0.03, L 255), mean over channels.

    Args:
        pred, gt: (H, W, 3) or (H, W) arrays in [0, 255], at least 11×11.

    Raises:
        ValueError: images smaller than the 11×11 window.
    """
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if min(gt.shape[:2]) < 11:
        raise ValueError(
            f"SSIM needs images of at least 11x11 pixels, got {gt.shape[1]}x{gt.shape[0]}"
        )
    return float(
        structural_similarity(
            gt,
            pred,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=255,
            K1=0.01,
            K2=0.03,
            channel_axis=-1 if gt.ndim == 3 else None,
        )
    )


# ----------------------------------------------------------------------------- LPIPS
def default_lpips_weights() -> Path:
    """Where torchvision itself caches the AlexNet weights: <torch hub>/checkpoints/."""
    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE


def load_lpips(weights: str | os.PathLike | None, device: torch.device | str = "cpu"):
    """Build LPIPS (AlexNet, v0.1) without any download.

    Args:
        weights: torchvision's ImageNet AlexNet state_dict (``alexnet-owt-7be5be79.pth``;
            only its ``features.*`` tensors are used); None looks in the torch hub cache.
        device: where to run it.

    Returns:
        A function ``(pred, gt) -> float`` on (H, W, 3) arrays in [0, 255]; lower is closer.

    Raises:
        UserError: the file is missing or is not an AlexNet state_dict.
    """
    path = Path(weights) if weights else default_lpips_weights()
    if not path.is_file():
        raise UserError(
            f"LPIPS needs the ImageNet AlexNet weights {ALEXNET_FILE} and this tool "
            f"never downloads: {path} is missing; fetch {ALEXNET_URL} on a machine "
            f"with internet and pass --lpips_weights FILE or put it in {path.parent}"
        )
    import lpips

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise UserError(f"--lpips_weights {path}: cannot read it ({type(exc).__name__})") from None
    with warnings.catch_warnings():  # lpips passes torchvision's deprecated pretrained=False
        warnings.simplefilter("ignore")
        model = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
    # lpips splits AlexNet's `features` into slices that keep the layer indices:
    # net.slice<k>.<i>.weight is torchvision's features.<i>.weight.
    backbone = {}
    for name in model.net.state_dict():
        key = "features." + name.split(".", 1)[1]
        if key not in state:
            raise UserError(f"--lpips_weights {path} is not torchvision's AlexNet: no {key}")
        backbone[name] = state[key]
    try:
        model.net.load_state_dict(backbone)
    except RuntimeError:
        raise UserError(f"--lpips_weights {path}: tensor shapes are not AlexNet's") from None
    model = model.to(device).eval()

    def score(pred: np.ndarray, gt: np.ndarray) -> float:
        def to_tensor(a):  # (H, W, 3) in [0, 255] -> (1, 3, H, W) in [-1, 1]
            t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
            return (t.permute(2, 0, 1)[None] / 127.5 - 1.0).to(device)

        with torch.no_grad():
            return float(model(to_tensor(pred), to_tensor(gt)).item())

    return score
