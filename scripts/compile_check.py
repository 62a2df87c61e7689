"""Try ``torch.compile`` on the enhancer and on the training step: speed and agreement.

    python scripts/compile_check.py --device cuda --out compile.json          # on a GPU
    python scripts/compile_check.py --device cpu --size 64 --ngf 8 --reps 2    # a smoke run

For each case it builds the same randomly initialised networks twice, runs one eagerly and
one compiled (default inductor mode), and reports the eager and compiled time per call
(median of ``--reps`` after warm-up; the compiled warm-up, which compiles, is timed
separately), the speed-up, and how far the outputs are apart:

* ``enhance-<dtype>``: the Pre + H + G_A enhancer on one ``--width`` x ``--height`` photo
  (``torch.compile`` of the whole :class:`nerco.inference.enhancer.Enhancer`); the difference is the
  largest absolute difference on [-1, 1] outputs and in 8-bit levels.
* ``train-<dtype>``: one ``NeRCoModel.optimize_parameters`` on ``--size``² crops with every
  network compiled (``torch.compile`` of each module; the loop itself stays Python: it
  queries image pools and draws random numbers); the difference is the largest relative
  difference of the 16 logged losses of the second iteration (after one compiled step).

The project keeps ``torch.compile`` as an option only where it gives at least 1.2x with the
same outputs within tolerance; this script is how that was decided (README, Performance).
A case that fails to compile is reported with its error, not raised.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

AMP = {"fp32": None, "bf16": "bf16", "fp16": "fp16"}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(step, device: torch.device, reps: int) -> list[float]:
    times = []
    for _ in range(reps):
        _sync(device)
        start = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


def _first_call(step, device: torch.device) -> float:
    return _time(step, device, 1)[0]


def enhance_case(device: torch.device, dtype: str, args) -> dict:
    from nerco.inference.enhancer import Enhancer
    from nerco.networks.build import ENHANCER_NAMES, Architecture, build_generators

    torch.manual_seed(0)
    nets = build_generators(Architecture(ngf=args.ngf), names=ENHANCER_NAMES)
    eager = Enhancer(nets["Pre"], nets["H"], nets["G_A"], amp=AMP[dtype])
    eager.eval().requires_grad_(False).to(device)
    compiled_module = copy.deepcopy(eager)
    compiled = torch.compile(compiled_module)
    x = torch.rand(1, 3, args.height, args.width, device=device) * 2 - 1

    def run(module):
        def step():
            with torch.inference_mode():
                return module(x)

        return step

    compile_s = _first_call(run(compiled), device)
    _first_call(run(eager), device)
    eager_times = _time(run(eager), device, args.reps)
    compiled_times = _time(run(compiled), device, args.reps)
    with torch.inference_mode():
        diff = (eager(x) - compiled(x)).abs().max().item()
    return {
        "eager_s": statistics.median(eager_times),
        "compiled_s": statistics.median(compiled_times),
        "first_compiled_call_s": compile_s,
        "max_abs_diff": diff,
        "max_diff_levels": diff * 127.5,
    }


def train_case(device: torch.device, dtype: str, args) -> dict:
    import random

    from nerco.networks.build import Architecture
    from nerco.training.clip_term import CLIPTerm, build_clip
    from nerco.training.model import NeRCoModel

    torch.manual_seed(0)
    clip = build_clip(device=device, random_init=True)
    models = []
    for _ in range(2):
        torch.manual_seed(1)
        models.append(
            NeRCoModel(
                Architecture(ngf=args.ngf, ndf=args.ngf),
                CLIPTerm(copy.deepcopy(clip)),
                amp=AMP[dtype],
            ).to(device)
        )
    eager, compiled = models
    for group in (compiled.generators, compiled.discriminators):
        for name in list(group.keys()):
            group[name] = torch.compile(group[name])
    gen = torch.Generator().manual_seed(2)
    real_A = (torch.rand(1, 3, args.size, args.size, generator=gen) * 0.6 - 1).to(device)
    real_B = (torch.rand(1, 3, args.size, args.size, generator=gen) * 2 - 1).to(device)

    def step(model):
        return lambda: model.optimize_parameters(real_A, real_B)

    losses = {}
    for key, model in (("eager", eager), ("compiled", compiled)):
        random.seed(3)
        torch.manual_seed(4)  # the official objective's random edge projections
        start = time.perf_counter()
        model.optimize_parameters(real_A, real_B)
        _sync(device)
        first = time.perf_counter() - start
        random.seed(5)
        torch.manual_seed(6)
        losses[key] = model.optimize_parameters(real_A, real_B)
        if key == "compiled":
            compile_s = first
    rel = {
        name: abs(losses["compiled"][name] - value) / max(abs(value), 1e-6)
        for name, value in losses["eager"].items()
    }
    eager_times = _time(step(eager), device, args.reps)
    compiled_times = _time(step(compiled), device, args.reps)
    return {
        "eager_s": statistics.median(eager_times),
        "compiled_s": statistics.median(compiled_times),
        "first_compiled_call_s": compile_s,
        "max_rel_loss_diff": max(rel.values()),
        "worst_loss": max(rel, key=rel.get),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--dtypes", default=None, help="comma-separated among fp32,bf16,fp16 (default fp32,bf16)"
    )
    parser.add_argument("--cases", default="enhance,train", help="enhance, train or both")
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--size", type=int, default=256, help="training crop side")
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    dtypes = (args.dtypes or "fp32,bf16").split(",")
    cases = {"enhance": enhance_case, "train": train_case}
    results = []
    for case in args.cases.split(","):
        for dtype in dtypes:
            row = {"case": f"{case}-{dtype}", "device": str(device)}
            try:
                row |= cases[case](device, dtype, args)
                row["speedup"] = row["eager_s"] / row["compiled_s"]
            except Exception as exc:  # noqa: BLE001 - a failed compile is a result here
                row["error"] = f"{type(exc).__name__}: {exc}"[:2000]
                row["traceback"] = traceback.format_exc()[-4000:]
            results.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "traceback"}), flush=True)
            torch._dynamo.reset()
    if args.out:
        Path(args.out).write_text(
            json.dumps(
                {"torch": torch.__version__, "settings": vars(args), "results": results}, indent=2
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
