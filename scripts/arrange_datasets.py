"""Arrange an unpacked LOL or LSRW download as ``<out>/{trainA,trainB,testA,testB}``.

    python scripts/arrange_datasets.py lol  --src ~/Downloads/LOLdataset --out dataset/LOL
    python scripts/arrange_datasets.py lsrw --src ~/Downloads/LSRW       --out dataset/LSRW

The split follows the NeRCo authors' training recipe (unpaired): trainA = the low-light
images of the training split, trainB = its normal-light images (never paired:
``UnalignedDataset`` draws a random trainB image for each trainA image), testA = the
evaluation split's low-light images, testB = their normal-light ground truth (same file
names, for scoring). Folder names as the archives unpack:

* LOL (Wei et al., BMVC 2018): ``our485/{low,high}`` (training), ``eval15/{low,high}``.
* LSRW (Hai et al., R2RNet): ``Training data/{Huawei,Nikon}/{low,high}`` (or
  ``{Huawei,Nikon}/{low,high}`` directly) and ``Eval/{Huawei,Nikon}/{low,high}``. The
  two cameras' files are prefixed with the camera name (``Huawei_``, ``Nikon_``) because
  their numbering overlaps.

``--src`` may be the folder that holds these sub-folders or its parent, when the
parent holds exactly one folder (as ``LOLdataset/`` inside the unpacked zip).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nerco.runtime import (
    UserError,  # noqa: E402
    run_command,  # noqa: E402
)

#: data.image_folder.IMG_EXTENSIONS, repeated so that this script starts without torch
#: (tests/test_arrange.py checks that the two agree).
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".tif", ".tiff")

logger = logging.getLogger("arrange_datasets")

SPLITS = ("trainA", "trainB", "testA", "testB")
LSRW_CAMERAS = ("Huawei", "Nikon")


@dataclass(frozen=True)
class Source:
    """One input folder and where its images go."""

    folder: str  # relative to the dataset root
    split: str  # trainA, trainB, testA or testB
    prefix: str = ""  # prepended to the file names


def lol_sources(root: str) -> list[Source]:
    return [
        Source("our485/low", "trainA"),
        Source("our485/high", "trainB"),
        Source("eval15/low", "testA"),
        Source("eval15/high", "testB"),
    ]


def lsrw_sources(root: str) -> list[Source]:
    # The training cameras sit under "Training data/" in the archive; accept them at the
    # root too (some re-uploads drop that level).
    train = "Training data" if os.path.isdir(os.path.join(root, "Training data")) else ""
    sources = []
    for camera in LSRW_CAMERAS:
        prefix = camera + "_"
        sources += [
            Source(os.path.join(train, camera, "low"), "trainA", prefix),
            Source(os.path.join(train, camera, "high"), "trainB", prefix),
            Source(os.path.join("Eval", camera, "low"), "testA", prefix),
            Source(os.path.join("Eval", camera, "high"), "testB", prefix),
        ]
    return sources


#: dataset name → (layout function, the sub-folder that identifies its root, description).
DATASETS = {
    "lol": (lol_sources, "our485", "our485/{low,high} and eval15/{low,high}"),
    "lsrw": (
        lsrw_sources,
        "Eval",
        "Training data/{Huawei,Nikon}/{low,high} and Eval/{Huawei,Nikon}/{low,high}",
    ),
}


def find_root(src: str, name: str) -> str:
    """``src`` itself, or its only sub-folder, whichever holds the identifying folder."""
    if not os.path.isdir(src):
        raise UserError(
            f"--src {src} does not exist or is not a folder: give the folder "
            f"the {name.upper()} archive unpacked to"
        )
    marker, layout = DATASETS[name][1], DATASETS[name][2]
    if os.path.isdir(os.path.join(src, marker)):
        return src
    children = [
        c
        for c in os.listdir(src)
        if os.path.isdir(os.path.join(src, c)) and not c.startswith(("__MACOSX", "."))
    ]
    if len(children) == 1 and os.path.isdir(os.path.join(src, children[0], marker)):
        return os.path.join(src, children[0])
    raise UserError(
        f"--src {src} is not an unpacked {name.upper()} archive: expected "
        f"{layout} in it (or in its only sub-folder)"
    )


def list_images(folder: str) -> list[str]:
    """Image file names directly in ``folder``, sorted."""
    return sorted(
        f
        for f in os.listdir(folder)
        if f.lower().endswith(IMG_EXTENSIONS) and os.path.isfile(os.path.join(folder, f))
    )


def plan(src: str, name: str) -> list[tuple[str, str]]:
    """(source file, destination relative to --out) for every image; checks the layout."""
    root = find_root(src, name)
    sources = DATASETS[name][0](root)
    missing = [s.folder for s in sources if not os.path.isdir(os.path.join(root, s.folder))]
    if missing:
        raise UserError(
            f"{root} lacks {', '.join(missing)}: expected {DATASETS[name][2]} "
            f"as the {name.upper()} archive unpacks"
        )
    moves = []
    for source in sources:
        folder = os.path.join(root, source.folder)
        files = list_images(folder)
        if not files:
            raise UserError(f"{folder} holds no image files")
        moves += [
            (os.path.join(folder, f), os.path.join(source.split, source.prefix + f)) for f in files
        ]
    stems = {
        split: {
            os.path.splitext(os.path.basename(d))[0]
            for _, d in moves
            if d.startswith(split + os.sep)
        }
        for split in ("testA", "testB")
    }
    unmatched = stems["testA"] ^ stems["testB"]
    if unmatched:
        logger.warning(
            "%d evaluation images have no counterpart of the same name in the "
            "other folder (e.g. %s); they will not be scored",
            len(unmatched),
            sorted(unmatched)[0],
        )
    return moves


def arrange(name: str, src: str, out: str, mode: str = "copy", force: bool = False) -> dict:
    """Copy (or symlink) the images into ``out``; return the number of images per split."""
    moves = plan(src, name)
    existing = [
        s
        for s in SPLITS
        if os.path.isdir(os.path.join(out, s)) and os.listdir(os.path.join(out, s))
    ]
    if existing and not force:
        raise UserError(
            f"{out} already holds {', '.join(existing)}: pass --force to replace "
            f"them, or choose another --out"
        )
    for split in SPLITS:
        target = os.path.join(out, split)
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        elif os.path.lexists(target):
            os.remove(target)
        os.makedirs(target)
    for source, destination in moves:
        path = os.path.join(out, destination)
        if mode == "symlink":
            os.symlink(os.path.abspath(source), path)
        else:
            shutil.copy2(source, path)
    counts = {s: sum(d.startswith(s + os.sep) for _, d in moves) for s in SPLITS}
    logger.info(
        "%s in %s (%s): %s",
        name.upper(),
        out,
        mode,
        ", ".join(f"{s} {n}" for s, n in counts.items()),
    )
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Arrange an unpacked LOL or LSRW download as trainA/trainB/testA/testB "
        "(unpaired training on the training split, as the NeRCo authors did).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("dataset", choices=sorted(DATASETS), help="which archive --src holds")
    parser.add_argument("--src", required=True, help="folder the archive was unpacked to")
    parser.add_argument("--out", required=True, help="dataset folder to create, e.g. dataset/LOL")
    parser.add_argument(
        "--mode",
        choices=("copy", "symlink"),
        default="copy",
        help="copy the files, or link to them (absolute symbolic links)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace trainA/trainB/testA/testB if --out already has them",
    )
    args = parser.parse_args(argv)

    def arrange_folders() -> None:
        arrange(args.dataset, args.src, args.out, args.mode, args.force)

    return run_command(arrange_folders, "arrange")


if __name__ == "__main__":
    sys.exit(main())
