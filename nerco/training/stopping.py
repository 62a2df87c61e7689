"""Stop requests: Ctrl-C and SIGTERM mean "finish this iteration, save ``latest``, stop".

Schedulers send SIGTERM before they kill a job, often more than once: Slurm's ``scancel``
signals every process of the job and ``torchrun`` forwards the one it gets, so each training
process may see two or three. Every SIGTERM therefore means "save and stop", never "stop at
once". Only a second Ctrl-C (SIGINT) stops at once, without saving: after the first, SIGINT
gets its default action back, which ends the process even inside a long computation.

Data-loading workers leave both signals to the training process (:class:`WorkerSignals`): a
job-wide SIGTERM would kill them otherwise, and the training process would fail before it
could save. They stop when the training process closes the loader, or when it exits.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import signal

logger = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class WorkerSignals:
    """``worker_init_fn`` of the training data loader: signals are for the training process.

    A worker ignores SIGINT, and SIGTERM while the training process runs. Once that process
    exits (an ``atexit`` hook sets a shared event), SIGTERM ends the worker again, so the
    ``terminate()`` with which multiprocessing ends leftover workers at exit still works.
    """

    def __init__(self) -> None:
        self._exiting = multiprocessing.Event()
        atexit.register(self._exiting.set)

    def __call__(self, _worker_id: int) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        exiting = self._exiting

        def on_sigterm(signum: int, _frame) -> None:
            if exiting.is_set():
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)

        signal.signal(signal.SIGTERM, on_sigterm)


class StopRequests:
    """Records SIGINT/SIGTERM while installed (a context manager).

    Args:
        announce: Log one line when the first request arrives (rank 0 of a run).

    Attributes:
        signum: The first signal received, or None.
    """

    def __init__(self, announce: bool = True) -> None:
        self.announce = announce
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequests:
        self._previous = {sig: signal.signal(sig, self._handle) for sig in SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum: int, _frame) -> None:
        if signum == signal.SIGINT:
            # The next Ctrl-C ends the process at once (exit status 130, nothing saved).
            signal.signal(signal.SIGINT, signal.SIG_DFL)
        if self.signum is not None:
            return  # already stopping: a repeated SIGTERM changes nothing
        self.signum = signum
        if self.announce:
            again = " (Ctrl-C again to stop at once)" if signum == signal.SIGINT else ""
            logger.info(
                "%s received: saving 'latest' after this iteration, then stopping%s",
                signal.Signals(signum).name,
                again,
            )
