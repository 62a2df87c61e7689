"""Saving and resuming a training run: which files a save writes, what a resume trusts.

A save of label L writes the eight networks and the training state as one set
(:mod:`nerco.networks.checkpoint_set`: a kill at any moment leaves the previous set or the new one,
a mixed set is refused on loading) after checking that every number in it is finite. Only
the newest numbered state is kept beside ``latest`` (every label kind: epochs and
``iter_<N>``), and only once the newer one is complete, so the last good state is never
deleted. A resume restores the state and says which options it overrides.
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
import re

from torch import nn

from nerco.networks import checkpoint_set
from nerco.networks.checkpoint import cpu_state_dict, network_path
from nerco.training import train_state

logger = logging.getLogger(__name__)

#: Options whose saved values a resumed run keeps: they live in the optimisers' and the
#: schedulers' states (Adam's lr and betas, the schedule's base lr and its parameters).
KEPT_FROM_STATE = ("lr", "beta1", "lr_policy", "lr_decay_iters")
#: Options a resumed run keeps from the saved run because its networks learnt with them,
#: each with the reason its notice gives.
KEPT_FROM_RUN = {"edge_filter": "its edge discriminators learnt on that filter's edge maps"}
#: Options a resumed run takes from the command line even when the saved run used others.
TAKEN_FROM_OPTIONS = (
    "n_epochs",
    "n_epochs_decay",
    "amp",
    "pool_size",
    "batch_size",
    "gan_mode",
    "objective",
    "lambda_A",
    "lambda_B",
    "lambda_identity",
    "lambda_pre",
    "lambda_clip",
    "lambda_edge",
    "lambda_mask",
    "preprocess",
    "load_size",
    "crop_size",
)


def state_name(label: str | int) -> str:
    return os.path.basename(train_state.state_path("", label))


def saved_options(opt: argparse.Namespace) -> dict:
    """The options a resume compares with its own (stored in the state)."""
    return {
        key: getattr(opt, key)
        for key in (*KEPT_FROM_STATE, *KEPT_FROM_RUN, *TAKEN_FROM_OPTIONS)
        if hasattr(opt, key)
    }


def _options_of(state: dict) -> dict:
    """The saved run's options; states from before they were stored give lr and beta1."""
    if "options" in state:
        return dict(state["options"])
    options = {}
    try:
        options["lr"] = state["schedulers"][0]["base_lrs"][0]
        options["beta1"] = state["model"]["optimizer_G"]["param_groups"][0]["betas"][0]
    except (KeyError, IndexError, TypeError):
        pass
    return options


def apply_saved_options(state: dict, opt: argparse.Namespace) -> list[str]:
    """Put the state's values of :data:`KEPT_FROM_STATE` and :data:`KEPT_FROM_RUN` into
    ``opt``; one notice per option that differs from the command line, naming the old and
    the new value. States saved before an option was recorded leave it as given."""
    notices = []
    saved = _options_of(state)
    for key in KEPT_FROM_STATE:
        if key in saved and hasattr(opt, key) and saved[key] != getattr(opt, key):
            notices.append(
                f"--{key} {getattr(opt, key)} ignored: the training state continues "
                f"with {saved[key]} (its optimiser and schedule); to change it, "
                f"resume from the weights alone (delete the state file)"
            )
            setattr(opt, key, saved[key])
    for key, reason in KEPT_FROM_RUN.items():
        if key in saved and hasattr(opt, key) and saved[key] != getattr(opt, key):
            notices.append(
                f"--{key} {getattr(opt, key)} ignored: the resumed run goes on with "
                f"{saved[key]}, as saved ({reason}); to change it, start a new run "
                f"(another --name)"
            )
            setattr(opt, key, saved[key])
    for key in TAKEN_FROM_OPTIONS:
        if key in saved and hasattr(opt, key) and saved[key] != getattr(opt, key):
            notices.append(
                f"--{key} is {getattr(opt, key)}, the saved run used {saved[key]}: "
                f"the resumed run goes on with {getattr(opt, key)}"
            )
    return notices


def save(
    folder: str, label: str | int, networks: dict[str, nn.Module], state: dict, info: dict
) -> dict:
    """Write ``label``'s set: ``<label>_net_<NAME>.pth`` for each network and the state.

    Returns:
        The manifest (:func:`nerco.networks.checkpoint_set.save_set`).
    """
    files: dict[str, object] = {
        os.path.basename(network_path("", label, name)): cpu_state_dict(net)
        for name, net in networks.items()
    }
    files[state_name(label)] = train_state.stamped(state)
    return checkpoint_set.save_set(folder, label, files, info)


def prune_states(folder: str, keep: str | int) -> list[str]:
    """Remove the training states of the numbered labels (epochs, ``iter_<N>``) but
    ``keep``'s; ``latest``'s, other files and every weight stay.

    Called after ``keep``'s set is complete, so the newest good state always survives.
    Returns the removed file names.
    """
    removed = []
    for path in glob.glob(os.path.join(folder, "*_train_state.pth")):
        name = os.path.basename(path)
        label = checkpoint_set.label_of(name)
        if not re.fullmatch(r"(iter_)?\d+", label or "") or label == str(keep):
            continue
        checkpoint_set.drop_file(folder, label, name)
        removed.append(name)
    return removed


def load(folder: str, label: str | int) -> tuple[dict | None, dict | None]:
    """Check ``label``'s set and read its training state.

    Returns:
        (state or None when the set has none, manifest or None for files without one).
        The weights are loaded by the caller (their files were checked here).
    """
    name = state_name(label)
    manifest = checkpoint_set.verify_set(folder, label, optional=(name,))
    path = checkpoint_set.resolve(folder, name)
    listed = manifest is None or name in manifest["files"]
    if not (listed and os.path.isfile(path)):
        return None, manifest
    return train_state.load_state(path), manifest


# ------------------------------------------------------------------ the trainer's state
def load_into(trainer) -> dict | None:
    """Load the ``--epoch`` set's weights into the trainer's model; return its training
    state, or None (weights only: the authors' checkpoints, or a deleted state)."""
    opt, folder = trainer.opt, trainer.save_dir
    label = opt.epoch
    if trainer.is_main:  # the writer finishes (or drops) a save that a kill interrupted
        checkpoint_set.recover(folder)
    trainer.context.barrier()
    state, manifest = load(folder, label)
    trainer.model.load_networks(folder, label)
    logger.info("loaded %s_net_*.pth from %s", label, folder)
    trainer.guard.last_good = {"label": str(label)} | {
        key: manifest.get(key)
        for key in ("epoch", "epoch_iter", "total_iters")
        if manifest is not None
    }
    if state is None:
        logger.info(
            "no %s: weights only, so the optimisers, the learning-rate schedule and "
            "the image pools start fresh and epochs count from --epoch_count %d",
            state_name(label),
            opt.epoch_count,
        )
        return None
    given = dict(vars(opt))
    for notice in apply_saved_options(state, opt):
        logger.info(notice)
    if vars(opt) != given and trainer.is_main:
        # <phase>_opt.txt was written from the command line: it now records the values the
        # resumed run goes on with.
        from options import TrainOptions, save_options

        save_options(opt, TrainOptions().build_parser(), folder)
    if trainer.model.edge.edge_filter != opt.edge_filter:  # the saved run's (KEPT_FROM_RUN)
        trainer.model.set_edge_filter(opt.edge_filter)
    return state


def restore(trainer, state: dict) -> None:
    """Put a training state back: optimisers, schedule, pools, counters, random streams."""
    opt, context = trainer.opt, trainer.context
    if opt.epoch_count != 1 and opt.epoch_count != state["epoch"]:
        logger.info(
            "--epoch_count %d ignored: the training state continues epoch %d",
            opt.epoch_count,
            state["epoch"],
        )
    if state["first_epoch"] != trainer.first_epoch:
        # The linear rule depends on the first epoch of the run: rebuild it.
        trainer.first_epoch = state["first_epoch"]
        trainer.schedulers = trainer.build_schedulers()
    trainer.model.load_training_state(state["model"], trainer.device)
    for scheduler, saved in zip(trainer.schedulers, state["schedulers"]):
        scheduler.load_state_dict(saved)
    if opt.seed is not None and state["seed"] != opt.seed:
        logger.info("--seed %d ignored: the resumed run keeps its seed %d", opt.seed, state["seed"])
    if state["world_size"] != context.world_size:
        logger.warning(
            "the run was saved with %d processes and resumes with %d: the rest of "
            "the epoch sees a different sample order",
            state["world_size"],
            context.world_size,
        )
    trainer.seed = trainer.sampler.seed = state["seed"]
    trainer.epoch, trainer.position = state["epoch"], state["position"]
    if state["world_size"] != context.world_size:
        trainer.position = 0
    trainer.total_iters = state["total_iters"]
    trainer.loss_history = list(state.get("loss_history", []))
    trainer.web_epochs = list(state.get("web_epochs", []))
    if state.get("skipped_steps"):
        trainer.guard.skipped.load_state_dict(state["skipped_steps"])
    if state.get("plateau"):
        trainer.plateau = dict(state["plateau"])
    if trainer.display is not None and state.get("display"):
        trainer.display.load_state_dict(state["display"])
    train_state.restore_rng(state["rng"])
    logger.info(
        "resuming epoch %d after %d of its %d iterations (total_iters %d, learning rate %.7f)",
        trainer.epoch,
        trainer.position // opt.batch_size,
        trainer.iters_per_epoch,
        trainer.total_iters,
        trainer.lr,
    )


def snapshot(trainer) -> dict:
    """The trainer's training state, as :func:`restore` reads it."""
    return {
        "epoch": trainer.epoch,
        "position": trainer.position,
        "total_iters": trainer.total_iters,
        "first_epoch": trainer.first_epoch,
        "seed": trainer.seed,
        "world_size": trainer.context.world_size,
        "model": trainer.model.training_state(),
        "schedulers": [s.state_dict() for s in trainer.schedulers],
        "rng": train_state.capture_rng(),
        "loss_history": trainer.loss_history,
        "web_epochs": trainer.web_epochs,
        "display": trainer.display.state_dict() if trainer.display is not None else None,
        "options": saved_options(trainer.opt),
        "skipped_steps": trainer.guard.skipped.state_dict(),
        "plateau": dict(trainer.plateau),
    }
