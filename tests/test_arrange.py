"""scripts/arrange_datasets.py on small fake trees named like the LOL and LSRW archives."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest
from conftest import ROOT, make_image

from nerco.runtime import UserError

_spec = importlib.util.spec_from_file_location(
    "arrange_datasets", ROOT / "scripts" / "arrange_datasets.py"
)
arrange_datasets = importlib.util.module_from_spec(_spec)
sys.modules["arrange_datasets"] = arrange_datasets  # dataclasses look their module up
_spec.loader.exec_module(arrange_datasets)


def _fake_lol(src):
    """LOLdataset/our485/{low,high} (3 pairs), LOLdataset/eval15/{low,high} (2 pairs)."""
    root = src / "LOLdataset"
    for folder, names in (("our485", ["2", "5", "7"]), ("eval15", ["1", "22"])):
        for light in ("low", "high"):
            for i, name in enumerate(names):
                make_image(
                    root / folder / light / f"{name}.png", (16, 12), seed=i, dark=light == "low"
                )
    (root / "our485" / "low" / "Thumbs.db").write_bytes(b"not an image")
    (src / "__MACOSX").mkdir()
    return root


def _fake_lsrw(src, nested=True):
    """LSRW/Training data/{Huawei,Nikon}/{low,high} and LSRW/Eval/{Huawei,Nikon}/{low,high};
    the two cameras share file names, as in the archive."""
    root = src / "LSRW"
    train = root / "Training data" if nested else root
    for camera, count in (("Huawei", 2), ("Nikon", 3)):
        for light in ("low", "high"):
            for i in range(count):
                make_image(train / camera / light / f"{i + 1}.jpg", (16, 12), seed=i)
            make_image(root / "Eval" / camera / light / "1.jpg", (16, 12), seed=9)
    return root


def _names(folder) -> list[str]:
    return sorted(os.listdir(folder))


def test_lol_copy(tmp_path):
    _fake_lol(tmp_path / "src")
    out = tmp_path / "LOL"
    counts = arrange_datasets.arrange("lol", str(tmp_path / "src"), str(out))
    assert counts == {"trainA": 3, "trainB": 3, "testA": 2, "testB": 2}
    assert _names(out / "trainA") == _names(out / "trainB") == ["2.png", "5.png", "7.png"]
    assert _names(out / "testA") == _names(out / "testB") == ["1.png", "22.png"]
    src_file = tmp_path / "src" / "LOLdataset" / "eval15" / "high" / "22.png"
    assert (out / "testB" / "22.png").read_bytes() == src_file.read_bytes()
    assert not (out / "testB" / "22.png").is_symlink()


@pytest.mark.parametrize("nested", [True, False])
def test_lsrw_symlink_both_cameras(tmp_path, nested):
    root = _fake_lsrw(tmp_path / "src", nested)
    out = tmp_path / "LSRW"
    counts = arrange_datasets.arrange("lsrw", str(root), str(out), mode="symlink")
    assert counts == {"trainA": 5, "trainB": 5, "testA": 2, "testB": 2}
    assert _names(out / "trainA") == [
        "Huawei_1.jpg",
        "Huawei_2.jpg",
        "Nikon_1.jpg",
        "Nikon_2.jpg",
        "Nikon_3.jpg",
    ]
    assert _names(out / "testA") == _names(out / "testB") == ["Huawei_1.jpg", "Nikon_1.jpg"]
    link = out / "testB" / "Nikon_1.jpg"
    assert link.is_symlink() and os.path.isabs(os.readlink(link))
    assert os.path.realpath(link) == str((root / "Eval" / "Nikon" / "high" / "1.jpg").resolve())


def test_same_image_extensions_as_the_data_loader():
    from data.image_folder import IMG_EXTENSIONS

    assert arrange_datasets.IMG_EXTENSIONS == IMG_EXTENSIONS


def test_arranged_folder_trains_and_tests(tmp_path):
    """The result is what train.py / test.py read: the datasets accept it."""
    from data.single_dataset import SingleImageDataset
    from data.unaligned_dataset import UnalignedDataset

    _fake_lol(tmp_path / "src")
    arrange_datasets.arrange("lol", str(tmp_path / "src"), str(tmp_path / "LOL"))
    train = UnalignedDataset(tmp_path / "LOL", load_size=16, crop_size=8)
    assert (train.A_size, train.B_size) == (3, 3)
    assert len(SingleImageDataset.from_folder(str(tmp_path / "LOL" / "testA"))) == 2


def test_existing_output_needs_force(tmp_path):
    _fake_lol(tmp_path / "src")
    out = tmp_path / "LOL"
    arrange_datasets.arrange("lol", str(tmp_path / "src"), str(out))
    (out / "trainA" / "stale.png").write_bytes(b"x")
    with pytest.raises(UserError, match="--force"):
        arrange_datasets.arrange("lol", str(tmp_path / "src"), str(out))
    arrange_datasets.arrange("lol", str(tmp_path / "src"), str(out), force=True)
    assert "stale.png" not in _names(out / "trainA")


def test_wrong_sources(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        arrange_datasets.arrange("lol", str(tmp_path / "nowhere"), str(tmp_path / "o"))
    lsrw = _fake_lsrw(tmp_path / "lsrw")
    with pytest.raises(UserError, match="our485"):  # an LSRW tree given as LOL
        arrange_datasets.arrange("lol", str(lsrw), str(tmp_path / "o"))
    lol = _fake_lol(tmp_path / "lol")
    for child in (lol / "eval15" / "high").iterdir():
        child.unlink()
    with pytest.raises(UserError, match="holds no image"):
        arrange_datasets.arrange("lol", str(lol), str(tmp_path / "o"))
    (lol / "eval15" / "high").rmdir()
    with pytest.raises(UserError, match="eval15/high"):
        arrange_datasets.arrange("lol", str(lol), str(tmp_path / "o"))
    assert not (tmp_path / "o").exists()


def test_command_line_errors_are_one_line(tmp_path):
    script = str(ROOT / "scripts" / "arrange_datasets.py")
    proc = subprocess.run(
        [
            sys.executable,
            script,
            "lsrw",
            "--src",
            str(tmp_path / "missing"),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in out
    assert out.strip().count("\n") == 0 and out.startswith("error: --src")
    _fake_lol(tmp_path / "src")
    proc = subprocess.run(
        [
            sys.executable,
            script,
            "lol",
            "--src",
            str(tmp_path / "src"),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "trainA 3, trainB 3, testA 2, testB 2" in proc.stdout
