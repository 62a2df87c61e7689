"""Training options: the release's flags plus --objective, --clip_weights, --seed and the
named loss factors (NERCO_SPEC.md §2, §6)."""

from __future__ import annotations

import argparse

from options.base_options import BaseOptions
from options.checks import check_training
from options.choices import AMP_MODES, EDGE_FILTERS, GAN_MODES, LR_POLICIES, OBJECTIVES
from options.choices import LOSS_WEIGHTS as _W
from options.values import Float, Int

#: Loss weights are factors: 0 switches a term off.
_WEIGHT = Float(0)


class TrainOptions(BaseOptions):
    is_train = True

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser = super().initialize(parser)
        # display and logging
        parser.add_argument(
            "--display_freq",
            type=Int(1),
            default=400,
            help="show current visuals every N iterations",
        )
        parser.add_argument(
            "--display_ncols", type=Int(1), default=4, help="images per row in the visdom panel"
        )
        parser.add_argument(
            "--display_id",
            type=Int(0),
            default=1,
            help="visdom window id; 0 disables the live display",
        )
        parser.add_argument("--display_server", default="http://localhost", help="visdom server")
        parser.add_argument("--display_env", default="main", help="visdom environment")
        parser.add_argument("--display_port", type=Int(1, 65535), default=8097, help="visdom port")
        parser.add_argument(
            "--update_html_freq",
            type=Int(1),
            default=1000,
            help="save visuals to web/index.html every N iterations",
        )
        parser.add_argument(
            "--print_freq", type=Int(1), default=100, help="log losses every N iterations"
        )
        parser.add_argument(
            "--no_html", action="store_true", help="do not write <checkpoints_dir>/<name>/web/"
        )
        # saving and loading
        parser.add_argument(
            "--save_latest_freq", type=Int(1), default=5000, help="save 'latest' every N iterations"
        )
        parser.add_argument(
            "--save_epoch_freq",
            type=Int(1),
            default=5,
            help="save '<epoch>' and 'latest' every N epochs",
        )
        parser.add_argument(
            "--save_by_iter",
            action="store_true",
            help="label the periodic saves iter_<N> instead of latest",
        )
        parser.add_argument(
            "--continue_train",
            action="store_true",
            help="resume from <epoch>_net_<NAME>.pth and, when present, "
            "<epoch>_train_state.pth (counters, optimisers, schedule, "
            "pools, random state)",
        )
        parser.add_argument(
            "--epoch_count",
            type=Int(1),
            default=1,
            help="number of the first epoch (a resumed training state overrides it)",
        )
        parser.add_argument(
            "--keep_all_states",
            action="store_true",
            help="keep the training state of every numbered save, not just "
            "the newest (states are large: Adam moments and pools)",
        )
        parser.add_argument("--phase", default="train", help="folder prefix: <phase>A, <phase>B")
        # optimisation
        parser.add_argument(
            "--n_epochs", type=Int(0), default=100, help="epochs at the initial learning rate"
        )
        parser.add_argument(
            "--n_epochs_decay", type=Int(0), default=200, help="epochs of linear decay to zero"
        )
        parser.add_argument("--beta1", type=Float(0, 1, below=True), default=0.5, help="Adam beta1")
        parser.add_argument(
            "--lr", type=Float(0, above=True), default=2e-4, help="Adam learning rate"
        )
        parser.add_argument(
            "--gan_mode", default="lsgan", choices=GAN_MODES, help="lsgan: MSE to 1/0 (released)"
        )
        parser.add_argument(
            "--pool_size",
            type=Int(0),
            default=50,
            help="history of generated images per pool (0 = none)",
        )
        parser.add_argument(
            "--lr_policy",
            default="linear",
            choices=LR_POLICIES,
            help="learning-rate schedule, stepped once per epoch",
        )
        parser.add_argument(
            "--lr_decay_iters", type=Int(1), default=50, help="step policy: ×0.1 every N epochs"
        )
        parser.add_argument(
            "--seed",
            type=Int(0, 2**32 - 1),
            default=None,
            help="seed Python, NumPy and torch for a repeatable run",
        )
        parser.add_argument(
            "--amp",
            default="none",
            choices=AMP_MODES,
            help="mixed precision: bf16 (CUDA or CPU) or fp16 with loss "
            "scaling (CUDA); none = float32",
        )
        parser.add_argument(
            "--checkpointing",
            action="store_true",
            help="activation checkpointing of G_A, G_B, Pre and H: same "
            "numbers, about 30%% more arithmetic (1.2x the time on a "
            "CPU), a third of the memory (for large --crop_size)",
        )
        parser.add_argument(
            "--cudnn_benchmark",
            default="auto",
            choices=("auto", "on", "off"),
            help="cuDNN autotuning of the convolutions (CUDA): auto = on when "
            "every batch has one size (a --preprocess with crop), off "
            "when sizes vary (tuning then repeats for each new size)",
        )
        # the objective
        parser.add_argument(
            "--objective",
            default="official",
            choices=OBJECTIVES,
            help="official = released code (spec §8 quirks); paper = fixed",
        )
        parser.add_argument(
            "--edge_filter",
            default=EDGE_FILTERS[0],
            choices=EDGE_FILTERS,
            help="3x3 filter of the edge discriminators' high-frequency path, "
            "on the grey image: gradient = central differences "
            "sqrt(v²+h²) (released); sobel = Sobel sqrt(v²+h²); "
            "laplacian = |4-neighbour Laplacian|. A resumed run keeps "
            "the saved filter",
        )
        parser.add_argument(
            "--clip_weights",
            default=None,
            help="local CLIP RN50 weights (OpenAI RN50.pt or open_clip "
            "checkpoint); default: open_clip's cache or download; "
            "'random': untrained CLIP, for smoke tests only",
        )
        parser.add_argument(
            "--lambda_A",
            type=_WEIGHT,
            default=_W["lambda_A"],
            help="cycle A→B→A weight: λ_A·‖G_B(G_A(A)) − A‖₁",
        )
        parser.add_argument(
            "--lambda_B",
            type=_WEIGHT,
            default=_W["lambda_B"],
            help="cycle B→A→B weight: λ_B·‖G_A(G_B(B)) − B‖₁",
        )
        parser.add_argument(
            "--lambda_identity",
            type=_WEIGHT,
            default=_W["lambda_identity"],
            help="identity weight relative to the cycle weight",
        )
        parser.add_argument(
            "--lambda_pre",
            type=_WEIGHT,
            default=_W["lambda_pre"],
            help="PreConsis = lambda_pre·λ_A·‖Pre(A) − A‖₁ + GAN(D_B(Pre(A)))",
        )
        parser.add_argument(
            "--lambda_clip",
            type=_WEIGHT,
            default=_W["lambda_clip"],
            help="weight of D_A_CLIP and D_B_CLIP in the generator loss",
        )
        parser.add_argument(
            "--lambda_edge",
            type=_WEIGHT,
            default=_W["lambda_edge"],
            help="weight of G_A_edge and G_B_edge in the generator loss",
        )
        parser.add_argument(
            "--lambda_mask",
            type=_WEIGHT,
            default=_W["lambda_mask"],
            help="weight of the mask-extractor loss H in the generator loss",
        )
        return parser

    def check(self, opt: argparse.Namespace) -> None:
        """Crops against the networks, the schedule, --clip_weights, and with --preprocess
        none / scale_width the training images' sizes (see :mod:`options.checks`)."""
        check_training(opt)
