"""What keeps a long run honest: divergence, skipped fp16 steps, and when processes agree.

* A loss that is NaN or ±inf stops the run (:class:`TrainingDiverged`): the weights of that
  iteration are no longer trusted, nothing after it is saved, and the message names the
  iteration, the loss and the last good checkpoint. The losses reach the host once per
  iteration anyway (the log and the progress bar show them), so the check costs nothing more.
* With ``--amp fp16`` the GradScaler skips the steps whose gradients overflow and lowers its
  scale; :class:`SkippedSteps` counts them and warns when one run of them grows long.
* Under ``torchrun`` the processes compare their flags (stop requested, diverged) in one small
  all-reduce, not at every iteration but about every :data:`CHECK_SECONDS` seconds, and at
  every iteration that logs or saves (:class:`Agreement`).
"""

from __future__ import annotations

import logging
import math
import time

import torch

from nerco.training.distributed import Context

logger = logging.getLogger(__name__)

#: Seconds between two stop/divergence all-reduces under torchrun (rank 0 picks the interval
#: in iterations from the measured iteration time, so a stop request waits about this long).
CHECK_SECONDS = 2.0
MAX_CHECK_INTERVAL = 1000
#: Consecutive iterations with a skipped fp16 step before a warning (and again at 2x, 4x...).
SKIP_WARNING = 50


class TrainingDiverged(Exception):
    """A loss or the weights became non-finite; nothing after the last good save was saved.

    Attributes:
        report: Whether this process prints the message (under torchrun, the process that
            saw it first; the others stop quietly).
    """

    def __init__(self, message: str, report: bool = True) -> None:
        super().__init__(message)
        self.report = report


def first_non_finite(losses: dict[str, float]) -> tuple[str, float, int] | None:
    """(name, value, how many are non-finite) of the first NaN/inf loss, or None."""
    bad = [(name, value) for name, value in losses.items() if not math.isfinite(value)]
    return (*bad[0], len(bad)) if bad else None


def all_finite(obj) -> bool:
    """Whether every floating-point tensor in ``obj`` (nested dicts/lists) is finite.

    One host transfer per device, whatever the number of tensors.
    """
    flags: dict[torch.device, list[torch.Tensor]] = {}

    def visit(item) -> None:
        if isinstance(item, torch.Tensor):
            if item.is_floating_point() and item.numel():
                flags.setdefault(item.device, []).append(torch.isfinite(item).all())
        elif isinstance(item, dict):
            for value in item.values():
                visit(value)
        elif isinstance(item, list | tuple):
            for value in item:
                visit(value)

    visit(obj)
    return all(bool(torch.stack(group).all()) for group in flags.values())


def describe_checkpoint(last_good: dict | None, folder: str) -> str:
    """'latest' in saves/x (total_iters 70, epoch 2, iteration 3) — for the message."""
    if last_good is None:
        return f"none (no checkpoint was saved in {folder} before it)"
    where = f"'{last_good['label']}' in {folder}"
    if last_good.get("total_iters") is None:
        return where
    return (
        f"{where} (total_iters {last_good['total_iters']}, epoch {last_good['epoch']}, "
        f"iteration {last_good['epoch_iter']})"
    )


class SkippedSteps:
    """Optimiser steps skipped by the fp16 GradScaler (inf/NaN gradients).

    Args:
        warn_after: Consecutive iterations with a skipped step before the first warning.
    """

    def __init__(self, warn_after: int = SKIP_WARNING) -> None:
        self.warn_after = warn_after
        self.total = 0
        self.streak = 0
        self._next_warning = warn_after

    def update(self, skipped: int) -> None:
        """Record one iteration in which ``skipped`` optimiser steps (0, 1 or 2) were skipped."""
        if not skipped:
            self.streak = 0
            self._next_warning = self.warn_after
            return
        self.total += skipped
        self.streak += 1
        if self.streak >= self._next_warning:
            logger.warning(
                "--amp fp16: the loss scaler skipped optimiser steps in each of the "
                "last %d iterations (%d skipped steps in all): the gradients keep "
                "overflowing, so the weights do not change; try --amp bf16 or a "
                "lower --lr",
                self.streak,
                self.total,
            )
            self._next_warning *= 2

    def state_dict(self) -> dict:
        return {"total": self.total, "streak": self.streak}

    def load_state_dict(self, state: dict) -> None:
        self.total, self.streak = int(state["total"]), int(state["streak"])
        self._next_warning = self.warn_after
        while self._next_warning <= self.streak:
            self._next_warning *= 2


class Agreement:
    """When the processes of a run compare their flags (see :meth:`Context.agree`).

    In a single process every iteration is a check (nothing to exchange). Under torchrun a
    check is due every ``interval`` iterations; rank 0 proposes the next interval at each
    check so that checks come about every :data:`CHECK_SECONDS` seconds, and every process
    takes the proposal from the all-reduce, so all of them check at the same iterations.
    """

    def __init__(self, distributed: bool) -> None:
        self.distributed = distributed
        self.interval = 1
        self._since = 0
        self._started = time.perf_counter()

    def tick(self) -> bool:
        """Count one iteration; True when a check is due."""
        self._since += 1
        return not self.distributed or self._since >= self.interval

    def proposal(self) -> int:
        """Rank 0's next interval, from the time per iteration since the last check."""
        per_iteration = (time.perf_counter() - self._started) / max(1, self._since)
        return max(1, min(MAX_CHECK_INTERVAL, int(CHECK_SECONDS / max(per_iteration, 1e-6))))

    def checked(self, interval: int) -> None:
        """A check happened; the next one is ``interval`` iterations later."""
        self.interval = max(1, int(interval))
        self._since = 0
        self._started = time.perf_counter()


class RunGuard:
    """One run's divergence record and its agreement with the other processes.

    Args:
        context: The run's processes.
        folder: The checkpoint folder (named in the divergence message).
    """

    def __init__(self, context: Context, folder: str) -> None:
        self.context = context
        self.folder = folder
        self.agreement = Agreement(context.distributed)
        self.skipped = SkippedSteps()
        self.diverged: dict | None = None  # where this process first saw a non-finite number
        self.last_good: dict | None = None  # the newest complete save: label and counters

    @property
    def ok(self) -> bool:
        return self.diverged is None

    def _record(self, what: str, where: dict) -> None:
        if self.diverged is None:
            self.diverged = {"what": what, **where}

    def check_losses(self, losses: dict[str, float], where: dict) -> None:
        """Record the first non-finite loss. ``where``: total_iters, epoch, epoch_iter."""
        bad = first_non_finite(losses)
        if bad is not None:
            name, value, count = bad
            more = f" (and {count - 1} more losses)" if count > 1 else ""
            self._record(f"loss {name} is {value}{more}", where)

    def check_tensors(self, tensors, where: dict) -> None:
        """Record non-finite weights or optimiser moments (checked before every save)."""
        if self.diverged is None and not all_finite(tensors):
            self._record("the weights or optimiser moments became non-finite", where)

    def sync(self, stop_requested: bool) -> bool:
        """Compare the stop and divergence flags of all processes (one all-reduce under
        torchrun, nothing to exchange in one process).

        Returns:
            Whether a stop was requested anywhere.

        Raises:
            TrainingDiverged: Some process saw a non-finite loss or weight.
        """
        diverged_at = None if self.diverged is None else self.diverged["total_iters"]
        stop, first, interval = self.context.agree(
            stop_requested, diverged_at, self.agreement.proposal()
        )
        self.agreement.checked(interval)
        if first is not None:
            report = first[1] == self.context.rank
            raise TrainingDiverged(self.message(first[1]) if report else "", report=report)
        return stop

    def message(self, rank: int) -> str:
        """The one line that stops a diverged run."""
        d, good = self.diverged, self.last_good
        where = f" on rank {rank}" if self.context.distributed else ""
        text = (
            f"training diverged: {d['what']} at total_iters {d['total_iters']} (epoch "
            f"{d['epoch']}, iteration {d['epoch_iter']}){where}; nothing after the last "
            f"good checkpoint was saved; last good checkpoint: "
            f"{describe_checkpoint(good, self.folder)}"
        )
        if good is None:
            return text + "; start again with, e.g., a lower --lr"
        resume_with = "--continue_train"
        if good["label"] != "latest":
            resume_with += f" --epoch {good['label']}"
        return text + f"; resume from it with {resume_with} and, e.g., a lower --lr"
