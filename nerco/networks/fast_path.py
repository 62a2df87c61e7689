"""The no-autograd layer implementations the networks' inference paths are made of
(issues 4, 6 and 12).

Each network owns its inference path, a ``fast_forward`` method next to its ``forward``
(:class:`~nerco.networks.generator.ResnetBlock`, :class:`~nerco.networks.generator.ResnetGenerator`,
:class:`~nerco.networks.nrn.NRNHead`, :class:`~nerco.networks.nrn.NRN`,
:class:`~nerco.networks.mask_extractor.MaskExtractor`), and ``forward`` takes it when
:func:`fast_inference` allows: autograd off (``torch.no_grad`` / ``torch.inference_mode``),
no tracer or exporter running, an image of at least :data:`FAST_MIN_PIXELS` pixels. The two
give the same values up to float rounding (a few 1e-6 relative); tests/test_fast_forward.py
fails when they drift apart. This module holds what those methods share: the runner
:func:`run_inference` / :func:`run_layers` for an ``nn.Sequential`` of plain ``torch.nn``
layers, which hands any layer with a ``fast_forward`` of its own to that method, and the
layer primitives it uses:

* channels-last tensors throughout (oneDNN's and cuDNN's fast layout);
* instance norm, ReLU and Tanh in place, so each full-resolution map is allocated once
  instead of three times; instance norm in cache-sized bands of rows;
* a reflect pad followed by a cheap convolution (the 64-channel full-size layers, the 7×7
  head) without the padded copy: zero padding inside the convolution, then the border
  recomputed;
* under autocast (``--amp bf16``), the convolutions that read images stay float32.

Training, tracing and small images run the plain layers, bit for bit as before.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

#: Smallest image (H·W) for the inference path; below it the plain layers run, which cost
#: as little and give exactly the numbers of the training code.
FAST_MIN_PIXELS = 128 * 128


def fast_inference(x: torch.Tensor) -> bool:
    """True when the inference path may run on ``x``: autograd is off, neither
    ``torch.jit.trace`` nor ``torch.compile`` / ``torch.export`` is recording, and the image
    has at least :data:`FAST_MIN_PIXELS` pixels."""
    if torch.is_grad_enabled() or torch.jit.is_tracing() or torch.compiler.is_compiling():
        return False
    return x.shape[-2] * x.shape[-1] >= FAST_MIN_PIXELS


#: Bytes per band of the CPU instance norm: a band stays in the last-level cache from its
#: statistics to its normalisation.
NORM_BAND_BYTES = 2 << 20


def instance_norm_(x: torch.Tensor, eps: float, relu: bool = False) -> torch.Tensor:
    """InstanceNorm2d without affine parameters or running statistics (then ReLU if
    ``relu``), in place on ``x``: (x − mean) / sqrt(var + eps) per image and channel.

    On the CPU, two passes over bands of rows that stay in cache: per-channel sums of
    d = x − pivot and d², with the pivot the first band's mean (so E[d²] − E[d]² cancels
    nothing), then (x − mean) · scale in place. Elsewhere :func:`instance_norm_per_image_`.
    """
    if x.device.type != "cpu":
        return instance_norm_per_image_(x, eps, relu)
    n, channels, height, width = x.shape
    rows = max(1, NORM_BAND_BYTES // (width * channels * x.element_size()))
    bands = [x[:, :, top : top + rows] for top in range(0, height, rows)]
    pivot = bands[0].mean(dim=(2, 3), keepdim=True, dtype=torch.float32)
    total = x.new_zeros(n, channels, 1, 1, dtype=torch.float64)
    total_sq = torch.zeros_like(total)
    for band in bands:
        d = band - pivot  # float32 also for bfloat16 / float16 bands
        total += d.sum(dim=(2, 3), keepdim=True)
        total_sq += d.mul_(d).sum(dim=(2, 3), keepdim=True)
    shift = total / (height * width)
    var = (total_sq / (height * width) - shift * shift).clamp_(min=0)
    mean, scale = (shift + pivot).float(), (var + eps).rsqrt_().float()
    for band in bands:
        if band.dtype == torch.float32:
            band.sub_(mean).mul_(scale)
            if relu:
                band.relu_()
        else:  # normalise in float32, round once
            normed = (band - mean).mul_(scale)
            band.copy_(normed.relu_() if relu else normed)
    return x


def instance_norm_per_image_(x: torch.Tensor, eps: float, relu: bool = False) -> torch.Tensor:
    """:func:`instance_norm_` on GPUs: ``F.batch_norm`` one image at a time (for one image,
    the batch statistics are the instance statistics), written back into ``x``. Any device
    runs it; the CPU takes the banded version."""
    for i in range(x.shape[0]):
        x[i : i + 1] = F.batch_norm(x[i : i + 1], None, None, training=True, eps=eps)
    return x.relu_() if relu else x


#: A convolution with at most this many input channels reads images: under autocast it
#: runs in float32, since bfloat16 keeps only ~3 significant digits, too few for the detail
#: of a dark image (small steps on a large offset), which the next instance norm magnifies.
IMAGE_CHANNELS = 8


def _autocast_dtype(x: torch.Tensor) -> torch.dtype | None:
    """The dtype autocast gives convolutions on ``x``'s device, or None when it is off."""
    device = x.device.type
    if not (torch.amp.is_autocast_available(device) and torch.is_autocast_enabled(device)):
        return None
    return torch.get_autocast_dtype(device)


def _full_precision(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if _autocast_dtype(x) is None:
        return layer(x)
    with torch.autocast(x.device.type, enabled=False):
        return layer(x.float())


#: FLOPs per input value below which a reflect-padded convolution skips the padded copy.
CHEAP_CONV_FLOPS = 2048


def _reflect_border(pad: nn.Module, conv: nn.Module, x: torch.Tensor) -> int:
    """``p`` when ``conv(pad(x))`` is a stride-1 (2p+1)×(2p+1) convolution after a reflect pad
    of ``p`` on every side that :func:`_reflect_padded_conv` can compute; else 0."""
    if not (isinstance(pad, nn.ReflectionPad2d) and isinstance(conv, nn.Conv2d)):
        return 0
    p = pad.padding[0]
    fits = (
        tuple(pad.padding) == (p,) * 4
        and conv.kernel_size == (2 * p + 1,) * 2
        and conv.stride == (1, 1)
        and conv.dilation == (1, 1)
        and conv.padding == (0, 0)
        and conv.in_channels > IMAGE_CHANNELS
        and min(x.shape[-2:]) >= 2 * p
    )
    # Worth it only where the copy is dear next to the convolution: little work per input
    # value (the 64-channel full-size layers, not the 256-channel residual blocks).
    cheap = 2 * conv.out_channels * conv.kernel_size[0] ** 2 <= CHEAP_CONV_FLOPS
    return p if fits and cheap else 0


def _reflect_padded_conv(conv: nn.Conv2d, x: torch.Tensor, p: int) -> torch.Tensor:
    """``conv(reflect_pad(x, p))`` without the padded copy of ``x``: the convolution pads
    with zeros internally, then its ``p``-pixel border is recomputed from reflect-padded
    strips of ``2p`` rows or columns (the interior never sees the padding)."""

    def valid(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, conv.weight, conv.bias, groups=conv.groups)

    out = F.conv2d(x, conv.weight, conv.bias, padding=p, groups=conv.groups)
    out[:, :, :p] = valid(F.pad(x[:, :, : 2 * p], (p, p, p, 0), mode="reflect"))
    out[:, :, -p:] = valid(F.pad(x[:, :, -2 * p :], (p, p, 0, p), mode="reflect"))
    out[:, :, :, :p] = valid(F.pad(x[:, :, :, : 2 * p], (p, 0, p, p), mode="reflect"))
    out[:, :, :, -p:] = valid(F.pad(x[:, :, :, -2 * p :], (0, p, p, p), mode="reflect"))
    return out


def _is_plain_instance_norm(layer: nn.Module) -> bool:
    return (
        isinstance(layer, nn.InstanceNorm2d) and not layer.affine and not layer.track_running_stats
    )


#: Layers whose output is always a new tensor, which later layers may overwrite in place.
_FRESH_OUTPUT = (
    nn.Conv2d,
    nn.ConvTranspose2d,
    nn.ReflectionPad2d,
    nn.ReplicationPad2d,
    nn.ZeroPad2d,
)


def run_inference(layers: Iterable[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """Apply ``layers`` in order as the inference path (see the module docstring).

    Returns a channels-last tensor. The input is never modified: in-place layers act only
    on tensors made here.
    """
    return run_layers(layers, x.contiguous(memory_format=torch.channels_last))[0]


def run_layers(layers: Iterable[nn.Module], x: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """:func:`run_inference` on a channels-last ``x``; also whether the result was made
    here (and so may be overwritten).

    A layer that defines ``fast_forward`` runs that method, which must not modify its
    channels-last input and must return a new tensor; ``torch.nn`` layers run as below;
    any other layer runs its ``forward``.
    """
    layers = list(layers)
    owned = False
    i = 0
    while i < len(layers):
        layer = layers[i]
        if (fast_forward := getattr(layer, "fast_forward", None)) is not None:
            x, owned = fast_forward(x), True  # the layer's own inference path
        elif owned and _is_plain_instance_norm(layer):
            relu = i + 1 < len(layers) and isinstance(layers[i + 1], nn.ReLU)
            x = instance_norm_(x, layer.eps, relu=relu)
            i += relu  # the ReLU is done
            lower = _autocast_dtype(x)
            if lower is not None and x.dtype == torch.float32:
                # After a float32 image layer: keep the map in the autocast dtype, as the
                # next convolution would cast it anyway (half the memory).
                x = x.to(lower)
        elif owned and isinstance(layer, nn.ReLU):
            x = x.relu_()
        elif owned and isinstance(layer, nn.Tanh):
            x = x.tanh_()
        elif isinstance(layer, nn.Conv2d) and layer.in_channels <= IMAGE_CHANNELS:
            x, owned = _full_precision(layer, x), True
        elif i + 1 < len(layers) and (p := _reflect_border(layer, layers[i + 1], x)):
            x, owned = _reflect_padded_conv(layers[i + 1], x, p), True
            i += 1  # the convolution is done
        else:
            x, owned = layer(x), owned or isinstance(layer, _FRESH_OUTPUT)
        i += 1
    return x, owned
