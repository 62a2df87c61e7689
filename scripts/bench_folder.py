"""The folder case of scripts/benchmark.py (issue 14): test.py over a folder of photos.

``folder-<W>x<H>`` puts ``--images`` generated W×H photos through ``test.py --input``
(decoding, the network, PNG writing, as a user runs it) and measures, in the same process,
the same enhancement without any I/O (the network on the decoded tensors, in batches of
``--batch_size``) and the I/O alone (decode, convert, convert back, encode and write each
image, one after the other, as the old loop did). Time per image of each, and the pipeline
against the larger and the sum of the other two: the pipeline overlaps them, so its time
is the larger, not the sum, when the network leaves the CPU free (a GPU).

``folder-<W>x<H>-standin`` does the same with a stand-in network of known cost that leaves
the CPU free, as a GPU does: the identity behind a fixed delay (``--standin_ms``; by default
the I/O time just measured, where overlapping gains most). ``busy`` is the network's time
per image over the pipeline's: on a GPU, the share of the time the GPU computes (the
issue's target is 0.9). ``--memory_images 10,1000`` runs
the stand-in pipeline over folders of those sizes, each in a fresh process, for its peak
resident memory (flat in the folder size: the queues are bounded).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_folder_case(name: str) -> tuple[tuple[int, int], bool] | None:
    """``folder-600x400`` → ((600, 400), False); ``…-standin`` → (…, True); else None."""
    kind, _, rest = name.partition("-")
    size, _, suffix = rest.partition("-")
    if kind != "folder" or suffix not in ("", "standin"):
        return None
    try:
        width, height = (int(v) for v in size.split("x"))
    except ValueError:
        return None
    return (width, height), suffix == "standin"


def write_photos(folder: Path, count: int, size: tuple[int, int], seed: int = 0) -> None:
    """``count`` dark, photo-like W×H PNGs (smooth shapes, sensor grain), seeded."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    width, height = size
    rng = np.random.default_rng(seed)
    for i in range(count):
        coarse = rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)
        smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC))
        grain = rng.normal(0, 3, (height, width, 3))
        pixels = np.clip(smooth * 0.3 + grain + 4, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"photo_{i:05d}.png")


class DelayedIdentity:
    """The stand-in network: returns its input after ``delay`` seconds (no CPU used)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def __call__(self, x):
        time.sleep(self.delay)
        return x


def _enhancer(spec: dict, torch, device):
    if spec["standin_ms"] is not None:
        return DelayedIdentity(spec["standin_ms"] / 1000)
    from nerco.inference.enhancer import Enhancer
    from nerco.networks.build import ENHANCER_NAMES, Architecture, build_generators

    amp = {"fp32": None, "bf16": "bf16", "fp16": "fp16"}[spec["dtype"]]
    nets = build_generators(Architecture(ngf=spec["ngf"]), names=ENHANCER_NAMES)
    enhancer = Enhancer(nets["Pre"], nets["H"], nets["G_A"], amp=amp)
    return enhancer.eval().requires_grad_(False).to(device)


def _io_alone(paths: list[Path], out: Path, torch) -> float:
    """Seconds per image to decode, convert both ways, encode and write, one by one."""
    from nerco.inference.folder_io import input_table, read_photo, to_network, to_uint8, write_png

    table = input_table()
    start = time.perf_counter()
    for path in paths:
        image = read_photo(str(path))
        x = to_network(torch.from_numpy(image.pixels), table)
        write_png(str(out / f"{path.stem}.png"), to_uint8(x).numpy(), image.icc_profile)
    return (time.perf_counter() - start) / len(paths)


def _network_alone(paths: list[Path], enhancer, batch_size: int, torch, device) -> float:
    """Seconds per image of the network on the decoded images, in batches, no I/O."""
    from nerco.inference.folder_io import input_table, read_photo, to_network

    table = input_table()
    images = [to_network(torch.from_numpy(read_photo(str(p)).pixels), table) for p in paths]
    batches = [
        torch.stack(images[i : i + batch_size]).to(device)
        for i in range(0, len(images), batch_size)
    ]
    with torch.no_grad():
        enhancer(batches[0][:1])  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for batch in batches:
            enhancer(batch)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / len(paths)


def _through_test_py(spec: dict, enhancer, folder: Path, out: Path) -> tuple[float, int]:
    """Seconds per image of test.py's enhancement loop over ``folder``, and images done."""
    import nerco.inference.enhancer
    from nerco.inference import cli as test_py

    saves = Path(spec["work"]) / "saves" / "bench"
    saves.mkdir(parents=True, exist_ok=True)
    for name in ("G_A", "Pre", "H"):  # test.py dates results against these files
        (saves / f"latest_net_{name}.pth").touch()
    nerco.inference.enhancer.load_enhancer = lambda *args, **kwargs: enhancer
    from nerco.runtime import setup_logging
    from options import TestOptions

    setup_logging()
    opt = TestOptions().parse(
        [
            "--name",
            "bench",
            "--checkpoints_dir",
            str(saves.parent),
            "--input",
            str(folder),
            "--output",
            str(out),
            "--overwrite",
            "--gpu_ids",
            "0" if spec["device"] == "cuda" else "-1",
            "--batch_size",
            str(spec["batch_size"]),
            "--num_threads",
            str(spec["io_threads"]),
        ]
    )
    outcome = test_py.run(opt)
    return outcome.seconds / max(outcome.enhanced, 1), outcome.enhanced


def child_folder(spec: dict) -> dict:
    """One process: I/O alone, network alone, then the pipeline, on the same photos."""
    import resource

    import torch

    sys.path.insert(0, str(ROOT))
    torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    folder, work = Path(spec["folder"]), Path(spec["work"])
    paths = sorted(folder.glob("*.png"))
    result = {}
    if not spec.get("memory_only"):
        result["io_s"] = _io_alone(paths, Path(tempfile.mkdtemp(dir=work)), torch)
    if spec["standin_ms"] == "auto":
        spec = spec | {"standin_ms": result["io_s"] * 1000}
    enhancer = _enhancer(spec, torch, device)
    if not spec.get("memory_only"):
        result["network_s"] = _network_alone(paths, enhancer, spec["batch_size"], torch, device)
    result["pipeline_s"], result["enhanced"] = _through_test_py(
        spec, enhancer, folder, Path(tempfile.mkdtemp(dir=work))
    )
    result["standin_ms"] = spec["standin_ms"]
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def measure(name: str, device: str, dtype: str, args, run_child) -> list[dict]:
    """The rows of one folder case: the three timings, and the memory per folder size."""
    size, standin = parse_folder_case(name)
    count = args.images or (200 if standin else 8)
    work = Path(tempfile.mkdtemp(prefix="nerco-folder-"))
    base = {
        "kind": "folder",
        "device": device,
        "dtype": dtype,
        "threads": args.threads,
        "ngf": args.ngf,
        "batch_size": args.batch_size,
        "io_threads": args.io_threads,
        "size": list(size),
        "standin_ms": (args.standin_ms or "auto") if standin else None,
        "work": str(work),
    }
    try:
        write_photos(work / "photos", count, size)
        timing = run_child(base | {"folder": str(work / "photos")}, args.timeout)
        shown = {k: v for k, v in base.items() if k != "work"}
        rows = [{"case": name, "images": count, **shown, **timing}]
        if "error" not in timing:
            slowest = max(timing["io_s"], timing["network_s"])
            # busy: the share of the pipeline's time the network computes (on a GPU, the
            # GPU's busy fraction, as the network alone keeps it busy).
            rows[0] |= {
                "pipeline_vs_larger": timing["pipeline_s"] / slowest,
                "pipeline_vs_sum": timing["pipeline_s"] / (timing["io_s"] + timing["network_s"]),
                "busy": min(1.0, timing["network_s"] / timing["pipeline_s"]),
            }
        for images in [int(n) for n in args.memory_images.split(",") if n] if standin else []:
            photos = work / f"photos_{images}"
            write_photos(photos, images, size, seed=images)
            memory = run_child(
                base
                | {
                    "folder": str(photos),
                    "memory_only": True,
                    "standin_ms": timing.get("standin_ms", 10),
                },
                args.timeout,
            )
            rows.append({"case": f"{name}-memory", "images": images, **shown, **memory})
            shutil.rmtree(photos)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = [
        "case  images  I/O s/img  network s/img  pipeline s/img  vs larger  vs sum  "
        "busy  peak RSS MB"
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['case']}  {r['images']}  error: {r['error'][:200]}")
            continue
        cells = [f"{r[k]:.4f}" if k in r else "" for k in ("io_s", "network_s", "pipeline_s")]
        ratios = [
            f"{r[k]:.2f}" if k in r else ""
            for k in ("pipeline_vs_larger", "pipeline_vs_sum", "busy")
        ]
        lines.append(
            f"{r['case']}  {r['images']}  {'  '.join(cells)}  {'  '.join(ratios)}  "
            f"{r['peak_rss_mb']:.0f}"
        )
    return "\n".join(lines)
