"""A raw-sensor model of under-exposure, for synthetic low-light images.

:func:`synthesize_low_light` darkens an sRGB photograph the way a sensor records less light,
per pixel and channel of an sRGB image ``x`` in [0, 1]:

1. linearise with the exact IEC 61966-2-1 sRGB curve (:func:`srgb_to_linear`):
   ``L = x/12.92`` for x ≤ 0.04045, else ``((x + 0.055)/1.055)^2.4``;
2. expose: the expected photo-electron count is ``k · L · FWC``, with the exposure factor
   ``k`` and the full-well capacity ``FWC`` (electrons at the normal exposure's white);
3. shot noise: draw the count from a Poisson distribution with that mean; read noise: add
   zero-mean Gaussian electrons of std ``σ_r``;
4. back to relative intensity (count / FWC), clip to [0, 1], encode with the sRGB curve
   (:func:`linear_to_srgb`), round to uint8.

So the expected linear intensity is ``k · L`` (up to clipping) and the noise variance
``(k · L · FWC + σ_r²) / FWC²``: heteroscedastic, as in real sensors. The demo dataset
(:mod:`data.demo`) is built with it; it serves as a low-light augmentation too.
"""

from __future__ import annotations

import numpy as np


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 decoding: sRGB values in [0, 1] → linear intensity in [0, 1]."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(y: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 encoding: linear intensity in [0, 1] → sRGB values in [0, 1]."""
    y = np.clip(np.asarray(y, dtype=np.float64), 0.0, 1.0)
    return np.where(y <= 0.0031308, 12.92 * y, 1.055 * y ** (1 / 2.4) - 0.055)


def synthesize_low_light(
    image: np.ndarray,
    exposure: float,
    full_well: float,
    read_noise: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Under-expose an sRGB photograph with shot and read noise (module docstring, 1–4).

    Args:
        image: (H, W, 3) uint8 sRGB at normal exposure.
        exposure: exposure factor k (< 1 darkens).
        full_well: electrons collected at linear intensity 1 at normal exposure.
        read_noise: std of the Gaussian read noise, in electrons.
        rng: the source of the noise.

    Returns:
        (H, W, 3) uint8 sRGB whose expected linear intensity is ``exposure`` times the input's.
    """
    linear = srgb_to_linear(image / 255.0)
    electrons = rng.poisson(exposure * linear * full_well).astype(np.float64)
    electrons += rng.normal(0.0, read_noise, size=linear.shape)
    encoded = linear_to_srgb(electrons / full_well)
    return np.round(encoded * 255.0).astype(np.uint8)
