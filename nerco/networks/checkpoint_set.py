"""A label's checkpoint files as one unit: written together, committed at once, checked on load.

A save under label L (``latest``, an epoch number, ``iter_<N>``) writes the eight
``L_net_<NAME>.pth`` and ``L_train_state.pth``. So that a kill at any moment (SIGKILL,
torchrun's kill after its shutdown timeout, a node that goes down) leaves either the previous
complete set or the new one:

1. every file is written into the folder ``.saving_L/`` beside them, with the manifest
   ``L_checkpoint.json`` (the epoch, the iteration, each file's size and SHA-256), and synced;
2. the folder is renamed ``.saved_L/``: that one rename is the commit;
3. its files are moved onto their final names, the manifest last, and the folder is removed.

A kill during 1 leaves ``.saving_L/``, which the next save removes: the previous set was not
touched. A kill during 3 leaves ``.saved_L/``: the writer finishes the moves before it saves or
resumes (:func:`recover`), and readers take each file from there while it exists
(:func:`resolve`), so they always see the new set whole. A file read under its final name is
checked against the manifest (:func:`verified`); one that does not belong to the set is
refused in one line. Files without a manifest (the authors' released checkpoints, saves of
older versions) load as they are. Nothing here knows about training: the inference path uses
the reading half. Writer and reader share one on-disk protocol, so they stay in one module.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import time

import torch

from nerco.runtime import UserError

logger = logging.getLogger(__name__)

FORMAT = "nerco-checkpoint-set"
VERSION = 1
MANIFEST_SUFFIX = "_checkpoint.json"
PENDING_PREFIX = ".saving_"
COMMITTED_PREFIX = ".saved_"
#: Kept free beyond the estimated size of a set, for the manifest and the file system.
FREE_SPACE_MARGIN = 64 * 2**20


class SaveFailed(UserError):
    """A set could not be written (disk full, no permission...); the previous one is intact."""


def manifest_name(label: str | int) -> str:
    return f"{label}{MANIFEST_SUFFIX}"


def label_of(filename: str) -> str | None:
    """The label of ``<label>_net_<NAME>.pth``, ``<label>_train_state.pth`` or a manifest."""
    for marker in ("_net_", "_train_state.pth", MANIFEST_SUFFIX):
        if marker in filename:
            return filename.split(marker, 1)[0]
    return None


def _pending(folder: str, label: str | int) -> str:
    return os.path.join(folder, f"{PENDING_PREFIX}{label}")


def _committed(folder: str, label: str | int) -> str:
    return os.path.join(folder, f"{COMMITTED_PREFIX}{label}")


# ------------------------------------------------------------------------- writing
def tensor_bytes(obj) -> int:
    """Bytes of every tensor inside ``obj`` (nested dicts, lists and tuples)."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(tensor_bytes(v) for v in obj)
    return 0


def _fsync_folder(folder: str) -> None:
    """Make renames in ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _write(obj, path: str) -> dict:
    """torch.save ``obj`` to ``path``, synced; return its manifest entry."""
    with open(path, "wb") as handle:
        torch.save(obj, handle)
        handle.flush()
        os.fsync(handle.fileno())
    return {"bytes": os.path.getsize(path), "sha256": _sha256(path)}


def _check_free_space(folder: str, label: str | int, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if free < needed + FREE_SPACE_MARGIN:
        raise SaveFailed(
            f"not enough free disk space in {folder} to save '{label}': it needs about "
            f"{(needed + FREE_SPACE_MARGIN) / 1e9:.2f} GB and {free / 1e9:.2f} GB are free; free "
            f"some space, then resume with --continue_train (the files saved before are intact)"
        )


def _move_into_place(folder: str, label: str | int) -> None:
    """Step 3: the committed files onto their final names, the manifest last."""
    committed = _committed(folder, label)
    names = sorted(os.listdir(committed), key=lambda n: n == manifest_name(label))
    for name in names:
        try:
            os.replace(os.path.join(committed, name), os.path.join(folder, name))
        except FileNotFoundError:  # moved meanwhile by another recovering process
            pass
    try:
        os.rmdir(committed)
    except FileNotFoundError:
        pass
    _fsync_folder(folder)


def save_set(folder: str, label: str | int, files: dict[str, object], info: dict) -> dict:
    """Write ``files`` (final file name → object for ``torch.save``) as label ``label``'s set.

    Args:
        folder: The run's checkpoint folder (created if missing).
        label: ``latest``, an epoch number or ``iter_<N>``.
        files: What to save under each file name (names start with ``<label>_``).
        info: Recorded in the manifest beside the files (epoch, total_iters...).

    Returns:
        The manifest.

    Raises:
        SaveFailed: Too little free space (checked first), or writing failed (ENOSPC, EDQUOT,
            EACCES...); the previous set of ``label`` is left as it was.
    """
    os.makedirs(folder, exist_ok=True)
    recover(folder, label)
    _check_free_space(folder, label, sum(tensor_bytes(obj) + 2**20 for obj in files.values()))
    pending = _pending(folder, label)
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "label": str(label),
        "saved_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        **info,
        "files": {},
    }
    try:
        os.makedirs(pending)
        for name, obj in files.items():
            manifest["files"][name] = _write(obj, os.path.join(pending, name))
        with open(os.path.join(pending, manifest_name(label)), "w") as handle:
            json.dump(manifest, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        _fsync_folder(pending)
    except OSError as err:
        shutil.rmtree(pending, ignore_errors=True)
        full = err.errno in (errno.ENOSPC, errno.EDQUOT)
        raise SaveFailed(
            f"saving '{label}' in {folder} failed: {err.strerror or err}"
            f"{' (disk full)' if full else ''}; the files saved before are intact; "
            f"{'free some space, then ' if full else ''}resume with --continue_train"
        ) from None
    try:
        os.replace(pending, _committed(folder, label))  # the commit
        _fsync_folder(folder)
        _move_into_place(folder, label)
    except OSError as err:
        raise SaveFailed(
            f"saving '{label}' in {folder}: moving the new files into place "
            f"failed ({err.strerror or err}); the next run finishes it"
        ) from None
    return manifest


def recover(folder: str, label: str | int | None = None) -> None:
    """Finish committed saves and drop unfinished ones (of ``label``, or of every label).

    Only the process that writes the folder calls this (a trainer before it saves or
    resumes); readers use :func:`resolve`, which changes nothing.
    """
    if not os.path.isdir(folder):
        return
    for entry in os.listdir(folder):
        for prefix in (COMMITTED_PREFIX, PENDING_PREFIX):
            if not entry.startswith(prefix):
                continue
            found = entry[len(prefix) :]
            if label is not None and found != str(label):
                continue
            if prefix == COMMITTED_PREFIX:
                logger.info("finishing the interrupted save of '%s' in %s", found, folder)
                _move_into_place(folder, found)
            else:
                shutil.rmtree(os.path.join(folder, entry), ignore_errors=True)


# ------------------------------------------------------------------------- reading
def resolve(folder: str, name: str) -> str:
    """Where file ``name`` of its label's newest set is: the committed folder, if a save is
    being finished and still holds it, else its final name."""
    label = label_of(name)
    if label is not None:
        staged = os.path.join(_committed(folder, label), name)
        if os.path.exists(staged):
            return staged
    return os.path.join(folder, name)


def _read_json(path: str):
    """The JSON in ``path``; None when it does not exist."""
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UserError(
            f"{path} cannot be read ({exc}); delete it to load the files without checking them"
        ) from None


def read_manifest(folder: str, label: str | int) -> dict | None:
    """The manifest of ``label``'s set, or None when it has none (older or foreign files)."""
    path = resolve(folder, manifest_name(label))
    manifest = _read_json(path)
    if manifest is None and path != os.path.join(folder, manifest_name(label)):
        path = resolve(folder, manifest_name(label))  # a save finishing meanwhile moved it
        manifest = _read_json(path)
    if manifest is None:
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UserError(
            f"{path} is not a NeRCo checkpoint manifest; delete it to load the "
            f"files without checking them"
        )
    return manifest


def _check(folder: str, name: str, manifest: dict) -> str:
    entry = manifest["files"].get(name)
    path = resolve(folder, name)
    where = os.path.join(folder, manifest_name(manifest["label"]))
    saved = f"saved at epoch {manifest.get('epoch')}, total_iters {manifest.get('total_iters')}"
    if entry is None:
        raise UserError(
            f"{os.path.join(folder, name)} is not part of the set that {where} "
            f"lists ({saved}); delete {where} if you put it there on purpose"
        )
    if not os.path.exists(path):
        raise FileNotFoundError(path)
    if os.path.getsize(path) != entry["bytes"] or _sha256(path) != entry["sha256"]:
        raise UserError(
            f"{os.path.join(folder, name)} does not belong to the set listed in "
            f"{where} ({saved}): files of different saves are mixed; load another "
            f"--epoch, or delete {where} if you replaced the file on purpose"
        )
    return path


def verified(path: str) -> str:
    """``path`` (a ``<label>_...`` checkpoint file) checked against its set's manifest.

    Returns the path to read: ``path`` itself, or its copy in a save being finished.
    Files without a manifest are returned unchecked.

    Raises:
        UserError: The file does not belong to the set its manifest lists.
        FileNotFoundError: The manifest lists the file and it is missing.
    """
    folder, name = os.path.split(path)
    label = label_of(name)
    if label is None:
        return path
    for attempt in range(3):  # a save being finished meanwhile moves the files
        manifest = read_manifest(folder, label)
        if manifest is None:
            return path
        try:
            return _check(folder, name, manifest)
        except (UserError, FileNotFoundError):
            if attempt == 2:
                raise
            time.sleep(0.1)
    raise AssertionError("not reached")


def verify_set(folder: str, label: str | int, optional: tuple[str, ...] = ()) -> dict | None:
    """Check every file of ``label``'s set (a file in ``optional`` may have been deleted).

    Returns:
        The manifest, or None for files without one.
    """
    manifest = read_manifest(folder, label)
    if manifest is None:
        return None
    for name in manifest["files"]:
        try:
            _check(folder, name, manifest)
        except FileNotFoundError:
            if name not in optional:
                raise UserError(
                    f"{os.path.join(folder, name)} is missing from the set listed "
                    f"in {os.path.join(folder, manifest_name(label))}"
                ) from None
    return manifest


def drop_file(folder: str, label: str | int, name: str) -> None:
    """Remove ``name`` from ``label``'s set: the manifest first, then the file."""
    manifest = read_manifest(folder, label)
    if manifest is not None and name in manifest["files"]:
        del manifest["files"][name]
        path = os.path.join(folder, manifest_name(label))
        with open(path + ".tmp", "w") as handle:
            json.dump(manifest, handle, indent=1)
        os.replace(path + ".tmp", path)
    try:
        os.remove(os.path.join(folder, name))
    except FileNotFoundError:
        pass
