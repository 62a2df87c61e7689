"""train.py and test.py as a user runs them: end to end, odd inputs, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
from conftest import ROOT, make_image
from PIL import Image

TINY = ["--ngf", "8", "--ndf", "8", "--gpu_ids", "-1", "--num_threads", "0", "--display_id", "0"]


def _one_line_error(proc, *needles):
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def test_train_then_test_end_to_end(tiny_dataset, tmp_path, clip_weights_file, run_script):
    saves, results = tmp_path / "saves", tmp_path / "results"
    common = ["--dataroot", tiny_dataset, "--name", "tiny", "--checkpoints_dir", saves]
    run_script(
        "train.py",
        *common,
        *TINY,
        *(
            "--load_size 36 --crop_size 32 --n_epochs 1 --n_epochs_decay 1 "
            "--print_freq 1 --clip_weights"
        ).split(),
        clip_weights_file,
        "--save_epoch_freq",
        "1",
    )
    run_dir = saves / "tiny"
    for label in ("latest", "1", "2"):
        for name in ("G_A", "G_B", "Pre", "H", "D_A", "D_B", "D_A_edge", "D_B_edge"):
            assert (run_dir / f"{label}_net_{name}.pth").is_file()
    for name in (
        "loss_log.txt",
        "loss_log.jsonl",
        "train.log",
        "train_opt.txt",
        "web/index.html",
        "loss_generator.png",
    ):
        assert (run_dir / name).is_file(), name
    from nerco.training.loss_log import read_jsonl

    records = read_jsonl(run_dir / "loss_log.jsonl")
    assert [r["total_iters"] for r in records] == list(range(1, 7))  # 3 images × 2 epochs
    assert set(records[0]) == {
        "epoch",
        "epoch_iter",
        "total_iters",
        "t_comp",
        "t_data",
        "lr",
        "losses",
    }
    # Release schedule: lr stepped at the start of each epoch (factor 1 − (e+1−1)/2).
    assert records[0]["lr"] == 2e-4 * 0.5 and records[-1]["lr"] == 0.0
    html = (run_dir / "web" / "index.html").read_text()
    assert "epoch001_fake_B.png" in html and "epoch001_mask.png" in html

    proc = run_script("test.py", *common, "--results_dir", results)
    assert "CUDA is not available" in proc.stdout  # default --gpu_ids 0 on a CPU machine
    out = results / "tiny" / "test_latest"
    image = Image.open(out / "images" / "a_fake_B.png")
    assert image.size == (37, 23) and image.mode == "RGB"
    page = (out / "index.html").read_text()
    assert "images/a_real_A.png" in page and "images/a_fake_B.png" in page

    # --continue_train loads every network and goes on.
    run_script(
        "train.py",
        *common,
        *TINY,
        *"--load_size 36 --crop_size 32 --n_epochs 1 --n_epochs_decay 0 --clip_weights".split(),
        clip_weights_file,
        "--continue_train",
        "--epoch",
        "latest",
    )


def test_test_py_any_image_mode_and_extension(tmp_path, run_script):
    sys.path.insert(0, str(ROOT / "tests"))
    from synth import write_network_weights

    write_network_weights(tmp_path / "saves" / "m", "latest", ["G_A", "Pre", "H"])
    test_a = tmp_path / "data" / "testA"
    make_image(test_a / "grey.PNG", (30, 21), mode="L")
    make_image(test_a / "alpha.png", (16, 16), mode="RGBA")
    make_image(test_a / "palette.Bmp", (20, 12), mode="P")
    make_image(test_a / "sub" / "photo.JPG", (24, 18))
    (test_a / "notes.txt").write_text("not an image")
    run_script(
        "test.py",
        "--dataroot",
        tmp_path / "data",
        "--name",
        "m",
        "--checkpoints_dir",
        tmp_path / "saves",
        "--results_dir",
        tmp_path / "results",
        "--gpu_ids",
        "-1",
    )
    images = tmp_path / "results" / "m" / "test_latest" / "images"
    for stem, size in [
        ("grey", (30, 21)),
        ("alpha", (16, 16)),
        ("palette", (20, 12)),
        ("photo", (24, 18)),
    ]:
        out = Image.open(images / f"{stem}_fake_B.png")
        assert out.mode == "RGB" and out.size == size, stem
        assert np.asarray(out).std() > 0


def test_offline_without_clip_weights_fails_fast(tiny_dataset, tmp_path):
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        HF_HOME=str(tmp_path / "hf"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
    )
    start = time.time()
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "--dataroot",
            str(tiny_dataset),
            "--checkpoints_dir",
            str(tmp_path / "s"),
            *TINY,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    _one_line_error(proc, "--clip_weights")
    assert time.time() - start < 30


def test_bad_clip_weights_file(tiny_dataset, tmp_path, run_script):
    bad = tmp_path / "clip.pt"
    bad.write_bytes(b"not a checkpoint")
    proc = run_script(
        "train.py",
        "--dataroot",
        tiny_dataset,
        "--checkpoints_dir",
        tmp_path / "s",
        *TINY,
        "--clip_weights",
        bad,
        expect=2,
    )
    _one_line_error(proc, "--clip_weights", str(bad))
    proc = run_script(
        "train.py",
        "--dataroot",
        tiny_dataset,
        "--checkpoints_dir",
        tmp_path / "s",
        *TINY,
        "--clip_weights",
        tmp_path / "missing.pt",
        expect=2,
    )
    _one_line_error(proc, "--clip_weights", "missing.pt")


def test_missing_data_folders(tmp_path, run_script):
    proc = run_script(
        "train.py",
        "--dataroot",
        tmp_path / "nowhere",
        "--checkpoints_dir",
        tmp_path / "s",
        *TINY,
        expect=2,
    )
    _one_line_error(proc, "nowhere")
    (tmp_path / "d" / "trainA").mkdir(parents=True)
    make_image(tmp_path / "d" / "trainA" / "x.png")
    proc = run_script(
        "train.py",
        "--dataroot",
        tmp_path / "d",
        "--checkpoints_dir",
        tmp_path / "s",
        *TINY,
        expect=2,
    )
    _one_line_error(proc, "trainB")
    proc = run_script(
        "test.py",
        "--dataroot",
        tmp_path / "d",
        "--checkpoints_dir",
        tmp_path / "s",
        "--gpu_ids",
        "-1",
        expect=2,
    )
    _one_line_error(proc, "testA")


def test_missing_checkpoint(tmp_path, run_script):
    make_image(tmp_path / "d" / "testA" / "x.png")
    (tmp_path / "saves" / "m").mkdir(parents=True)
    proc = run_script(
        "test.py",
        "--dataroot",
        tmp_path / "d",
        "--name",
        "m",
        "--checkpoints_dir",
        tmp_path / "saves",
        "--gpu_ids",
        "-1",
        expect=2,
    )
    _one_line_error(proc, "latest_net_G_A.pth")


def test_bad_option_value(tmp_path, run_script):
    proc = run_script("train.py", "--dataroot", tmp_path, "--objective", "nonsense", expect=2)
    _one_line_error(proc, "--objective", "nonsense", "--help")
    assert len((proc.stdout + proc.stderr).splitlines()) == 1  # no usage block


def _test_py_main(*args) -> int:
    """test.py's main() in this process (a subprocess costs seconds of torch import)."""
    from nerco.inference.cli import main

    return main([str(a) for a in args])


def test_test_py_input_output_flat_names(tmp_path):
    sys.path.insert(0, str(ROOT / "tests"))
    from synth import write_network_weights

    write_network_weights(tmp_path / "saves" / "m", "latest", ["G_A", "Pre", "H"])
    photos, out = tmp_path / "photos", tmp_path / "photos" / "enhanced"
    make_image(photos / "day" / "photo.jpg", (24, 18), seed=1)
    make_image(photos / "night" / "photo.JPG", (20, 16), seed=2)
    make_image(photos / "deep" / "er" / "solo.bmp", (16, 16), seed=3)
    make_image(out / "old.png", (16, 16), seed=4)  # an earlier result: not an input
    common = ["--name", "m", "--checkpoints_dir", tmp_path / "saves", "--gpu_ids", "-1"]
    assert _test_py_main(*common, "--input", photos, "--output", out) == 0
    sizes = {p.name: Image.open(p).size for p in out.iterdir()}
    assert sizes == {
        "day_photo_jpg.png": (24, 18),
        "night_photo_JPG.png": (20, 16),
        "solo.png": (16, 16),
        "old.png": (16, 16),
    }
    # a single file works too, and names its result after the file
    assert (
        _test_py_main(
            *common, "--input", photos / "deep" / "er" / "solo.bmp", "--output", tmp_path / "one"
        )
        == 0
    )
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["solo.png"]


def test_test_py_dataroot_with_gt_scores(tmp_path, run_script):
    sys.path.insert(0, str(ROOT / "tests"))
    from synth import write_network_weights

    write_network_weights(tmp_path / "saves" / "m", "latest", ["G_A", "Pre", "H"])
    make_image(tmp_path / "d" / "testA" / "x.png", (24, 20), seed=1, dark=True)
    make_image(tmp_path / "d" / "testA" / "y.png", (20, 20), seed=2, dark=True)
    make_image(tmp_path / "gt" / "x.jpg", (24, 20), seed=3)
    make_image(tmp_path / "gt" / "y.png", (20, 20), seed=4)
    proc = run_script(
        "test.py",
        "--dataroot",
        tmp_path / "d",
        "--name",
        "m",
        "--checkpoints_dir",
        tmp_path / "saves",
        "--results_dir",
        tmp_path / "results",
        "--gpu_ids",
        "-1",
        "--gt",
        tmp_path / "gt",
    )
    web = tmp_path / "results" / "m" / "test_latest"
    report = json.loads((web / "scores.json").read_text())
    assert [e["name"] for e in report["per_image"]] == ["x", "y"]
    assert set(report["mean"]) == {"psnr", "ssim"} and "mean (2)" in proc.stdout
    page = (web / "index.html").read_text()
    for src in ("images/x_real_A.png", "images/x_fake_B.png", "../../../gt/x.jpg"):
        assert f'src="{src}"' in page
    assert page.index("mean of 2") < page.index("x_fake_B")


def test_test_py_input_errors(tmp_path, capsys):
    make_image(tmp_path / "in" / "a.png", (24, 20))
    make_image(tmp_path / "gt" / "a.png", (20, 24))
    make_image(tmp_path / "gt" / "b.png", (24, 20))
    cases = [
        (["--input", tmp_path / "in"], ["--output"]),
        (
            ["--input", tmp_path / "in", "--output", tmp_path / "o", "--dataroot", tmp_path],
            ["--dataroot", "not both"],
        ),
        ([], ["--dataroot", "--input"]),
        (["--input", tmp_path / "in", "--output", tmp_path / "in"], ["--output", "--input"]),
        # checked before any checkpoint is read (there is none here)
        (
            ["--input", tmp_path / "in", "--output", tmp_path / "o", "--gt", tmp_path / "gt"],
            ["a.png is 24x20", "20x24"],
        ),
        (["--input", tmp_path / "nowhere", "--output", tmp_path / "o"], ["nowhere"]),
    ]
    for args, needles in cases:
        assert (
            _test_py_main("--checkpoints_dir", tmp_path / "none", "--gpu_ids", "-1", *args) == 2
        ), args
        out = capsys.readouterr()
        errors = [line for line in out.out.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "Traceback" not in out.out + out.err, out
        assert all(n in errors[0] for n in needles), errors[0]
    assert not (tmp_path / "o").exists()
