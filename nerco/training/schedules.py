"""Learning-rate schedules of ``--lr_policy``, stepped once per epoch (NERCO_SPEC.md §6).

The release steps its scheduler at the *start* of every epoch, so epoch e of the linear
rule trains with 1 − max(0, e + 1 − n_epochs) / (n_epochs_decay + 1) times ``--lr``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.optim import lr_scheduler

from nerco.runtime import UserError

LR_POLICIES = ("linear", "step", "plateau", "cosine")


def linear_decay_rule(n_epochs: int, n_epochs_decay: int, epoch_count: int = 1) -> Callable:
    """§6: factor 1 − max(0, step + epoch_count − n_epochs) / (n_epochs_decay + 1)."""

    def rule(step: int) -> float:
        return 1.0 - max(0, step + epoch_count - n_epochs) / float(n_epochs_decay + 1)

    return rule


def get_scheduler(
    optimizer: torch.optim.Optimizer,
    lr_policy: str = "linear",
    n_epochs: int = 100,
    n_epochs_decay: int = 200,
    epoch_count: int = 1,
    lr_decay_iters: int = 50,
):
    """The learning-rate schedule of ``--lr_policy`` (stepped once per epoch)."""
    if lr_policy not in LR_POLICIES:
        raise UserError(
            f"--lr_policy {lr_policy!r} is not known; choose one of: {', '.join(LR_POLICIES)}"
        )
    if lr_policy == "linear":
        rule = linear_decay_rule(n_epochs, n_epochs_decay, epoch_count)
        return lr_scheduler.LambdaLR(optimizer, lr_lambda=rule)
    if lr_policy == "step":
        return lr_scheduler.StepLR(optimizer, step_size=lr_decay_iters, gamma=0.1)
    if lr_policy == "plateau":
        return lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=0.2, threshold=0.01, patience=5
        )
    # Over the whole run (CycleGAN's T_max = n_epochs rises again during decay epochs):
    # stepped before each epoch, the last one trains at 0 as with the linear rule.
    epochs = max(1, n_epochs + n_epochs_decay - epoch_count + 1)
    return lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=0)
