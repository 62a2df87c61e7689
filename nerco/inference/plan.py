"""What test.py will do, decided before any image is decoded: the jobs and their names.

:func:`plan` lists the inputs (``--dataroot``'s ``<phase>A`` folder, or ``--input``: a photo
or a folder at any depth) and gives each a :class:`Job`: its result file and the input the
page shows. With ``--input`` results are ``<output>/<stem>.png``; inputs that share a stem
are named after their path below ``--input`` (``day/photo.jpg`` → ``day_photo_jpg.png``),
and a name that still clashes stops the run before anything is enhanced.
:func:`match_gt` pairs each job with its ground truth for ``--gt`` and checks the sizes up
front, from the file headers.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass

from nerco.runtime import UserError


@dataclass(frozen=True)
class Job:
    """One image to enhance: its file, its output name and where the result goes."""

    path: str
    name: str
    result: str
    shown_input: str  # the input image the page shows


def output_stems(paths: list[str], root: str) -> list[str]:
    """File stems, made unique with their sub-folder when two inputs share a stem."""
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    return [
        os.path.splitext(os.path.relpath(p, root))[0].replace(os.sep, "_").replace(".", "_")
        for p in paths
    ]


def flat_output_names(paths: list[str], root: str) -> list[str]:
    """Output names for --input: the stem, or for inputs sharing a stem, their path below
    ``root`` with separators and dots as ``_`` (a/photo.jpg → a_photo_jpg).

    Raises:
        UserError: two inputs still get one name (e.g. a_b/c.png and a/b_c.png).
    """
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    shared = {s for s, n in Counter(stems).items() if n > 1}
    names = [
        os.path.relpath(p, root).replace(os.sep, "_").replace(".", "_") if s in shared else s
        for p, s in zip(paths, stems)
    ]
    first: dict[str, str] = {}
    for path, name in zip(paths, names):
        other = first.setdefault(name, path)
        if other != path:
            raise UserError(f"{other} and {path} would both be written as {name}.png: rename one")
    return names


def input_paths(opt) -> tuple[list[str], str]:
    """The --input images (sorted) and the folder their names are relative to."""
    from data.image_folder import is_image_file, require_images

    source = os.path.normpath(opt.input)
    if os.path.isfile(source):
        if not is_image_file(source):
            raise UserError(f"--input {source} is not an image file (.jpg .png .bmp .tif ...)")
        return [source], os.path.dirname(source)
    if not os.path.isdir(source):
        raise UserError(f"--input {source} does not exist: give a photo or a folder of photos")
    output = os.path.realpath(opt.output)
    if output == os.path.realpath(source):
        raise UserError("--output must not be the --input folder: results would mix with inputs")
    paths = [
        p
        for p in require_images(source, max_dataset_size=opt.max_dataset_size)
        if not os.path.realpath(p).startswith(output + os.sep)
    ]  # skip earlier results
    if not paths:
        raise UserError(f"--input {source} holds no image outside --output")
    return paths, source


def plan(opt) -> tuple[list[Job], str]:
    """The images to enhance and the folder of the page / scores."""
    if opt.input:
        paths, root = input_paths(opt)
        paths = paths[: opt.num_test] if opt.num_test else paths
        jobs = [
            Job(p, n, os.path.join(opt.output, f"{n}.png"), p)
            for p, n in zip(paths, flat_output_names(paths, root))
        ]
        return jobs, opt.output
    from data.image_folder import require_images

    folder = os.path.join(opt.dataroot, f"{opt.phase}A")
    paths = require_images(folder, max_dataset_size=opt.max_dataset_size)
    paths = paths[: opt.num_test] if opt.num_test else paths
    web_dir = os.path.join(opt.results_dir, opt.name, f"{opt.phase}_{opt.epoch}")
    image = os.path.join(web_dir, "images", "{}_{}.png")
    return [
        Job(p, s, image.format(s, "fake_B"), image.format(s, "real_A"))
        for p, s in zip(paths, output_stems(paths, folder))
    ], web_dir


def result_size(path: str, displayed: bool) -> tuple[int, int] | None:
    """(width, height) of an input's result (EXIF orientation applied when ``displayed``);
    None for a file that cannot be opened (it fails, with a warning, when it is enhanced)."""
    from PIL import Image

    from data.image_folder import displayed_size

    try:
        if displayed:
            return displayed_size(path)
        with Image.open(path) as image:
            return image.size
    except (UserError, OSError, ValueError, SyntaxError):
        return None


def match_gt(jobs: list[Job], gt_dir: str, displayed: bool = False) -> list:
    """Pair each job with the ground truth of its input's stem, checking sizes up front
    (the result's size: with ``displayed``, the EXIF orientation applied).

    Raises:
        UserError: a missing ground truth or a size that differs from the input's.
    """
    from PIL import Image

    from data.image_folder import require_images
    from nerco.evaluation.pairing import Pair, index_by_stem

    index = index_by_stem(require_images(gt_dir, "ground-truth"), gt_dir)
    stems = [os.path.splitext(os.path.basename(job.path))[0] for job in jobs]
    missing = [job.path for job, stem in zip(jobs, stems) if stem not in index]
    if missing:
        raise UserError(
            f"no ground truth in --gt {gt_dir} for {len(missing)} of {len(jobs)} "
            f"images, e.g. {missing[0]} (ground truth has the input's file stem)"
        )
    for job, stem in zip(jobs, stems):
        size = result_size(job.path, displayed)
        with Image.open(index[stem]) as b:
            if size is not None and size != b.size:
                raise UserError(
                    f"{job.path} is {size[0]}x{size[1]} but its ground truth "
                    f"{index[stem]} is {b.size[0]}x{b.size[1]}: sizes must match"
                )
    return [
        Pair(job.name, job.result, index[stem], job.shown_input) for job, stem in zip(jobs, stems)
    ]
