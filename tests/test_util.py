"""Tests for nerco.util: exact tensor-to-image conversion and file helpers."""

import numpy as np
import pytest
import torch
from PIL import Image

from nerco.util import mkdirs, save_image, tensor2im


def _reference(x: torch.Tensor) -> np.ndarray:
    """The authors' formula on a (C, H, W) tensor, without any clipping."""
    return ((x.cpu().float().numpy().transpose(1, 2, 0) + 1) / 2.0 * 255.0).astype(np.uint8)


def test_endpoints_and_truncation() -> None:
    x = torch.tensor([-1.0, 1.0, 0.999, 0.0]).view(1, 1, 4).expand(3, 1, 4).clone()
    out = tensor2im(x)
    assert out.shape == (1, 4, 3)
    assert out.dtype == np.uint8
    # 0.999 -> 1.999 / 2 * 255 = 254.87 -> truncated to 254; 0 -> 127.5 -> 127
    assert out[0, :, 0].tolist() == [0, 255, 254, 127]


def test_matches_reference_formula_in_range() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(3, 8, 9, generator=gen) * 2 - 1
    np.testing.assert_array_equal(tensor2im(x), _reference(x))


def test_out_of_range_values_are_clipped_not_wrapped() -> None:
    x = torch.tensor([-1.5, 1.5]).view(1, 1, 2).expand(3, 1, 2).clone()
    assert tensor2im(x)[0, :, 0].tolist() == [0, 255]


def test_single_channel_is_tiled() -> None:
    x = torch.linspace(-1, 1, 6).view(1, 2, 3)
    out = tensor2im(x)
    assert out.shape == (2, 3, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], _reference(x)[..., 0])


def test_batch_uses_first_image() -> None:
    batch = torch.stack([torch.full((3, 2, 2), -1.0), torch.full((3, 2, 2), 1.0)])
    out = tensor2im(batch.requires_grad_())
    assert out.shape == (2, 2, 3)
    assert (out == 0).all()


@pytest.mark.parametrize("shape", [(2, 4, 4), (4, 4), (1, 2, 3, 4, 4)])
def test_bad_shapes_raise(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        tensor2im(torch.zeros(shape))


def test_save_image_roundtrip_and_parents(tmp_path) -> None:
    array = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    target = tmp_path / "a" / "b" / "img.png"
    save_image(array, target)
    with Image.open(target) as img:
        assert img.format == "PNG"
        np.testing.assert_array_equal(np.asarray(img), array)


def test_save_image_rejects_float(tmp_path) -> None:
    with pytest.raises(ValueError):
        save_image(np.zeros((2, 2, 3), dtype=np.float32), tmp_path / "x.png")


def test_mkdirs(tmp_path) -> None:
    a, b = tmp_path / "x" / "y", tmp_path / "z"
    mkdirs(a, b)
    mkdirs(a)  # existing folders are fine
    assert a.is_dir() and b.is_dir()
