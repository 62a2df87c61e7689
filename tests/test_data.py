"""Tests for the data package: listing, decoding, preprocessing and datasets."""

from __future__ import annotations

import logging
import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from data import (
    SingleImageDataset,
    UnalignedDataset,
    get_transform,
    is_image_file,
    load_rgb,
    make_dataset,
    to_tensor,
)
from nerco.runtime import UserError


def _save_rgb(path, width: int, height: int, value: int | None = None) -> str:
    """Write a small RGB image (random unless ``value`` is given) and return its path."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if value is None:
        pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    else:
        pixels = np.full((height, width, 3), value, dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return str(path)


# ----------------------------------------------------------------------------- listing


def test_is_image_file_any_case():
    for name in ["a.jpg", "b.JPG", "c.Png", "d.TIFF", "e.tif", "f.jpeg", "g.BMP", "h.ppm"]:
        assert is_image_file(name), name
    for name in ["a.txt", "b.gif", "jpg", "c.png.bak"]:
        assert not is_image_file(name), name


def test_make_dataset_recursive_sorted_and_filtered(tmp_path):
    root = tmp_path / "imgs"
    for rel in ["b.PNG", "a.jpg", "sub/z.Tiff", "sub/deeper/c.JPEG", "A/x.bmp"]:
        _save_rgb(root / rel, 4, 4)
    (root / "notes.txt").write_text("not an image")
    (root / "sub" / "data.npy").write_bytes(b"\x00")
    paths = make_dataset(root)
    assert paths == sorted(paths)
    assert [os.path.relpath(p, root) for p in paths] == sorted(
        os.path.join(*r.split("/"))
        for r in ["b.PNG", "a.jpg", "sub/z.Tiff", "sub/deeper/c.JPEG", "A/x.bmp"]
    )
    assert make_dataset(root, max_dataset_size=2) == paths[:2]


def test_make_dataset_missing_and_empty(tmp_path):
    with pytest.raises(UserError, match="nowhere"):
        make_dataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    assert make_dataset(tmp_path / "empty") == []


# ----------------------------------------------------------------------------- loading


def _palette_image(transparent: bool) -> Image.Image:
    im = Image.new("P", (6, 5))
    im.putpalette([10, 20, 30, 200, 100, 50] + [0, 0, 0] * 254)
    im.putpixel((1, 1), 1)
    if transparent:
        im.info["transparency"] = 0
    return im


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "P_transparent", "CMYK", "I;16"])
def test_load_rgb_modes(tmp_path, mode):
    path = str(tmp_path / ("img.tif" if mode == "CMYK" else "img.png"))
    if mode.startswith("P"):
        _palette_image(mode == "P_transparent").save(path)
    elif mode == "I;16":
        Image.fromarray(np.full((5, 6), 32768, dtype=np.uint16)).save(path)
    else:
        Image.new(mode, (6, 5), 128 if mode == "L" else None).save(path)
    with Image.open(path) as check:
        assert check.mode == mode.split("_")[0]
    img = load_rgb(path)
    assert img.mode == "RGB" and img.size == (6, 5)
    if mode == "I;16":
        assert np.abs(np.asarray(img).astype(int) - 128).max() <= 1
    if mode.startswith("P"):
        assert img.getpixel((1, 1)) == (200, 100, 50)
        assert img.getpixel((0, 0)) == (10, 20, 30)


def test_load_rgb_float_mode(tmp_path):
    path = str(tmp_path / "f.tif")
    Image.fromarray(np.full((3, 4), 0.5, dtype=np.float32)).save(path)
    assert np.asarray(load_rgb(path)).max() == 128


def test_load_rgb_corrupt_file(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"definitely not a png")
    with pytest.raises(UserError, match="broken.png") as info:
        load_rgb(path)
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------- transforms


@pytest.mark.parametrize(
    "preprocess, expected",
    [
        ("resize_and_crop", (3, 16, 16)),
        ("crop", (3, 16, 16)),
        ("scale_width", (3, int(max(24 * 25 / 33, 16)), 24)),
        ("scale_width_and_crop", (3, 16, 16)),
        ("none", (3, int(round(25 / 4) * 4), int(round(33 / 4) * 4))),
    ],
)
def test_get_transform_shapes(preprocess, expected):
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (25, 33, 3), dtype=np.uint8))
    out = get_transform(preprocess=preprocess, load_size=24, crop_size=16)(img)
    assert tuple(out.shape) == expected
    assert out.dtype == torch.float32 and out.min() >= -1 and out.max() <= 1


def _gradient(width: int, height: int) -> Image.Image:
    """Every pixel different: red grows to the right, green downwards."""
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, 255 - x], -1).round().astype(np.uint8))


@pytest.mark.parametrize(
    "size, expected",
    [
        ((60, 40), (48, 32)),  # width to 48, height kept in proportion
        ((30, 90), (48, 144)),  # a tall image grows
        ((96, 20), (48, 24)),  # proportion would give 10: crop_size is the least height
        ((48, 30), (48, 30)),  # already 48 wide and tall enough: untouched
    ],
)
def test_scale_width_scales_the_whole_image_to_the_width(size, expected):
    img = _gradient(*size)
    out = get_transform(
        preprocess="scale_width", load_size=48, crop_size=24, no_flip=True, convert=False
    )(img)
    assert out.size == expected
    want = img if expected == size else img.resize(expected, Image.BICUBIC)
    assert np.array_equal(np.asarray(out), np.asarray(want))  # scaled, not cropped


def test_scale_width_and_crop_cuts_from_the_width_scaled_image():
    img = _gradient(90, 60)
    scaled = np.asarray(img.resize((48, 32), Image.BICUBIC))
    transform = get_transform(
        preprocess="scale_width_and_crop", load_size=48, crop_size=24, no_flip=True, convert=False
    )
    corners = set()
    for seed in range(6):
        torch.manual_seed(seed)
        crop = np.asarray(transform(img))
        assert crop.shape == (24, 24, 3)
        where = [
            (top, left)
            for top in range(32 - 24 + 1)
            for left in range(48 - 24 + 1)
            if np.array_equal(scaled[top : top + 24, left : left + 24], crop)
        ]
        assert len(where) == 1, seed
        corners |= set(where)
    assert len(corners) > 1  # a random window


def test_preprocessed_size_is_what_the_transforms_give():
    from data.sizes import PREPROCESS_CHOICES, preprocessed_size

    sizes = [(33, 25), (25, 33), (48, 20), (48, 60), (100, 30), (37, 23), (64, 64), (5, 7)]
    for preprocess in PREPROCESS_CHOICES:
        transform = get_transform(
            preprocess=preprocess, load_size=48, crop_size=24, no_flip=True, convert=False
        )
        for size in sizes:
            out = transform(Image.new("RGB", size))
            assert out.size == preprocessed_size(preprocess, *size, 48, 24), (preprocess, size)


def test_unaligned_scale_width_items(tmp_path):
    _save_rgb(tmp_path / "trainA" / "a.png", 60, 40)
    _save_rgb(tmp_path / "trainB" / "b.png", 90, 60)
    ds = UnalignedDataset(tmp_path, preprocess="scale_width", load_size=48, crop_size=24)
    assert tuple(ds[0]["A"].shape) == tuple(ds[0]["B"].shape) == (3, 32, 48)
    ds = UnalignedDataset(tmp_path, preprocess="scale_width_and_crop", load_size=48, crop_size=24)
    assert tuple(ds[0]["A"].shape) == tuple(ds[0]["B"].shape) == (3, 24, 24)


def test_get_transform_invalid_preprocess():
    with pytest.raises(UserError, match="--preprocess"):
        get_transform(preprocess="resize")


def test_get_transform_grayscale_and_pickle():
    transform = get_transform(load_size=8, crop_size=8, grayscale=True)
    out = pickle.loads(pickle.dumps(transform))(Image.new("RGB", (10, 12), (255, 0, 0)))
    assert tuple(out.shape) == (1, 8, 8)


def test_flip_and_no_flip():
    pixels = np.zeros((4, 8, 3), dtype=np.uint8)
    pixels[:, :4] = 255  # left half white
    img = Image.fromarray(pixels)
    kept = get_transform(preprocess="none", no_flip=True)(img)
    assert (kept[:, :, :4] == 1).all() and (kept[:, :, 4:] == -1).all()
    flipping = get_transform(preprocess="none")
    outs = [flipping(img) for _ in range(40)]
    assert any(torch.equal(o, kept) for o in outs)
    assert any(torch.equal(o, kept.flip(-1)) for o in outs)


def test_to_tensor_exact_values():
    pixels = np.array([[[255, 0, 51]]], dtype=np.uint8)
    out = to_tensor(Image.fromarray(pixels))
    assert tuple(out.shape) == (3, 1, 1)
    assert out[0, 0, 0].item() == 1.0
    assert out[1, 0, 0].item() == -1.0
    assert out[2, 0, 0].item() == pytest.approx(51 / 255 * 2 - 1, abs=1e-6)


def test_small_image_scaled_up_before_crop(caplog):
    img = Image.new("RGB", (10, 6), (40, 80, 120))
    with caplog.at_level(logging.WARNING, logger="data.transforms"):
        out = get_transform(preprocess="crop", crop_size=12)(img)
    assert tuple(out.shape) == (3, 12, 12)
    assert any("10x6" in r.getMessage() for r in caplog.records)


def test_none_rounds_to_multiple_of_four(caplog):
    img = Image.new("RGB", (66, 50))
    with caplog.at_level(logging.WARNING, logger="data.transforms"):
        out = get_transform(preprocess="none", convert=False)(img)
    assert out.size == (int(round(66 / 4) * 4), int(round(50 / 4) * 4)) == (64, 48)
    assert caplog.records
    exact = Image.new("RGB", (68, 52))
    assert get_transform(preprocess="none", convert=False, no_flip=True)(exact) is exact


def test_seeded_pipeline_matches_plain_torchvision():
    from torchvision import transforms

    img = Image.fromarray(np.random.default_rng(2).integers(0, 256, (20, 30, 3), dtype=np.uint8))
    reference = transforms.Compose(
        [
            transforms.Resize([24, 24], Image.BICUBIC),
            transforms.RandomCrop(16),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        ]
    )
    ours = get_transform(load_size=24, crop_size=16)
    torch.manual_seed(3)
    expected = [reference(img) for _ in range(4)]
    torch.manual_seed(3)
    assert all(torch.equal(ours(img), e) for e in expected)


# ----------------------------------------------------------------------------- datasets


def _make_unaligned(root, n_a: int, n_b: int) -> None:
    for i in range(n_a):
        _save_rgb(root / "trainA" / f"a{i}.png", 10, 8, value=10 * i)
    for i in range(n_b):
        _save_rgb(root / "trainB" / f"b{i}.png", 12, 9, value=200 + 10 * i)


def test_unaligned_len_pairing_and_items(tmp_path):
    _make_unaligned(tmp_path, 3, 5)
    ds = UnalignedDataset(tmp_path, preprocess="crop", crop_size=8, serial_batches=True)
    assert len(ds) == 5
    item = ds[4]
    assert os.path.basename(item["A_paths"]) == "a1.png"
    assert os.path.basename(item["B_paths"]) == "b4.png"
    assert tuple(item["A"].shape) == tuple(item["B"].shape) == (3, 8, 8)
    assert item["A"].min() >= -1 and item["B"].max() <= 1

    random_ds = UnalignedDataset(tmp_path, preprocess="crop", crop_size=8)
    names = {os.path.basename(random_ds[0]["B_paths"]) for _ in range(30)}
    assert len(names) > 1 and names <= {f"b{i}.png" for i in range(5)}


def test_unaligned_btoa_swaps_folders(tmp_path):
    _make_unaligned(tmp_path, 3, 5)
    ds = UnalignedDataset(
        tmp_path, direction="BtoA", preprocess="none", no_flip=True, serial_batches=True
    )
    item = ds[0]
    assert "trainB" in item["A_paths"] and "trainA" in item["B_paths"]
    assert ds.A_size == 5 and ds.B_size == 3


def test_unaligned_errors_name_the_folder(tmp_path):
    with pytest.raises(UserError, match="missing_root"):
        UnalignedDataset(tmp_path / "missing_root")
    (tmp_path / "trainB").mkdir()
    with pytest.raises(UserError, match="trainA"):
        UnalignedDataset(tmp_path)
    _save_rgb(tmp_path / "trainA" / "a.png", 4, 4)
    (tmp_path / "trainB" / "readme.txt").write_text("no images here")
    with pytest.raises(UserError, match="trainB") as info:
        UnalignedDataset(tmp_path)
    assert ".png" in str(info.value)
    with pytest.raises(UserError, match="--direction"):
        UnalignedDataset(tmp_path, direction="sideways")


def test_single_dataset_keeps_size(tmp_path):
    _save_rgb(tmp_path / "test" / "img.JPG", 37, 23)
    ds = SingleImageDataset.from_folder(tmp_path / "test")
    assert len(ds) == 1
    item = ds[0]
    assert tuple(item["A"].shape) == (3, 23, 37)
    assert item["A_paths"].endswith("img.JPG")
    assert item["A"].min() >= -1 and item["A"].max() <= 1


def test_single_dataset_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="empty"):
        SingleImageDataset.from_folder(tmp_path / "empty")
    with pytest.raises(UserError, match="absent"):
        SingleImageDataset.from_folder(tmp_path / "absent")
