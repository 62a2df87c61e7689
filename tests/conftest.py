"""Shared fixtures: synthetic weights (the vectors' rule), a tiny generated dataset."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from synth import SEED, clip_manifest, synth_state_dict  # noqa: E402

ALL_NETS = ("G_A", "G_B", "Pre", "H", "D_A", "D_B", "D_A_edge", "D_B_edge")


@pytest.fixture(scope="session")
def clip_weights_file(tmp_path_factory) -> Path:
    """The vectors' synthetic CLIP RN50, saved as a plain OpenAI-layout state_dict."""
    path = tmp_path_factory.mktemp("clip") / "clip_rn50_synth.pt"
    torch.save(synth_state_dict(clip_manifest(), SEED), path)
    return path


@pytest.fixture(scope="session")
def random_clip():
    """A randomly initialised, frozen CLIP RN50 (no weights file needed)."""
    from nerco.training.clip_term import build_clip

    torch.manual_seed(0)
    return build_clip(random_init=True)


def random_tensor(shape, seed: int) -> torch.Tensor:
    """A seeded tensor of ``shape`` uniform in [-1, 1) (an image as the networks see it)."""
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def randomise(net: torch.nn.Module, seed: int, scale: float = 0.1) -> torch.nn.Module:
    """Give every parameter, biases included (init zeroes them), seeded random values."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
    return net


def make_image(path: Path, size=(40, 32), seed=0, mode="RGB", dark=False) -> Path:
    rng = np.random.RandomState(seed)
    w, h = size
    arr = rng.randint(0, 60 if dark else 255, size=(h, w, 3)).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(arr)
    if mode != "RGB":
        image = image.convert(mode)
    image.save(path)
    return path


@pytest.fixture()
def tiny_dataset(tmp_path) -> Path:
    """trainA (dark), trainB (bright) and testA with a few odd-sized images."""
    root = tmp_path / "dataset"
    for i in range(3):
        make_image(root / "trainA" / f"low{i}.png", (36, 36), seed=i, dark=True)
    for i in range(2):
        make_image(root / "trainB" / f"normal{i}.jpg", (36, 36), seed=10 + i)
    make_image(root / "testA" / "a.png", (37, 23), seed=20, dark=True)
    return root


@pytest.fixture()
def run_script():
    """Run ``python <script> args…`` from the repository root as a user would; return it."""
    import subprocess

    def run(script: str, *args, expect: int = 0, timeout: float = 600):
        cmd = [sys.executable, str(ROOT / script), *map(str, args)]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == expect, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc

    return run
