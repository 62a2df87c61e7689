"""nerco.evaluation.loe: the lightness order error against loe.m's double loop."""

from __future__ import annotations

import numpy as np
import pytest
from test_evaluate import _matlab_resize_brute

from nerco.evaluation import loe
from nerco.evaluation.niqe import resize_matrix


def _image(shape, seed, high=256):
    return np.random.RandomState(seed).randint(0, high, size=(*shape, 3)).astype(np.uint8)


def _loe_loop(light, light_e):
    """loe.m's loop: for every pixel x, count the y where the two orders disagree."""
    rd = np.zeros(light.shape)
    for i in range(light.shape[0]):
        for j in range(light.shape[1]):
            rd[i, j] = np.sum((light[i, j] >= light) ^ (light_e[i, j] >= light_e))
    return rd.mean()


def _uint8_pass(matrix, image, axis):
    """One imresize pass on a uint8 map: weights, then round half up and saturate."""
    out = matrix @ image if axis == 0 else image @ matrix.T
    return np.clip(np.floor(out + 0.5), 0, 255)


@pytest.mark.parametrize("n, out_len", [(120, 50), (13, 50), (77, 89), (90, 50)])
def test_resize_to_a_given_length_is_matlab_imresize(n, out_len):
    np.testing.assert_allclose(
        resize_matrix(n, out_len=out_len), _matlab_resize_brute(n, None, out_len), atol=1e-12
    )


def test_order_differences_is_the_pairwise_count():
    rng = np.random.RandomState(1)
    light, light_e = rng.randint(0, 6, (5, 6)), rng.randint(0, 6, (5, 6))  # many ties
    flat, flat_e = light.ravel(), light_e.ravel()
    expected = [
        sum((flat[x] >= flat[y]) != (flat_e[x] >= flat_e[y]) for y in range(30)) for x in range(30)
    ]
    assert loe.order_differences(light, light_e).ravel().tolist() == expected
    assert loe.order_differences(light, light).max() == 0


@pytest.mark.parametrize("shape", [(50, 70), (64, 50)])
def test_loe_without_resize_equals_the_loop(shape):
    """Shorter side already 50: the lightness maps are compared as they are."""
    low, out = _image(shape, 2, high=60), _image(shape, 3)
    expected = _loe_loop(low.max(2).astype(float), out.max(2).astype(float))
    assert loe.loe(low, out) == expected
    assert 0 < expected < shape[0] * shape[1]
    assert loe.loe(low, low) == 0.0


@pytest.mark.parametrize(
    "shape, small, first_axis",
    [
        ((13, 17), (50, 65), 1),  # upscaled; 65/17 = 3.824 < 50/13 = 3.846: columns first
        ((120, 90), (67, 50), 1),  # 50/90 = 0.5556 < 67/120 = 0.5583: columns first
        ((90, 120), (50, 67), 0),  # rows first
    ],
)
def test_loe_after_resize_equals_the_loop(shape, small, first_axis):
    low, out = _image(shape, 4, high=80), _image(shape, 5)
    assert loe.small_size(*shape) == small
    maps = []
    for image in (low, out):
        light = image.max(2).astype(float)
        matrices = [_matlab_resize_brute(shape[a], None, small[a]) for a in (0, 1)]
        for axis in (first_axis, 1 - first_axis):
            light = _uint8_pass(matrices[axis], light, axis)
        maps.append(light)
    assert loe.loe(low, out) == pytest.approx(_loe_loop(*maps), abs=1e-12)
    with pytest.raises(ValueError, match="one size"):
        loe.loe(low, out[1:])
