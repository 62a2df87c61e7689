"""data.demo: byte-for-byte reproducible, the promised layout, physically plausible
low light (darker by the exposure factor in linear light, with signal-dependent noise)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import socket
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image

from data import demo as demo_data
from data.demo import DemoSettings, build_demo_dataset
from data.low_light import linear_to_srgb, srgb_to_linear, synthesize_low_light
from nerco.runtime import UserError

#: Small but complete: every split, every photograph.
SMALL = DemoSettings(size=64, test_size=96, train_per_photo=3, test_per_photo=2)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """The photographs ship with the packages: any socket use is a failure."""

    def refuse(*args, **kwargs):
        raise AssertionError("demo_data tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _hashes(root) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo"
    assert build_demo_dataset(out, SMALL)
    return out


def test_every_photo_loads_offline():
    for name, (load, _) in demo_data.PHOTOS.items():
        image = load()
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, name
        assert min(image.shape[:2]) >= SMALL.photo_side, name


def test_layout_and_manifest(built):
    files = {f: sorted(p.name for p in (built / f).iterdir()) for f in demo_data.SPLIT_FOLDERS}
    assert len(files["trainA"]) == 3 * len(SMALL.train_low)
    assert len(files["trainB"]) == 3 * len(SMALL.train_normal)
    assert files["testA"] == files["testB"] and len(files["testA"]) == 2 * len(SMALL.test)
    # No photograph is shared between trainA, trainB and the test set.
    photos = {f: {n.rsplit("_", 1)[0] for n in names} for f, names in files.items()}
    assert not photos["trainA"] & photos["trainB"]
    assert not (photos["trainA"] | photos["trainB"]) & photos["testA"]
    for name in files["trainA"]:
        assert Image.open(built / "trainA" / name).size == (64, 64)
    for name in files["testA"]:
        low, gt = Image.open(built / "testA" / name), Image.open(built / "testB" / name)
        assert low.size == gt.size == (96, 96) and low.mode == gt.mode == "RGB"
    manifest = json.loads((built / "manifest.json").read_text())
    assert manifest["settings"]["size"] == 64
    records = {r["file"]: r for r in manifest["images"]}
    assert set(records) == {f"{f}/{n}" for f, names in files.items() for n in names}
    for path, record in records.items():
        assert hashlib.sha256((built / path).read_bytes()).hexdigest() == record["sha256"]
        dark = path.startswith(("trainA", "testA"))
        assert ("exposure" in record) == dark
        if dark:
            assert SMALL.exposure[0] <= record["exposure"] <= SMALL.exposure[1]
            assert SMALL.full_well[0] <= record["full_well"] <= SMALL.full_well[1]
            assert SMALL.read_noise[0] <= record["read_noise"] <= SMALL.read_noise[1]


def test_byte_for_byte_reproducible(built, tmp_path):
    again = tmp_path / "again"
    build_demo_dataset(again, SMALL)
    assert _hashes(again) == _hashes(built)
    other = tmp_path / "other_seed"
    build_demo_dataset(other, dataclasses.replace(SMALL, seed=1))
    assert _hashes(other)["testA/chelsea_00.png"] != _hashes(built)["testA/chelsea_00.png"]


def test_low_light_is_darker_by_the_exposure_factor(built):
    manifest = json.loads((built / "manifest.json").read_text())
    for record in manifest["images"]:
        if not record["file"].startswith("testA"):
            continue
        low = srgb_to_linear(np.asarray(Image.open(built / record["file"])) / 255.0)
        gt_path = built / record["file"].replace("testA", "testB")
        gt = srgb_to_linear(np.asarray(Image.open(gt_path)) / 255.0)
        ratio = low.mean() / gt.mean()
        assert ratio == pytest.approx(record["exposure"], rel=0.08), record["file"]


def test_noise_is_shot_plus_read_noise():
    """On a flat grey patch the variance is (k·L·FWC + σ_r²)/FWC² in linear light."""
    rng = np.random.default_rng(0)
    exposure, full_well, read_noise = 0.1, 1000.0, 3.0
    for level in (64, 200):
        flat = np.full((256, 256, 3), level, np.uint8)
        low = synthesize_low_light(flat, exposure, full_well, read_noise, rng)
        linear = srgb_to_linear(low / 255.0)
        mean = exposure * srgb_to_linear(level / 255.0)
        expected_var = (mean * full_well + read_noise**2) / full_well**2
        assert linear.mean() == pytest.approx(mean, rel=0.03)
        assert linear.var() == pytest.approx(expected_var, rel=0.15)  # + uint8 rounding


def test_srgb_curve_is_iec_61966_2_1():
    x = np.linspace(0, 1, 1001)
    assert np.allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-12)
    assert srgb_to_linear(0.04045) == pytest.approx(0.04045 / 12.92)
    assert srgb_to_linear(0.5) == pytest.approx(((0.5 + 0.055) / 1.055) ** 2.4)
    assert srgb_to_linear(1.0) == pytest.approx(1.0)


def test_rerun_skips_and_force_rebuilds(built, tmp_path):
    out = tmp_path / "d"
    assert build_demo_dataset(out, SMALL)
    stamp = (out / "manifest.json").stat().st_mtime_ns
    assert not build_demo_dataset(out, SMALL)  # complete: nothing written
    assert (out / "manifest.json").stat().st_mtime_ns == stamp
    assert build_demo_dataset(out, SMALL, force=True)  # complete, rebuilt when asked
    assert (out / "manifest.json").stat().st_mtime_ns != stamp
    assert _hashes(out) == _hashes(built)
    (out / "trainA" / "astronaut_00.png").unlink()  # incomplete: --force rebuilds it
    with pytest.raises(UserError, match="--force"):
        build_demo_dataset(out, SMALL)
    assert build_demo_dataset(out, SMALL, force=True)
    assert _hashes(out) == _hashes(built)


def test_force_rebuilds_a_demo_dataset_with_other_settings(built, tmp_path):
    out = tmp_path / "d"
    other = dataclasses.replace(SMALL, seed=1)
    assert build_demo_dataset(out, other)
    with pytest.raises(UserError, match="other settings"):
        build_demo_dataset(out, SMALL)
    assert build_demo_dataset(out, SMALL, force=True)
    assert _hashes(out) == _hashes(built)


@pytest.mark.parametrize("change", ["user file", "user folder", "edited image", "link"])
def test_force_never_removes_what_it_did_not_write(built, tmp_path, change):
    out = tmp_path / "d"
    assert build_demo_dataset(out, SMALL)
    if change == "user file":
        (out / "trainA" / "my_notes.txt").write_text("keep me")
    elif change == "user folder":
        (out / "runs").mkdir()
        (out / "runs" / "result.png").write_bytes(b"mine")
    elif change == "edited image":
        (out / "testB" / "chelsea_00.png").write_bytes(b"my retouched version")
    else:
        (out / "trainB" / "photo.png").symlink_to(tmp_path / "elsewhere.png")
    before = _hashes(out)
    with pytest.raises(UserError, match="nothing was removed") as info:
        build_demo_dataset(out, SMALL, force=True)
    assert "\n" not in str(info.value)
    assert _hashes(out) == before
    if change == "edited image":  # no longer complete: refused without --force too
        with pytest.raises(UserError, match="nothing was removed"):
            build_demo_dataset(out, SMALL)
    else:  # the demo's own files are complete: nothing to do
        assert not build_demo_dataset(out, SMALL)
    assert _hashes(out) == before


def test_force_refuses_folders_that_are_not_demo_datasets(tmp_path):
    plain = tmp_path / "plain"
    (plain / "trainA").mkdir(parents=True)
    (plain / "mine.txt").write_text("keep me")
    (plain / "trainA" / "photo.png").write_bytes(b"mine")
    imposter = tmp_path / "imposter"  # a manifest, but another program's
    imposter.mkdir()
    (imposter / "manifest.json").write_text(json.dumps({"generator": "other", "images": []}))
    for folder in (plain, imposter):
        before = _hashes(folder)
        for force in (False, True):
            with pytest.raises(UserError, match="not a demo dataset"):
                build_demo_dataset(folder, SMALL, force=force)
            assert _hashes(folder) == before
    a_file = tmp_path / "file"
    a_file.write_text("keep me")
    with pytest.raises(UserError, match="not a folder"):
        build_demo_dataset(a_file, SMALL, force=True)
    assert a_file.read_text() == "keep me"


def test_force_removes_only_files_inside_the_folder(built, tmp_path):
    """A manifest that lists a path outside the folder does not make --force delete it."""
    out, victim = tmp_path / "d", tmp_path / "victim.txt"
    assert build_demo_dataset(out, SMALL)
    victim.write_text("keep me")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["images"].append(
        {"file": "../victim.txt", "sha256": hashlib.sha256(b"keep me").hexdigest()}
    )
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert build_demo_dataset(out, SMALL, force=True)
    assert victim.read_text() == "keep me"
    assert _hashes(out) == _hashes(built)


def test_refuses_foreign_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(UserError, match="not a demo dataset"):
        build_demo_dataset(tmp_path, SMALL)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_command_line_force_refuses_in_one_line(tmp_path):
    """The issue's reproduction: --force over a folder holding a user's file."""
    out = tmp_path / "d"
    out.mkdir()
    (out / "thesis.tex").write_text("keep me")
    proc = subprocess.run(
        [sys.executable, "-m", "nerco.demo_data", "--out", str(out), "--force"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "thesis.tex" in lines[0], lines
    assert (out / "thesis.tex").read_text() == "keep me"


def test_command_line(tmp_path, monkeypatch):
    args = [
        sys.executable,
        "-m",
        "nerco.demo_data",
        "--out",
        str(tmp_path / "d"),
        *"--size 64 --test_size 64 --train_per_photo 1 --test_per_photo 1".split(),
    ]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "trainA 2, trainB 2, testA 2, testB 2" in proc.stdout
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "nothing to do" in proc.stdout
    # Other settings over an existing dataset: one-line error, exit status 2. In-process, so
    # keep pytest's logging handlers in place.
    monkeypatch.setattr("nerco.runtime.setup_logging", lambda *a, **k: None)
    assert demo_data.main(args[3:-2] + ["--test_per_photo", "2"]) == 2
    assert demo_data.main(args[3:5] + ["--exposure", "0.5", "0.1"]) == 2
