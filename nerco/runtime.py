"""Run-time set-up shared by the command-line tools: the command frame, logging, device
choice, seeding.

Every command (train.py, test.py, ``python -m nerco.evaluate``, ``nerco.export``,
``nerco.demo_data``, scripts/arrange_datasets.py) runs inside :func:`run_command`: console
logging, then its body; a :class:`UserError`, the one error type meant for the person at
the keyboard, becomes one ``error:`` line and exit status 2. torch and NumPy are
imported where they are used, so the tools can set up logging and check their options
before loading them.
"""

from __future__ import annotations

import logging
import os
import random
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


class UserError(Exception):
    """A problem the user can fix (a missing folder, an unreadable checkpoint, a bad
    option), explained in one line that says what to do.

    Library code raises it; :func:`run_command` prints its message as one ``error:`` line,
    without a traceback, and exits with status 2. Also importable as ``nerco.UserError``.
    """


def setup_logging(log_file: str | None = None, level: int = logging.INFO) -> None:
    """Messages to the console; with ``log_file``, also to that file with timestamps."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(console)
    if log_file:
        os.makedirs(os.path.dirname(log_file) or ".", exist_ok=True)
        to_file = logging.FileHandler(log_file)
        to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(to_file)
    root.setLevel(level)


def program_name(usual: str) -> str:
    """The command's name for usage lines: ``nerco-train`` etc. when run as an installed
    console script, else ``usual`` (``train.py``, ``python -m nerco.evaluate``)."""
    called = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return called if called.startswith("nerco-") else usual


def run_command(body: Callable[[], int | None], name: str = "nerco") -> int:
    """Run a command's ``body`` with console logging; return its exit status.

    ``body`` returns the status (None means 0). A :class:`UserError` raised anywhere
    in it is logged as one ``error: <message>`` line (logger ``name``) and gives status 2:
    the user sees what to fix, never a traceback.
    """
    setup_logging()
    try:
        status = body()
    except UserError as err:
        logging.getLogger(name).error("error: %s", err)
        return 2
    return 0 if status is None else int(status)


def select_device(gpu_ids: str = "0") -> torch.device:
    """``--gpu_ids``: -1 forces the CPU; otherwise the first listed CUDA GPU when CUDA is
    available, else the CPU with a one-line notice.

    A process uses one GPU: with several ids, a notice says which one and how to use the
    others (``torchrun``). Under ``torchrun`` the process's ``LOCAL_RANK`` picks the GPU
    (:func:`nerco.training.distributed.setup`), so the ids only choose GPU or CPU.
    """
    import torch

    try:
        ids = [int(part) for part in str(gpu_ids).split(",") if part.strip()]
    except ValueError:
        raise UserError(
            f"--gpu_ids {gpu_ids!r} must be comma-separated integers, or -1 for the CPU"
        ) from None
    ids = [i for i in ids if i >= 0]
    if not ids:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        logger.info("CUDA is not available: running on the CPU (pass --gpu_ids -1 to say so)")
        return torch.device("cpu")
    missing = [i for i in ids if i >= torch.cuda.device_count()]
    if missing:
        raise UserError(
            f"--gpu_ids {gpu_ids}: GPU {missing[0]} does not exist "
            f"({torch.cuda.device_count()} visible)"
        )
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        if ids != [0] and os.environ.get("RANK", "0") == "0":
            logger.warning(
                "--gpu_ids %s: under torchrun each process uses the GPU of its "
                "LOCAL_RANK (choose the GPUs with CUDA_VISIBLE_DEVICES)",
                gpu_ids,
            )
    elif len(ids) > 1:
        logger.warning(
            "--gpu_ids %s: one process uses one GPU, so only GPU %d is used; to "
            "train on all %d, start train.py with torchrun --nproc_per_node %d "
            "(README: Several GPUs, several machines)",
            gpu_ids,
            ids[0],
            len(ids),
            len(ids),
        )
    return torch.device("cuda", ids[0])


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy and torch (all devices)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
