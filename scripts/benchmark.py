"""Time NeRCo inference and training, with peak memory, FLOPs and efficiency.

    python scripts/benchmark.py --threads 2 --out bench.json        # CPU, all cases
    python scripts/benchmark.py --quick                             # two small cases
    python scripts/benchmark.py --device cuda --cases infer-1920x1080,train-512-ckpt
    python scripts/benchmark.py --authors ~/src/NeRCo --dtypes fp32 # beside the authors' code
    python scripts/benchmark.py --baseline /tmp/old --cases train-256  # against another checkout
    python scripts/benchmark.py --cases folder-600x400-standin --memory_images 10,1000

Cases are ``infer-<W>x<H>`` (the Pre + H + G_A enhancer on one random image, spec §5) and
``train-<S>`` (one ``NeRCoModel.optimize_parameters`` iteration on random S×S images with a
randomly initialised CLIP, spec §2, official objective); ``train-<S>-ckpt`` is the same with
activation checkpointing (``--checkpointing``); ``folder-<W>x<H>[-standin]`` is test.py over
a folder of generated photos against the network alone and the I/O alone
(``scripts/bench_folder.py``). Each case runs in fresh Python processes:
the time is the median of ``--reps`` runs after a warm-up run, a second process gives the
noise, and the peak memory is the process's peak resident set (CPU) or
``torch.cuda.max_memory_allocated`` (CUDA). One more process per case runs it once under
``torch.utils.flop_counter.FlopCounterMode``, which counts the convolutions and matrix
products actually executed (the same for every dtype). The machine's convolution
throughput (3×3 convolutions as large as NeRCo's residual blocks, best of a few shapes) is
measured in the same run before and after the cases; efficiency = achieved FLOP/s / that
throughput for the same dtype.

``--authors PATH`` runs every float32 case with the authors' released code too (a checkout
of github.com/Ysz2022/NeRCo), and ``--baseline PATH`` with another checkout of this
repository; their processes alternate with ours, so a busy machine slows all alike, and the
table gives each one's time as a ratio to ours. The authors' code hard-codes ``.cuda()``; on
the CPU it runs from a temporary copy in which those calls are removed (nothing else is
changed), and its CLIP RN50 is randomly initialised as ours is. Its inference case runs its
Pre, H and G_A under ``torch.no_grad()``, as its test.py does for the enhanced image.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "scripts"):  # nerco, and bench_folder beside this file
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

#: Default cases, as the issue lists them.
DEFAULT_CASES = (
    "infer-600x400",
    "infer-256x256",
    "infer-1920x1080",
    "train-128",
    "train-256",
    "train-512",
)
QUICK_CASES = ("infer-256x256", "train-128")
#: The authors' code as issue 6 measured it on our CI kind of machine (2 cores, float32):
#: seconds and peak GB. Kept in the JSON for reference; ``--authors`` measures it afresh.
AUTHORS_ISSUE = {"infer-600x400": (9.05, 2.96), "train-128": (6.0, 5.6), "train-256": (19.9, 11.1)}
#: GFLOP of the issue's breakdown at 600×400 (one NRN pass counted as the 612-input MLP).
ISSUE_GFLOP_600x400 = {"Pre trunk": 358, "NRN head": 138, "H": 115, "G_A": 367, "total": 979}
AMP = {"fp32": None, "bf16": "bf16", "fp16": "fp16"}


# ----------------------------------------------------------------- child process
def _setup(spec: dict):
    if spec.get("root"):  # a --baseline checkout: its nerco, not ours
        sys.path.insert(0, spec["root"])
    import torch

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    device = torch.device(spec["device"])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    return torch, device


#: Where names of today's package lived before it was laid out by concern (version 0.1), so
#: that ``--baseline`` can measure a checkout of either layout.
_FLAT_LAYOUT = {
    "inference.enhancer": "enhancer",
    "networks.build": "model",
    "training.clip_term": "clip_term",
    "training.model": "model",
}


def _ours(*names: str) -> list:
    """``"inference.enhancer:Enhancer"`` → the object from ``nerco.inference.enhancer``, or
    from the flat module of a version-0.1 checkout (``nerco.enhancer``)."""
    import importlib

    objects = []
    for name in names:
        module, _, attribute = name.partition(":")
        try:
            found = importlib.import_module(f"nerco.{module}")
        except ModuleNotFoundError:
            found = importlib.import_module(f"nerco.{_FLAT_LAYOUT[module]}")
        objects.append(getattr(found, attribute))
    return objects


def _sync(torch, device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_mb(torch, device) -> tuple[float, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_allocated"
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (2**20 if sys.platform == "darwin" else 2**10), "peak_rss"


def _images(torch, device, spec: dict, count: int) -> list:
    """``count`` random (1, 3, H, W) images in [-1, 1) of the case's size: the same inputs
    for our code and the authors' (``_setup`` seeded the generator)."""
    width, height = spec["size"]
    return [torch.rand(1, 3, height, width, device=device) * 2 - 1 for _ in range(count)]


def _time_runs(torch, device, step, reps: int) -> list[float]:
    times = []
    for _ in range(reps):
        _sync(torch, device)
        start = time.perf_counter()
        step()
        _sync(torch, device)
        times.append(time.perf_counter() - start)
    return times


def _timed(torch, device, step, reps: int) -> dict:
    step()  # warm-up
    cpu = time.process_time()
    times = _time_runs(torch, device, step, reps)
    cpu = (time.process_time() - cpu) / reps
    memory, memory_kind = _peak_memory_mb(torch, device)
    return {"times": times, "cpu_s": cpu, "peak_memory_mb": memory, "memory_kind": memory_kind}


def _count_flops(step) -> tuple[float, dict[str, float]]:
    """Run ``step`` once under FlopCounterMode: total FLOPs and FLOPs per module path."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    per_module = {name: float(sum(ops.values())) for name, ops in counter.get_flop_counts().items()}
    return float(counter.get_total_flops()), per_module


def _child_infer(spec: dict) -> dict:
    torch, device = _setup(spec)
    Enhancer, ENHANCER_NAMES, Architecture, build_generators = _ours(
        "inference.enhancer:Enhancer",
        "networks.build:ENHANCER_NAMES",
        "networks.build:Architecture",
        "networks.build:build_generators",
    )

    nets = build_generators(Architecture(ngf=spec["ngf"]), names=ENHANCER_NAMES)
    amp = {"amp": AMP[spec["dtype"]]} if AMP[spec["dtype"]] else {}  # older checkouts: fp32
    enhancer = Enhancer(nets["Pre"], nets["H"], nets["G_A"], **amp)
    enhancer.eval().requires_grad_(False).to(device)
    (x,) = _images(torch, device, spec, 1)

    def step():
        with torch.inference_mode():
            enhancer(x)

    if spec.get("count"):
        flops, per_module = _count_flops(step)
        pre, head, g_a = (
            per_module.get(f"Enhancer.{name}", 0.0) for name in ("Pre", "Pre.mlp", "G_A")
        )
        # H runs through H.mask (not a module call), so it is the rest.
        parts = {"Pre trunk": pre - head, "NRN head": head, "H": flops - pre - g_a, "G_A": g_a}
        return {"flops": flops, "flops_by_part": parts}
    return _timed(torch, device, step, spec["reps"])


def _child_train(spec: dict) -> dict:
    torch, device = _setup(spec)
    Architecture, CLIPTerm, build_clip, NeRCoModel = _ours(
        "networks.build:Architecture",
        "training.clip_term:CLIPTerm",
        "training.clip_term:build_clip",
        "training.model:NeRCoModel",
    )

    clip = build_clip(device=device, random_init=True)
    options = {"amp": AMP[spec["dtype"]]} if AMP[spec["dtype"]] else {}
    if spec.get("checkpointing"):
        options["checkpointing"] = True
    model = NeRCoModel(
        Architecture(ngf=spec["ngf"], ndf=spec["ngf"]), CLIPTerm(clip), **options
    ).to(device)
    real_A, real_B = _images(torch, device, spec, 2)

    def step():
        model.optimize_parameters(real_A, real_B)

    if spec.get("count"):
        return {"flops": _count_flops(step)[0]}
    return _timed(torch, device, step, spec["reps"])


def _child_throughput(spec: dict) -> dict:
    """GFLOP/s of large 3×3 convolutions (channels-last, as the inference path runs)."""
    torch, device = _setup(spec)
    import torch.nn.functional as F

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[spec["dtype"]]
    batch = 1 if device.type == "cpu" else 8
    shapes = ((256, 100, 150), (128, 200, 300))  # NeRCo's residual blocks at 600×400 and 2×
    shapes = shapes[: spec.get("shapes", len(shapes))]
    results = []
    for channels, height, width in shapes:
        x = torch.randn(batch, channels, height + 2, width + 2, device=device, dtype=dtype)
        x = x.contiguous(memory_format=torch.channels_last)
        w = torch.randn(channels, channels, 3, 3, device=device, dtype=dtype) * 0.01
        flops = 2 * batch * channels * channels * 9 * height * width

        def step(x=x, w=w):
            with torch.inference_mode():
                F.conv2d(x, w)

        _time_runs(torch, device, step, 2)  # warm-up
        times = _time_runs(torch, device, step, spec["reps"])
        results.append(flops / statistics.median(times) / 1e9)
    return {"gflops": max(results), "per_shape_gflops": results}


# ------------------------------------------------------- the authors' code, as released
#: Edits that let the authors' code run on a CPU: (file, text, replacement, at least).
_AUTHORS_CPU_PORT = (
    ("models/mlp.py", ".cuda()", "", 2),
    ("models/networks.py", ".cuda()", "", 1),
    ("models/sobel.py", "torch.device('cuda:0')", "torch.device('cpu')", 1),
)
#: CLIP RN50's constructor arguments (what ``clip.load("RN50")`` builds from its weights).
_RN50 = (1024, 224, (3, 4, 6, 3), 64, None, 77, 49408, 512, 8, 12)


def _authors_model(spec: dict, device, train: bool):
    """The authors' ``NeRComodel`` built from the checkout ``spec["authors"]``."""
    import types

    source = Path(spec["authors"])
    code = source
    if device.type == "cpu":
        code = Path(tempfile.mkdtemp(prefix="nerco-authors-")) / "code"
        shutil.copytree(source, code, ignore=shutil.ignore_patterns(".git", "__pycache__"))
        for rel, old, new, least in _AUTHORS_CPU_PORT:
            path = code / rel
            text = path.read_text()
            if text.count(old) < least:
                raise SystemExit(
                    f"benchmark: {source / rel} has no {old!r}; --authors must be "
                    "a checkout of github.com/Ysz2022/NeRCo"
                )
            path.write_text(text.replace(old, new))
    sys.path.insert(0, str(code))
    import clip  # the authors' copy of OpenAI's package
    from clip.model import CLIP, convert_weights

    def load(name, device="cpu", **_):  # random weights, offline; float16 on GPUs as theirs
        model = CLIP(*_RN50)
        if str(device) != "cpu":
            convert_weights(model)
        return model.to(device).eval(), None

    clip.load = load
    from models.NeRCo_model import NeRComodel  # loads CLIP when imported

    gpu_ids = [device.index or 0] if device.type == "cuda" else []
    opt = types.SimpleNamespace(  # the defaults of their option parsers
        isTrain=train,
        gpu_ids=gpu_ids,
        checkpoints_dir=tempfile.mkdtemp(),
        name="bench",
        preprocess="resize_and_crop",
        input_nc=3,
        output_nc=3,
        ngf=spec["ngf"],
        ndf=spec["ngf"],
        netD="basic",
        netG="resnet_9blocks",
        n_layers_D=3,
        norm="instance",
        init_type="normal",
        init_gain=0.02,
        no_dropout=True,
        pool_size=50,
        gan_mode="lsgan",
        lr=2e-4,
        beta1=0.5,
        lambda_identity=0.5,
        lambda_A=10.0,
        lambda_B=10.0,
        direction="AtoB",
    )
    return NeRComodel(opt)


def _child_authors_infer(spec: dict) -> dict:
    torch, device = _setup(spec)
    model = _authors_model(spec, device, train=False)
    for net in (model.netPre, model.netH, model.netG_A):
        net.eval()
    (x,) = _images(torch, device, spec, 1)

    def step():
        with torch.no_grad():
            pre = model.netPre(x)
            _, mask = model.netH(x)
            model.netG_A(torch.cat((x, pre), 1) * mask)

    if spec.get("count"):
        return {"flops": _count_flops(step)[0]}
    return _timed(torch, device, step, spec["reps"])


def _child_authors_train(spec: dict) -> dict:
    torch, device = _setup(spec)
    model = _authors_model(spec, device, train=True)
    real_A, real_B = _images(torch, device, spec, 2)
    model.set_input({"A": real_A, "B": real_B, "A_paths": [""], "B_paths": [""]})
    if spec.get("count"):
        return {"flops": _count_flops(model.optimize_parameters)[0]}
    return _timed(torch, device, model.optimize_parameters, spec["reps"])


CHILDREN = {
    "infer": _child_infer,
    "train": _child_train,
    "throughput": _child_throughput,
    "authors-infer": _child_authors_infer,
    "authors-train": _child_authors_train,
}


# ---------------------------------------------------------------- parent process
def parse_case(name: str) -> tuple[str, tuple[int, int], bool]:
    """``infer-600x400`` → ("infer", (600, 400), False); ``train-512-ckpt`` → ("train",
    (512, 512), True): kind, size, activation checkpointing."""
    kind, _, size = name.partition("-")
    from bench_folder import parse_folder_case

    if kind == "folder" and (folder := parse_folder_case(name)):
        return kind, folder[0], False
    try:
        if kind == "infer":
            width, height = (int(v) for v in size.split("x"))
            return kind, (width, height), False
        if kind == "train":
            side, _, suffix = size.partition("-")
            if suffix in ("", "ckpt"):
                return kind, (int(side), int(side)), suffix == "ckpt"
    except ValueError:
        pass
    raise SystemExit(
        f"benchmark: bad case {name!r}; use infer-<W>x<H>, train-<S>, "
        "train-<S>-ckpt or folder-<W>x<H>[-standin]"
    )


def run_child(spec: dict, timeout: float) -> dict:
    env = dict(
        os.environ, OMP_NUM_THREADS=str(spec["threads"]), MKL_NUM_THREADS=str(spec["threads"])
    )
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout)[-1500:]
        return {"error": f"exit status {proc.returncode}: {tail}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


_FLOP_COUNTS: dict[tuple[str, str], dict] = {}


def code_variants(args) -> list[dict]:
    """The implementations to measure: ours, then the --baseline and --authors checkouts."""
    variants = [{"code": "ours"}]
    if args.baseline:
        variants.append({"code": "baseline", "root": str(Path(args.baseline).resolve())})
    if args.authors:
        variants.append({"code": "authors", "authors": str(Path(args.authors).resolve())})
    return variants


def measure_case(name: str, device: str, dtype: str, args) -> list[dict]:
    """One row per implementation; their processes alternate (ours, baseline, authors, ...)."""
    kind, size, checkpointing = parse_case(name)
    base = {
        "size": size,
        "device": device,
        "dtype": dtype,
        "threads": args.threads,
        "ngf": args.ngf,
        "reps": args.reps,
    }
    specs = []
    for variant in code_variants(args):
        if variant["code"] == "authors":
            if dtype != "fp32" or checkpointing:  # their code has neither
                continue
            spec = base | {"kind": f"authors-{kind}", "authors": variant["authors"]}
        else:
            spec = base | {"kind": kind, "root": variant.get("root")}
            if checkpointing:
                spec["checkpointing"] = True
        specs.append((variant["code"], spec))
    runs: dict[str, list[dict]] = {code: [] for code, _ in specs}
    for _ in range(args.runs):
        for code, spec in specs:
            runs[code].append(run_child(spec, args.timeout))
    rows = []
    for code, spec in specs:
        # FLOPs in a process of their own (the counting mode must not touch the timed runs
        # or their peak memory), once per case and code: autocast does not change them.
        key = (name, code)
        if key not in _FLOP_COUNTS:
            _FLOP_COUNTS[key] = run_child(spec | {"count": True, "dtype": "fp32"}, args.timeout)
        rows.append(summarise(name, code, spec, runs[code], _FLOP_COUNTS[key]))
    ours = rows[0]
    for row in rows[1:]:
        if "time_s" in row and "time_s" in ours:
            # Ratios within each round (process i of theirs against process i of ours).
            ratios = [a / b for a, b in zip(row["time_s_per_run"], ours["time_s_per_run"])]
            row["time_vs_ours"] = statistics.median(ratios)
            row["memory_vs_ours"] = row["peak_memory_mb"] / ours["peak_memory_mb"]
    return rows


def summarise(name: str, code: str, spec: dict, runs: list[dict], count: dict) -> dict:
    row = {
        "case": name,
        "code": code,
        "kind": spec["kind"],
        "size": list(spec["size"]),
        "device": spec["device"],
        "dtype": spec["dtype"],
        "threads": spec["threads"],
        "ngf": spec["ngf"],
        "checkpointing": bool(spec.get("checkpointing")),
    }
    errors = [r["error"] for r in [*runs, count] if "error" in r]
    if errors:
        return row | {"error": errors[0]}
    medians = [statistics.median(r["times"]) for r in runs]
    seconds = statistics.median(medians)
    gflop = count["flops"] / 1e9
    # Process CPU time per repetition: on a shared machine, with --threads 1, a measure of
    # the work that other jobs barely disturb (wall time waits for them).
    row |= {
        "time_s": seconds,
        "time_s_per_run": medians,
        "times_s": [r["times"] for r in runs],
        "cpu_s": statistics.median(r["cpu_s"] for r in runs),
        "noise": (max(medians) - min(medians)) / seconds if len(medians) > 1 else None,
        "peak_memory_mb": max(r["peak_memory_mb"] for r in runs),
        "memory_kind": runs[0]["memory_kind"],
        "gflop": gflop,
        "gflop_per_s": gflop / seconds,
    }
    if "flops_by_part" in count:
        row["gflop_by_part"] = {k: v / 1e9 for k, v in count["flops_by_part"].items()}
    return row


def machine_throughput(device: str, dtypes: list[str], args) -> dict[str, float]:
    out = {}
    for dtype in dtypes:
        spec = {
            "kind": "throughput",
            "size": [0, 0],
            "device": device,
            "dtype": dtype,
            "threads": args.threads,
            "ngf": args.ngf,
            "reps": 2 if args.quick else 5,
            "shapes": 1 if args.quick else 2,
        }
        result = run_child(spec, args.timeout)
        out[dtype] = result.get("gflops", float("nan"))
    return out


def format_table(rows: list[dict]) -> str:
    head = (
        "case",
        "code",
        "device",
        "dtype",
        "time s",
        "noise",
        "cpu s",
        "peak GB",
        "GFLOP",
        "GFLOP/s",
        "eff.",
        "time/ours",
        "mem/ours",
    )
    lines = [head]
    for r in rows:
        if "error" in r:
            lines.append((r["case"], r["code"], r["device"], r["dtype"], "error", *[""] * 8))
            continue
        noise = f"{100 * r['noise']:.0f}%" if r["noise"] is not None else ""
        eff = f"{100 * r['efficiency']:.0f}%" if r.get("efficiency") is not None else ""
        versus = [f"{r[k]:.2f}" if k in r else "" for k in ("time_vs_ours", "memory_vs_ours")]
        lines.append(
            (
                r["case"],
                r["code"],
                r["device"],
                r["dtype"],
                f"{r['time_s']:.3f}",
                noise,
                f"{r['cpu_s']:.2f}",
                f"{r['peak_memory_mb'] / 1024:.2f}",
                f"{r['gflop']:.1f}",
                f"{r['gflop_per_s']:.0f}",
                eff,
                *versus,
            )
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    return "\n".join(
        "  ".join(str(v).ljust(w) for v, w in zip(line, widths)).rstrip() for line in lines
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cases", default=None, help=f"comma-separated cases (default: {','.join(DEFAULT_CASES)})"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"only {','.join(QUICK_CASES)}, one run of one repetition each",
    )
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument(
        "--dtypes",
        default=None,
        help="comma-separated among fp32,bf16,fp16 (default: fp32,bf16 on the "
        "CPU, fp32,bf16,fp16 on CUDA)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads per case")
    parser.add_argument("--ngf", type=int, default=64, help="network width (64 released)")
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions per process")
    parser.add_argument(
        "--runs", type=int, default=2, help="processes per case (the second one gives the noise)"
    )
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per process")
    parser.add_argument(
        "--authors",
        default=None,
        metavar="PATH",
        help="also run the float32 cases with the authors' released code "
        "from this checkout of github.com/Ysz2022/NeRCo",
    )
    parser.add_argument(
        "--baseline",
        default=None,
        metavar="PATH",
        help="also run every case with this other checkout of NeRCo (ours)",
    )
    parser.add_argument(
        "--images",
        type=int,
        default=None,
        help="folder cases: photos in the folder (default 8, 200 with -standin)",
    )
    parser.add_argument(
        "--batch_size", type=int, default=1, help="folder cases: test.py --batch_size"
    )
    parser.add_argument(
        "--io_threads",
        type=int,
        default=0,
        help="folder cases: test.py --num_threads (0: its default)",
    )
    parser.add_argument(
        "--standin_ms",
        type=float,
        default=None,
        help="folder-*-standin: the stand-in network's delay per batch "
        "(default: the I/O time per image measured in the same run)",
    )
    parser.add_argument(
        "--memory_images",
        default="",
        help="folder-*-standin: also the peak memory over folders of these "
        "sizes, each in a fresh process, e.g. 10,1000",
    )
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child is not None:
        spec = json.loads(args.child)
        if spec["kind"] == "folder":
            from bench_folder import child_folder

            print(json.dumps(child_folder(spec)))
        else:
            print(json.dumps(CHILDREN[spec["kind"]](spec)))
        return 0
    if args.quick:
        args.runs, args.reps = 1, 1
    cases = (
        args.cases.split(",") if args.cases else list(QUICK_CASES if args.quick else DEFAULT_CASES)
    )
    for name in cases:
        parse_case(name)
    if args.dtypes:
        dtypes = args.dtypes.split(",")
    else:
        dtypes = ["fp32", "bf16"] + (["fp16"] if args.device == "cuda" else [])
    unknown = set(dtypes) - set(AMP)
    if unknown:
        raise SystemExit(f"benchmark: unknown dtypes {sorted(unknown)}; use fp32, bf16, fp16")

    import torch

    for option, path in (("--authors", args.authors), ("--baseline", args.baseline)):
        if (
            path
            and not (
                Path(path) / "models" if option == "--authors" else Path(path) / "nerco"
            ).is_dir()
        ):
            raise SystemExit(
                f"benchmark: {option} {path}: not a checkout of "
                + (
                    "github.com/Ysz2022/NeRCo (no models/)"
                    if option == "--authors"
                    else "this repository (no nerco/)"
                )
            )
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("benchmark: --device cuda but CUDA is not available")
    folder_cases = [name for name in cases if name.startswith("folder-")]
    cases = [name for name in cases if not name.startswith("folder-")]
    folder_rows = measure_folders(folder_cases, dtypes, args)
    if not cases:
        return finish({"folder": folder_rows}, args, folder_rows)
    before = machine_throughput(args.device, dtypes, args)
    rows = []
    for name in cases:
        for dtype in dtypes:
            for row in measure_case(name, args.device, dtype, args):
                rows.append(row)
                print(format_table([row]).splitlines()[-1], flush=True)
                if "error" in row:
                    print(f"  {name} {row['code']} {dtype}: {row['error']}", file=sys.stderr)
    # Measured again at the end (except with --quick), in case the machine got busier.
    after = before if args.quick else machine_throughput(args.device, dtypes, args)
    # The better of the two measurements: the efficiency is not flattered by a slow moment.
    throughput = {d: max(before[d], after[d]) for d in dtypes}
    for row in rows:
        if "gflop_per_s" in row:
            row["machine_gflop_per_s"] = throughput[row["dtype"]]
            row["efficiency"] = row["gflop_per_s"] / throughput[row["dtype"]]
    result = {
        "machine": {
            "platform": platform.platform(),
            "processor": _cpu_name(),
            "torch": torch.__version__,
            "device": args.device,
            "cuda_device": (torch.cuda.get_device_name() if args.device == "cuda" else None),
            "threads": args.threads,
            "conv_gflop_per_s_before": before,
            "conv_gflop_per_s_after": after,
        },
        "settings": {
            "ngf": args.ngf,
            "reps": args.reps,
            "runs": args.runs,
            "authors": args.authors,
            "baseline": args.baseline,
        },
        "issue_gflop_600x400": ISSUE_GFLOP_600x400,
        "authors_as_issue_6_measured": {
            k: {"time_s": t, "peak_gb": g} for k, (t, g) in AUTHORS_ISSUE.items()
        },
        "results": rows,
        "folder": folder_rows,
    }
    print()
    print(format_table(rows))
    print(
        "machine conv throughput (GFLOP/s): "
        + ", ".join(f"{d} {before[d]:.0f} before / {after[d]:.0f} after" for d in dtypes)
    )
    return finish(result, args, rows + folder_rows)


def measure_folders(names: list[str], dtypes: list[str], args) -> list[dict]:
    """The folder cases (scripts/bench_folder.py): the stand-in ones once, the others per
    dtype."""
    from bench_folder import format_rows, measure

    rows = []
    for name in names:
        for dtype in ["fp32"] if name.endswith("-standin") else dtypes:
            rows += measure(name, args.device, dtype, args, run_child)
    if rows:
        print(format_rows(rows), flush=True)
    return rows


def finish(result: dict, args, rows: list[dict]) -> int:
    """Write the JSON (``--out``); exit status 1 when a case failed."""
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"written {args.out}")
    return 1 if any("error" in r for r in rows) else 0


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
