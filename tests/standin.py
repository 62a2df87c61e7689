"""A stand-in enhancer of known behaviour and cost, and test.py run in this process.

The stand-in maps every pixel on its own (so a batch gives each image what it gets alone)
and visibly (colour channels rotated, darkened), so a result written under another image's
name, or an image left out, shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


class Standin(torch.nn.Module):
    """(N, 3, H, W) in [-1, 1] → channels (B, R, G) × 0.8; records each batch's size.

    Args:
        delay: seconds each call sleeps (a network of fixed cost that leaves the CPU free,
            as a GPU does).
        on_call: called with the number of calls so far, before the result is returned.
    """

    def __init__(self, delay: float = 0.0, on_call: Callable[[int], None] | None = None):
        super().__init__()
        self.delay, self.on_call = delay, on_call
        self.batches: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(x.shape[0])
        if self.delay:
            time.sleep(self.delay)
        if self.on_call is not None:
            self.on_call(len(self.batches))
        return x[:, [2, 0, 1]] * 0.8


def expected(pixels: np.ndarray) -> np.ndarray:
    """What the stand-in's result of an (H, W, 3) uint8 image is, as 8 bits."""
    from PIL import Image

    from data.transforms import to_tensor
    from nerco.util import tensor2im

    x = to_tensor(Image.fromarray(pixels)).unsqueeze(0)
    return tensor2im(x[:, [2, 0, 1]] * 0.8)


def write_weight_files(folder: Path, label: str = "latest") -> None:
    """Empty ``<label>_net_{G_A,Pre,H}.pth`` files: test.py dates its results against them
    (the stand-in replaces what they would load)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("G_A", "Pre", "H"):
        (folder / f"{label}_net_{name}.pth").write_bytes(b"")


def run_test_py(monkeypatch, enhancer: torch.nn.Module | None, *args) -> int:
    """``test.py args`` in this process, with ``enhancer`` in place of the checkpoint's
    (None: the real one); returns the exit status."""
    if enhancer is not None:
        import nerco.inference.enhancer

        monkeypatch.setattr(nerco.inference.enhancer, "load_enhancer", lambda *a, **k: enhancer)
    from nerco.inference.cli import main

    return main([str(a) for a in args])
