"""The demo dataset's folder: its manifest, whether it is complete, and whether it is ours.

``python -m nerco.demo_data`` (:mod:`data.demo`) writes ``manifest.json`` beside the
images, with the settings and each file's SHA-256. That is how it knows its own output:
``--force`` rebuilds a folder only when it holds that manifest, the split folders and listed
files with their recorded hashes, and nothing else; then it deletes exactly those files.
Anything else (a user's file, an edited image, a folder it never wrote) is left alone, with
one line saying why.
"""

from __future__ import annotations

import hashlib
import json
import os

from nerco.runtime import UserError

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
GENERATOR = "nerco.demo_data"  # the manifest's "generator": the command that writes it
SPLIT_FOLDERS = ("trainA", "trainB", "testA", "testB")


def _read_manifest(out: str) -> dict | None:
    """The manifest this module wrote in ``out``, or None (absent, unreadable, foreign)."""
    try:
        with open(os.path.join(out, MANIFEST)) as handle:
            manifest = json.load(handle)
    except (OSError, ValueError):
        return None
    if (
        not isinstance(manifest, dict)
        or manifest.get("generator") != GENERATOR
        or not isinstance(manifest.get("images"), list)
    ):
        return None
    return manifest


def _sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _own_files(out: str) -> tuple[list[str], str | None]:
    """The files under ``out`` (manifest last), and why ``out`` is not entirely ours, or None.

    It is ours when it holds this module's manifest, the split folders, and files that the
    manifest lists with their recorded SHA-256 (some may be missing), and nothing else.
    """
    manifest = _read_manifest(out)
    if manifest is None:
        entries = sorted(os.listdir(out))
        return [], (
            f"it holds {entries[0]}{' and more' if len(entries) > 1 else ''} but no "
            f"{MANIFEST} written by {GENERATOR}"
        )
    listed = {
        record.get("file"): record.get("sha256")
        for record in manifest["images"]
        if isinstance(record, dict)
    }
    found = []
    for root, dirs, files in os.walk(out):
        for name in sorted(dirs) + sorted(files):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, out).replace(os.sep, "/")
            if os.path.islink(path):
                return found, f"{rel} is a link"
            if name in dirs:
                if rel not in SPLIT_FOLDERS:
                    return found, f"{rel}/ is not one of its folders"
            elif rel != MANIFEST:
                if rel not in listed:
                    return found, f"{rel} is not one of its files"
                if _sha256(path) != listed[rel]:
                    return found, f"{rel} differs from the file it wrote"
                found.append(path)
    return found + [os.path.join(out, MANIFEST)], None


def foreign_content(out: str) -> str | None:
    """Why ``out`` is not entirely a demo dataset this module wrote, or None if it is."""
    return _own_files(out)[1]


def is_complete(out: str, settings: dict) -> bool:
    """True when ``out`` holds the manifest of ``settings`` (as JSON reads them back) and
    every file it lists, unaltered."""
    manifest = _read_manifest(out)
    if (
        manifest is None
        or manifest.get("version") != FORMAT_VERSION
        or manifest.get("settings") != settings
        or not manifest["images"]
    ):
        return False
    try:
        return all(
            _sha256(os.path.join(out, record["file"])) == record["sha256"]
            for record in manifest["images"]
        )
    except (OSError, KeyError, TypeError):
        return False


def check_replaceable(out: str, force: bool) -> None:
    """Raise UserError unless ``out`` is absent, empty, or (with ``force``) our own output."""
    if not os.path.lexists(out):
        return
    if not os.path.isdir(out) or os.path.islink(out):
        raise UserError(f"--out {out} exists and is not a folder: choose another --out")
    if not os.listdir(out):
        return
    reason = foreign_content(out)
    if reason is not None:
        raise UserError(
            f"--out {out} is not a demo dataset that {GENERATOR} wrote ({reason}): "
            f"nothing was removed{', even with --force' if force else ''}; "
            f"choose another --out, or empty the folder yourself"
        )
    if not force:
        raise UserError(
            f"--out {out} holds a demo dataset with other settings or missing "
            f"files: pass --force to rebuild it, or choose another --out"
        )


def remove_own(out: str) -> None:
    """Delete our dataset in ``out`` file by file (never a whole tree), then its folders.

    Raises:
        UserError: ``out`` holds something that is not ours (nothing is removed then), or
            something appeared while removing (it stays).
    """
    files, reason = _own_files(out)
    if reason is not None:
        raise UserError(
            f"--out {out} is not a demo dataset that {GENERATOR} wrote ({reason}): "
            f"nothing was removed"
        )
    try:
        for path in files:
            os.remove(path)
        for name in SPLIT_FOLDERS:
            if os.path.isdir(os.path.join(out, name)):
                os.rmdir(os.path.join(out, name))
        os.rmdir(out)
    except OSError as err:  # something new appeared meanwhile: it stays
        raise UserError(
            f"--out {out} changed while the dataset was rebuilt ({err}): what is "
            f"left there is not ours; move it away and run again"
        ) from None
