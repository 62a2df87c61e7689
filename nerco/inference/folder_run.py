"""What a rerun of test.py skips, and stopping it with a signal (issue 14).

A result is written only once complete (:func:`nerco.inference.folder_io.write_png`), so a file that
is there is a finished result. A rerun skips the images whose output files all exist and
are not older than the weights; results older than the newest weight file (a model trained
further since) are made again. SIGINT / SIGTERM ask the run to stop after the batch under
way (:class:`StopSignals`).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


def still_to_do(
    items: Sequence[T],
    outputs: Callable[[T], list[str]],
    weights: list[str],
    overwrite: bool = False,
) -> tuple[list[T], int]:
    """The items whose output files are missing or older than the newest of ``weights``
    (all of them with ``overwrite``), and how many of those had outputs older than it."""
    if overwrite:
        return list(items), 0
    newest_weights = max(os.stat(path).st_mtime for path in weights)
    todo, stale = [], 0
    for item in items:
        try:
            made = min(os.stat(path).st_mtime for path in outputs(item))
        except FileNotFoundError:
            todo.append(item)
            continue
        if made < newest_weights:
            todo.append(item)
            stale += 1
    return todo, stale


class StopSignals:
    """While active, the first SIGINT or SIGTERM asks the run to stop (the object, called,
    turns true; :attr:`signum` says which): the batch under way is finished and written. A
    second Ctrl-C stops at once (KeyboardInterrupt); a second SIGTERM changes nothing
    (``torchrun`` sends one after the terminal's Ctrl-C). Outside the main thread, which
    alone receives signals, it does nothing."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict = {}

    def __call__(self) -> bool:
        return self.signum is not None

    def _on_signal(self, signum: int, _frame) -> None:
        if self.signum is None:
            self.signum = signum
            logger.info(
                "%s received: finishing the images under way (Ctrl-C again to stop at once)",
                signal.Signals(signum).name,
            )
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {
                sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
            }
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
