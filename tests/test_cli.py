"""train.py and test.py as a user runs them: end to end, odd inputs, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
from conftest import ROOT, make_image
from PIL import Image

TINY = ["--ngf", "8", "--ndf", "8", "--gpu_ids", "-1", "--num_threads", "0",
        "--display_id", "0"]


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
    run_script("train.py", *common, *TINY, "--load_size", "36", "--crop_size", "32",
               "--n_epochs", "1", "--n_epochs_decay", "1", "--print_freq", "1",
               "--clip_weights", clip_weights_file, "--save_epoch_freq", "1")
    run_dir = saves / "tiny"
    for label in ("latest", "1", "2"):
        for name in ("G_A", "G_B", "Pre", "H", "D_A", "D_B", "D_A_edge", "D_B_edge"):
            assert (run_dir / f"{label}_net_{name}.pth").is_file()
    for name in ("loss_log.txt", "loss_log.jsonl", "train.log", "train_opt.txt",
                 "web/index.html", "loss_generator.png"):
        assert (run_dir / name).is_file(), name
    from nerco.loss_log import read_jsonl

    records = read_jsonl(run_dir / "loss_log.jsonl")
    assert [r["total_iters"] for r in records] == list(range(1, 7))  # 3 images × 2 epochs
    assert set(records[0]) == {"epoch", "epoch_iter", "total_iters", "t_comp", "t_data", "lr",
                               "losses"}
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
    run_script("train.py", *common, *TINY, "--load_size", "36", "--crop_size", "32",
               "--n_epochs", "1", "--n_epochs_decay", "0", "--clip_weights",
               clip_weights_file, "--continue_train", "--epoch", "latest")


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
    run_script("test.py", "--dataroot", tmp_path / "data", "--name", "m", "--checkpoints_dir",
               tmp_path / "saves", "--results_dir", tmp_path / "results", "--gpu_ids", "-1")
    images = tmp_path / "results" / "m" / "test_latest" / "images"
    for stem, size in [("grey", (30, 21)), ("alpha", (16, 16)), ("palette", (20, 12)),
                       ("photo", (24, 18))]:
        out = Image.open(images / f"{stem}_fake_B.png")
        assert out.mode == "RGB" and out.size == size, stem
        assert np.asarray(out).std() > 0


def test_offline_without_clip_weights_fails_fast(tiny_dataset, tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"),
               XDG_CACHE_HOME=str(tmp_path / "cache"))
    start = time.time()
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "--dataroot",
                           str(tiny_dataset), "--checkpoints_dir", str(tmp_path / "s"), *TINY],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    _one_line_error(proc, "--clip_weights")
    assert time.time() - start < 30


def test_bad_clip_weights_file(tiny_dataset, tmp_path, run_script):
    bad = tmp_path / "clip.pt"
    bad.write_bytes(b"not a checkpoint")
    proc = run_script("train.py", "--dataroot", tiny_dataset, "--checkpoints_dir",
                      tmp_path / "s", *TINY, "--clip_weights", bad, expect=2)
    _one_line_error(proc, "--clip_weights", str(bad))
    proc = run_script("train.py", "--dataroot", tiny_dataset, "--checkpoints_dir",
                      tmp_path / "s", *TINY, "--clip_weights", tmp_path / "missing.pt", expect=2)
    _one_line_error(proc, "--clip_weights", "missing.pt")


def test_missing_data_folders(tmp_path, run_script):
    proc = run_script("train.py", "--dataroot", tmp_path / "nowhere", "--checkpoints_dir",
                      tmp_path / "s", *TINY, expect=2)
    _one_line_error(proc, "nowhere")
    (tmp_path / "d" / "trainA").mkdir(parents=True)
    make_image(tmp_path / "d" / "trainA" / "x.png")
    proc = run_script("train.py", "--dataroot", tmp_path / "d", "--checkpoints_dir",
                      tmp_path / "s", *TINY, expect=2)
    _one_line_error(proc, "trainB")
    proc = run_script("test.py", "--dataroot", tmp_path / "d", "--checkpoints_dir",
                      tmp_path / "s", "--gpu_ids", "-1", expect=2)
    _one_line_error(proc, "testA")


def test_missing_checkpoint(tmp_path, run_script):
    make_image(tmp_path / "d" / "testA" / "x.png")
    (tmp_path / "saves" / "m").mkdir(parents=True)
    proc = run_script("test.py", "--dataroot", tmp_path / "d", "--name", "m",
                      "--checkpoints_dir", tmp_path / "saves", "--gpu_ids", "-1", expect=2)
    _one_line_error(proc, "latest_net_G_A.pth")


def test_bad_option_value(tmp_path, run_script):
    proc = run_script("train.py", "--dataroot", tmp_path, "--objective", "nonsense", expect=2)
    assert "Traceback" not in proc.stderr and "--objective" in proc.stderr
