"""The training loop behind ``train.py`` (NERCO_SPEC.md §2, §6).

It follows the release's bookkeeping: epochs ``epoch_count … n_epochs + n_epochs_decay``,
the learning rate stepped at the *start* of every epoch (so epoch e trains with factor
1 − max(0, e + 1 − n_epochs) / (n_epochs_decay + 1)), losses logged every ``print_freq``
iterations, ``latest`` saved every ``save_latest_freq`` iterations and ``<epoch>`` +
``latest`` every ``save_epoch_freq`` epochs. We also save ``latest`` when training ends.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
import warnings

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from data.unaligned_dataset import UnalignedDataset
from nerco.clip_term import CLIPTerm, build_clip
from nerco.display import VisdomDisplay, plot_loss_curves
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


class Trainer:
    """Builds data, CLIP and model from the options, then runs the epochs."""

    def __init__(self, opt: argparse.Namespace, device: torch.device) -> None:
        self.opt = opt
        self.device = device
        self.save_dir = os.path.join(opt.checkpoints_dir, opt.name)
        # Data first and CLIP second: both fail fast with a one-line message.
        self.dataset = UnalignedDataset(
            opt.dataroot, phase=opt.phase, direction=opt.direction, preprocess=opt.preprocess,
            load_size=opt.load_size, crop_size=opt.crop_size, no_flip=opt.no_flip,
            serial_batches=opt.serial_batches, max_dataset_size=opt.max_dataset_size)
        self.loader = DataLoader(self.dataset, batch_size=opt.batch_size,
                                 shuffle=not opt.serial_batches, num_workers=opt.num_threads,
                                 pin_memory=device.type == "cuda")
        clip_term = CLIPTerm(build_clip(opt.clip_weights, device),
                             normalize_input=opt.objective == "paper")  # spec §8.5
        self.model = NeRCoModel(architecture_from(opt), clip_term, objective=opt.objective,
                                weights=loss_weights_from(opt), gan_mode=opt.gan_mode,
                                pool_size=opt.pool_size, lr=opt.lr, beta1=opt.beta1).to(device)
        if opt.continue_train:
            self.model.load_networks(self.save_dir, opt.epoch)
            logger.info("loaded %s_net_*.pth from %s", opt.epoch, self.save_dir)
        self.schedulers = [
            get_scheduler(optimizer, opt.lr_policy, opt.n_epochs, opt.n_epochs_decay,
                          opt.epoch_count, opt.lr_decay_iters)
            for optimizer in (self.model.optimizer_G, self.model.optimizer_D)]
        self.loss_log = LossLog(self.save_dir)
        self.web_dir = None if opt.no_html else os.path.join(self.save_dir, "web")
        self.web_epochs: list[int] = []
        self.display = None
        if opt.display_id > 0:
            self.display = VisdomDisplay(server=opt.display_server, port=opt.display_port,
                                         env=opt.display_env, display_id=opt.display_id,
                                         ncols=opt.display_ncols, winsize=opt.display_winsize)
        self.loss_history: list[dict] = []
        self.total_iters = 0
        logger.info("training images = %d (trainA %d, trainB %d), device %s",
                    len(self.dataset), self.dataset.A_size, self.dataset.B_size, device)

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

    def save(self, label: str | int) -> None:
        self.model.save_networks(self.save_dir, label)

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

    # ------------------------------------------------------------------ loop
    def train_epoch(self, epoch: int) -> None:
        opt = self.opt
        epoch_iter = 0
        saved_visuals = False
        self.update_learning_rate()
        iter_data_time = time.time()
        t_data = 0.0
        bar = tqdm(self.loader, desc=f"epoch {epoch}", unit="it", dynamic_ncols=True,
                   leave=False)
        for batch in bar:
            iter_start = time.time()
            if self.total_iters % opt.print_freq == 0:
                t_data = iter_start - iter_data_time
            self.total_iters += opt.batch_size
            epoch_iter += opt.batch_size
            real_A = batch["A"].to(self.device, non_blocking=True)
            real_B = batch["B"].to(self.device, non_blocking=True)
            losses = self.model.optimize_parameters(real_A, real_B)
            bar.set_postfix(G=f"{losses['G_A'] + losses['G_B']:.3f}",
                            D=f"{losses['D_A'] + losses['D_B']:.3f}", refresh=False)
            if self.total_iters % opt.display_freq == 0:
                if self.display is not None:
                    self.display.show_images(visuals_as_images(self.model.visuals), epoch)
            # The web page gets the visuals every update_html_freq iterations and at least
            # once per epoch.
            if self.total_iters % opt.update_html_freq == 0 or not saved_visuals:
                self.save_visuals(epoch)
                saved_visuals = True
            if self.total_iters % opt.print_freq == 0:
                t_comp = (time.time() - iter_start) / opt.batch_size
                line = self.loss_log.log(epoch, epoch_iter, self.total_iters, t_comp, t_data,
                                         self.lr, losses)
                logger.info(line)
                progress = epoch_iter / len(self.dataset)
                self.loss_history.append({"x": epoch - 1 + progress, "losses": losses})
                if self.display is not None:
                    self.display.plot_losses(epoch, progress, losses)
            if self.total_iters % opt.save_latest_freq == 0:
                label = f"iter_{self.total_iters}" if opt.save_by_iter else "latest"
                logger.info("saving the latest model (epoch %d, total_iters %d)",
                            epoch, self.total_iters)
                self.save(label)
            iter_data_time = time.time()

    def run(self) -> None:
        opt = self.opt
        last_epoch = opt.n_epochs + opt.n_epochs_decay
        for epoch in range(opt.epoch_count, last_epoch + 1):
            start = time.time()
            self.train_epoch(epoch)
            if epoch % opt.save_epoch_freq == 0:
                logger.info("saving the model at the end of epoch %d, iters %d",
                            epoch, self.total_iters)
                self.save("latest")
                self.save(epoch)
            if self.loss_history:
                plot_loss_curves(self.loss_history, self.save_dir)
            logger.info("End of epoch %d / %d \t Time Taken: %d sec", epoch, last_epoch,
                        time.time() - start)
        self.save("latest")
        logger.info("training finished: %s", os.path.join(self.save_dir, "latest_net_*.pth"))
