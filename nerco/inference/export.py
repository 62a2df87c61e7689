"""Export the Pre + H + G_A enhancer (NERCO_SPEC.md §5) to ONNX or TorchScript.

    python -m nerco.export --checkpoint_dir saves/LOL --epoch latest --output enhancer.onnx

The exported graph maps ``input`` (N, 3, H, W) in [-1, 1] to ``output`` (N, 3, H, W) in
[-1, 1] for any N ≥ 1 and H, W ≥ 8, like :class:`nerco.inference.enhancer.Enhancer`: the reflect pad
to a multiple of 4 and the crop back are part of the graph, computed from the input's
shape at run time. After writing the file, the model is run (onnxruntime, or
``torch.jit.load``) on sizes other than the one traced, one of them not a multiple of 4,
and compared with the PyTorch enhancer; a difference above ``--atol`` is an error.

ONNX uses the ``torch.export``-based exporter (``dynamo=True``) at opset 18, the opset its
operator library is written for (no version conversion pass); TorchScript (``--format
torchscript``) uses ``torch.jit.trace``, which records the size arithmetic as graph ops.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nerco.inference.enhancer import MIN_SIDE, Enhancer, load_enhancer
from nerco.networks.build import ENHANCER_NAMES, enhance
from nerco.networks.checkpoint import network_path
from nerco.runtime import UserError, program_name

logger = logging.getLogger(__name__)

#: Opset of the ONNX graph: the opset torch's ONNX operator library targets, so no version
#: conversion runs (lower ones fail: onnx has no adapter down for Pad). Checked here with
#: onnxruntime; newer opsets can be asked for with --opset.
ONNX_OPSET = 18
#: Extension each format must be written with.
FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
#: Example input of the trace: batch 2, sides not multiples of 4 and unequal, so neither the
#: batch, nor the padding, nor H = W can be taken for a constant.
TRACE_SHAPE = (2, 3, 37, 45)
#: Shapes of the check, other than the traced one: one a multiple of 4 and large enough
#: (≥ 128², nerco.networks.generator.FAST_MIN_PIXELS) for PyTorch's banded inference path, one not.
CHECK_SHAPES = ((1, 3, 128, 132), (2, 3, 29, 54))
#: Largest accepted |exported − PyTorch|; one 8-bit level is 2/255 ≈ 7.8e-3 in [-1, 1].
DEFAULT_ATOL = 1e-3
#: Names of the graph's input and output and of its dynamic axes.
INPUT_NAME, OUTPUT_NAME = "input", "output"
DYNAMIC_AXES = {0: "batch", 2: "height", 3: "width"}

Runner = Callable[[np.ndarray], np.ndarray]


class ExportCheckError(Exception):
    """The exported model does not reproduce the PyTorch enhancer."""


class TraceableEnhancer(nn.Module):
    """:class:`Enhancer` without Python branches on the image size, for export.

    ``Enhancer.forward`` pads only when a side is not a multiple of 4 and checks the size,
    both decided in Python, which a trace would fix to the example's size. Here the pad
    (reflect, bottom and right, 0–3 pixels) and the crop are always applied, their amounts
    being expressions of the input's shape, so the exporters record them as graph ops.
    Same values as ``Enhancer`` (a pad of 0 is the identity); sides must be ≥ 8.
    """

    def __init__(self, enhancer: Enhancer) -> None:
        super().__init__()
        self.Pre, self.H, self.G_A = enhancer.Pre, enhancer.H, enhancer.G_A

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2], x.shape[-1]
        pad_h = (height + 3) // 4 * 4 - height
        pad_w = (width + 3) // 4 * 4 - width
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        return enhance(self.Pre, self.H, self.G_A, x)[..., :height, :width]


def _import_onnx():
    try:
        import onnxruntime
        import onnxscript  # noqa: F401 - the torch.export-based exporter needs it
    except ImportError as err:
        raise UserError(
            f"ONNX export needs onnx, onnxscript and onnxruntime ({err}): "
            f"pip install -r requirements-extras.txt"
        ) from None
    return onnxruntime


def export_onnx(enhancer: Enhancer, path: str, opset: int = ONNX_OPSET) -> None:
    """Write ``enhancer`` as an ONNX graph with dynamic batch, height and width."""
    if opset < ONNX_OPSET:
        # Older opsets need onnx's version converter, which has no adapter down for Pad.
        raise UserError(f"--opset {opset}: the exporter writes opset {ONNX_OPSET} or newer")
    _import_onnx()
    from onnxscript import ir

    model = TraceableEnhancer(enhancer).eval()
    dims = {
        axis: torch.export.Dim(name, min=MIN_SIDE if axis else 1)
        for axis, name in DYNAMIC_AXES.items()
    }
    example = torch.zeros(TRACE_SHAPE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            opset_version=opset,
            dynamic_shapes=(dims,),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            verbose=False,
        )
    graph = program.model.graph
    # The exporter names the output's sides by their formula (e.g. Min(height, 4*...));
    # they equal the input's, which is what a reader of the model needs to see.
    graph.outputs[0].shape = ir.Shape(["batch", 3, "height", "width"])
    program.model.doc_string = (
        "NeRCo enhancer (Pre + H + G_A): input (N, 3, H, W) float32 in [-1, 1], RGB, "
        f"H, W >= {MIN_SIDE}; output (N, 3, H, W) float32 in [-1, 1]"
    )
    program.save(path)


def export_torchscript(enhancer: Enhancer, path: str) -> None:
    """Write ``enhancer`` as a traced TorchScript module (``torch.jit.load`` reads it)."""
    model = TraceableEnhancer(enhancer).eval()
    with warnings.catch_warnings(), torch.no_grad():
        # The trace warns about each Python int taken from a shape; the size arithmetic is
        # recorded all the same, which the check after export verifies.
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, torch.zeros(TRACE_SHAPE), check_trace=False)
        traced.save(path)


def load_runner(path: str) -> Runner:
    """A function running the exported file at ``path`` on a float32 (N, 3, H, W) array."""
    if path.endswith(FORMATS["onnx"]):
        onnxruntime = _import_onnx()
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        return lambda x: session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.load is deprecated in favour of torch.export
        module = torch.jit.load(path, map_location="cpu")

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(x)).numpy()

    return run


def check_export(
    enhancer: Enhancer,
    runner: Runner,
    shapes=CHECK_SHAPES,
    atol: float = DEFAULT_ATOL,
    seed: int = 0,
) -> list[float]:
    """Max |exported − PyTorch| on random inputs in [-1, 1] of each shape; raises
    :class:`ExportCheckError` when a shape differs or a difference exceeds ``atol``."""
    generator = torch.Generator().manual_seed(seed)
    differences = []
    for shape in shapes:
        x = torch.rand(shape, generator=generator) * 2 - 1
        with torch.no_grad():
            expected = enhancer(x).cpu().numpy()
        got = runner(x.numpy())
        size = "x".join(map(str, shape))
        if got.shape != expected.shape:
            raise ExportCheckError(
                f"input {size}: the exported model returns shape "
                f"{tuple(got.shape)}, PyTorch {tuple(expected.shape)}"
            )
        difference = float(np.abs(got - expected).max())
        logger.info("input %s: max abs difference to PyTorch %.3g", size, difference)
        if not difference <= atol:  # also catches NaN
            raise ExportCheckError(
                f"input {size}: the exported model differs from PyTorch "
                f"by {difference:.3g} (> --atol {atol:g})"
            )
        differences.append(difference)
    return differences


def enhance_image(runner: Runner, image_path: str, output_path: str) -> None:
    """Enhance one image file with an exported model; write the result as PNG."""
    from data.image_folder import load_rgb
    from data.transforms import to_tensor
    from nerco.util import save_image, tensor2im

    x = to_tensor(load_rgb(image_path))[None]
    if min(x.shape[-2:]) < MIN_SIDE:
        raise UserError(
            f"{image_path} is {x.shape[-1]}x{x.shape[-2]} pixels: NeRCo needs at "
            f"least {MIN_SIDE}x{MIN_SIDE}"
        )
    save_image(tensor2im(torch.from_numpy(runner(x.numpy()))), output_path)
    logger.info("enhanced %s -> %s", image_path, output_path)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=program_name("python -m nerco.export"),
        description="Export the NeRCo enhancer (Pre + H + G_A) with dynamic batch, height "
        "and width: input (N, 3, H, W) in [-1, 1], H, W >= 8; output the same.",
    )
    parser.add_argument(
        "--checkpoint_dir",
        required=True,
        help="folder with <epoch>_net_{Pre,H,G_A}.pth, e.g. saves/LOL",
    )
    parser.add_argument(
        "--epoch", default="latest", help="checkpoint label to export [default: latest]"
    )
    parser.add_argument(
        "--output",
        required=True,
        help="file to write: .onnx for --format onnx, .pt for torchscript",
    )
    parser.add_argument(
        "--format",
        choices=sorted(FORMATS),
        default="onnx",
        help="onnx (torch.export-based exporter) or torchscript (torch.jit.trace) [default: onnx]",
    )
    parser.add_argument(
        "--opset",
        type=int,
        default=ONNX_OPSET,
        help=f"ONNX opset, {ONNX_OPSET} or newer [default: {ONNX_OPSET}]",
    )
    parser.add_argument(
        "--atol",
        type=float,
        default=DEFAULT_ATOL,
        help=f"largest accepted max |exported - PyTorch| of the check [default: {DEFAULT_ATOL:g}]",
    )
    parser.add_argument(
        "--no_check", action="store_true", help="skip running the exported model against PyTorch"
    )
    parser.add_argument("--test_image", help="also enhance this image with the exported model")
    parser.add_argument(
        "--test_output",
        help="where to write it [default: <image stem>_enhanced.png beside the exported model]",
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> str:
    """Export, check, optionally enhance ``--test_image``; return the exported file's path."""
    extension = FORMATS[args.format]
    if not args.output.endswith(extension):
        raise UserError(
            f"--output {args.output} must end with {extension} for --format {args.format}"
        )
    if args.test_image and not os.path.isfile(args.test_image):
        raise UserError(f"--test_image {args.test_image} does not exist")
    if os.path.isdir(args.checkpoint_dir):
        for name in ENHANCER_NAMES:
            if not os.path.isfile(network_path(args.checkpoint_dir, args.epoch, name)):
                raise UserError(
                    f"{network_path(args.checkpoint_dir, args.epoch, name)} does "
                    f"not exist: check --checkpoint_dir and --epoch"
                )
    enhancer = load_enhancer(args.checkpoint_dir, args.epoch, device="cpu")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    start = time.perf_counter()
    if args.format == "onnx":
        export_onnx(enhancer, args.output, args.opset)
    else:
        export_torchscript(enhancer, args.output)
    logger.info(
        "wrote %s (%s, %.1f MB) in %.1f s",
        args.output,
        args.format,
        os.path.getsize(args.output) / 1e6,
        time.perf_counter() - start,
    )
    if not args.no_check or args.test_image:
        runner = load_runner(args.output)
    if not args.no_check:
        try:
            check_export(enhancer, runner, atol=args.atol)
        except ExportCheckError:
            os.remove(args.output)  # a model known to be wrong must not be picked up
            raise
    if args.test_image:
        stem = os.path.splitext(os.path.basename(args.test_image))[0]
        output = args.test_output or os.path.join(
            os.path.dirname(args.output), f"{stem}_enhanced.png"
        )
        enhance_image(runner, args.test_image, output)
    return args.output


def main(argv: list[str] | None = None) -> int:
    """``python -m nerco.export``: exit status 0 on success, 1 when the exported model fails
    the check, 2 on bad input."""
    from nerco.runtime import run_command

    def export() -> int:
        # The ONNX graph optimiser logs every rewrite at INFO level.
        for name in ("onnxscript", "onnx_ir"):
            logging.getLogger(name).setLevel(logging.WARNING)
        try:
            run(parse_args(argv))
        except ExportCheckError as err:
            logger.error("error: %s; the file was removed (--no_check keeps it)", err)
            return 1
        return 0

    return run_command(export, logger.name)
