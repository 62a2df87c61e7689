"""The training loop behind ``train.py`` (NERCO_SPEC.md §2, §6).

It follows the release's bookkeeping: epochs ``epoch_count … n_epochs + n_epochs_decay``,
the learning rate stepped at the *start* of every epoch (so epoch e trains with factor
1 − max(0, e + 1 − n_epochs) / (n_epochs_decay + 1)), losses logged every ``print_freq``
iterations, ``latest`` saved every ``save_latest_freq`` iterations and ``<epoch>`` +
``latest`` every ``save_epoch_freq`` epochs. We also save ``latest`` when training ends,
and when SIGINT (Ctrl-C) or SIGTERM asks the run to stop.

Every save writes the weights and the training state (:mod:`nerco.train_state`), so
``--continue_train`` resumes exactly: same sample order and augmentation
(:mod:`data.sampling`), same optimiser moments, schedule, image pools and random streams.
Under ``torchrun`` every process trains on its share of each epoch and rank 0 alone logs,
displays and saves.
"""

from __future__ import annotations

import argparse
import glob
import logging
import math
import os
import re
import signal
import time
import warnings

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from data.sampling import EpochSampler, SeededItems
from data.unaligned_dataset import UnalignedDataset
from nerco import train_state
from nerco.clip_term import CLIPTerm, build_clip
from nerco.display import VisdomDisplay, plot_loss_curves
from nerco.distributed import Context
from nerco.errors import UserError
from nerco.html import HTML
from nerco.loss_log import LossLog
from nerco.losses import LossWeights
from nerco.model import Architecture, NeRCoModel
from nerco.networks import get_scheduler
from nerco.util import save_image, tensor2im

logger = logging.getLogger(__name__)

#: Intermediate images shown on the web page and the live display, in loop order.
VISUAL_NAMES = ("real_A", "pre_A", "mask", "Hm", "fake_B", "rec_A", "real_B", "fake_A", "rec_B")


def architecture_from(opt: argparse.Namespace) -> Architecture:
    return Architecture(input_nc=opt.input_nc, output_nc=opt.output_nc, ngf=opt.ngf,
                        ndf=opt.ndf, netG=opt.netG, netD=opt.netD, n_layers_D=opt.n_layers_D,
                        norm=opt.norm, use_dropout=not opt.no_dropout,
                        init_type=opt.init_type, init_gain=opt.init_gain)


def loss_weights_from(opt: argparse.Namespace) -> LossWeights:
    return LossWeights(lambda_A=opt.lambda_A, lambda_B=opt.lambda_B,
                       lambda_identity=opt.lambda_identity, lambda_pre=opt.lambda_pre,
                       lambda_clip=opt.lambda_clip, lambda_edge=opt.lambda_edge,
                       lambda_mask=opt.lambda_mask)


def visuals_as_images(visuals: dict[str, torch.Tensor]) -> dict:
    """uint8 HxWx3 arrays of the first image of each visual (the mask shown as grey)."""
    images = {}
    for name in VISUAL_NAMES:
        if name in visuals:
            tensor = visuals[name]
            images[name] = tensor2im(tensor * 2 - 1 if name == "mask" else tensor)
    return images


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM stopped the run after ``latest`` was saved."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _ignore_sigint(_worker_id: int) -> None:
    """Data workers leave Ctrl-C to the training process, which saves before it stops."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker_error_line(err: UserError) -> str:
    """A data worker's UserError arrives with the worker's traceback; keep its message."""
    lines = str(err).strip().splitlines()
    last = lines[-1] if lines else ""
    return last.split("UserError: ", 1)[-1]


def _run_seed(opt: argparse.Namespace, context: Context) -> int:
    """--seed, or a fresh seed shared by all processes (saved in the state for resuming)."""
    if opt.seed is not None:
        return int(opt.seed)
    seed = torch.tensor([int.from_bytes(os.urandom(4), "little")])
    if context.distributed:
        import torch.distributed as dist

        dist.broadcast(seed, src=0)
    return int(seed.item())


class Trainer:
    """Builds data, CLIP and model from the options, restores a state, runs the epochs."""

    def __init__(self, opt: argparse.Namespace, context: Context | None = None) -> None:
        self.opt = opt
        self.context = context or Context()
        self.device = device = self.context.device
        self.is_main = self.context.is_main
        self.save_dir = os.path.join(opt.checkpoints_dir, opt.name)
        # Data first and CLIP second: both fail fast with a one-line message.
        self.dataset = UnalignedDataset(
            opt.dataroot, phase=opt.phase, direction=opt.direction, preprocess=opt.preprocess,
            load_size=opt.load_size, crop_size=opt.crop_size, no_flip=opt.no_flip,
            serial_batches=opt.serial_batches, max_dataset_size=opt.max_dataset_size)
        self.seed = _run_seed(opt, self.context)
        self.sampler = EpochSampler(len(self.dataset), self.seed, shuffle=not opt.serial_batches,
                                    rank=self.context.rank, world_size=self.context.world_size)
        # The loader gets its own generator so that starting an epoch does not draw from
        # the global one, which the model uses (edge projections).
        self.loader = DataLoader(SeededItems(self.dataset), batch_size=opt.batch_size,
                                 sampler=self.sampler, num_workers=opt.num_threads,
                                 pin_memory=device.type == "cuda",
                                 worker_init_fn=_ignore_sigint,
                                 generator=torch.Generator().manual_seed(self.seed))
        if opt.clip_weights == "random":
            logger.warning("--clip_weights random: CLIP is randomly initialised, so the "
                           "text-driven terms D_A_CLIP/D_B_CLIP carry no meaning (smoke tests, "
                           "demos)")
            clip = build_clip(device=device, random_init=True)
        else:
            clip = build_clip(opt.clip_weights, device)
        clip_term = CLIPTerm(clip, normalize_input=opt.objective == "paper")  # spec §8.5
        self.model = NeRCoModel(architecture_from(opt), clip_term, objective=opt.objective,
                                weights=loss_weights_from(opt), gan_mode=opt.gan_mode,
                                pool_size=opt.pool_size, lr=opt.lr, beta1=opt.beta1,
                                amp=None if opt.amp == "none" else opt.amp,
                                checkpointing=opt.checkpointing).to(device)
        # Counters: epochs are numbered from --epoch_count (or the state); total_iters counts
        # samples over all processes as the release does; position counts this process's
        # samples already trained in the current epoch.
        self.first_epoch = opt.epoch_count
        self.epoch = opt.epoch_count
        self.position = 0
        self.total_iters = 0
        self.loss_history: list[dict] = []
        self.web_epochs: list[int] = []
        self.display = None
        if opt.display_id > 0 and self.is_main:
            self.display = VisdomDisplay(server=opt.display_server, port=opt.display_port,
                                         env=opt.display_env, display_id=opt.display_id,
                                         ncols=opt.display_ncols, winsize=opt.display_winsize)
        state = self._load_checkpoint() if opt.continue_train else None
        self.schedulers = [
            get_scheduler(optimizer, opt.lr_policy, opt.n_epochs, opt.n_epochs_decay,
                          self.first_epoch, opt.lr_decay_iters)
            for optimizer in (self.model.optimizer_G, self.model.optimizer_D)]
        if state is not None:
            self._restore(state)
        if self.context.distributed:
            self.model.distribute(device)
        self.loss_log = LossLog(self.save_dir) if self.is_main else None
        self.web_dir = None if opt.no_html or not self.is_main else os.path.join(self.save_dir,
                                                                                 "web")
        self._stop_signal: int | None = None
        logger.info("training images = %d (trainA %d, trainB %d), device %s%s",
                    len(self.dataset), self.dataset.A_size, self.dataset.B_size, device,
                    f", {self.context.world_size} processes" if self.context.distributed else "")

    # ------------------------------------------------------------ save / resume
    @property
    def last_epoch(self) -> int:
        return self.opt.n_epochs + self.opt.n_epochs_decay

    @property
    def iters_per_epoch(self) -> int:
        """Batches per epoch in this process."""
        return math.ceil(self.sampler.per_rank / self.opt.batch_size)

    def _load_checkpoint(self) -> dict | None:
        """Load ``--epoch`` weights; return its training state, or None (weights only)."""
        label = self.opt.epoch
        self.model.load_networks(self.save_dir, label)
        logger.info("loaded %s_net_*.pth from %s", label, self.save_dir)
        path = train_state.state_path(self.save_dir, label)
        if not os.path.isfile(path):
            logger.info("no %s: weights only, so the optimisers, the learning-rate schedule "
                        "and the image pools start fresh and epochs count from --epoch_count "
                        "%d", os.path.basename(path), self.opt.epoch_count)
            return None
        return train_state.load_state(path)

    def _restore(self, state: dict) -> None:
        opt = self.opt
        if opt.epoch_count != 1 and opt.epoch_count != state["epoch"]:
            logger.info("--epoch_count %d ignored: the training state continues epoch %d",
                        opt.epoch_count, state["epoch"])
        if state["first_epoch"] != self.first_epoch:
            # The linear rule depends on the first epoch of the run: rebuild it.
            self.first_epoch = state["first_epoch"]
            self.schedulers = [
                get_scheduler(optimizer, opt.lr_policy, opt.n_epochs, opt.n_epochs_decay,
                              self.first_epoch, opt.lr_decay_iters)
                for optimizer in (self.model.optimizer_G, self.model.optimizer_D)]
        self.model.load_training_state(state["model"], self.device)
        for scheduler, saved in zip(self.schedulers, state["schedulers"]):
            scheduler.load_state_dict(saved)
        if state["world_size"] != self.context.world_size or state["seed"] != self.seed:
            if opt.seed is not None and state["seed"] != opt.seed:
                logger.info("--seed %d ignored: the resumed run keeps its seed %d",
                            opt.seed, state["seed"])
            if state["world_size"] != self.context.world_size:
                logger.warning("the run was saved with %d processes and resumes with %d: the "
                               "rest of the epoch sees a different sample order",
                               state["world_size"], self.context.world_size)
        self.seed = state["seed"]
        self.sampler.seed = self.seed
        self.epoch, self.position = state["epoch"], state["position"]
        if state["world_size"] != self.context.world_size:
            self.position = 0
        self.total_iters = state["total_iters"]
        self.loss_history = list(state.get("loss_history", []))
        self.web_epochs = list(state.get("web_epochs", []))
        if self.display is not None and state.get("display"):
            self.display.load_state_dict(state["display"])
        train_state.restore_rng(state["rng"])
        logger.info("resuming epoch %d after %d of its %d iterations (total_iters %d, "
                    "learning rate %.7f)", self.epoch, self.position // self.opt.batch_size,
                    self.iters_per_epoch, self.total_iters, self.lr)

    def _state(self) -> dict:
        return {
            "epoch": self.epoch, "position": self.position, "total_iters": self.total_iters,
            "first_epoch": self.first_epoch, "seed": self.seed,
            "world_size": self.context.world_size,
            "model": self.model.training_state(),
            "schedulers": [s.state_dict() for s in self.schedulers],
            "rng": train_state.capture_rng(),
            "loss_history": self.loss_history, "web_epochs": self.web_epochs,
            "display": self.display.state_dict() if self.display is not None else None,
        }

    def save(self, label: str | int) -> None:
        """Weights and training state under ``label`` (rank 0 only).

        Only the newest numbered state is kept unless --keep_all_states: a state holds the
        image pools and Adam moments and is several times larger than the weights.
        """
        if not self.is_main:
            return
        self.model.save_networks(self.save_dir, label)
        train_state.save_state(self._state(), train_state.state_path(self.save_dir, label))
        if isinstance(label, int) and not self.opt.keep_all_states:
            for path in glob.glob(os.path.join(self.save_dir, "*_train_state.pth")):
                match = re.fullmatch(r"(\d+)_train_state\.pth", os.path.basename(path))
                if match and int(match.group(1)) != label:
                    os.remove(path)

    # --------------------------------------------------------------- helpers
    @property
    def lr(self) -> float:
        return self.model.optimizer_G.param_groups[0]["lr"]

    def update_learning_rate(self) -> None:
        old = self.lr
        with warnings.catch_warnings():  # stepping before the first optimizer step is intended
            warnings.simplefilter("ignore", UserWarning)
            for scheduler in self.schedulers:
                if self.opt.lr_policy == "plateau":
                    scheduler.step(0)
                else:
                    scheduler.step()
        logger.info("learning rate %.7f -> %.7f", old, self.lr)

    def save_visuals(self, epoch: int) -> None:
        """Write the current visuals of this epoch and rebuild web/index.html."""
        if self.web_dir is None:
            return
        page = HTML(self.web_dir, f"Experiment name = {self.opt.name}")
        for name, image in visuals_as_images(self.model.visuals).items():
            filename = f"epoch{epoch:03d}_{name}.png"
            save_image(image, os.path.join(page.get_image_dir(), filename))
        if epoch not in self.web_epochs:
            self.web_epochs.append(epoch)
        for e in sorted(self.web_epochs, reverse=True):
            page.add_header(f"epoch [{e}]")
            names = [f"epoch{e:03d}_{n}.png" for n in VISUAL_NAMES]
            page.add_images(names, list(VISUAL_NAMES), names, width=self.opt.display_winsize)
        page.save()

    def _on_signal(self, signum: int, _frame) -> None:
        self._stop_signal = signum
        # A second Ctrl-C (or SIGTERM) stops at once, without saving.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if self.is_main:
            logger.info("%s received: saving 'latest' after this iteration (again to stop "
                        "at once)", signal.Signals(signum).name)

    def _batches(self):
        """This epoch's remaining batches; a data worker's UserError as a one-line error."""
        iterator = iter(self.loader)
        while True:
            try:
                batch = next(iterator)
            except StopIteration:
                return
            except UserError as err:
                raise UserError(_worker_error_line(err)) from None
            yield batch

    # ------------------------------------------------------------------ loop
    def train_epoch(self, epoch: int) -> None:
        opt, world = self.opt, self.context.world_size
        if self.position == 0:
            self.update_learning_rate()  # release timing: at the start of the epoch
        self.sampler.set_epoch(epoch, start=self.position)
        saved_visuals = False
        iter_data_time = time.time()
        t_data = 0.0
        done = self.position // opt.batch_size
        bar = tqdm(self._batches(), desc=f"epoch {epoch}/{self.last_epoch}", unit="it",
                   total=self.iters_per_epoch, initial=done, dynamic_ncols=True, leave=False,
                   disable=not self.is_main)
        for batch in bar:
            iter_start = time.time()
            if self.total_iters % opt.print_freq == 0:
                t_data = iter_start - iter_data_time
            size = batch["A"].shape[0]
            self.total_iters += size * world
            self.position += size
            epoch_iter = self.position * world
            real_A = batch["A"].to(self.device, non_blocking=True)
            real_B = batch["B"].to(self.device, non_blocking=True)
            losses = self.model.optimize_parameters(real_A, real_B)
            bar.set_postfix(G=f"{losses['G_A'] + losses['G_B']:.3f}",
                            D=f"{losses['D_A'] + losses['D_B']:.3f}", refresh=False)
            if self.total_iters % opt.display_freq == 0 and self.display is not None:
                self.display.show_images(visuals_as_images(self.model.visuals), epoch)
            # The web page gets the visuals every update_html_freq iterations and at least
            # once per epoch.
            if self.total_iters % opt.update_html_freq == 0 or not saved_visuals:
                self.save_visuals(epoch)
                saved_visuals = True
            if self.total_iters % opt.print_freq == 0:
                losses = self.context.mean(losses)
                if self.is_main:
                    t_comp = (time.time() - iter_start) / opt.batch_size
                    line = self.loss_log.log(epoch, epoch_iter, self.total_iters, t_comp,
                                             t_data, self.lr, losses)
                    logger.info(line)
                    progress = epoch_iter / (self.sampler.per_rank * world)
                    self.loss_history.append({"x": epoch - 1 + progress, "losses": losses})
                    if self.display is not None:
                        self.display.plot_losses(epoch, progress, losses)
            if self.total_iters % opt.save_latest_freq == 0:
                label = f"iter_{self.total_iters}" if opt.save_by_iter else "latest"
                logger.info("saving the latest model (epoch %d, total_iters %d)",
                            epoch, self.total_iters)
                self.save(label)
            if self.context.any(self._stop_signal is not None):
                raise TrainingInterrupted(self._stop_signal or signal.SIGTERM)
            iter_data_time = time.time()
        bar.close()

    def run(self) -> None:
        """Train from the current epoch to the last; on SIGINT/SIGTERM save and raise
        :class:`TrainingInterrupted`."""
        opt = self.opt
        handlers = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._run_epochs()
        except TrainingInterrupted:
            logger.info("stopped in epoch %d after %d iterations: saving 'latest'",
                        self.epoch, self.position // opt.batch_size)
            self.save("latest")
            logger.info("saved %s; resume with the same command plus --continue_train",
                        os.path.join(self.save_dir, "latest_train_state.pth"))
            raise
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        self.save("latest")
        self.context.barrier()
        logger.info("training finished: %s", os.path.join(self.save_dir, "latest_net_*.pth"))

    def _run_epochs(self) -> None:
        opt = self.opt
        if self.position >= self.sampler.per_rank:  # saved after the epoch's last iteration
            self.epoch, self.position = self.epoch + 1, 0
        while self.epoch <= self.last_epoch:
            epoch, start = self.epoch, time.time()
            self.train_epoch(epoch)
            self.epoch, self.position = epoch + 1, 0
            if epoch % opt.save_epoch_freq == 0:
                logger.info("saving the model at the end of epoch %d, iters %d",
                            epoch, self.total_iters)
                self.save("latest")
                self.save(epoch)
            if self.loss_history and self.is_main:
                plot_loss_curves(self.loss_history, self.save_dir)
            logger.info("End of epoch %d / %d \t Time Taken: %d sec", epoch, self.last_epoch,
                        time.time() - start)
