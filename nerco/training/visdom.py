"""Live training display on a visdom server (``--display_id``).

:class:`VisdomDisplay` posts the loss curves and the current images of a training run
to a visdom server that the user started separately. It never starts a server itself
and never stops training: when the server is missing, or goes away later, it logs one
warning and turns itself off. The same curves as PNGs, without a server:
:mod:`nerco.training.curves`.
"""

from __future__ import annotations

import contextlib
import html
import io
import logging
import math
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence visdom's own prints, log records and deprecation warnings."""
    visdom_logger = logging.getLogger("visdom")
    old_level = visdom_logger.level
    visdom_logger.setLevel(logging.CRITICAL + 1)
    sink = io.StringIO()
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(sink),
            contextlib.redirect_stderr(sink),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        visdom_logger.setLevel(old_level)


def _make_client(server: str, port: int, env: str, timeout: float) -> Any:
    """Create a visdom client whose HTTP requests give up after ``timeout`` seconds.

    Raises:
        ImportError: visdom is not installed.
        ConnectionError: the server did not answer the first request.
    """
    import visdom

    class _Client(visdom.Visdom):
        """Visdom client with a bounded wait on every request."""

        def _handle_post(self, url: str, data: Any = None) -> str:
            reply = self.session.post(url, data=data or {}, timeout=timeout)
            return reply.text

    return _Client(
        server=server, port=port, env=env, raise_exceptions=True, use_incoming_socket=False
    )


def _to_chw(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Return ``image`` (HxW or HxWxC, uint8) as 3xHxW, padded with white to the size."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.shape[2] == 1:
        array = np.repeat(array, repeats=3, axis=2)
    array = array[:, :, :3].astype(np.uint8)
    canvas = np.full((height, width, 3), fill_value=255, dtype=np.uint8)
    canvas[: array.shape[0], : array.shape[1]] = array
    return canvas.transpose(2, 0, 1)


class VisdomDisplay:
    """Live display of a training run on a visdom server.

    Window ``display_id`` holds the loss plot, ``display_id + 1`` the image grid and
    ``display_id + 2`` a table of the image names (window ids are sent as strings).

    Args:
        server: Server address, e.g. ``"http://localhost"``.
        port: Server port.
        env: Visdom environment to draw in.
        display_id: Id of the first window.
        ncols: Images per row in the grid.
        winsize: Width in pixels of one image in the image window.
        timeout: Seconds to wait for the server on each request.
    """

    def __init__(
        self,
        server: str = "http://localhost",
        port: int = 8097,
        env: str = "main",
        display_id: int = 1,
        ncols: int = 4,
        winsize: int = 256,
        timeout: float = 2.0,
    ) -> None:
        self.server = server
        self.port = port
        self.env = env
        self.display_id = display_id
        self.ncols = max(1, ncols)
        self.winsize = winsize
        self.timeout = timeout
        self.plot_x: list[float] = []
        self.plot_y: list[list[float]] = []
        self.legend: list[str] = []
        self.enabled = False
        self.vis: Any = None
        try:
            with _quiet():
                self.vis = _make_client(server=server, port=port, env=env, timeout=timeout)
                answering = bool(self.vis.check_connection(timeout_seconds=0))
        except Exception:  # noqa: BLE001 - any failure only means "no display"
            answering = False
        if not answering:
            self.vis = None
            logger.warning(
                "visdom server at %s:%s is not answering; live display is off "
                "(start one with: python -m visdom.server -port %s)",
                server,
                port,
                port,
            )
            return
        self.enabled = True
        logger.info("live display on visdom server %s:%s, env %r", server, port, env)

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Run a visdom call; on any error log one warning and disable the display."""
        try:
            with _quiet():
                yield
        except Exception as exc:  # noqa: BLE001 - training must go on
            self.enabled = False
            self.vis = None
            if isinstance(exc, ConnectionError):
                reason = "stopped answering"
            else:
                reason = f"failed ({type(exc).__name__}: {exc})"
            logger.warning(
                "visdom server at %s:%s %s; live display is off", self.server, self.port, reason
            )

    def plot_losses(self, epoch: int, counter_ratio: float, losses: Mapping[str, float]) -> None:
        """Add one point per loss and redraw the loss plot.

        Args:
            epoch: Current epoch.
            counter_ratio: Progress within the epoch, in [0, 1].
            losses: Loss values by name; the names of the first call set the legend.
        """
        if not self.legend:
            self.legend = list(losses)
        if not self.legend:
            return
        self.plot_x.append(float(epoch) + float(counter_ratio))
        self.plot_y.append([float(losses.get(name, math.nan)) for name in self.legend])
        if not self.enabled:
            return
        y = np.asarray(self.plot_y, dtype=np.float64).reshape(len(self.plot_y), -1)
        x = np.repeat(np.asarray(self.plot_x, dtype=np.float64)[:, None], y.shape[1], axis=1)
        opts = {
            "title": f"{self.env} loss over time",
            "legend": list(self.legend),
            "xlabel": "epoch",
            "ylabel": "loss",
        }
        with self._guard():
            self.vis.line(X=x, Y=y, opts=opts, win=str(self.display_id))

    def show_images(self, visuals: Mapping[str, np.ndarray], epoch: int) -> None:
        """Post the current images as one grid plus a table of their names.

        Args:
            visuals: uint8 images (HxWx3) by name, e.g. ``real_A``, ``fake_B``.
            epoch: Current epoch (shown in the window title).
        """
        if not self.enabled or not visuals:
            return
        names = list(visuals)
        height = max(np.asarray(visuals[name]).shape[0] for name in names)
        width = max(np.asarray(visuals[name]).shape[1] for name in names)
        stack = np.stack([_to_chw(visuals[name], height=height, width=width) for name in names])
        rows = (
            "".join(f"<td>{html.escape(name)}</td>" for name in names[start : start + self.ncols])
            for start in range(0, len(names), self.ncols)
        )
        table = "<table border='1'>" + "".join(f"<tr>{row}</tr>" for row in rows) + "</table>"
        columns = min(self.ncols, len(names))
        grid_rows = math.ceil(len(names) / columns)
        with self._guard():
            self.vis.images(
                stack,
                nrow=self.ncols,
                padding=2,
                win=str(self.display_id + 1),
                opts={
                    "title": f"{self.env} images (epoch {epoch})",
                    "caption": " | ".join(names),
                    "width": self.winsize * columns,
                    "height": max(1, round(self.winsize * grid_rows * height / width)),
                },
            )
            self.vis.text(table, win=str(self.display_id + 2), opts={"title": f"{self.env} labels"})

    def state_dict(self) -> dict[str, list[Any]]:
        """Return the plot history as plain lists (for checkpoints)."""
        return {
            "x": list(self.plot_x),
            "y": [list(row) for row in self.plot_y],
            "legend": list(self.legend),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the plot history saved by :meth:`state_dict`."""
        self.plot_x = [float(value) for value in state.get("x", [])]
        self.plot_y = [[float(value) for value in row] for row in state.get("y", [])]
        self.legend = [str(name) for name in state.get("legend", [])]
