"""Options shared by training and testing (NERCO_SPEC.md §4 and §6, the release's flags).

Parsing has no side effects: it neither creates folders nor picks a device, and it imports
no torch, so a bad option is reported at once. Every value is checked where it is read
(:mod:`options.values`), then the options together (:mod:`options.checks`). Call
:func:`format_options` / :func:`save_options` to print and keep them (``<phase>_opt.txt``).
"""

from __future__ import annotations

import argparse
import os

from nerco.runtime import program_name
from options.checks import format_suffix
from options.choices import DISCRIMINATORS, GENERATORS, INIT_TYPES, NORMS, PREPROCESS_CHOICES
from options.parser import OptionParser
from options.values import Float, GpuIds, Int


class BaseOptions:
    """Flags common to ``train.py`` and ``test.py``."""

    is_train = False

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        # basic
        # Training needs it; testing takes --dataroot or --input (checked in TestOptions).
        parser.add_argument(
            "--dataroot",
            required=self.is_train,
            help="dataset folder with trainA/trainB (training) or testA (testing)",
        )
        parser.add_argument(
            "--name",
            default="experiment_name",
            help="experiment name: checkpoints go to <checkpoints_dir>/<name>",
        )
        parser.add_argument(
            "--gpu_ids",
            default="0",
            type=GpuIds(),
            help="GPU ids, e.g. 0; -1 for the CPU (the CPU is also used, with "
            "a notice, when CUDA is unavailable). A process uses the first "
            "GPU listed: for several GPUs start train.py with torchrun",
        )
        parser.add_argument(
            "--checkpoints_dir",
            default="./saves",
            help="models are saved here, one folder per --name",
        )
        # model
        parser.add_argument(
            "--input_nc", type=int, default=3, choices=[3], help="input image channels (RGB)"
        )
        parser.add_argument(
            "--output_nc", type=int, default=3, choices=[3], help="output image channels (RGB)"
        )
        parser.add_argument(
            "--ngf",
            type=Int(1),
            default=64,
            help="generator width; scales G_A, G_B, Pre (NRN input 9·ngf + 36) "
            "and H (64 = released layout)",
        )
        parser.add_argument(
            "--ndf", type=Int(1), default=64, help="discriminator width of the first layer"
        )
        parser.add_argument(
            "--netD",
            default="basic",
            choices=DISCRIMINATORS,
            help="basic = 70×70 PatchGAN; n_layers uses --n_layers_D; pixel = 1×1",
        )
        parser.add_argument(
            "--netG",
            default="resnet_9blocks",
            choices=GENERATORS,
            help="generator G_A/G_B architecture (H always has 3 blocks, the "
            "NRN trunk 9, as released)",
        )
        parser.add_argument(
            "--n_layers_D", type=Int(1), default=3, help="PatchGAN depth, only with --netD n_layers"
        )
        parser.add_argument(
            "--norm", default="instance", choices=NORMS, help="normalisation layer of every network"
        )
        parser.add_argument(
            "--init_type", default="normal", choices=INIT_TYPES, help="weight initialisation"
        )
        parser.add_argument(
            "--init_gain",
            type=Float(0, above=True),
            default=0.02,
            help="std of normal init, gain of xavier/orthogonal",
        )
        parser.add_argument(
            "--no_dropout",
            action="store_true",
            default=True,
            help="no dropout in the generators (always on, as in the release)",
        )
        # data
        parser.add_argument(
            "--direction",
            default="AtoB",
            choices=["AtoB", "BtoA"],
            help="AtoB: A = low light, B = normal light",
        )
        parser.add_argument(
            "--serial_batches",
            action="store_true",
            help="pair A[i] with B[i mod |B|] instead of a random B",
        )
        parser.add_argument(
            "--num_threads", type=Int(0), default=4, help="data-loading worker processes"
        )
        parser.add_argument("--batch_size", type=Int(1), default=1, help="input batch size")
        parser.add_argument(
            "--load_size",
            type=Int(1),
            default=512,
            help="scale images to this size (scale_width: this width)",
        )
        parser.add_argument(
            "--crop_size",
            type=Int(1),
            default=512,
            help="then crop to this size: a multiple of 4, at least 24 with "
            "the default --netD (README: Crops, batches and option checks)",
        )
        parser.add_argument(
            "--max_dataset_size",
            type=Int(1, infinite=True),
            default=float("inf"),
            help="use at most this many images per folder",
        )
        parser.add_argument(
            "--preprocess",
            default="resize_and_crop",
            choices=PREPROCESS_CHOICES,
            help="scaling and cropping at load time",
        )
        parser.add_argument("--no_flip", action="store_true", help="no random horizontal flip")
        parser.add_argument(
            "--display_winsize",
            type=Int(1),
            default=512,
            help="image width on the visdom and HTML pages",
        )
        # loading
        parser.add_argument(
            "--epoch", default="latest", help="checkpoint label to load: latest, or an epoch number"
        )
        parser.add_argument(
            "--load_iter",
            type=Int(0),
            default=0,
            help="if > 0, load the checkpoint labelled iter_<load_iter>",
        )
        parser.add_argument("--verbose", action="store_true", help="print the networks")
        parser.add_argument(
            "--suffix",
            default="",
            help="appended to --name, may use options: {netG}_size{load_size}",
        )
        return parser

    def build_parser(self) -> argparse.ArgumentParser:
        parser = OptionParser(
            prog=program_name("train.py" if self.is_train else "test.py"),
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
            description="NeRCo " + ("training" if self.is_train else "testing"),
        )
        self.parser = self.initialize(parser)
        return self.parser

    def check(self, opt: argparse.Namespace) -> None:
        """Checks across options, after each value passed its own (subclasses add theirs).

        Raises:
            UserError: one line naming the flags and what they allow.
        """

    def parse(self, args: list[str] | None = None) -> argparse.Namespace:
        """Parse and check ``args`` (``sys.argv`` when None); no folders are created, no
        device picked, nothing heavy imported.

        Raises:
            UserError: any bad option, in one line naming the flag and what it allows.
        """
        opt = self.build_parser().parse_args(args)
        opt.isTrain = self.is_train
        if opt.suffix:
            opt.name = opt.name + "_" + format_suffix(opt)
        self.check(opt)
        if opt.load_iter > 0:
            opt.epoch = f"iter_{opt.load_iter}"
        return opt


def format_options(opt: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    """The options table, marking values that differ from their defaults."""
    lines = ["----------------- Options ---------------"]
    for key, value in sorted(vars(opt).items()):
        default = parser.get_default(key)
        comment = f"\t[default: {default}]" if default is not None and value != default else ""
        lines.append(f"{key:>25}: {str(value):<30}{comment}")
    lines.append("----------------- End -------------------")
    return "\n".join(lines)


def save_options(opt: argparse.Namespace, parser: argparse.ArgumentParser, folder: str) -> str:
    """Write the options table to ``<folder>/<phase>_opt.txt`` and return it."""
    message = format_options(opt, parser)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{opt.phase}_opt.txt"), "w") as handle:
        handle.write(message + "\n")
    return message
