"""Enhance images with a trained NeRCo: a dataset's testA folder, or any photos.

    python test.py --dataroot ./dataset/LOL --name LOL
    python test.py --name LOL --input photos/ --output enhanced/ [--gt photos_gt/]
    torchrun --nproc_per_node 4 test.py --name LOL --input photos/ --output enhanced/

Only Pre, H and G_A are loaded (CLIP is never built, testB is never read). With --dataroot,
results go to <results_dir>/<name>/test_<epoch>/images/<stem>_fake_B.png at each input's
exact size, with index.html showing input and output side by side. With --input (a file, or
a folder searched at any depth) each result is <output>/<input stem>.png; inputs that share a
stem are named after their path below --input instead (day/photo.jpg → day_photo_jpg.png).
With --gt, the results are scored against the ground truth of the same stem (PSNR/SSIM,
the protocol of nerco.evaluation.scoring): scores.json and an index.html with input |
NeRCo | ground truth and the scores go to the results folder (--output with --input).

Folders of any size (nerco.inference.pipeline): inputs are decoded ahead of the network and results
written behind it, each through a temporary name, so a stopped run never leaves a partial
PNG, and a rerun skips the images whose results are there and newer than the weights
(--overwrite redoes them). Ctrl-C / SIGTERM finish the images under way and exit 130 / 143.
An unreadable image is skipped with a warning and listed at the end. Under torchrun each
process enhances its share (nerco.inference.shards) and rank 0 writes the page and the scores once
all are done. Exit status: 0 all done; 1 some images failed; 2 a problem with the options or
files, found before any work; 130 / 143 stopped by SIGINT / SIGTERM.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass

from nerco.inference.folder_run import StopSignals, still_to_do
from nerco.inference.plan import Job, match_gt, plan
from nerco.inference.shards import Shard
from nerco.runtime import UserError, run_command, select_device
from options import TestOptions

logger = logging.getLogger("test")


def _outputs(job: Job, opt) -> list[str]:
    """The files a job writes: its result and, with --dataroot, the PNG of its input."""
    return [job.result] if opt.input else [job.shown_input, job.result]


@dataclass
class Outcome:
    """What :func:`run` did in this process: exit status, images enhanced, seconds spent
    enhancing, and the page (or output folder) on rank 0."""

    status: int
    enhanced: int = 0
    seconds: float = 0.0
    page: str | None = None


def _threads(opt, shard: Shard) -> int:
    """--num_threads, or this process's share of the CPU cores, at most 16."""
    if opt.num_threads > 0:
        return opt.num_threads
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(16, (cores or 1) // shard.local_world_size))


def _plan_all(opt) -> tuple[list[Job], str, list | None] | str:
    """The jobs, the page's folder and the ground-truth pairs, or the error's message."""
    try:
        jobs, web_dir = plan(opt)
        pairs = match_gt(jobs, opt.gt, displayed=bool(opt.input)) if opt.gt else None
    except UserError as err:
        return str(err)
    return jobs, web_dir, pairs


#: The progress bar: images, elapsed < remaining time, images per second.
BAR_FORMAT = (
    "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
    "[{elapsed}<{remaining}, {rate_noinv_fmt}]"
)


def run(opt, shard: Shard | None = None) -> Outcome:
    """Enhance the images (and score them with --gt), this process's share under torchrun."""
    from tqdm import tqdm

    from nerco.inference.enhancer import load_enhancer
    from nerco.inference.folder_io import Task, read_dataset_image, read_photo
    from nerco.inference.pipeline import Pipeline
    from nerco.networks.build import ENHANCER_NAMES
    from nerco.networks.checkpoint import network_path

    shard = shard or Shard.from_env()
    shard.join()
    # Rank 0 lists the images and checks the ground truth, once; every process gets the list.
    planned = shard.broadcast(_plan_all(opt) if shard.is_main else None)
    if isinstance(planned, str):
        raise UserError(planned)
    jobs, web_dir, pairs = planned
    device = shard.device(select_device(opt.gpu_ids))
    if opt.preprocess != "none" and shard.is_main:
        logger.info("test.py enhances whole images: --preprocess %s is ignored", opt.preprocess)
    checkpoint_dir = os.path.join(opt.checkpoints_dir, opt.name)
    enhancer = load_enhancer(
        checkpoint_dir, opt.epoch, device, amp=None if opt.amp == "none" else opt.amp
    )
    mine = shard.take(jobs)
    weights = [network_path(checkpoint_dir, opt.epoch, n) for n in ENHANCER_NAMES]
    todo, stale = still_to_do(mine, lambda job: _outputs(job, opt), weights, opt.overwrite)
    who = f"process {shard.rank} of {shard.world_size}: " if shard.world_size > 1 else ""
    if len(todo) < len(mine) or stale:
        where = opt.output if opt.input else os.path.join(web_dir, "images")
        logger.info(
            "%s%d of %d results already in %s and newer than the weights: skipped "
            "(--overwrite redoes them)%s",
            who,
            len(mine) - len(todo),
            len(mine),
            where,
            f"; {stale} older than the weights are redone" if stale else "",
        )
    tasks = [Task(job.path, job.result, None if opt.input else job.shown_input) for job in todo]
    pipeline = Pipeline(
        enhancer,
        device,
        read_photo if opt.input else read_dataset_image,
        batch_size=opt.batch_size,
        threads=_threads(opt, shard),
    )
    start = time.perf_counter()
    with (
        StopSignals() as stop,
        tqdm(
            total=len(tasks),
            desc="enhancing",
            unit=" images",
            bar_format=BAR_FORMAT,
            disable=not shard.is_main,
        ) as bar,
    ):
        report = pipeline.run(tasks, stop=stop, progress=bar.update)
    seconds = time.perf_counter() - start
    if report.stopped:
        done = len(mine) - len(todo) + report.written
        logger.info(
            "%sstopped by %s: %d of %d images done (%d in this run); run the same "
            "command again to enhance the other %d",
            who,
            signal.Signals(stop.signum).name,
            done,
            len(mine),
            report.written,
            len(mine) - done,
        )
        return Outcome(128 + stop.signum, report.written, seconds)
    shares = shard.gather((report.written, report.failures, seconds))
    failures = [failure for _, share, _ in shares for failure in share]
    outcome = Outcome(1 if failures else 0, report.written, seconds)
    if shard.is_main:
        outcome.page = _finish(opt, jobs, web_dir, pairs, shares, failures)
    shard.barrier()  # no process exits before the page is written (torchrun stops the rest)
    return outcome


def _finish(
    opt, jobs: list[Job], web_dir: str, pairs: list | None, shares: list, failures: list
) -> str:
    """Rank 0, once every process is done: the summary line, the failures, page, scores."""
    enhanced = sum(written for written, _, _ in shares)
    seconds = max(share_seconds for _, _, share_seconds in shares)
    logger.info(
        "enhanced %d images in %.1f s (%.2f images/s), %d failed",
        enhanced,
        seconds,
        enhanced / seconds if seconds > 0 else 0.0,
        len(failures),
    )
    if failures:
        logger.info(
            "%d images failed, no result written:\n%s",
            len(failures),
            "\n".join(f"  {failure.reason}" for failure in failures),
        )
    failed = {failure.source for failure in failures}
    if pairs is not None:
        pairs = [pair for job, pair in zip(jobs, pairs) if job.path not in failed]
    jobs = [job for job in jobs if job.path not in failed]
    title = (
        f"Experiment = {opt.name}, Input = {opt.input}, Epoch = {opt.epoch}"
        if opt.input
        else f"Experiment = {opt.name}, Phase = {opt.phase}, Epoch = {opt.epoch}"
    )
    width = min(opt.display_winsize, 512)
    if pairs:
        from nerco.evaluation.report import write_json, write_page
        from nerco.evaluation.report_tables import format_per_image
        from nerco.evaluation.scoring import Protocol, Scorer, evaluate

        report = evaluate(pairs, Scorer(Protocol()), {"gt_dir": opt.gt})
        logger.info("%s", format_per_image(report))
        write_json(report, os.path.join(web_dir, "scores.json"))
        page = write_page(report, pairs, web_dir, title, width=width)
    elif opt.input:
        logger.info("%d results in %s", len(jobs), opt.output)
        return opt.output
    else:
        from nerco.evaluation.pages import write_comparison_page

        rows = [
            {
                "name": job.name,
                "images": {
                    "input": os.path.relpath(job.shown_input, web_dir),
                    "NeRCo": os.path.relpath(job.result, web_dir),
                },
            }
            for job in jobs
        ]
        page = write_comparison_page(web_dir, title, rows, ["input", "NeRCo"], width=width)
    logger.info("%d results in %s; page %s", len(jobs), web_dir, page)
    return str(page)


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 all done, 1 some images failed, 2 bad options or files (nothing
    done), 130 / 143 stopped by SIGINT / SIGTERM."""
    shard = Shard.from_env()

    def enhance() -> int:
        try:
            return run(TestOptions().parse(argv), shard).status
        except KeyboardInterrupt:
            logger.info(
                "stopped at once: the results written are complete; run the same "
                "command again to go on"
            )
            return 130

    try:
        return run_command(enhance, "test")
    finally:
        shard.leave()
