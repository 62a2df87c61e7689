"""Enhance images with a trained NeRCo: a dataset's testA folder, or any photos.

    python test.py --dataroot ./dataset/LOL --name LOL
    python test.py --name LOL --input photos/ --output enhanced/ [--gt photos_gt/]

Only Pre, H and G_A are loaded (CLIP is never built, testB is never read). With --dataroot,
results go to <results_dir>/<name>/test_<epoch>/images/<stem>_fake_B.png at each input's
exact size, with index.html showing input and output side by side. With --input (a file, or
a folder searched at any depth) each result is <output>/<input stem>.png; inputs that share a
stem are named after their path below --input instead (day/photo.jpg → day_photo_jpg.png).
With --gt, the results are scored against the ground truth of the same stem (PSNR/SSIM,
nerco.evaluate's protocol): scores.json and an index.html with input | NeRCo | ground truth
and the scores go to the results folder (--output with --input).
"""

from __future__ import annotations

import logging
import os
import sys
from collections import Counter
from dataclasses import dataclass

from nerco.errors import UserError
from nerco.runtime import select_device, setup_logging
from options import TestOptions

logger = logging.getLogger("test")


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
    return [os.path.splitext(os.path.relpath(p, root))[0].replace(os.sep, "_").replace(".", "_")
            for p in paths]


def flat_output_names(paths: list[str], root: str) -> list[str]:
    """Output names for --input: the stem, or for inputs sharing a stem, their path below
    ``root`` with separators and dots as ``_`` (a/photo.jpg → a_photo_jpg).

    Raises:
        UserError: two inputs still get one name (e.g. a_b/c.png and a/b_c.png).
    """
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    shared = {s for s, n in Counter(stems).items() if n > 1}
    names = [os.path.relpath(p, root).replace(os.sep, "_").replace(".", "_") if s in shared
             else s for p, s in zip(paths, stems)]
    first: dict[str, str] = {}
    for path, name in zip(paths, names):
        other = first.setdefault(name, path)
        if other != path:
            raise UserError(f"{other} and {path} would both be written as {name}.png: "
                            f"rename one")
    return names


def _input_paths(opt) -> tuple[list[str], str]:
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
    paths = [p for p in require_images(source, max_dataset_size=opt.max_dataset_size)
             if not os.path.realpath(p).startswith(output + os.sep)]  # skip earlier results
    if not paths:
        raise UserError(f"--input {source} holds no image outside --output")
    return paths, source


def plan(opt) -> tuple[list[Job], str]:
    """The images to enhance and the folder of the page / scores."""
    if opt.input:
        paths, root = _input_paths(opt)
        paths = paths[: opt.num_test] if opt.num_test else paths
        jobs = [Job(p, n, os.path.join(opt.output, f"{n}.png"), p)
                for p, n in zip(paths, flat_output_names(paths, root))]
        return jobs, opt.output
    from data.image_folder import require_images

    folder = os.path.join(opt.dataroot, f"{opt.phase}A")
    paths = require_images(folder, max_dataset_size=opt.max_dataset_size)
    paths = paths[: opt.num_test] if opt.num_test else paths
    web_dir = os.path.join(opt.results_dir, opt.name, f"{opt.phase}_{opt.epoch}")
    image = os.path.join(web_dir, "images", "{}_{}.png")
    return [Job(p, s, image.format(s, "fake_B"), image.format(s, "real_A"))
            for p, s in zip(paths, output_stems(paths, folder))], web_dir


def match_gt(jobs: list[Job], gt_dir: str) -> list:
    """Pair each job with the ground truth of its input's stem, checking sizes up front.

    Raises:
        UserError: a missing ground truth or a size that differs from the input's.
    """
    from PIL import Image

    from data.image_folder import require_images
    from nerco.evaluate import Pair, index_by_stem

    index = index_by_stem(require_images(gt_dir, "ground-truth"), gt_dir)
    stems = [os.path.splitext(os.path.basename(job.path))[0] for job in jobs]
    missing = [job.path for job, stem in zip(jobs, stems) if stem not in index]
    if missing:
        raise UserError(f"no ground truth in --gt {gt_dir} for {len(missing)} of {len(jobs)} "
                        f"images, e.g. {missing[0]} (ground truth has the input's file stem)")
    for job, stem in zip(jobs, stems):
        with Image.open(job.path) as a, Image.open(index[stem]) as b:
            if a.size != b.size:
                raise UserError(f"{job.path} is {a.size[0]}x{a.size[1]} but its ground truth "
                                f"{index[stem]} is {b.size[0]}x{b.size[1]}: sizes must match")
    return [Pair(job.name, job.result, index[stem], job.shown_input)
            for job, stem in zip(jobs, stems)]


def run(opt) -> str:
    """Enhance the images (and score them with --gt); return the page path or output folder."""
    import torch
    from tqdm import tqdm

    from data.single_dataset import SingleImageDataset
    from nerco.enhancer import load_enhancer
    from nerco.util import save_image, tensor2im

    device = select_device(opt.gpu_ids)
    jobs, web_dir = plan(opt)
    pairs = match_gt(jobs, opt.gt) if opt.gt else None
    if opt.preprocess != "none":
        logger.info("test.py enhances whole images: --preprocess %s is ignored", opt.preprocess)
    enhancer = load_enhancer(os.path.join(opt.checkpoints_dir, opt.name), opt.epoch, device,
                             amp=None if opt.amp == "none" else opt.amp)
    dataset = SingleImageDataset([job.path for job in jobs])
    for index, job in enumerate(tqdm(jobs, desc="enhancing", unit="image")):
        x = dataset[index]["A"].unsqueeze(0).to(device)
        try:
            with torch.no_grad():
                y = enhancer(x)
        except ValueError as err:
            raise UserError(f"{job.path}: {err}") from None
        if not opt.input:  # the dataroot layout keeps a PNG of each input beside its result
            save_image(tensor2im(x), job.shown_input)
        save_image(tensor2im(y), job.result)
        logger.debug("processed (%04d) %s", index, job.path)
    title = (f"Experiment = {opt.name}, Input = {opt.input}, Epoch = {opt.epoch}" if opt.input
             else f"Experiment = {opt.name}, Phase = {opt.phase}, Epoch = {opt.epoch}")
    width = min(opt.display_winsize, 512)
    if pairs:
        from nerco import evaluate

        report = evaluate.evaluate(pairs, evaluate.Scorer(evaluate.Protocol()),
                                   {"gt_dir": opt.gt})
        logger.info("%s", evaluate.format_table(report))
        evaluate.write_json(report, os.path.join(web_dir, "scores.json"))
        page = evaluate.write_page(report, pairs, web_dir, title, width=width)
    elif opt.input:
        logger.info("%d results in %s", len(jobs), opt.output)
        return opt.output
    else:
        from nerco.html import write_comparison_page

        rows = [{"name": job.name, "images": {
            "input": os.path.relpath(job.shown_input, web_dir),
            "NeRCo": os.path.relpath(job.result, web_dir)}} for job in jobs]
        page = write_comparison_page(web_dir, title, rows, ["input", "NeRCo"], width=width)
    logger.info("%d results in %s; page %s", len(jobs), web_dir, page)
    return str(page)


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    try:
        run(TestOptions().parse(argv))
    except UserError as err:
        logger.error("error: %s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
