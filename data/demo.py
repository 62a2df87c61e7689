"""A small unpaired demo dataset, synthesised offline from photographs that packages ship.

    python -m nerco.demo_data --out dataset/demo [--seed 0] [--force]

Sources: six colour photographs bundled in the wheels of scikit-image (``skimage.data``:
astronaut, rocket, coffee, stereo motorcycle (left view), chelsea) and matplotlib
(``grace_hopper.jpg`` via ``matplotlib.cbook.get_sample_data``). None needs a download.
They are split three ways so that no photograph is seen twice:

=========  ======================  ===========================================
folder     photographs             content
=========  ======================  ===========================================
trainA     astronaut, rocket       random crops, synthetic low light
trainB     coffee, motorcycle      random crops, normal light (unpaired)
testA      chelsea, grace_hopper   random crops, synthetic low light
testB      chelsea, grace_hopper   the same crops at normal light (ground truth)
=========  ======================  ===========================================

Each photograph is first resized (Lanczos) so that its shorter side is ``photo_side``;
every image is then a random square crop of it with a random horizontal flip.

Low light is the raw-sensor model of :mod:`data.low_light` (linearise, expose by ``k``,
Poisson shot noise for a full-well capacity ``FWC``, Gaussian read noise ``σ_r``, back to
sRGB, 8 bits). ``k``, ``FWC`` and ``σ_r`` are drawn per image (``k`` and ``FWC``
log-uniformly) from ranges below. Every random draw comes from a generator seeded with ``(seed,
crc32(file name))``, so a fixed seed gives identical PNG files, byte for byte; ``manifest.json``
records every parameter and each file's SHA-256.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from data.demo_manifest import (
    FORMAT_VERSION,
    GENERATOR,
    MANIFEST,
    SPLIT_FOLDERS,
    check_replaceable,
    is_complete,
    remove_own,
)
from data.low_light import synthesize_low_light
from nerco.runtime import UserError, program_name

logger = logging.getLogger(__name__)


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        image = getattr(skimage.data, name)()
        return image[0] if name == "stereo_motorcycle" else image  # the left view

    return load


def _grace_hopper() -> np.ndarray:
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        return np.asarray(Image.open(io.BytesIO(handle.read())).convert("RGB"))


#: Photograph name → (loader returning (H, W, 3) uint8 sRGB, where it comes from).
PHOTOS: dict[str, tuple[Callable[[], np.ndarray], str]] = {
    "astronaut": (_skimage("astronaut"), "skimage.data.astronaut()"),
    "rocket": (_skimage("rocket"), "skimage.data.rocket()"),
    "coffee": (_skimage("coffee"), "skimage.data.coffee()"),
    "motorcycle": (_skimage("stereo_motorcycle"), "skimage.data.stereo_motorcycle()[0]"),
    "chelsea": (_skimage("chelsea"), "skimage.data.chelsea()"),
    "grace_hopper": (_grace_hopper, "matplotlib.cbook.get_sample_data('grace_hopper.jpg')"),
}


@dataclass(frozen=True)
class DemoSettings:
    """Everything that determines the dataset's bytes (recorded in the manifest)."""

    seed: int = 0
    size: int = 128  # side of the training crops
    test_size: int = 192  # side of the test crops
    photo_side: int = 256  # shorter side of each photo before cropping
    train_per_photo: int = 16
    test_per_photo: int = 4
    exposure: tuple[float, float] = (0.05, 0.2)  # k, log-uniform
    full_well: tuple[float, float] = (1000.0, 4000.0)  # FWC in electrons, log-uniform
    read_noise: tuple[float, float] = (1.0, 4.0)  # σ_r in electrons, uniform
    train_low: tuple[str, ...] = ("astronaut", "rocket")
    train_normal: tuple[str, ...] = ("coffee", "motorcycle")
    test: tuple[str, ...] = ("chelsea", "grace_hopper")


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]))))


def _resize_short_side(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = side / min(h, w)
    size = (max(side, round(w * scale)), max(side, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.LANCZOS))


def _random_crop(photo: np.ndarray, size: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    h, w = photo.shape[:2]
    if size > min(h, w):
        raise UserError(
            f"crop size {size} is larger than the resized photo ({w}x{h}): "
            f"use a smaller --size/--test_size or a larger --photo_side"
        )
    y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    flip = bool(rng.random() < 0.5)
    crop = photo[y : y + size, x : x + size]
    return (crop[:, ::-1] if flip else crop), {"crop_xywh": [x, y, size, size], "flip": flip}


def _write_png(image: np.ndarray, path: str) -> str:
    """Save ``image`` as PNG and return its SHA-256."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG")
    data = buffer.getvalue()
    with open(path, "wb") as handle:
        handle.write(data)
    return hashlib.sha256(data).hexdigest()


def _plan(settings: DemoSettings) -> list[tuple[str, str, int, bool]]:
    """(split, photo, index, dark) for every image, dark meaning synthetic low light."""
    plan = []
    for split, photos, count, dark in (
        ("trainA", settings.train_low, settings.train_per_photo, True),
        ("trainB", settings.train_normal, settings.train_per_photo, False),
        ("test", settings.test, settings.test_per_photo, True),
    ):
        for photo in photos:
            if photo not in PHOTOS:
                raise UserError(f"unknown demo photo {photo!r}; known: {', '.join(PHOTOS)}")
            plan += [(split, photo, i, dark) for i in range(count)]
    return plan


def _build(settings: DemoSettings, out: str) -> list[dict]:
    """Write every image under ``out``; return the manifest's image records."""
    for folder in SPLIT_FOLDERS:
        os.makedirs(os.path.join(out, folder), exist_ok=True)
    photos = {
        name: _resize_short_side(PHOTOS[name][0](), settings.photo_side)
        for name in {p for _, p, _, _ in _plan(settings)}
    }
    records = []
    for split, photo, index, dark in _plan(settings):
        stem = f"{photo}_{index:02d}"
        name = f"{split}/{stem}"
        rng = np.random.default_rng([settings.seed, zlib.crc32(name.encode())])
        size = settings.size if split.startswith("train") else settings.test_size
        crop, where = _random_crop(photos[photo], size, rng)
        record = {"photo": photo, "source": PHOTOS[photo][1], **where}
        if dark:
            params = {
                "exposure": _log_uniform(rng, settings.exposure),
                "full_well": _log_uniform(rng, settings.full_well),
                "read_noise": float(rng.uniform(*settings.read_noise)),
            }
            low = synthesize_low_light(crop, rng=rng, **params)
            folder = "trainA" if split == "trainA" else "testA"
            digest = _write_png(low, os.path.join(out, folder, stem + ".png"))
            records.append({"file": f"{folder}/{stem}.png", **record, **params, "sha256": digest})
        if not dark or split == "test":
            folder = "trainB" if split == "trainB" else "testB"
            digest = _write_png(crop, os.path.join(out, folder, stem + ".png"))
            records.append({"file": f"{folder}/{stem}.png", **record, "sha256": digest})
    return records


def _settings_json(settings: DemoSettings) -> dict:
    return json.loads(json.dumps(asdict(settings)))  # tuples → lists, as read back


def build_demo_dataset(
    out: str | os.PathLike, settings: DemoSettings = DemoSettings(), force: bool = False
) -> bool:
    """Build the dataset in ``out`` (built in a temporary folder, then moved into place).

    Returns False when ``out`` was already complete for these settings (nothing written).
    ``force`` rebuilds an existing demo dataset (other settings, or complete); it never
    removes a folder holding anything this module did not write (see
    :func:`data.demo_manifest.foreign_content`).

    Raises:
        UserError: ``out`` holds something else than this module's output, or a demo
            dataset with other settings and ``force`` is not set.
    """
    out = os.fspath(out)
    if not force and is_complete(out, _settings_json(settings)):
        logger.info("%s is complete for these settings: nothing to do (--force rebuilds)", out)
        return False
    check_replaceable(out, force)
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".demo-", dir=parent)
    try:
        records = _build(settings, staging)
        manifest = {
            "generator": GENERATOR,
            "version": FORMAT_VERSION,
            "settings": _settings_json(settings),
            "images": records,
        }
        with open(os.path.join(staging, MANIFEST), "w") as handle:
            json.dump(manifest, handle, indent=1)
            handle.write("\n")
        if os.path.isdir(out) and os.listdir(out):
            remove_own(out)  # checks again: it may have changed while building
        elif os.path.isdir(out):
            os.rmdir(out)
        os.replace(staging, out)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging)
    counts = {f: len(os.listdir(os.path.join(out, f))) for f in SPLIT_FOLDERS}
    logger.info("demo dataset in %s: %s", out, ", ".join(f"{k} {v}" for k, v in counts.items()))
    return True


def main(argv: list[str] | None = None) -> int:
    defaults = DemoSettings()
    parser = argparse.ArgumentParser(
        prog=program_name("python -m nerco.demo_data"),
        description="Build the offline demo dataset (trainA/trainB/testA/testB) from photos "
        "shipped with scikit-image and matplotlib.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--out", default="dataset/demo", help="output folder")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed")
    parser.add_argument("--size", type=int, default=defaults.size, help="training crop side")
    parser.add_argument("--test_size", type=int, default=defaults.test_size, help="test crop side")
    parser.add_argument(
        "--train_per_photo",
        type=int,
        default=defaults.train_per_photo,
        help="training crops per photograph",
    )
    parser.add_argument(
        "--test_per_photo",
        type=int,
        default=defaults.test_per_photo,
        help="test crops per photograph",
    )
    parser.add_argument(
        "--exposure",
        type=float,
        nargs=2,
        default=defaults.exposure,
        metavar=("MIN", "MAX"),
        help="range of the exposure factor k",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="rebuild a demo dataset (complete, or with other settings); a "
        "folder holding anything else is never removed",
    )
    args = parser.parse_args(argv)
    from nerco.runtime import run_command

    def build() -> None:
        if not 0 < args.exposure[0] <= args.exposure[1]:
            raise UserError("--exposure MIN MAX needs 0 < MIN <= MAX")
        settings = DemoSettings(
            seed=args.seed,
            size=args.size,
            test_size=args.test_size,
            train_per_photo=args.train_per_photo,
            test_per_photo=args.test_per_photo,
            exposure=tuple(args.exposure),
        )
        build_demo_dataset(args.out, settings, force=args.force)

    return run_command(build, logger.name)
