"""The training state saved beside the weights: ``<label>_train_state.pth``.

Weights alone restart a run with fresh optimisers, a learning rate that starts over and
empty image pools. The state file holds the rest, so that ``--continue_train`` goes on as
if the run had never stopped: Adam moments, scheduler positions, the epoch and iteration
counters, the seven image pools, the random generators, the loss history behind the curves
and the live display. Everything in it is a tensor, a number, a string, a list or a dict,
so it loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from nerco.runtime import UserError

FORMAT = "nerco-train-state"
VERSION = 1


def state_path(checkpoint_dir: str, label: str | int) -> str:
    """``<checkpoint_dir>/<label>_train_state.pth``."""
    return os.path.join(checkpoint_dir, f"{label}_train_state.pth")


def capture_rng() -> dict:
    """The states of Python's, NumPy's and torch's (CPU and CUDA) global generators."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state = {
        "python": [version, list(internal), gauss],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        # The current device's generator only: the one this process draws from (reading
        # every device's would be harmless, but restoring them means nothing).
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng(state: dict) -> None:
    """Put back the generator states of :func:`capture_rng`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        saved = state["cuda"]
        if isinstance(saved, list | tuple):  # older states: one per device, take the first
            saved = saved[0]
        torch.cuda.set_rng_state(saved)


def stamped(state: dict) -> dict:
    """``state`` with the format marks that :func:`load_state` checks."""
    return {"format": FORMAT, "version": VERSION, **state}


def save_state(state: dict, path: str) -> None:
    """Write ``state`` atomically (a crash while writing leaves the previous file intact)."""
    tmp = path + ".tmp"
    torch.save(stamped(state), tmp)
    os.replace(tmp, path)


def load_state(path: str) -> dict:
    """Read a state file written by :func:`save_state`; one-line UserError if it is unusable."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file means the same to the user
        raise UserError(
            f"training state {path} cannot be read ({type(exc).__name__}); delete "
            f"it to resume from the weights alone"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(
            f"{path} is not a NeRCo training state; delete it to resume from the weights alone"
        )
    if state.get("version") != VERSION:
        raise UserError(
            f"training state {path} has version {state.get('version')}, this code "
            f"reads version {VERSION}"
        )
    return state
