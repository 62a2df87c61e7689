"""Reading and writing network weights as ``<label>_net_<NAME>.pth`` (NERCO_SPEC.md §6–7).

Files are plain state_dicts on the CPU without a ``module.`` prefix, like the authors'
released checkpoints; a prefix left by DataParallel or DistributedDataParallel is removed
on loading. Files that a training run saved come with a manifest
(:mod:`nerco.networks.checkpoint_set`) and are checked against it when read, so a set mixed by an
interrupted save is refused.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from nerco.networks import checkpoint_set
from nerco.runtime import UserError


def network_path(checkpoint_dir: str, label: str | int, name: str) -> str:
    """``<checkpoint_dir>/<label>_net_<name>.pth``."""
    return os.path.join(checkpoint_dir, f"{label}_net_{name}.pth")


def unwrap(net: nn.Module) -> nn.Module:
    """The bare network inside a DataParallel / DistributedDataParallel wrapper."""
    return getattr(net, "module", net)


def cpu_state_dict(net: nn.Module) -> dict[str, torch.Tensor]:
    """``net``'s state_dict as saved: on the CPU, without a wrapper prefix."""
    return {k: v.detach().cpu() for k, v in unwrap(net).state_dict().items()}


def save_network(net: nn.Module, path: str) -> None:
    """Save ``net``'s state_dict on the CPU, without a wrapper prefix, atomically."""
    tmp = path + ".tmp"
    torch.save(cpu_state_dict(net), tmp)
    os.replace(tmp, path)


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """Read a saved state_dict, dropping any ``module.`` prefix.

    A file with a manifest is read from its set's newest complete save and must match the
    manifest (:func:`nerco.networks.checkpoint_set.verified`).
    """
    try:
        path = checkpoint_set.verified(path)
    except FileNotFoundError:
        pass  # reported below, by name
    if not os.path.isfile(path):
        raise UserError(
            f"checkpoint {path} does not exist: check --checkpoints_dir, --name "
            f"and --epoch (files are named <epoch>_net_<NAME>.pth)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file means the same to the user
        raise UserError(
            f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); is the file complete?"
        ) from None
    if not isinstance(state, dict):
        raise UserError(f"checkpoint {path} does not hold a state_dict")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_network(net: nn.Module, path: str) -> None:
    """Load the weights in ``path`` into ``net`` (strict), with a one-line error on mismatch."""
    target = unwrap(net)
    state = read_state_dict(path)
    # Checkpoints from PyTorch < 0.4 may carry InstanceNorm running statistics; drop them.
    own = target.state_dict()
    state = {
        k: v
        for k, v in state.items()
        if k in own or not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
    }
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or wrong:
        detail = (
            f"{len(missing)} missing, {len(unexpected)} unexpected, {len(wrong)} with another shape"
        )
        example = (wrong or missing or unexpected)[0]
        if example in wrong:
            example += f" {tuple(state[example].shape)} vs {tuple(own[example].shape)}"
        raise UserError(
            f"checkpoint {path} does not fit the network ({detail}, e.g. {example}); "
            f"were --ngf/--ndf/--netG/--norm different in training?"
        )
    target.load_state_dict(state)
