"""Lightness order error (LOE) of an enhancement (Wang et al., "Naturalness preserved
enhancement algorithm for non-uniform illumination images", TIP 2013).

LOE counts how often the enhancement reverses the order of two pixels' lightness, the way
the widely used ``loe.m`` computes it on images read by ``imread`` (uint8):

1. lightness L = max(R, G, B) of the input and Le of the enhanced image;
2. both maps resized with MATLAB ``imresize(L, [Md Nd])`` (bicubic, antialiased when
   shrinking) so that the shorter side is 50: r = 50 / min(H, W), Md = round(H·r),
   Nd = round(W·r); on uint8 maps imresize rounds (and clips to [0, 255]) after each of
   its two one-dimensional passes, the axis with the smaller scale first;
3. RD(x) = #{y : (L(x) ≥ L(y)) XOR (Le(x) ≥ Le(y))} over all pixels y of the small maps;
4. LOE = mean of RD over x. 0 means every order is kept; lower is better.

The double loop of step 3 is computed exactly from a joint histogram of the 8-bit maps:
#{L(y) ≤ L(x)} + #{Le(y) ≤ Le(x)} − 2·#{L(y) ≤ L(x) and Le(y) ≤ Le(x)}.
"""

from __future__ import annotations

import numpy as np

from nerco.evaluation.niqe import resize_matrix

#: The shorter side of the lightness maps that are compared.
LOE_SIDE = 50


def lightness(image: np.ndarray) -> np.ndarray:
    """max(R, G, B) of an (H, W, 3) uint8 image: (H, W) uint8."""
    return np.asarray(image).max(axis=2)


def _round_uint8(values: np.ndarray) -> np.ndarray:
    """MATLAB's conversion to uint8: round half away from zero, saturate to [0, 255]."""
    return np.clip(np.floor(values + 0.5), 0, 255)


def matlab_imresize_uint8(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """MATLAB ``imresize(uint8_image, [rows cols])`` (bicubic) of an (H, W) map.

    The axis with the smaller scale is resized first (MATLAB sorts the scales; rows first
    on a tie) and the result is rounded to integers after each pass, as imresize does for
    uint8 images. A map already of that size is returned unchanged.

    Returns:
        (rows, cols) float64 holding integers in [0, 255].
    """
    out = np.asarray(image, np.float64)
    if out.shape == (rows, cols):
        return out
    scales = (rows / out.shape[0], cols / out.shape[1])
    for axis in sorted((0, 1), key=lambda a: scales[a]):  # sorted() is stable: rows first
        matrix = resize_matrix(out.shape[axis], out_len=(rows, cols)[axis])
        out = _round_uint8(matrix @ out if axis == 0 else out @ matrix.T)
    return out


def small_size(height: int, width: int, side: int = LOE_SIDE) -> tuple[int, int]:
    """(Md, Nd) of ``loe.m``: the size with the shorter side ``side``, MATLAB rounding."""
    r = side / min(height, width)
    return int(np.floor(height * r + 0.5)), int(np.floor(width * r + 0.5))


def order_differences(light: np.ndarray, light_e: np.ndarray) -> np.ndarray:
    """RD(x) = #{y : (L(x) ≥ L(y)) XOR (Le(x) ≥ Le(y))} for every pixel x.

    Args:
        light, light_e: maps of one shape holding integers in [0, 255].

    Returns:
        RD, an int64 array of that shape, in [0, number of pixels].
    """
    a = np.asarray(light).astype(np.int64).ravel()
    b = np.asarray(light_e).astype(np.int64).ravel()
    joint = np.zeros((256, 256), np.int64)
    np.add.at(joint, (a, b), 1)
    below = joint.cumsum(0).cumsum(1)  # below[i, j] = #{y : L(y) ≤ i and Le(y) ≤ j}
    count_a = np.bincount(a, minlength=256).cumsum()  # #{y : L(y) ≤ i}
    count_b = np.bincount(b, minlength=256).cumsum()
    rd = count_a[a] + count_b[b] - 2 * below[a, b]
    return rd.reshape(np.shape(light))


def loe(inputs: np.ndarray, enhanced: np.ndarray) -> float:
    """LOE of ``enhanced`` against the low-light ``inputs`` (module docstring).

    Args:
        inputs, enhanced: (H, W, 3) uint8 RGB images of one size.

    Returns:
        The mean RD, in [0, Md·Nd]; lower is better.

    Raises:
        ValueError: the images differ in size.
    """
    if np.shape(inputs) != np.shape(enhanced):
        raise ValueError(
            f"LOE needs the input and the enhanced image at one size, got "
            f"{np.shape(inputs)[1]}x{np.shape(inputs)[0]} and "
            f"{np.shape(enhanced)[1]}x{np.shape(enhanced)[0]}"
        )
    rows, cols = small_size(*np.shape(inputs)[:2])
    light = matlab_imresize_uint8(lightness(inputs), rows, cols)
    light_e = matlab_imresize_uint8(lightness(enhanced), rows, cols)
    return float(order_differences(light, light_e).mean())
