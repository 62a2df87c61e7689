"""Tests for nerco.training.visdom against a real visdom server started on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from nerco.training.curves import plot_loss_curves
from nerco.training.visdom import VisdomDisplay

HOST = "127.0.0.1"
SERVER = f"http://{HOST}"

# `python -m visdom.server` first tries to download JS/CSS into the installed package,
# which fails offline and writes into site-packages; calling run_server.main() directly
# skips that step (the API endpoints need no static files).
SERVER_CODE = "import sys; from visdom.server.run_server import main; sys.exit(main())"


def _free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _server_answers(port: int) -> bool:
    """Return True when a visdom server on ``port`` answers a win_exists request."""
    body = json.dumps({"win": "", "eid": "main"}).encode("utf-8")
    request = urllib.request.Request(f"{SERVER}:{port}/win_exists", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=1.0) as reply:
            return reply.read().decode("utf-8") in ("true", "false")
    except OSError:
        return False


@pytest.fixture(scope="session")
def visdom_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Start a real visdom server on a free local port; yield the port."""
    port = _free_port()
    root = tmp_path_factory.mktemp("visdom")
    log_path = root / "server.log"
    command = [
        sys.executable,
        "-c",
        SERVER_CODE,
        "-port",
        str(port),
        "-bind_local",
        "-env_path",
        str(root / "env"),
        "-logging_level",
        "WARNING",
    ]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60.0
        while not _server_answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"visdom server did not start:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield port
    finally:
        process.kill()
        process.wait(timeout=10)


def _client(port: int, env: str) -> Any:
    """Return a plain visdom client for reading back what the server holds."""
    import visdom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        return visdom.Visdom(
            server=SERVER, port=port, env=env, raise_exceptions=True, use_incoming_socket=False
        )


def _line_points(port: int, env: str, win: str) -> dict[str, list[float]]:
    """Return {trace name: x values} of a line window on the server."""
    window = json.loads(_client(port=port, env=env).get_window_data(win=win, env=env))
    return {trace["name"]: trace["x"] for trace in window["content"]["data"]}


def _image(height: int, width: int, value: int) -> np.ndarray:
    """Return a uniform uint8 HxWx3 image."""
    return np.full((height, width, 3), fill_value=value, dtype=np.uint8)


def test_posts_losses_and_images(visdom_port: int) -> None:
    display = VisdomDisplay(server=SERVER, port=visdom_port, env="run_a", display_id=1)
    assert display.enabled is True
    display.plot_losses(epoch=1, counter_ratio=0.5, losses={"G_A": 1.0, "D_A": 0.4})
    display.plot_losses(epoch=1, counter_ratio=1.0, losses={"G_A": 0.8, "D_A": 0.3})
    visuals = {
        "real_A": _image(height=16, width=16, value=10),
        "fake_B": _image(height=12, width=20, value=200),
        "rec_A": _image(height=16, width=16, value=90),
    }
    display.show_images(visuals=visuals, epoch=1)
    assert display.enabled is True

    assert _line_points(port=visdom_port, env="run_a", win="1") == {
        "G_A": [1.5, 2.0],
        "D_A": [1.5, 2.0],
    }
    client = _client(port=visdom_port, env="run_a")
    assert client.win_exists("2", env="run_a") is True
    labels = json.loads(client.get_window_data(win="3", env="run_a"))
    assert "fake_B" in labels["content"]


def test_single_point_and_resume(visdom_port: int) -> None:
    first = VisdomDisplay(server=SERVER, port=visdom_port, env="run_b", display_id=5)
    first.plot_losses(epoch=0, counter_ratio=0.25, losses={"G_A": 2.0})
    assert first.enabled is True
    assert _line_points(port=visdom_port, env="run_b", win="5") == {"G_A": [0.25]}

    resumed = VisdomDisplay(server=SERVER, port=visdom_port, env="run_b", display_id=5)
    resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
    resumed.plot_losses(epoch=1, counter_ratio=0.0, losses={"G_A": 1.0})
    assert _line_points(port=visdom_port, env="run_b", win="5") == {"G_A": [0.25, 1.0]}


def test_server_going_away_disables_once(
    visdom_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    display = VisdomDisplay(server=SERVER, port=visdom_port, env="run_c", timeout=1.0)
    assert display.enabled is True
    display.vis.port = _free_port()  # the server "goes away"
    with caplog.at_level(logging.WARNING, logger="nerco.training.visdom"):
        display.plot_losses(epoch=0, counter_ratio=0.5, losses={"G_A": 1.0})
        display.plot_losses(epoch=0, counter_ratio=1.0, losses={"G_A": 0.9})
        display.show_images(visuals={"real_A": _image(height=4, width=4, value=0)}, epoch=0)
    assert display.enabled is False
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    assert display.state_dict()["x"] == [0.5, 1.0]


def test_unreachable_server_is_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    port = _free_port()
    start = time.monotonic()
    with caplog.at_level(logging.DEBUG):
        display = VisdomDisplay(server=SERVER, port=port, env="nowhere", timeout=1.0)
        display.plot_losses(epoch=0, counter_ratio=0.5, losses={"G_A": 1.0})
        display.show_images(visuals={"real_A": _image(height=4, width=4, value=0)}, epoch=0)
    assert time.monotonic() - start < 5.0
    assert display.enabled is False
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(records) == 1
    message = records[0].getMessage()
    assert "python -m visdom.server" in message
    assert f"{SERVER}:{port}" in message
    assert not _server_answers(port)  # no server was spawned


def test_plot_loss_curves_groups(tmp_path: Path) -> None:
    history = [
        {
            "x": 0.5 * step,
            "losses": {
                "G_A": 1.0 / (step + 1),
                "G_B_edge": 0.5,
                "D_A": 0.3,
                "D_B_CLIP": 0.1 * step,
                "custom": 2.0,
            },
        }
        for step in range(4)
    ]
    out_dir = tmp_path / "curves"
    paths = plot_loss_curves(history=history, out_dir=str(out_dir))
    names = [Path(path).name for path in paths]
    assert names == [
        "loss_generator.png",
        "loss_discriminator.png",
        "loss_clip.png",
        "loss_other.png",
    ]
    assert sorted(path.name for path in out_dir.iterdir()) == sorted(names)
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.size[0] > 100 and image.size[1] > 100


def test_plot_loss_curves_empty_history(tmp_path: Path) -> None:
    assert plot_loss_curves(history=[], out_dir=str(tmp_path)) == []


def test_train_py_posts_to_a_live_server(
    visdom_port: int, tiny_dataset: Path, tmp_path: Path
) -> None:
    """A real (tiny) training run sends its loss curves and visuals to the server."""
    import train

    args = [
        "--dataroot",
        str(tiny_dataset),
        "--checkpoints_dir",
        str(tmp_path),
        *(
            "--name live --ngf 4 --ndf 4 --gpu_ids -1 --num_threads 0 "
            "--clip_weights random --load_size 36 --crop_size 32 --n_epochs 1 "
            "--n_epochs_decay 0 --print_freq 1 --display_freq 1 "
            "--display_id 1 --display_server"
        ).split(),
        SERVER,
        "--display_port",
        str(visdom_port),
        "--display_env",
        "train_e2e",
    ]
    assert train.main(args) == 0
    traces = _line_points(port=visdom_port, env="train_e2e", win="1")
    assert len(traces) == 16  # every logged loss
    assert all(len(xs) == 3 for xs in traces.values())  # one point per iteration
    client = _client(port=visdom_port, env="train_e2e")
    assert client.win_exists("2", env="train_e2e") is True  # the images
    labels = json.loads(client.get_window_data(win="3", env="train_e2e"))
    for name in ("real_A", "pre_A", "mask", "fake_B", "rec_B"):
        assert name in labels["content"]
