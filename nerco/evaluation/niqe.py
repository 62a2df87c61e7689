"""NIQE (Mittal, Soundararajan and Bovik, 2013), as the MATLAB ``niqe_release`` computes it.

No maintained library reproduces the MATLAB release and accepts its parameter file, so the
score and its pieces are written here from the paper and ``computequality.m``, step by step:
MATLAB ``rgb2gray``, 96×96 patches at two scales (the second by MATLAB's bicubic
``imresize`` by ½), MSCN coefficients with a 7×7 Gaussian (σ = 7/6), a generalised Gaussian
fit of the coefficients and asymmetric fits of four neighbour products per patch, then the
distance between the multivariate Gaussian of the patches and the pristine model.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage
from scipy.special import gamma

from nerco.runtime import UserError

#: MATLAB ``rgb2gray`` weights (rows of inv(ntsc matrix)), used for NIQE as the release does.
MATLAB_GREY_WEIGHTS = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
NIQE_FILES = ("niqe_image_params.mat", "niqe_image_params.npz")


def default_niqe_params() -> Path | None:
    """The first of ``niqe_image_params.mat`` / ``.npz`` in <torch hub>/checkpoints/, if any."""
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    return next((folder / n for n in NIQE_FILES if (folder / n).is_file()), None)


def load_niqe_params(path: str | os.PathLike | None) -> tuple[np.ndarray, np.ndarray]:
    """Read the pristine MVG model (mu (36,), cov (36, 36)) of the MATLAB NIQE release.

    Accepts ``niqe_image_params.mat`` (keys ``mu_prisparam``, ``cov_prisparam``) or an
    ``.npz`` with those keys or BasicSR's ``mu_pris_param`` / ``cov_pris_param``.

    Raises:
        UserError: missing or malformed file.
    """
    path = Path(path) if path else default_niqe_params()
    if path is None or not path.is_file():
        where = Path(torch.hub.get_dir()) / "checkpoints"
        raise UserError(
            f"NIQE needs the MATLAB model parameters niqe_image_params.mat (from "
            f"Mittal's niqe_release.zip) and this tool never downloads: "
            f"{path or where / NIQE_FILES[0]} is missing; pass --niqe_params FILE "
            f"or put it in {where}"
        )
    try:
        if path.suffix == ".mat":
            from scipy.io import loadmat

            data = loadmat(path)
        else:
            data = dict(np.load(path))
    except Exception as exc:  # scipy/numpy raise many types for a bad file
        raise UserError(f"--niqe_params {path}: cannot read it ({type(exc).__name__})") from None
    mu = data.get("mu_prisparam", data.get("mu_pris_param"))
    cov = data.get("cov_prisparam", data.get("cov_pris_param"))
    if mu is None or cov is None or np.size(mu) != 36 or np.shape(cov) != (36, 36):
        raise UserError(
            f"--niqe_params {path}: expected mu_prisparam (36 values) and cov_prisparam (36x36)"
        )
    return np.asarray(mu, np.float64).reshape(36), np.asarray(cov, np.float64)


def matlab_rgb2gray(image: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2gray`` of a uint8 RGB image: weighted sum rounded half away from zero."""
    return np.floor(np.asarray(image, np.float64) @ MATLAB_GREY_WEIGHTS + 0.5)


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic kernel with a = −0.5 (MATLAB ``imresize`` 'bicubic')."""
    ax = np.abs(x)
    near = 1.5 * ax**3 - 2.5 * ax**2 + 1
    far = -0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2
    return np.where(ax <= 1, near, np.where(ax <= 2, far, 0.0))


def resize_matrix(
    in_len: int, scale: float | None = None, out_len: int | None = None
) -> np.ndarray:
    """(out_len, in_len) matrix of MATLAB ``imresize`` bicubic along one axis.

    ``imresize(im, scale)`` gives ceil(in_len·scale) pixels; ``imresize(im, [rows cols])``
    (give ``out_len``) uses scale = out_len / in_len. Output pixel x (1-based) samples the
    input at u = x/scale + (1 − 1/scale)/2; when shrinking, the kernel is stretched to
    antialias: h(t) = scale·cubic(scale·t), width 4/scale. Taps are normalised to sum to 1,
    and taps outside the image are mirrored (index sequence 1..n, n..1, repeated), as
    MATLAB's ``contributions`` does.
    """
    if out_len is None:
        out_len = int(np.ceil(in_len * scale))
    else:
        scale = out_len / in_len
    stretch = min(scale, 1.0)  # antialiasing only when shrinking
    width = 4.0 / stretch
    u = np.arange(1, out_len + 1) / scale + 0.5 * (1 - 1 / scale)
    taps = np.floor(u - width / 2)[:, None] + np.arange(int(np.ceil(width)) + 2)[None, :]
    weights = stretch * _cubic(stretch * (u[:, None] - taps))
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len)[::-1]])
    columns = mirror[np.mod(taps.astype(int) - 1, 2 * in_len)]
    matrix = np.zeros((out_len, in_len))
    np.add.at(
        matrix, (np.repeat(np.arange(out_len), taps.shape[1]), columns.ravel()), weights.ravel()
    )
    return matrix


_ALPHA_GRID = 0.2 + 0.001 * np.arange(9801)
_R_GRID = gamma(2 / _ALPHA_GRID) ** 2 / (gamma(1 / _ALPHA_GRID) * gamma(3 / _ALPHA_GRID))
#: circshift offsets of the paired products: horizontal, vertical, two diagonals.
_SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))


def fit_aggd(values: np.ndarray) -> tuple[float, float, float]:
    """Moment-matching fit of an asymmetric generalised Gaussian (Mittal et al., Eq. 7–8).

    γ̂ = σ_l/σ_r (root mean squares of the negative and positive values); r̂ = E|x|²/E[x²],
    R̂ = r̂(γ̂³ + 1)(γ̂ + 1)/(γ̂² + 1)²; α is the point of the grid 0.2:0.001:10 nearest to
    Γ(2/α)²/(Γ(1/α)Γ(3/α)) = R̂, and β_{l,r} = σ_{l,r}·sqrt(Γ(1/α)/Γ(3/α)). As in MATLAB,
    an undefined R̂ (no negative or no positive value) gives α = 0.2 and NaN β's.

    Returns:
        (α, β_l, β_r).
    """
    x = np.asarray(values, np.float64).ravel()
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # mean of an empty side is NaN
        left = np.sqrt(np.mean(x[x < 0] ** 2))
        right = np.sqrt(np.mean(x[x > 0] ** 2))
        g = left / right
        r_hat = np.mean(np.abs(x)) ** 2 / np.mean(x**2)
        r_norm = r_hat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    diff = (_R_GRID - r_norm) ** 2
    alpha = float(_ALPHA_GRID[0 if np.isnan(r_norm) else int(np.argmin(diff))])
    ratio = np.sqrt(gamma(1 / alpha) / gamma(3 / alpha))
    return alpha, float(left * ratio), float(right * ratio)


def mscn(image: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients (Mittal et al., Eq. 1).

    (I − μ) / (σ + 1), μ and σ from a 7×7 Gaussian (σ_w = 7/6, normalised) with replicated
    borders (MATLAB ``imfilter(..., 'replicate')``); σ = sqrt|E_w[I²] − μ²|.
    """
    t = np.arange(-3, 4)
    window = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * (7 / 6) ** 2))
    window /= window.sum()
    mu = ndimage.correlate(image, window, mode="nearest")
    sigma = np.sqrt(np.abs(ndimage.correlate(image * image, window, mode="nearest") - mu * mu))
    return (image - mu) / (sigma + 1)


def patch_features(patch: np.ndarray) -> list[float]:
    """The 18 NIQE features of one MSCN patch (``computefeature.m``).

    α and (β_l + β_r)/2 of the coefficients, then for each shift of :data:`_SHIFTS` the
    AGGD (α, η, β_l, β_r) of the products with the circularly shifted patch, where
    η = (β_r − β_l)·Γ(2/α)/Γ(1/α) is the AGGD mean.
    """
    alpha, bl, br = fit_aggd(patch)
    feats = [alpha, (bl + br) / 2]
    for shift in _SHIFTS:
        alpha, bl, br = fit_aggd(patch * np.roll(patch, shift, axis=(0, 1)))
        feats += [alpha, (br - bl) * gamma(2 / alpha) / gamma(1 / alpha), bl, br]
    return feats


def niqe_features(grey: np.ndarray, block: int = 96) -> np.ndarray:
    """(patches, 36) NIQE features of a grey image in [0, 255] at two scales.

    The image is cropped to whole ``block``×``block`` patches; scale 2 is MATLAB's bicubic
    ``imresize(im, 0.5)`` with ``block/2`` patches. Columns 0–17 scale 1, 18–35 scale 2.
    """
    grey = np.asarray(grey, np.float64)
    rows, cols = grey.shape[0] // block, grey.shape[1] // block
    image = grey[: rows * block, : cols * block]
    per_scale = []
    for scale in (1, 2):
        coeffs, size = mscn(image), block // scale
        per_scale.append(
            [
                patch_features(coeffs[i * size : (i + 1) * size, j * size : (j + 1) * size])
                for i in range(rows)
                for j in range(cols)
            ]
        )
        if scale == 1:
            image = (
                resize_matrix(image.shape[0], 0.5) @ image @ resize_matrix(image.shape[1], 0.5).T
            )
    return np.hstack([np.asarray(f) for f in per_scale])


def niqe(grey: np.ndarray, mu_pris: np.ndarray, cov_pris: np.ndarray) -> float:
    """NIQE of a grey image (Mittal et al. 2013, Eq. 10); lower means more natural.

    D = sqrt((ν₁ − ν₂)ᵀ ((Σ₁ + Σ₂)/2)⁺ (ν₁ − ν₂)), ν₁, Σ₁ the pristine model and ν₂, Σ₂ the
    mean (NaN-ignoring per feature) and covariance (over patches without NaN, N − 1
    normalised) of the image's patch features, as ``nanmean`` / ``nancov`` do.

    Args:
        grey: (H, W) in [0, 255] with at least two 96×96 patches.
        mu_pris, cov_pris: the pristine model (36,), (36, 36).

    Raises:
        ValueError: fewer than two patches.
    """
    if (grey.shape[0] // 96) * (grey.shape[1] // 96) < 2:
        raise ValueError(
            f"NIQE needs two 96x96 patches (at least 96x192 pixels), got "
            f"{grey.shape[1]}x{grey.shape[0]}"
        )
    feats = niqe_features(grey)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mu = np.nanmean(feats, axis=0)
        cov = np.cov(feats[~np.isnan(feats).any(axis=1)], rowvar=False)
    d = mu_pris - mu
    return float(np.sqrt(d @ np.linalg.pinv((cov_pris + cov) / 2) @ d))
