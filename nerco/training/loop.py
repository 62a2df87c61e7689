"""The training loop behind ``train.py`` (NERCO_SPEC.md §2, §6).

It follows the release's bookkeeping: epochs ``epoch_count … n_epochs + n_epochs_decay``,
the learning rate stepped at the *start* of every epoch (so epoch e trains with factor
1 − max(0, e + 1 − n_epochs) / (n_epochs_decay + 1)), losses logged every ``print_freq``
samples, ``latest`` saved every ``save_latest_freq`` samples and ``<epoch>`` + ``latest``
every ``save_epoch_freq`` epochs (samples counted over all processes, so the frequencies
mean the same with any number of them). We also save ``latest`` when training ends, and
when SIGINT (Ctrl-C) or SIGTERM asks the run to stop (:mod:`nerco.training.stopping`).

Every save writes the weights and the training state as one set
(:mod:`nerco.training.resume`), so ``--continue_train`` resumes exactly: same sample order
and augmentation (:mod:`data.sampling`), same optimiser moments, schedule, image pools and
random streams. A NaN or infinite loss stops the run before anything more is saved
(:mod:`nerco.training.run_guard`). Under ``torchrun`` rank 0 alone logs, displays and saves.
"""

from __future__ import annotations

import logging
import os
import signal
import time
import warnings

import torch
from tqdm import tqdm

from nerco.evaluation.pages import HTML
from nerco.runtime import UserError
from nerco.training import resume
from nerco.training.curves import plot_loss_curves
from nerco.util import save_image, tensor2im

logger = logging.getLogger(__name__)

#: Intermediate images shown on the web page and the live display, in loop order.
VISUAL_NAMES = ("real_A", "pre_A", "mask", "Hm", "fake_B", "rec_A", "real_B", "fake_A", "rec_B")


#: ``--lr_policy plateau`` steps on the epoch mean of these losses: the reconstruction
#: errors fall while the generators improve, where the adversarial terms only oscillate.
PLATEAU_LOSSES = ("cycle_A", "cycle_B")


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


def _worker_error_line(err: UserError) -> str:
    """A data worker's UserError arrives with the worker's traceback; keep its message."""
    lines = str(err).strip().splitlines()
    last = lines[-1] if lines else ""
    return last.split("UserError: ", 1)[-1]


def crossed(before: int, after: int, freq: int) -> bool:
    """Whether the sample count went past a multiple of ``freq`` (in ``(before, after]``)."""
    return after // freq > before // freq


class TrainingLoop:
    """The epochs of a run: the loop half of :class:`~nerco.training.trainer.Trainer`.

    It works on what the trainer built (``opt``, ``model``, ``loader``, ``sampler``,
    ``schedulers``, ``guard``, ``display``, ``loss_log`` and the counters ``epoch``,
    ``position``, ``total_iters``); :meth:`run` is the entry point.
    """

    def _where(self, epoch: int | None = None) -> dict:
        return {
            "total_iters": self.total_iters,
            "epoch": self.epoch if epoch is None else epoch,
            "epoch_iter": self.position // self.opt.batch_size,
        }

    def save(self, label: str | int) -> None:
        """Weights and training state under ``label``, as one set written by rank 0.

        Every process calls it at the same point: they first agree that no number went
        non-finite anywhere (else :class:`TrainingDiverged`, and nothing is written). Only the
        newest numbered state is kept beside ``latest`` unless --keep_all_states: a state
        holds the image pools and Adam moments and is several times larger than the weights.
        """
        if label == "latest" and self._latest_at == self.total_iters:
            return  # saved at this very iteration already
        model = self.model
        self.guard.check_tensors(
            [net.state_dict() for net in model.networks().values()]
            + [model.optimizer_G.state_dict()["state"], model.optimizer_D.state_dict()["state"]]
            + [pool.images for pool in model.pools.values()],
            self._where(),
        )
        self.guard.sync(self._stop.requested)
        info = self._where()
        if self.is_main:
            resume.save(self.save_dir, label, model.networks(), resume.snapshot(self), info)
            if label != "latest" and not self.opt.keep_all_states:
                resume.prune_states(self.save_dir, label)
        good = self.guard.last_good
        if not (
            good and good["label"] == "latest" and good.get("total_iters") == info["total_iters"]
        ):  # an epoch's save beside 'latest': name 'latest' still
            self.guard.last_good = {"label": str(label), **info}
        if label == "latest":
            self._latest_at = self.total_iters

    def update_learning_rate(self) -> None:
        old, plateau = self.lr, self.opt.lr_policy == "plateau"
        metric = self.plateau["last"]
        with warnings.catch_warnings():  # stepping before the first optimizer step is intended
            warnings.simplefilter("ignore", UserWarning)
            for scheduler in self.schedulers:
                if not plateau:
                    scheduler.step()
                elif metric is not None:  # no finished epoch yet: nothing to compare
                    scheduler.step(metric)
        if plateau and metric is not None:
            logger.info(
                "learning rate %.7f -> %.7f (plateau on the last epoch's mean %s: %.5f)",
                old,
                self.lr,
                " + ".join(PLATEAU_LOSSES),
                metric,
            )
        else:
            logger.info("learning rate %.7f -> %.7f", old, self.lr)

    def _end_epoch_metric(self) -> None:
        """The plateau metric of the epoch just trained (averaged over the processes)."""
        if self.opt.lr_policy != "plateau":
            return
        totals = self.context.mean({"sum": self.plateau["sum"], "count": self.plateau["count"]})
        last = totals["sum"] / totals["count"] if totals["count"] else None
        self.plateau = {"sum": 0.0, "count": 0, "last": last}

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

    def _batches(self):
        """This epoch's remaining batches; a data worker's UserError as a one-line error."""
        iterator = iter(self.loader)
        try:
            while True:
                try:
                    batch = next(iterator)
                except StopIteration:
                    return
                except UserError as err:
                    raise UserError(_worker_error_line(err)) from None
                yield batch
        finally:
            # Stop the workers now, not at interpreter exit: there multiprocessing would
            # terminate them and the loader's SIGCHLD handler turn that into a traceback.
            shutdown = getattr(iterator, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()

    # ------------------------------------------------------------------ loop
    def _log(self, epoch: int, losses: dict[str, float], t_comp: float, t_data: float) -> None:
        losses = self.context.mean(losses)
        if not self.is_main:
            return
        world = self.context.world_size
        epoch_iter = self.position * world
        extra = {"skipped_steps": self.guard.skipped.total} if self.opt.amp == "fp16" else None
        line = self.loss_log.log(
            epoch, epoch_iter, self.total_iters, t_comp, t_data, self.lr, losses, extra
        )
        logger.info(line)
        progress = epoch_iter / (self.sampler.per_rank * world)
        self.loss_history.append({"x": epoch - 1 + progress, "losses": losses})
        if self.display is not None:
            self.display.plot_losses(epoch, progress, losses)

    def train_epoch(self, epoch: int) -> None:
        opt, world = self.opt, self.context.world_size
        if self.position == 0:
            self.update_learning_rate()  # release timing: at the start of the epoch
        self.sampler.set_epoch(epoch, start=self.position)
        saved_visuals = False
        iter_data_time = time.time()
        done = self.position // opt.batch_size
        bar = tqdm(
            self._batches(),
            desc=f"epoch {epoch}/{self.last_epoch}",
            unit="it",
            total=self.iters_per_epoch,
            initial=done,
            dynamic_ncols=True,
            leave=False,
            disable=not self.is_main,
        )
        try:
            for batch in bar:
                iter_start = time.time()
                t_data = iter_start - iter_data_time
                before = self.total_iters
                size = batch["A"].shape[0]
                self.total_iters += size * world
                self.position += size
                real_A = batch["A"].to(self.device, non_blocking=True)
                real_B = batch["B"].to(self.device, non_blocking=True)
                losses = self.model.optimize_parameters(real_A, real_B)  # one host transfer
                self.guard.check_losses(losses, self._where(epoch))
                self.guard.skipped.update(self.model.skipped_steps)

                def due(freq: int, start: int = before) -> bool:
                    return crossed(start, self.total_iters, freq)

                printing, saving = due(opt.print_freq), due(opt.save_latest_freq)
                check = self.guard.agreement.tick() or printing or saving
                stop = self.guard.sync(self._stop.requested) if check else False
                if not self.guard.ok:
                    # Under torchrun: this process wait for the next check, logging nothing.
                    iter_data_time = time.time()
                    continue
                self.plateau["sum"] += sum(losses[name] for name in PLATEAU_LOSSES)
                self.plateau["count"] += 1
                bar.set_postfix(
                    G=f"{losses['G_A'] + losses['G_B']:.3f}",
                    D=f"{losses['D_A'] + losses['D_B']:.3f}",
                    refresh=False,
                )
                if due(opt.display_freq) and self.display is not None:
                    self.display.show_images(visuals_as_images(self.model.visuals), epoch)
                # The web page gets the visuals every update_html_freq samples and at least
                # once per epoch.
                if due(opt.update_html_freq) or not saved_visuals:
                    self.save_visuals(epoch)
                    saved_visuals = True
                if printing:
                    self._log(epoch, losses, (time.time() - iter_start) / opt.batch_size, t_data)
                if saving:
                    label = f"iter_{self.total_iters}" if opt.save_by_iter else "latest"
                    logger.info(
                        "saving the latest model (epoch %d, total_iters %d)",
                        epoch,
                        self.total_iters,
                    )
                    self.save(label)
                if stop:
                    raise TrainingInterrupted(self._stop.signum or signal.SIGTERM)
                iter_data_time = time.time()
        finally:
            bar.close()

    def run(self) -> None:
        """Train from the current epoch to the last; on SIGINT/SIGTERM save and raise
        :class:`TrainingInterrupted`; on a non-finite loss raise :class:`TrainingDiverged`."""
        opt = self.opt
        with self._stop:  # until the last save is written
            try:
                self._run_epochs()
            except TrainingInterrupted:
                logger.info(
                    "stopped in epoch %d after %d iterations: saving 'latest'",
                    self.epoch,
                    self.position // opt.batch_size,
                )
                self.save("latest")
                # Under torchrun no process exits before rank 0 has written the set: torchrun
                # would take the first exit as a failure and kill the others.
                self.context.barrier()
                logger.info(
                    "saved %s; resume with the same command plus --continue_train",
                    os.path.join(self.save_dir, "latest_train_state.pth"),
                )
                raise
            self.save("latest")
        self.context.barrier()
        if self.guard.skipped.total:
            logger.info(
                "--amp fp16: the loss scaler skipped %d optimiser steps in all",
                self.guard.skipped.total,
            )
        logger.info("training finished: %s", os.path.join(self.save_dir, "latest_net_*.pth"))

    def _run_epochs(self) -> None:
        opt = self.opt
        if self.position >= self.sampler.per_rank:  # saved after the epoch's last iteration
            self._end_epoch_metric()
            self.epoch, self.position = self.epoch + 1, 0
        while self.epoch <= self.last_epoch:
            epoch, start = self.epoch, time.time()
            self.train_epoch(epoch)
            self._end_epoch_metric()
            self.epoch, self.position = epoch + 1, 0
            if epoch % opt.save_epoch_freq == 0:
                logger.info(
                    "saving the model at the end of epoch %d, iters %d", epoch, self.total_iters
                )
                self.save("latest")
                self.save(epoch)
            if self.loss_history and self.is_main:
                plot_loss_curves(self.loss_history, self.save_dir)
            logger.info(
                "End of epoch %d / %d \t Time Taken: %d sec",
                epoch,
                self.last_epoch,
                time.time() - start,
            )
