"""Testing options: where results go. The released models are enhanced at full size."""

from __future__ import annotations

import argparse

from nerco.runtime import UserError
from options.base_options import BaseOptions
from options.checks import check_folder
from options.values import Int


def _set_help(parser: argparse.ArgumentParser, dest: str, text: str) -> None:
    """Give the shared option ``dest`` its test-time help."""
    for action in parser._actions:
        if action.dest == dest:
            action.help = text


class TestOptions(BaseOptions):
    is_train = False

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser = super().initialize(parser)
        parser.add_argument(
            "--results_dir",
            default="./results",
            help="results go to <results_dir>/<name>/<phase>_<epoch>/",
        )
        parser.add_argument("--phase", default="test", help="input folder is <dataroot>/<phase>A")
        parser.add_argument(
            "--num_test", type=Int(1), default=None, help="enhance at most this many images"
        )
        parser.add_argument(
            "--input",
            default=None,
            help="a photo, or a folder of photos searched at any depth, to enhance "
            "instead of <dataroot>/<phase>A; needs --output",
        )
        parser.add_argument(
            "--output",
            default=None,
            help="with --input: write each result as <output>/<input stem>.png "
            "(inputs sharing a stem: <path below --input, / and . as _>.png)",
        )
        parser.add_argument(
            "--gt",
            default=None,
            help="ground-truth folder (same file stems as the inputs): score "
            "PSNR/SSIM after enhancing, write scores.json and index.html "
            "with input | NeRCo | ground truth and the scores",
        )
        parser.add_argument(
            "--amp",
            default="none",
            choices=("none", "bf16", "fp16"),
            help="run the convolutions in bfloat16 (about 2x faster on CPUs "
            "with bf16 instructions and on GPUs) or float16 (GPUs)",
        )
        parser.add_argument(
            "--overwrite",
            action="store_true",
            help="redo images whose result is already there (by default a "
            "rerun skips results newer than the weights, so a stopped "
            "run goes on where it stopped)",
        )
        # Testing enhances whole images; the enhancer pads to a multiple of 4 internally.
        parser.set_defaults(preprocess="none", num_threads=0)
        _set_help(
            parser,
            "batch_size",
            "images of one size enhanced together (each result is "
            "the one it gets alone, up to float rounding); larger batches keep a GPU "
            "busier on small photos",
        )
        _set_help(
            parser,
            "num_threads",
            "threads writing PNGs behind the network, and half as "
            "many decoding images ahead of it; 0: one per CPU "
            "core of this process, at most 16",
        )
        return parser

    def parse(self, args: list[str] | None = None) -> argparse.Namespace:
        """Parse, then check that exactly one of --dataroot / --input is given.

        Raises:
            UserError: neither or both of --dataroot and --input, or --input without --output
                (or --output without --input).
        """
        opt = super().parse(args)
        if opt.input and opt.dataroot:
            raise UserError(
                "give either --dataroot (enhances <dataroot>/testA) or --input "
                "(a photo or a folder), not both"
            )
        if not opt.input and not opt.dataroot:
            raise UserError("give --dataroot DIR (enhances DIR/testA) or --input PATH --output DIR")
        if opt.input and not opt.output:
            raise UserError(
                f"--input {opt.input} needs --output DIR: the folder for the enhanced images"
            )
        if opt.output and not opt.input:
            raise UserError(
                "--output goes with --input; with --dataroot, results go to --results_dir"
            )
        if opt.input:
            check_folder("--output", opt.output)
        else:
            check_folder("--results_dir", opt.results_dir)
        return opt
