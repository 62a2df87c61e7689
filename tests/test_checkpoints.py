"""nerco.networks.checkpoint_set: a label's files stay one consistent set through kills and full
disks."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT

from nerco.networks import checkpoint_set
from nerco.networks.checkpoint import read_state_dict
from nerco.networks.checkpoint_set import SaveFailed, recover, save_set, verified, verify_set
from nerco.runtime import UserError

NAMES = ("latest_net_G_A.pth", "latest_net_H.pth", "latest_train_state.pth")


def _files(value: float) -> dict[str, dict]:
    """A set whose every tensor holds ``value`` (distinct per file: value + index)."""
    return {name: {"w": torch.full((64,), value + i)} for i, name in enumerate(NAMES)}


def _version(folder: Path) -> float | None:
    """Which save the reader's view of ``folder`` shows; fails on a mix."""
    seen = set()
    for i, name in enumerate(NAMES):
        path = verified(str(folder / name))
        seen.add(float(torch.load(path, weights_only=True)["w"][0]) - i)
    assert len(seen) == 1, f"a mixed set: {seen}"
    return seen.pop()


class _Killed(BaseException):
    """Stands for SIGKILL: not an OSError, so no clean-up code runs."""


def _kill_at(monkeypatch, k: int) -> dict:
    """Make the k-th file-system step of a save 'kill' the process; count the steps."""
    count = {"n": 0}
    for owner, attr in ((torch, "save"), (os, "replace"), (os, "fsync"), (os, "rmdir")):
        original = getattr(owner, attr)

        def step(*args, _original=original, **kwargs):
            count["n"] += 1
            if count["n"] == k:
                raise _Killed
            return _original(*args, **kwargs)

        monkeypatch.setattr(owner, attr, step)
    return count


def test_a_kill_at_any_step_leaves_the_old_or_the_new_set(tmp_path, monkeypatch):
    steps = None
    k = 1
    while steps is None or k <= steps + 1:
        folder = tmp_path / f"k{k}"
        save_set(str(folder), "latest", _files(1.0), {"total_iters": 1})
        with monkeypatch.context() as patch:
            count = _kill_at(patch, k)
            try:
                save_set(str(folder), "latest", _files(2.0), {"total_iters": 2})
                steps = count["n"]  # the whole save, not killed
            except _Killed:
                pass
        # Readers see one whole set, before and after the writer recovers the folder.
        version = _version(folder)
        assert version in (1.0, 2.0)
        recover(str(folder))
        assert _version(folder) == version
        manifest = verify_set(str(folder), "latest")
        assert manifest["total_iters"] == int(version)
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            [*NAMES, "latest_checkpoint.json"]
        )
        k += 1
    assert steps >= 2 * len(NAMES)  # every file written and moved: each was a kill point


_KILL_SCRIPT = """
import os, signal, sys, torch
sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r})
from nerco.networks.checkpoint_set import save_set
from test_checkpoints import _files
folder, phase = sys.argv[1], sys.argv[2]
save_set(folder, "latest", _files(1.0), {{"total_iters": 1}})
owner, name, after = (torch, "save", 2) if phase == "write" else (os, "replace", 2)
original, calls = getattr(owner, name), []
def step(*args, **kwargs):
    result = original(*args, **kwargs)
    calls.append(1)
    if len(calls) == after:
        os.kill(os.getpid(), signal.SIGKILL)
    return result
setattr(owner, name, step)
save_set(folder, "latest", _files(2.0), {{"total_iters": 2}})
"""


@pytest.mark.parametrize(("phase", "expected"), [("write", 1.0), ("move", 2.0)])
def test_sigkill_in_the_middle_of_a_save(tmp_path, phase, expected):
    script = _KILL_SCRIPT.format(root=str(ROOT), tests=str(ROOT / "tests"))
    folder = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-c", script, str(folder), phase],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    # Killed while writing: the old set; killed while moving files into place: the new one,
    # whole, for readers at once and on the final names once the writer recovers.
    assert _version(folder) == expected
    recover(str(folder))
    assert _version(folder) == expected
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_a_file_from_another_save_is_refused(tmp_path):
    save_set(str(tmp_path), "latest", _files(1.0), {"total_iters": 1, "epoch": 1})
    torch.save({"w": torch.full((64,), 9.0)}, tmp_path / "latest_net_H.pth")
    with pytest.raises(UserError) as info:
        read_state_dict(str(tmp_path / "latest_net_H.pth"))
    message = str(info.value)
    assert "latest_net_H.pth does not belong to the set" in message
    assert "latest_checkpoint.json" in message and "\n" not in message
    with pytest.raises(UserError, match="does not belong"):
        verify_set(str(tmp_path), "latest")
    read_state_dict(str(tmp_path / "latest_net_G_A.pth"))  # the others still load


def test_files_without_a_manifest_load_as_before(tmp_path):
    """The authors' released checkpoints: plain state_dicts, no manifest."""
    torch.save({"w": torch.ones(3)}, tmp_path / "latest_net_G_A.pth")
    assert torch.equal(read_state_dict(str(tmp_path / "latest_net_G_A.pth"))["w"], torch.ones(3))
    assert verify_set(str(tmp_path), "latest") is None


def test_manifest_lists_sizes_and_digests(tmp_path):
    import hashlib

    manifest = save_set(str(tmp_path), 7, _files(1.0), {"epoch": 7, "total_iters": 70})
    on_disk = json.loads((tmp_path / "7_checkpoint.json").read_text())
    assert on_disk == manifest and on_disk["epoch"] == 7 and on_disk["total_iters"] == 70
    for name in NAMES:
        data = (tmp_path / name).read_bytes()
        assert on_disk["files"][name] == {
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }


def test_disk_full_while_writing_leaves_the_previous_set(tmp_path, monkeypatch):
    save_set(str(tmp_path), "latest", _files(1.0), {"total_iters": 1})
    original, calls = torch.save, []

    def full(obj, handle, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(obj, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(SaveFailed) as info:
        save_set(str(tmp_path), "latest", _files(2.0), {"total_iters": 2})
    message = str(info.value)
    assert "disk full" in message and "intact" in message and "\n" not in message
    assert _version(tmp_path) == 1.0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_free_space_is_checked_before_writing(tmp_path, monkeypatch):
    save_set(str(tmp_path), "latest", _files(1.0), {"total_iters": 1})
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(
        shutil, "disk_usage", lambda _path: usage._replace(free=checkpoint_set.FREE_SPACE_MARGIN)
    )
    with pytest.raises(SaveFailed, match="not enough free disk space") as info:
        save_set(str(tmp_path), "latest", _files(2.0), {"total_iters": 2})
    assert "GB are free" in str(info.value)
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before


def test_tensor_bytes_counts_nested_tensors():
    state = {
        "a": torch.zeros(10),
        "b": [torch.zeros(2, 3, dtype=torch.float16), 5],
        "c": {"d": (torch.zeros(4, dtype=torch.int64),)},
    }
    assert checkpoint_set.tensor_bytes(state) == 40 + 12 + 32


def test_label_of_every_kind_of_file():
    assert checkpoint_set.label_of("latest_net_G_A.pth") == "latest"
    assert checkpoint_set.label_of("iter_5000_net_D_B_edge.pth") == "iter_5000"
    assert checkpoint_set.label_of("40_train_state.pth") == "40"
    assert checkpoint_set.label_of("iter_7_checkpoint.json") == "iter_7"
    assert checkpoint_set.label_of("notes.txt") is None


def test_dropping_a_state_keeps_the_set_verifiable(tmp_path):
    save_set(
        str(tmp_path),
        3,
        {"3_net_G_A.pth": {"w": torch.ones(2)}, "3_train_state.pth": {"s": torch.ones(2)}},
        {},
    )
    checkpoint_set.drop_file(str(tmp_path), 3, "3_train_state.pth")
    assert not (tmp_path / "3_train_state.pth").exists()
    assert list(verify_set(str(tmp_path), 3)["files"]) == ["3_net_G_A.pth"]


def test_interrupted_save_is_finished_by_the_writer(tmp_path):
    """A folder left in step 3 (committed, partly moved): readers see the new set whole."""
    save_set(str(tmp_path), "latest", _files(1.0), {"total_iters": 1})
    staged = tmp_path / "stage"
    save_set(str(staged), "latest", _files(2.0), {"total_iters": 2})
    committed = tmp_path / ".saved_latest"
    committed.mkdir()
    for name in [*NAMES, "latest_checkpoint.json"]:
        shutil.copy(staged / name, committed / name)
    os.replace(committed / NAMES[0], tmp_path / NAMES[0])  # one file already moved
    assert _version(tmp_path) == 2.0
    recover(str(tmp_path))
    assert not committed.exists() and _version(tmp_path) == 2.0


def test_pruning_takes_every_numbered_label_and_nothing_else(tmp_path):
    from nerco.training.resume import prune_states

    for label in ("3", "iter_40", "iter_50", "latest", "best"):
        save_set(
            str(tmp_path),
            label,
            {
                f"{label}_net_G_A.pth": {"w": torch.ones(1)},
                f"{label}_train_state.pth": {"s": torch.ones(1)},
            },
            {},
        )
    assert sorted(prune_states(str(tmp_path), "iter_50")) == [
        "3_train_state.pth",
        "iter_40_train_state.pth",
    ]
    assert sorted(p.name for p in tmp_path.glob("*_train_state.pth")) == [
        "best_train_state.pth",
        "iter_50_train_state.pth",
        "latest_train_state.pth",
    ]
    assert len(list(tmp_path.glob("*_net_G_A.pth"))) == 5
    for label in ("3", "iter_40"):
        assert verify_set(str(tmp_path), label) is not None  # the manifest lost the state
