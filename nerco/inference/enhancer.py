"""Inference: the Pre + H + G_A enhancer of NERCO_SPEC.md §5, for images of any size.

The generators need sizes divisible by 4: the image is reflect-padded to the next multiple
of 4 and the result cropped back, so the output has the input's exact size (and equals
the released computation when the size is already divisible by 4).

Speed and memory: without autograd the networks take their inference path (channels-last,
in-place normalisation, the NRN head and H's attention in bands of rows: each network's
``fast_forward``, see :mod:`nerco.networks.fast_path`), so a whole photo is enhanced in one
piece, with the numbers of the small-image path, and no option to set. ``amp="bf16"`` (or
``"fp16"``) runs the convolutions under autocast: about twice as fast where the hardware
has bfloat16 dot products, within about one 8-bit level of float32.
"""

from __future__ import annotations

import contextlib
import os
import re

import torch
import torch.nn.functional as F
from torch import nn

from nerco.networks.build import AMP_DTYPES, ENHANCER_NAMES, Architecture, build_generators, enhance
from nerco.networks.checkpoint import load_network, network_path, read_state_dict
from nerco.runtime import UserError

#: Smallest side the generators accept (two stride-2 steps, then a reflect pad of 1).
MIN_SIDE = 8


class Enhancer(nn.Module):
    """Maps (N, 3, H, W) in [-1, 1] to the enhanced (N, 3, H, W) in [-1, 1], any H, W ≥ 8.

    Args:
        Pre, H, G_A: the NRN, the mask extractor and the enhancer networks.
        rows_per_chunk: rows per band of the NRN head; by default chosen from the image
            width (about 8k pixels a band) on the inference path. Same result either way.
        amp: ``None`` (float32), ``"bf16"`` or ``"fp16"``: autocast dtype of the
            convolutions. The output is float32 in every case.
    """

    def __init__(
        self,
        Pre: nn.Module,
        H: nn.Module,
        G_A: nn.Module,
        rows_per_chunk: int | None = None,
        amp: str | None = None,
    ) -> None:
        super().__init__()
        if amp is not None and amp not in AMP_DTYPES:
            raise ValueError(f"amp must be None or one of {tuple(AMP_DTYPES)}, got {amp!r}")
        self.Pre, self.H, self.G_A = Pre, H, G_A
        self.rows_per_chunk = rows_per_chunk
        self.amp = amp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected an (N, 3, H, W) batch, got shape {tuple(x.shape)}")
        height, width = x.shape[-2:]
        if min(height, width) < MIN_SIDE:
            raise ValueError(
                f"image of {width}x{height} pixels is too small: NeRCo needs at "
                f"least {MIN_SIDE}x{MIN_SIDE}"
            )
        pad_h, pad_w = -height % 4, -width % 4
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        # Nothing can need a gradient: run without autograd, which lets the networks take
        # their inference path even when the caller forgot torch.no_grad().
        needs_grad = x.requires_grad or any(p.requires_grad for p in self.parameters())
        grad_mode = contextlib.nullcontext() if needs_grad else torch.no_grad()
        autocast = (
            torch.autocast(x.device.type, dtype=AMP_DTYPES[self.amp])
            if self.amp
            else contextlib.nullcontext()
        )
        with grad_mode, autocast:
            y = enhance(self.Pre, self.H, self.G_A, x, rows_per_chunk=self.rows_per_chunk)
        return y[..., :height, :width].to(x.dtype)


def infer_architecture(G_A_state: dict[str, torch.Tensor]) -> Architecture:
    """Read ngf, the number of residual blocks and the norm layer off G_A's weights."""
    try:
        ngf = G_A_state["model.1.weight"].shape[0]
    except KeyError:
        raise UserError(
            "the G_A checkpoint has no model.1.weight: it is not a NeRCo G_A checkpoint"
        ) from None
    blocks = {
        int(m.group(1)) for k in G_A_state if (m := re.match(r"model\.(\d+)\.conv_block\.", k))
    }
    netG = {9: "resnet_9blocks", 6: "resnet_6blocks"}.get(len(blocks))
    if netG is None:
        raise UserError(f"the G_A checkpoint has {len(blocks)} residual blocks; NeRCo uses 9 or 6")
    if any(k.endswith("running_mean") for k in G_A_state):
        norm = "batch"
    else:
        norm = "instance" if "model.1.bias" in G_A_state else "none"
    return Architecture(ngf=int(ngf), netG=netG, norm=norm)


def load_enhancer(
    checkpoint_dir: str,
    epoch: str | int = "latest",
    device: torch.device | str | None = None,
    rows_per_chunk: int | None = None,
    amp: str | None = None,
) -> Enhancer:
    """Build the enhancer from ``<checkpoint_dir>/<epoch>_net_{Pre,H,G_A}.pth``.

    The architecture (width, blocks, norm) is read from the checkpoint, so models trained
    with another ``--ngf`` load too; a ``module.`` prefix is accepted. Returns the module in
    eval mode, without gradients, on ``device`` (default: CUDA when available, else CPU).
    """
    if not os.path.isdir(checkpoint_dir):
        raise UserError(
            f"checkpoint folder {checkpoint_dir} does not exist: put "
            f"{epoch}_net_G_A.pth, {epoch}_net_Pre.pth, {epoch}_net_H.pth there"
        )
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    arch = infer_architecture(read_state_dict(network_path(checkpoint_dir, epoch, "G_A")))
    nets = build_generators(arch, names=ENHANCER_NAMES)
    for name in ENHANCER_NAMES:
        load_network(nets[name], network_path(checkpoint_dir, epoch, name))
    enhancer = Enhancer(nets["Pre"], nets["H"], nets["G_A"], rows_per_chunk, amp)
    enhancer.eval().requires_grad_(False)
    return enhancer.to(device)
