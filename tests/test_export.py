"""nerco.inference.export: ONNX / TorchScript files that equal the PyTorch enhancer at every
size."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT, make_image
from PIL import Image
from synth import synth_state_dict

from nerco.inference import export
from nerco.inference.enhancer import load_enhancer
from nerco.networks.build import ENHANCER_NAMES, Architecture, build_generators
from nerco.runtime import UserError

# Sizes other than the traced one (export.TRACE_SHAPE): odd sides, sides that are and are
# not multiples of 4, the smallest side, batches of 1 to 3, one image large enough for
# PyTorch's inference path (≥ 128² pixels). Exactly 8x8 is left out: with 2x2 pixels per
# instance norm at 1/4 scale, float32 PyTorch is itself ~1e-3 from float64 there.
SIZES = [
    (1, 3, 8, 64),
    (1, 3, 9, 13),
    (2, 3, 21, 17),
    (3, 3, 12, 31),
    (1, 3, 36, 44),
    (1, 3, 131, 129),
]
ATOL = 1e-4


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny convolutions on a shared 2-core machine run ~20x faster on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_tiny_checkpoint(folder, label="latest", seed=101):
    """Pre, H and a 6-block G_A at --ngf 8 with the vectors' synthetic weights."""
    folder.mkdir(parents=True, exist_ok=True)
    nets = build_generators(Architecture(ngf=8, netG="resnet_6blocks"), names=ENHANCER_NAMES)
    for name, net in nets.items():
        shapes = {k: v.shape for k, v in net.state_dict().items()}
        torch.save(synth_state_dict(shapes, seed, prefix=name), folder / f"{label}_net_{name}.pth")
    return folder


def assert_matches_pytorch(enhancer, runner, sizes=SIZES, atol=ATOL):
    generator = torch.Generator().manual_seed(1)
    for shape in sizes:
        x = torch.rand(shape, generator=generator) * 2 - 1
        with torch.no_grad():
            expected = enhancer(x).numpy()
        got = runner(x.numpy())
        assert got.shape == expected.shape, shape
        assert np.abs(got - expected).max() < atol, (shape, np.abs(got - expected).max())


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("saves") / "tiny")


@pytest.fixture(scope="module")
def enhancer(checkpoint_dir):
    return load_enhancer(str(checkpoint_dir), device="cpu")


@pytest.fixture(scope="module")
def onnx_export(checkpoint_dir, tmp_path_factory):
    """The command's work (export, check, --test_image) once; its file and log."""
    out = tmp_path_factory.mktemp("onnx")
    photo = make_image(out / "photo.png", (37, 23), dark=True)
    handler, logger = _ListHandler(), logging.getLogger("nerco.inference.export")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        path = export.run(
            export.parse_args(
                [
                    "--checkpoint_dir",
                    str(checkpoint_dir),
                    "--output",
                    str(out / "enhancer.onnx"),
                    "--test_image",
                    str(photo),
                ]
            )
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return path, handler.lines


class _ListHandler(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_onnx_equals_pytorch_at_sizes_other_than_the_trace(onnx_export, enhancer):
    path, log = onnx_export
    assert_matches_pytorch(enhancer, export.load_runner(path))
    # The export-time check ran and reported its differences.
    assert sum("max abs difference to PyTorch" in line for line in log) == len(export.CHECK_SHAPES)


def test_onnx_interface(onnx_export):
    import onnx

    model = onnx.load(onnx_export[0])
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [18]
    for value, name in ((model.graph.input[0], "input"), (model.graph.output[0], "output")):
        assert value.name == name
        dims = [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
        assert dims == ["batch", 3, "height", "width"]
    assert "[-1, 1]" in model.doc_string


def test_onnx_test_image(onnx_export):
    path = onnx_export[0]
    image = Image.open(path.replace("enhancer.onnx", "photo_enhanced.png"))
    assert image.size == (37, 23) and image.mode == "RGB"
    assert np.asarray(image).std() > 0


def test_torchscript_equals_pytorch(checkpoint_dir, enhancer, tmp_path):
    path = export.run(
        export.parse_args(
            [
                "--checkpoint_dir",
                str(checkpoint_dir),
                "--output",
                str(tmp_path / "e.pt"),
                "--format",
                "torchscript",
            ]
        )
    )
    assert_matches_pytorch(enhancer, export.load_runner(path))


def test_check_fails_on_a_different_model(checkpoint_dir, enhancer, tmp_path):
    other = load_enhancer(str(write_tiny_checkpoint(tmp_path / "other", seed=7)), device="cpu")
    with pytest.raises(export.ExportCheckError, match="differs from PyTorch"):
        export.check_export(other, lambda x: enhancer(torch.from_numpy(x)).numpy())

    def uncropped(x):  # one row too many
        return np.pad(enhancer(torch.from_numpy(x)).numpy(), ((0, 0), (0, 0), (0, 1), (0, 0)))

    with pytest.raises(export.ExportCheckError, match="shape"):
        export.check_export(enhancer, uncropped)


def test_failed_check_exits_1_and_removes_the_file(checkpoint_dir, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr("nerco.runtime.setup_logging", lambda: None)
    out = tmp_path / "e.pt"
    with caplog.at_level(logging.INFO):
        status = export.main(
            [
                "--checkpoint_dir",
                str(checkpoint_dir),
                "--output",
                str(out),
                "--format",
                "torchscript",
                "--atol",
                "-1",
            ]
        )
    assert status == 1 and not out.exists()
    errors = [r.getMessage() for r in caplog.records if r.getMessage().startswith("error:")]
    assert len(errors) == 1 and "--atol -1" in errors[0], errors


@pytest.mark.parametrize(
    "case, needle",
    [
        ("missing folder", "does not exist"),
        ("missing file", "latest_net_H.pth"),
        ("wrong extension", "must end with .onnx"),
        ("unknown epoch", "7_net_Pre.pth"),
        ("old opset", "--opset 17"),
    ],
)
def test_bad_input_is_one_line_and_status_2(
    case, needle, checkpoint_dir, tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr("nerco.runtime.setup_logging", lambda: None)
    folder, output, extra = checkpoint_dir, tmp_path / "e.onnx", []
    if case == "missing folder":
        folder = tmp_path / "nowhere"
    elif case == "missing file":
        folder = tmp_path / "partial"
        write_tiny_checkpoint(folder)
        (folder / "latest_net_H.pth").unlink()
    elif case == "wrong extension":
        output = tmp_path / "e.onnx.pt"
    elif case == "unknown epoch":
        extra = ["--epoch", "7"]
    else:
        extra = ["--opset", "17"]
    with caplog.at_level(logging.INFO):
        status = export.main(["--checkpoint_dir", str(folder), "--output", str(output), *extra])
    assert status == 2
    errors = [r.getMessage() for r in caplog.records if r.getMessage().startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], errors
    assert not output.exists()


def test_command_line_as_a_user_runs_it(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "nerco.export",
            "--checkpoint_dir",
            str(tmp_path / "nowhere"),
            "--output",
            str(tmp_path / "e.onnx"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in out, out
    assert [line for line in out.splitlines() if line.startswith("error:")] == [
        f"error: checkpoint folder {tmp_path / 'nowhere'} does not exist: put "
        "latest_net_G_A.pth, latest_net_Pre.pth, latest_net_H.pth there"
    ]


def test_user_error_for_a_too_small_test_image(tmp_path, enhancer):
    tiny = make_image(tmp_path / "tiny.png", (7, 20))
    with pytest.raises(UserError, match="7x20"):
        export.enhance_image(lambda x: x, str(tiny), str(tmp_path / "out.png"))
