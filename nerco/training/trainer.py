"""Building a training run from the options: data, CLIP, model, schedules, resumed state.

:class:`Trainer` is the run behind ``train.py`` (NERCO_SPEC.md §2, §6). This module builds
it: the unpaired dataset and its resumable sampler (:mod:`data.sampling`), the frozen CLIP,
the :class:`~nerco.training.model.NeRCoModel`, the learning-rate schedules, the display and
the loss log, and, with ``--continue_train``, the saved state (:mod:`nerco.training.resume`).
Running the epochs is :class:`~nerco.training.loop.TrainingLoop`, which ``Trainer`` extends.
Under ``torchrun`` every process builds the same run on its share of each epoch.
"""

from __future__ import annotations

import argparse
import logging
import math
import os

import torch
from torch.utils.data import DataLoader

from data.sampling import EpochSampler, SeededItems
from data.unaligned_dataset import UnalignedDataset
from nerco.networks.build import Architecture, describe_networks
from nerco.training import resume
from nerco.training.clip_term import CLIPTerm, build_clip, default_clip_weights_path
from nerco.training.distributed import Context
from nerco.training.loop import TrainingLoop
from nerco.training.loss_log import LossLog
from nerco.training.losses import LossWeights
from nerco.training.model import NeRCoModel
from nerco.training.run_guard import RunGuard
from nerco.training.schedules import get_scheduler
from nerco.training.stopping import StopRequests, WorkerSignals
from nerco.training.visdom import VisdomDisplay

logger = logging.getLogger(__name__)

#: Preprocessing that gives every batch one size: cuDNN's autotuning then pays off.
FIXED_SIZE_PREPROCESS = ("resize_and_crop", "crop", "scale_width_and_crop")


def architecture_from(opt: argparse.Namespace) -> Architecture:
    return Architecture(
        input_nc=opt.input_nc,
        output_nc=opt.output_nc,
        ngf=opt.ngf,
        ndf=opt.ndf,
        netG=opt.netG,
        netD=opt.netD,
        n_layers_D=opt.n_layers_D,
        norm=opt.norm,
        use_dropout=not opt.no_dropout,
        init_type=opt.init_type,
        init_gain=opt.init_gain,
    )


def loss_weights_from(opt: argparse.Namespace) -> LossWeights:
    return LossWeights(
        lambda_A=opt.lambda_A,
        lambda_B=opt.lambda_B,
        lambda_identity=opt.lambda_identity,
        lambda_pre=opt.lambda_pre,
        lambda_clip=opt.lambda_clip,
        lambda_edge=opt.lambda_edge,
        lambda_mask=opt.lambda_mask,
    )


def _processes(context: Context) -> str:
    """``, 2 processes (nccl)`` for the start-up line; empty outside torchrun."""
    if not context.distributed:
        return ""
    count = context.world_size
    return f", {count} process{'es' if count > 1 else ''} ({context.backend})"


def _run_seed(opt: argparse.Namespace, context: Context) -> int:
    """--seed, or a fresh seed shared by all processes (saved in the state for resuming)."""
    if opt.seed is not None:
        return int(opt.seed)
    return context.broadcast_int(int.from_bytes(os.urandom(4), "little"))


def set_cudnn_benchmark(choice: str, preprocess: str, device: torch.device) -> bool:
    """``--cudnn_benchmark``: on, off, or auto = on when every batch has one size."""
    on = choice == "on" or (choice == "auto" and preprocess in FIXED_SIZE_PREPROCESS)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = on
    return on


class Trainer(TrainingLoop):
    """Builds data, CLIP and model from the options and restores a state; :meth:`run` (from
    :class:`~nerco.training.loop.TrainingLoop`) trains the epochs."""

    def __init__(self, opt: argparse.Namespace, context: Context | None = None) -> None:
        self.opt = opt
        self.context = context or Context()
        self.device = device = self.context.device
        self.is_main = self.context.is_main
        self.save_dir = os.path.join(opt.checkpoints_dir, opt.name)
        # Data first and CLIP second: both fail fast with a one-line message.
        self.dataset = UnalignedDataset(
            opt.dataroot,
            phase=opt.phase,
            direction=opt.direction,
            preprocess=opt.preprocess,
            load_size=opt.load_size,
            crop_size=opt.crop_size,
            no_flip=opt.no_flip,
            serial_batches=opt.serial_batches,
            max_dataset_size=opt.max_dataset_size,
        )
        self.seed = _run_seed(opt, self.context)
        self.sampler = EpochSampler(
            len(self.dataset),
            self.seed,
            shuffle=not opt.serial_batches,
            rank=self.context.rank,
            world_size=self.context.world_size,
        )
        # The loader gets its own generator so that starting an epoch does not draw from
        # the global one, which the model uses (edge projections). Pinned memory belongs to
        # the current CUDA device, which train.py set to this process's GPU.
        self.loader = DataLoader(
            SeededItems(self.dataset),
            batch_size=opt.batch_size,
            sampler=self.sampler,
            num_workers=opt.num_threads,
            pin_memory=device.type == "cuda",
            worker_init_fn=WorkerSignals(),
            generator=torch.Generator().manual_seed(self.seed),
        )
        benchmark = set_cudnn_benchmark(opt.cudnn_benchmark, opt.preprocess, device)
        clip_term = CLIPTerm(self._build_clip(), normalize_input=opt.objective == "paper")
        self.model = NeRCoModel(
            architecture_from(opt),
            clip_term,
            objective=opt.objective,
            weights=loss_weights_from(opt),
            gan_mode=opt.gan_mode,
            pool_size=opt.pool_size,
            lr=opt.lr,
            beta1=opt.beta1,
            amp=None if opt.amp == "none" else opt.amp,
            checkpointing=opt.checkpointing,
            edge_filter=opt.edge_filter,
        ).to(device)
        if opt.verbose:
            logger.info(describe_networks(self.model.networks(), verbose=True))
        # Counters: epochs are numbered from --epoch_count (or the state); total_iters counts
        # samples over all processes as the release does; position counts this process's
        # samples already trained in the current epoch.
        self.first_epoch = opt.epoch_count
        self.epoch = opt.epoch_count
        self.position = 0
        self.total_iters = 0
        self.loss_history: list[dict] = []
        self.web_epochs: list[int] = []
        self.plateau: dict = {"sum": 0.0, "count": 0, "last": None}
        self.guard = RunGuard(self.context, self.save_dir)  # divergence, fp16 skips, agreeing
        self.display = None
        if opt.display_id > 0 and self.is_main:
            self.display = VisdomDisplay(
                server=opt.display_server,
                port=opt.display_port,
                env=opt.display_env,
                display_id=opt.display_id,
                ncols=opt.display_ncols,
                winsize=opt.display_winsize,
            )
        state = resume.load_into(self) if opt.continue_train else None
        self.schedulers = self.build_schedulers()
        if opt.lr_policy == "linear" and opt.n_epochs_decay == 0 and self.is_main:
            logger.warning(
                "--n_epochs_decay 0: the release's schedule steps the learning rate "
                "before each epoch, so epoch %d (the last) trains at 0; give at "
                "least one decay epoch",
                opt.n_epochs,
            )
        if state is not None:
            resume.restore(self, state)
        if self.context.distributed:
            self.model.distribute(device)
        self.loss_log = LossLog(self.save_dir) if self.is_main else None
        self.web_dir = (
            None if opt.no_html or not self.is_main else os.path.join(self.save_dir, "web")
        )
        self._stop = StopRequests(announce=self.is_main)
        self._latest_at: int | None = None  # total_iters of the last 'latest' save
        logger.info(
            "training images = %d (trainA %d, trainB %d), device %s%s%s",
            len(self.dataset),
            self.dataset.A_size,
            self.dataset.B_size,
            device,
            _processes(self.context),
            ", cudnn.benchmark" if benchmark and device.type == "cuda" else "",
        )

    def _build_clip(self) -> torch.nn.Module:
        opt = self.opt
        if opt.clip_weights == "random":
            logger.warning(
                "--clip_weights random: CLIP is randomly initialised, so the "
                "text-driven terms D_A_CLIP/D_B_CLIP carry no meaning (smoke tests, "
                "demos)"
            )
            return build_clip(device=self.device, random_init=True)
        weights = opt.clip_weights
        if weights is None:  # rank 0 downloads; the others then read open_clip's cache
            weights = self.context.rank_zero_first(default_clip_weights_path)
        return build_clip(weights, self.device)

    def build_schedulers(self) -> list:
        opt = self.opt
        return [
            get_scheduler(
                optimizer,
                opt.lr_policy,
                opt.n_epochs,
                opt.n_epochs_decay,
                self.first_epoch,
                opt.lr_decay_iters,
            )
            for optimizer in (self.model.optimizer_G, self.model.optimizer_D)
        ]

    # ------------------------------------------------------------ save / resume
    @property
    def last_epoch(self) -> int:
        return self.opt.n_epochs + self.opt.n_epochs_decay

    @property
    def iters_per_epoch(self) -> int:
        """Batches per epoch in this process."""
        return math.ceil(self.sampler.per_rank / self.opt.batch_size)

    # --------------------------------------------------------------- helpers
    @property
    def lr(self) -> float:
        return self.model.optimizer_G.param_groups[0]["lr"]
