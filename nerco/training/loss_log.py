"""Training loss logging in two forms: the CycleGAN text log and a JSON-lines file.

``loss_log.txt`` keeps the human-readable format of the original code (losses printed
with three decimals); ``loss_log.jsonl`` holds one JSON object per logged step with
every number at full precision, for plotting and for checking runs against each other.

Both files are opened in append mode for each write and closed straight away, so a
crash loses nothing that was logged before it and a resumed run continues the files.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, SupportsFloat

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

TXT_NAME = "loss_log.txt"
JSONL_NAME = "loss_log.jsonl"


def _append(path: Path, text: str) -> None:
    """Append ``text`` to ``path`` (UTF-8) and make sure it reached the OS."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()


class LossLog:
    """Append-only record of training losses.

    On creation, a header line with the current time is appended to
    ``<log_dir>/loss_log.txt`` (so each (re)started run is visible in the file).

    Args:
        log_dir: Folder for ``loss_log.txt`` and ``loss_log.jsonl``; created if missing.
    """

    def __init__(self, log_dir: PathLike) -> None:
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.txt_path = self.log_dir / TXT_NAME
        self.jsonl_path = self.log_dir / JSONL_NAME
        now = time.strftime("%c")
        _append(self.txt_path, f"================ Training Loss ({now}) ================\n")

    def log(
        self,
        epoch: int,
        epoch_iter: int,
        total_iters: int,
        t_comp: float,
        t_data: float,
        lr: float,
        losses: Mapping[str, SupportsFloat],
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """Append one step's losses to both files.

        The text line has the CycleGAN form
        ``(epoch: E, iters: I, time: T.TTT, data: D.DDD) name: V.VVV name: V.VVV ``
        (losses in mapping order, each followed by a space). The JSON line is
        ``{"epoch", "epoch_iter", "total_iters", "t_comp", "t_data", "lr", "losses"}``
        with all floats at full precision.

        Args:
            epoch: Current epoch (1-based in the training loop).
            epoch_iter: Images seen so far in this epoch.
            total_iters: Images seen since training started.
            t_comp: Computation time per image, in seconds.
            t_data: Data loading time per image, in seconds.
            lr: Current learning rate (only stored in the JSON line).
            losses: Loss name to value; values may be Python/NumPy floats or one-element
                tensors (anything ``float()`` accepts).
            extra: More keys for the JSON line only (e.g. ``skipped_steps`` with fp16).

        Returns:
            The text line that was written, without the trailing newline.
        """
        values = {str(name): float(value) for name, value in losses.items()}
        # Same text as CycleGAN's "%d"/"%.3f" formatting, written as f-strings.
        message = (
            f"(epoch: {int(epoch)}, iters: {int(epoch_iter)}, "
            f"time: {float(t_comp):.3f}, data: {float(t_data):.3f}) "
        )
        for name, value in values.items():
            message += f"{name}: {value:.3f} "
        record = {
            "epoch": int(epoch),
            "epoch_iter": int(epoch_iter),
            "total_iters": int(total_iters),
            "t_comp": float(t_comp),
            "t_data": float(t_data),
            "lr": float(lr),
            "losses": values,
            **(extra or {}),
        }
        _append(self.txt_path, message + "\n")
        _append(self.jsonl_path, json.dumps(record) + "\n")
        return message


def read_jsonl(path: PathLike) -> list[dict[str, Any]]:
    """Read a JSON-lines file such as ``loss_log.jsonl``.

    Args:
        path: File with one JSON object per line; blank lines are skipped.

    Returns:
        The parsed objects, in file order.

    Raises:
        ValueError: If a line is not valid JSON (the message names the line).
    """
    records: list[dict[str, Any]] = []
    source = Path(path)
    with source.open("r", encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"{source}:{line_no}: not valid JSON ({err.msg})") from err
    return records
