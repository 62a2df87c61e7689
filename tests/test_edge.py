"""``--edge_filter``: each filter's kernels on a hand-made image, and the release's default.

(The operator's random projection and its numpy reference: tests/test_networks.py, §5.)
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import random_tensor

from nerco.networks.edge import EDGE_FILTERS, EdgeOperator

#: A 3×3 grey image whose nine values are distinct powers of two, so that a kernel weight
#: on the wrong neighbour (or a swapped sign, or a transposed kernel) changes the result.
GREY = np.array([[1.0, 2.0, 4.0], [8.0, 16.0, 32.0], [64.0, 128.0, 256.0]])
#: Magnitudes worked out by hand from GREY with zero padding, before sqrt(· + 1e-6):
#: (sum of the squared responses at the centre, at the top-left corner).
BY_HAND = {
    # centre: v = 128 − 2, h = 32 − 8; corner: v = 8 − 0, h = 2 − 0
    "gradient": (126**2 + 24**2, 8**2 + 2**2),
    # centre: v = (64 + 2·128 + 256) − (1 + 2·2 + 4), h = (4 + 2·32 + 256) − (1 + 2·8 + 64);
    # corner: v = 2·8 + 16, h = 2·2 + 16
    "sobel": (567**2 + 243**2, 32**2 + 20**2),
    # centre: 2 + 8 + 32 + 128 − 4·16; corner: 2 + 8 − 4·1
    "laplacian": (106**2, 6**2),
}


def _image_with_grey(op: EdgeOperator, grey: np.ndarray) -> torch.Tensor:
    """(1, 3, h, w) float64 image, the same value in R, G and B, whose grey image is ``grey``."""
    scale = float(op.grey.double().sum())
    plane = torch.from_numpy(grey / scale)
    return plane.expand(1, 3, *grey.shape).clone()


@pytest.mark.parametrize("name", sorted(BY_HAND))
def test_each_filter_on_a_hand_made_image(name):
    op = EdgeOperator(random_projection=False, edge_filter=name)
    x = _image_with_grey(op, GREY)
    mag = op.magnitude(x)[0, 0]
    centre, corner = BY_HAND[name]
    assert mag[1, 1].item() == pytest.approx(math.sqrt(centre + 1e-6), rel=1e-9)
    assert mag[0, 0].item() == pytest.approx(math.sqrt(corner + 1e-6), rel=1e-9)
    # The paper objective's operator: 4 × the magnitude in all three channels.
    assert torch.equal(op(x), 4 * mag.expand(1, 3, 3, 3))


def _numpy_responses(grey: np.ndarray, name: str) -> list[np.ndarray]:
    """Each filter written out with shifted copies of the zero-padded image (not conv2d)."""
    p = np.pad(grey, 1)

    def at(dy, dx):  # the neighbour at offset (dy, dx) of every pixel
        return p[1 + dy : p.shape[0] - 1 + dy, 1 + dx : p.shape[1] - 1 + dx]

    if name == "gradient":
        return [at(1, 0) - at(-1, 0), at(0, 1) - at(0, -1)]
    if name == "sobel":
        v = (at(1, -1) + 2 * at(1, 0) + at(1, 1)) - (at(-1, -1) + 2 * at(-1, 0) + at(-1, 1))
        h = (at(-1, 1) + 2 * at(0, 1) + at(1, 1)) - (at(-1, -1) + 2 * at(0, -1) + at(1, -1))
        return [v, h]
    return [at(-1, 0) + at(1, 0) + at(0, -1) + at(0, 1) - 4 * at(0, 0)]


@pytest.mark.parametrize("name", sorted(EDGE_FILTERS))
def test_each_filter_matches_shifted_differences_everywhere(name):
    """A non-square image of distinct values: every pixel, borders included."""
    grey = np.random.RandomState(3).permutation(35).reshape(5, 7).astype(np.float64)
    op = EdgeOperator(random_projection=False, edge_filter=name)
    want = np.sqrt(sum(r**2 for r in _numpy_responses(grey, name)) + 1e-6)
    np.testing.assert_allclose(
        op.magnitude(_image_with_grey(op, grey))[0, 0].numpy(), want, rtol=1e-10
    )


def _release_edges(x: torch.Tensor) -> torch.Tensor:
    """The released operator's magnitude, as it was written before the filter table."""
    grey_w = torch.tensor((65.738, 129.057, 25.064)).view(1, 3, 1, 1) / 256
    v = torch.tensor([[0.0, -1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    h = torch.tensor([[0.0, 0.0, 0.0], [-1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]).view(1, 1, 3, 3)
    grey = (x * grey_w).sum(dim=1, keepdim=True)
    dv, dh = F.conv2d(grey, v, padding=1), F.conv2d(grey, h, padding=1)
    return torch.sqrt(dv.pow(2) + dh.pow(2) + 1e-6)


def test_default_is_the_release_gradient_bit_for_bit():
    x = random_tensor((2, 3, 17, 23), seed=21)
    default = EdgeOperator(random_projection=False)
    assert default.edge_filter == "gradient"
    assert torch.equal(default.magnitude(x), _release_edges(x))
    assert torch.equal(default(x), _release_edges(x).expand(-1, 3, -1, -1) * 4)
    # The released projection draws from the global RNG as before: same seed, same map.
    torch.manual_seed(4)
    projected = EdgeOperator(random_projection=True)(x)
    torch.manual_seed(4)
    conv = torch.nn.Conv2d(1, 3, kernel_size=1)
    assert torch.equal(projected, conv(_release_edges(x)) * 4)


def test_filters_differ_and_unknown_names_are_refused():
    x = random_tensor((1, 3, 8, 8), seed=22)
    maps = {name: EdgeOperator(False, name).magnitude(x) for name in EDGE_FILTERS}
    assert not torch.allclose(maps["gradient"], maps["sobel"])
    assert not torch.allclose(maps["gradient"], maps["laplacian"])
    with pytest.raises(ValueError, match="edge_filter must be one of"):
        EdgeOperator(edge_filter="prewitt")
