"""Testing options: where results go. The released models are enhanced at full size."""

from __future__ import annotations

import argparse

from options.base_options import BaseOptions


class TestOptions(BaseOptions):
    is_train = False

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser = super().initialize(parser)
        parser.add_argument("--results_dir", default="./results",
                            help="results go to <results_dir>/<name>/<phase>_<epoch>/")
        parser.add_argument("--aspect_ratio", type=float, default=1.0,
                            help="aspect ratio of saved result images")
        parser.add_argument("--phase", default="test", help="input folder is <dataroot>/<phase>A")
        parser.add_argument("--eval", action="store_true",
                            help="kept for compatibility: the enhancer always runs in eval mode")
        parser.add_argument("--num_test", type=int, default=None,
                            help="enhance at most this many images")
        # Testing enhances whole images; the enhancer pads to a multiple of 4 internally.
        parser.set_defaults(preprocess="none", num_threads=0)
        return parser
