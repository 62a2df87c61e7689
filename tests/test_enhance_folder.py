"""test.py over folders (issue 14): bad inputs, stopping and resuming, batches, EXIF, ICC,
torchrun. Most runs use the stand-in enhancer of tests/standin.py (known, cheap results)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import ROOT, make_image
from PIL import Image, ImageCms
from standin import Standin, expected, run_test_py, write_weight_files
from synth import write_network_weights

CPU = ["--gpu_ids", "-1"]


def _photos(folder, count, size=(40, 32)):
    return [make_image(folder / f"p{i:02d}.png", size, seed=i) for i in range(count)]


def _files(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _assert_complete_pngs(folder) -> None:
    for path in folder.glob("*.png"):
        with Image.open(path) as image:
            image.load()  # raises on a truncated file


def test_corrupt_first_file_is_skipped_and_listed(tmp_path, monkeypatch, capsys):
    """The issue's reproduction: the first file in sorted order is a corrupt PNG."""
    write_network_weights(tmp_path / "saves" / "m", "latest", ["G_A", "Pre", "H"])
    photos = tmp_path / "photos"
    (photos / "0_corrupt.png").parent.mkdir(parents=True)
    (photos / "0_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    _photos(photos, 3, (24, 18))
    make_image(photos / "tiny.png", (6, 30), seed=9)
    status = run_test_py(
        monkeypatch,
        None,
        "--name",
        "m",
        "--checkpoints_dir",
        tmp_path / "saves",
        *CPU,
        "--input",
        photos,
        "--output",
        tmp_path / "out",
    )
    out = capsys.readouterr()
    assert status == 1, out.out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p00.png", "p01.png", "p02.png"]
    assert "Traceback" not in out.out + out.err
    warnings = [line for line in out.out.splitlines() if line.startswith("skipped: ")]
    assert len(warnings) == 2 and str(photos / "0_corrupt.png") in warnings[0]
    assert "6x30 pixels, too small" in warnings[1]
    listed = out.out[out.out.index("2 images failed") :]
    assert str(photos / "0_corrupt.png") in listed and str(photos / "tiny.png") in listed
    assert "enhanced 3 images in " in out.out and "images/s), 2 failed" in out.out
    assert "images/s]" in out.err  # the progress bar: images per second


@pytest.mark.parametrize("sig, layout", [(signal.SIGINT, "input"), (signal.SIGTERM, "dataroot")])
def test_stopped_run_resumes_to_the_same_files(tmp_path, monkeypatch, capsys, sig, layout):
    write_weight_files(tmp_path / "saves" / "m")
    photos = tmp_path / "data" / "testA"
    _photos(photos, 8)
    common = ["--name", "m", "--checkpoints_dir", tmp_path / "saves", *CPU]

    def args(where):
        if layout == "input":
            return [*common, "--input", photos, "--output", where]
        return [*common, "--dataroot", photos.parent, "--results_dir", where]

    def folder(where):
        return where if layout == "input" else where / "m" / "test_latest" / "images"

    assert run_test_py(monkeypatch, Standin(), *args(tmp_path / "whole")) == 0

    def stop_after_three(calls):
        if calls == 3:
            os.kill(os.getpid(), sig)

    status = run_test_py(monkeypatch, Standin(on_call=stop_after_three), *args(tmp_path / "r"))
    out = capsys.readouterr().out
    assert status == 128 + sig
    assert f"stopped by {signal.Signals(sig).name}: 3 of 8 images done (3 in this run)" in out
    stopped = folder(tmp_path / "r")
    per_image = 1 if layout == "input" else 2
    assert len(list(stopped.glob("*.png"))) == 3 * per_image
    assert not list(stopped.glob(".*"))  # the writes under way were finished
    _assert_complete_pngs(stopped)

    again = Standin()
    assert run_test_py(monkeypatch, again, *args(tmp_path / "r")) == 0
    assert sum(again.batches) == 5  # only the five left
    assert "3 of 8 results already in" in capsys.readouterr().out
    assert _files(stopped) == _files(folder(tmp_path / "whole"))


def test_killed_run_leaves_no_truncated_png(tmp_path, monkeypatch):
    """SIGKILL, which nothing can catch, in the middle of a run whose PNG writes take long
    (half the bytes, a pause, the rest): the results there are whole PNGs, and the next run
    completes the folder with the same bytes."""
    write_weight_files(tmp_path / "saves" / "m")
    photos = tmp_path / "photos"
    _photos(photos, 16, (64, 48))
    common = ["--name", "m", "--checkpoints_dir", tmp_path / "saves", *CPU, "--input", photos]
    assert run_test_py(monkeypatch, Standin(), *common, "--output", tmp_path / "whole") == 0
    runner = tmp_path / "slow_test_py.py"
    runner.write_text(
        "import runpy, sys\n"
        f"sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'tests')!r}]\n"
        "import io, time\nimport nerco.inference.enhancer\nfrom PIL import Image\n"
        "from standin import Standin\n"
        "nerco.inference.enhancer.load_enhancer = lambda *a, **k: Standin(delay=0.05)\n"
        "save = Image.Image.save\n"
        "def slow_save(self, fp, format=None, **params):\n"
        "    buffer = io.BytesIO()\n"
        "    save(self, buffer, format=format or 'PNG', **params)\n"
        "    data = buffer.getvalue()\n"
        "    with open(fp, 'wb') as handle:\n"
        "        handle.write(data[: len(data) // 2])\n"
        "        handle.flush()\n"
        "        time.sleep(0.3)\n"
        "        handle.write(data[len(data) // 2 :])\n"
        "Image.Image.save = slow_save\n"
        f"sys.argv[0] = {str(ROOT / 'test.py')!r}\n"
        f"runpy.run_path({str(ROOT / 'test.py')!r}, run_name='__main__')\n"
    )
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, str(runner), *map(str, common), "--output", str(out)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while len(list(out.glob("*.png"))) < 3 and time.monotonic() < deadline:
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    written = list(out.glob("*.png"))
    assert 3 <= len(written) < 16
    _assert_complete_pngs(out)
    whole = _files(tmp_path / "whole")
    assert all(p.read_bytes() == whole[p.name] for p in written)
    assert run_test_py(monkeypatch, Standin(), *common, "--output", out) == 0
    assert _files(out) == whole  # every result, no partial file left


def test_rerun_skips_results_overwrite_and_newer_weights_redo_them(tmp_path, monkeypatch, capsys):
    write_weight_files(tmp_path / "saves" / "m")
    photos = tmp_path / "photos"
    _photos(photos, 4)
    args = [
        "--name",
        "m",
        "--checkpoints_dir",
        tmp_path / "saves",
        *CPU,
        "--input",
        photos,
        "--output",
        tmp_path / "out",
    ]
    for extra, redone, message in [
        ([], 4, None),
        ([], 0, "4 of 4 results already in"),
        (["--overwrite"], 4, None),
    ]:
        standin = Standin()
        assert run_test_py(monkeypatch, standin, *args, *extra) == 0
        assert sum(standin.batches) == redone
        if message:
            assert message in capsys.readouterr().out
    # Retrained weights (newer than the results): the results are made again.
    later = time.time() + 100
    os.utime(tmp_path / "saves" / "m" / "latest_net_G_A.pth", (later, later))
    standin = Standin()
    assert run_test_py(monkeypatch, standin, *args) == 0
    assert sum(standin.batches) == 4
    assert "4 older than the weights are redone" in capsys.readouterr().out


def _upright() -> np.ndarray:
    """48x32 with four colours in the quadrants and a marker: every orientation differs."""
    image = np.zeros((32, 48, 3), np.uint8)
    image[:16, :24], image[:16, 24:] = (230, 30, 30), (30, 230, 30)
    image[16:, :24], image[16:, 24:] = (30, 30, 230), (230, 230, 30)
    image[:8, :8] = (250, 250, 250)
    return image


#: What a camera stores for an upright scene, by EXIF orientation (the tag says how to turn
#: the stored pixels to display them): the inverse of each displaying transform.
STORED = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, 1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, -1),
}


def _jpeg_with_orientation(path, pixels, orientation) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(pixels)).save(
        path, "JPEG", quality=95, subsampling=0, exif=exif.tobytes()
    )


def _difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(float) - b).mean()) if a.shape == b.shape else 255.0


def test_exif_orientation_applied_with_input_kept_as_stored_with_dataroot(tmp_path, monkeypatch):
    upright = _upright()
    photos = tmp_path / "data" / "testA"
    for k, stored in STORED.items():
        _jpeg_with_orientation(photos / f"o{k}.jpg", stored(upright), k)
    write_weight_files(tmp_path / "saves" / "m")
    common = ["--name", "m", "--checkpoints_dir", tmp_path / "saves", *CPU]
    assert (
        run_test_py(
            monkeypatch, Standin(), *common, "--input", photos, "--output", tmp_path / "out"
        )
        == 0
    )
    want = expected(upright)
    for k, stored in STORED.items():
        got = np.asarray(Image.open(tmp_path / "out" / f"o{k}.png"))
        assert _difference(got, want) < 3, k  # as displayed, up to JPEG's loss
        if k != 1:  # the pixels as stored would be far off
            assert _difference(got, expected(np.ascontiguousarray(stored(upright)))) > 30, k
    assert (
        run_test_py(
            monkeypatch,
            Standin(),
            *common,
            "--dataroot",
            photos.parent,
            "--results_dir",
            tmp_path / "results",
        )
        == 0
    )
    images = tmp_path / "results" / "m" / "test_latest" / "images"
    for k, stored in STORED.items():
        got = np.asarray(Image.open(images / f"o{k}_fake_B.png"))
        assert _difference(got, expected(np.ascontiguousarray(stored(upright)))) < 3, k


def test_rgb_icc_profile_kept_with_input_only(tmp_path, monkeypatch):
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    cmyk_like = bytes(16) + b"CMYK" + bytes(112)  # a profile that does not fit RGB pixels
    photos = tmp_path / "data" / "testA"
    make_image(photos / "tagged.png", (24, 16))
    Image.open(photos / "tagged.png").save(photos / "tagged.png", icc_profile=srgb)
    make_image(photos / "cmyk.jpg", (24, 16), seed=1)
    Image.open(photos / "cmyk.jpg").save(photos / "cmyk.jpg", icc_profile=cmyk_like)
    make_image(photos / "plain.png", (24, 16), seed=2)
    write_weight_files(tmp_path / "saves" / "m")
    common = ["--name", "m", "--checkpoints_dir", tmp_path / "saves", *CPU]
    assert (
        run_test_py(
            monkeypatch, Standin(), *common, "--input", photos, "--output", tmp_path / "out"
        )
        == 0
    )
    profiles = {p.stem: Image.open(p).info.get("icc_profile") for p in (tmp_path / "out").iterdir()}
    assert profiles == {"tagged": srgb, "cmyk": None, "plain": None}
    assert (
        run_test_py(
            monkeypatch,
            Standin(),
            *common,
            "--dataroot",
            photos.parent,
            "--results_dir",
            tmp_path / "results",
        )
        == 0
    )
    result = tmp_path / "results" / "m" / "test_latest" / "images" / "tagged_fake_B.png"
    assert "icc_profile" not in Image.open(result).info  # datasets: as the authors wrote them


def test_batches_give_the_png_files_of_batch_1(tmp_path, monkeypatch):
    """The released width (synthetic weights), through test.py: --batch_size 3 forms
    batches of equal sizes and writes the files of --batch_size 1, up to a rare one-level
    step where the kernels of another batch size round differently (see test_pipeline)."""
    import nerco.inference.enhancer

    write_network_weights(tmp_path / "saves" / "m", "latest", ["G_A", "Pre", "H"])
    photos = tmp_path / "photos"
    for i, size in enumerate([(132, 128), (44, 36), (132, 128), (40, 36), (44, 36), (132, 128)]):
        make_image(photos / f"p{i}.png", size, seed=i, dark=True)
    real_loader = nerco.inference.enhancer.load_enhancer
    sizes = []

    def recording_loader(*args, **kwargs):
        enhancer = real_loader(*args, **kwargs)
        enhancer.register_forward_pre_hook(lambda _, inputs: sizes.append(inputs[0].shape[0]))
        return enhancer

    monkeypatch.setattr(nerco.inference.enhancer, "load_enhancer", recording_loader)
    common = ["--name", "m", "--checkpoints_dir", tmp_path / "saves", *CPU, "--input", photos]
    for batch in (1, 3):
        sizes.clear()
        assert (
            run_test_py(
                monkeypatch,
                None,
                *common,
                "--output",
                tmp_path / f"b{batch}",
                "--batch_size",
                batch,
            )
            == 0
        )
    assert sorted(sizes) == [1, 2, 3]
    one, three = _files(tmp_path / "b1"), _files(tmp_path / "b3")
    assert one.keys() == three.keys()
    for name in one:
        a, b = (np.asarray(Image.open(io.BytesIO(f[name])), np.int16) for f in (one, three))
        assert np.abs(a - b).max() <= 1 and (a != b).mean() < 1e-3, name


def test_torchrun_two_processes_each_image_once(tmp_path, monkeypatch):
    """Two CPU processes (gloo): the single process's files, the failure of rank 1's image
    listed by rank 0, and the scores of every image written once all are done."""
    write_network_weights(tmp_path / "saves" / "m", "latest", ["G_A", "Pre", "H"])
    photos, gt = tmp_path / "photos", tmp_path / "gt"
    sizes = [(24, 18), (20, 16), (30, 22), (16, 16), (26, 20), (24, 18)]
    for i, size in enumerate(sizes):
        make_image(photos / f"p{i}.png", size, seed=i, dark=True)
        make_image(gt / f"p{i}.png", size, seed=10 + i)
    (photos / "p1.png").write_bytes(b"not a png")  # sorted second: rank 1's share
    common = [
        "--name",
        "m",
        "--checkpoints_dir",
        tmp_path / "saves",
        *CPU,
        "--input",
        photos,
        "--gt",
        gt,
    ]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as torchrun's processes (OMP_NUM_THREADS=1): the same sums
    try:
        assert run_test_py(monkeypatch, None, *common, "--output", tmp_path / "one") == 1
    finally:
        torch.set_num_threads(threads)
    out = tmp_path / "two"
    proc = subprocess.run(
        [
            sys.executable,
            *"-m torch.distributed.run --standalone --nproc_per_node 2 test.py".split(),
            *map(str, common),
            "--output",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode == 1, text  # one input failed
    assert "enhanced 5 images in" in proc.stdout and "), 1 failed" in proc.stdout, text
    assert f"cannot read image {photos / 'p1.png'}" in proc.stdout
    pngs = {name: data for name, data in _files(tmp_path / "one").items() if name.endswith(".png")}
    assert sorted(pngs) == ["p0.png", "p2.png", "p3.png", "p4.png", "p5.png"]
    assert {name: data for name, data in _files(out).items() if name.endswith(".png")} == pngs
    scores = [
        [
            (e["name"], e["psnr"], e["ssim"])
            for e in json.loads((folder / "scores.json").read_text())["per_image"]
        ]
        for folder in (tmp_path / "one", out)
    ]
    assert scores[0] == scores[1] and [s[0] for s in scores[1]] == ["p0", "p2", "p3", "p4", "p5"]
    assert (out / "index.html").is_file()


def test_single_image_dataset_orientation_is_opt_in(tmp_path):
    from data.single_dataset import SingleImageDataset

    _jpeg_with_orientation(tmp_path / "o6.jpg", STORED[6](_upright()), 6)
    assert SingleImageDataset([tmp_path / "o6.jpg"])[0]["A"].shape == (3, 48, 32)
    shown = SingleImageDataset([tmp_path / "o6.jpg"], exif_orientation=True)[0]["A"]
    assert shown.shape == (3, 32, 48)
