"""How far reduced-precision enhancement (``--amp bf16`` / ``fp16``) lands from float32.

    python scripts/amp_accuracy.py --checkpoint_dir saves/demo --input dataset/demo/testA
    python scripts/amp_accuracy.py --input photos/ --amp bf16 --out amp.json   # §1.6 init

Every image is enhanced twice with the same weights, in float32 and with autocast, and both
results are saved as 8-bit images would be (``tensor2im``). Printed per image and overall:
the mean absolute difference in 8-bit levels (the figure issue 6 bounds by 2), its 99th
percentile and maximum, and the share of values that differ at all. Without
``--checkpoint_dir`` the networks are initialised as the authors initialise them (spec
§1.6, seeded), which is a test of the arithmetic, not of a trained model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _enhancers(args, device):
    import torch

    from nerco.inference.enhancer import Enhancer, load_enhancer
    from nerco.networks.build import ENHANCER_NAMES, Architecture, build_generators

    if args.checkpoint_dir:
        plain = load_enhancer(args.checkpoint_dir, epoch=args.epoch, device=device)
    else:
        torch.manual_seed(args.seed)
        nets = build_generators(Architecture(ngf=args.ngf), names=ENHANCER_NAMES)
        plain = Enhancer(nets["Pre"], nets["H"], nets["G_A"]).eval().requires_grad_(False)
        plain.to(device)
    reduced = Enhancer(plain.Pre, plain.H, plain.G_A, amp=args.amp)  # the same weights
    return plain, reduced


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--input", required=True, help="an image or a folder of images")
    parser.add_argument(
        "--checkpoint_dir",
        default=None,
        help="folder with <epoch>_net_{Pre,H,G_A}.pth (default: §1.6 init)",
    )
    parser.add_argument("--epoch", default="latest")
    parser.add_argument("--amp", default="bf16", choices=("bf16", "fp16"))
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--ngf", type=int, default=64, help="width without --checkpoint_dir")
    parser.add_argument("--seed", type=int, default=0, help="init seed without --checkpoint_dir")
    parser.add_argument("--out", default=None, help="also write the figures as JSON here")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from data.image_folder import load_rgb, make_dataset
    from data.transforms import to_tensor
    from nerco.runtime import UserError
    from nerco.util import tensor2im

    source = Path(args.input)
    if not source.exists():
        print(f"amp_accuracy: error: --input {source} does not exist", file=sys.stderr)
        return 1
    paths = [str(source)] if source.is_file() else make_dataset(source)
    if not paths:
        print(f"amp_accuracy: error: no images in --input {source}", file=sys.stderr)
        return 1
    device = torch.device(args.device)
    if args.amp == "fp16" and device.type != "cuda":
        print("amp_accuracy: error: --amp fp16 needs --device cuda", file=sys.stderr)
        return 1
    try:
        plain, reduced = _enhancers(args, device)
    except UserError as exc:
        print(f"amp_accuracy: error: {exc}", file=sys.stderr)
        return 1
    rows, all_diffs = [], []
    with torch.no_grad():
        for path in paths:
            x = to_tensor(load_rgb(path)).unsqueeze(0).to(device)
            a = tensor2im(plain(x)).astype(np.int16)
            b = tensor2im(reduced(x)).astype(np.int16)
            diff = np.abs(a - b)
            all_diffs.append(diff.ravel())
            rows.append(
                {
                    "image": Path(path).name,
                    "mean_levels": float(diff.mean()),
                    "p99_levels": float(np.percentile(diff, 99)),
                    "max_levels": int(diff.max()),
                    "changed": float((diff > 0).mean()),
                }
            )
            print(
                f"{rows[-1]['image']}: mean {rows[-1]['mean_levels']:.3f} levels, "
                f"p99 {rows[-1]['p99_levels']:.0f}, max {rows[-1]['max_levels']}, "
                f"{100 * rows[-1]['changed']:.1f}% of values changed",
                flush=True,
            )
    every = np.concatenate(all_diffs)
    overall = {
        "mean_levels": float(every.mean()),
        "p99_levels": float(np.percentile(every, 99)),
        "max_levels": int(every.max()),
        "changed": float((every > 0).mean()),
        "worst_image_mean_levels": max(r["mean_levels"] for r in rows),
    }
    print(
        f"{args.amp} vs float32 over {len(rows)} images: mean {overall['mean_levels']:.3f} "
        f"levels (worst image {overall['worst_image_mean_levels']:.3f}), p99 "
        f"{overall['p99_levels']:.0f}, max {overall['max_levels']}"
    )
    if args.out:
        settings = {
            k: getattr(args, k)
            for k in ("input", "checkpoint_dir", "epoch", "amp", "device", "ngf", "seed")
        }
        Path(args.out).write_text(
            json.dumps({"settings": settings, "overall": overall, "per_image": rows}, indent=2)
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
