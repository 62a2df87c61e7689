"""scripts/amp_accuracy.py: bfloat16 against float32 in 8-bit levels, on files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from nerco.inference.enhancer import Enhancer
from nerco.networks.build import ENHANCER_NAMES, Architecture, build_generators
from nerco.util import tensor2im


def _photos(folder, count=2, size=(72, 56)):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        # A dark, smooth picture (low light), with a little noise.
        y, x = np.mgrid[0 : size[1], 0 : size[0]]
        base = 30 + 20 * np.sin(x / 9.0 + i)[..., None] * np.cos(y / 7.0)[..., None]
        pixels = np.clip(base + rng.normal(0, 3, (size[1], size[0], 3)), 0, 255)
        Image.fromarray(pixels.astype(np.uint8)).save(folder / f"p{i}.png")
    return folder


def test_bf16_figures_match_an_independent_computation(tmp_path, run_script):
    photos = _photos(tmp_path / "in")
    out = tmp_path / "amp.json"
    proc = run_script(
        "scripts/amp_accuracy.py", "--input", photos, "--ngf", "8", "--seed", "3", "--out", out
    )
    result = json.loads(out.read_text())
    assert [r["image"] for r in result["per_image"]] == ["p0.png", "p1.png"]
    # The same networks, built here: float32 and bfloat16 autocast, as 8-bit images.
    torch.manual_seed(3)
    nets = build_generators(Architecture(ngf=8), names=ENHANCER_NAMES)
    plain = Enhancer(nets["Pre"], nets["H"], nets["G_A"]).eval().requires_grad_(False)
    reduced = Enhancer(nets["Pre"], nets["H"], nets["G_A"], amp="bf16")
    diffs = []
    for row in result["per_image"]:
        x = torch.from_numpy(np.asarray(Image.open(photos / row["image"]), np.float32))
        x = (x.permute(2, 0, 1)[None] / 255) * 2 - 1
        with torch.no_grad():
            d = np.abs(tensor2im(plain(x)).astype(int) - tensor2im(reduced(x)).astype(int))
        diffs.append(d)
        assert row["mean_levels"] == pytest.approx(d.mean(), abs=1e-6)
        assert row["max_levels"] == d.max()
    every = np.concatenate([d.ravel() for d in diffs])
    assert result["overall"]["mean_levels"] == pytest.approx(every.mean(), abs=1e-6)
    # bfloat16 changes some values, and not by much. (Untrained networks magnify rounding:
    # ~2 levels here, 0.14 with the demo's trained weights; the bound is a sanity check.)
    assert 0 < result["overall"]["changed"] and result["overall"]["mean_levels"] < 8
    assert "bf16 vs float32 over 2 images" in proc.stdout


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--input", "missing_folder"), "--input missing_folder does not exist"),
        (("--amp", "fp16"), "--amp fp16 needs --device cuda"),
        (("--checkpoint_dir", "no_such_dir"), "checkpoint folder no_such_dir does not exist"),
    ],
)
def test_bad_input_is_one_line(tmp_path, run_script, extra, message):
    photos = _photos(tmp_path / "in", count=1)
    proc = run_script("scripts/amp_accuracy.py", "--input", photos, "--ngf", "4", *extra, expect=1)
    assert message in proc.stderr and "Traceback" not in proc.stderr
