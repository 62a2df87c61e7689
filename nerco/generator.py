"""ResNet generator of CycleGAN, used for the enhancer ``G_A`` and the degrader ``G_B``.

NERCO_SPEC.md §1.1. Layer indices inside ``model`` are those of the released checkpoints
(``model.1`` is the 7×7 stem, ``model.10``–``model.18`` the residual blocks, ``model.26`` the
7×7 head), so the authors' ``latest_net_G_A.pth`` loads without renaming.

Inference path (:func:`run_inference`): with autograd off (``torch.no_grad`` /
``torch.inference_mode``), no tracer or exporter running and an image of at least
:data:`FAST_MIN_PIXELS` pixels, the layers run on channels-last tensors (oneDNN's and
cuDNN's fast layout) and instance norm, ReLU, Tanh and the residual sums work in place, so
each full-resolution feature map is allocated once instead of three times. The values are
those of the plain ``nn.Sequential`` up to float rounding (a few 1e-6 relative); training,
and small images, run the plain layers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

NormLayer = Callable[[int], nn.Module]


def get_norm_layer(norm: str = "instance") -> NormLayer:
    """Return a constructor ``f(channels) -> nn.Module`` for ``--norm``.

    ``instance`` is InstanceNorm2d without affine parameters or running statistics (the
    released default); ``batch`` is BatchNorm2d; ``none`` is the identity.
    """
    if norm == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if norm == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm == "none":
        return lambda channels: nn.Identity()
    raise ValueError(f"--norm must be instance, batch or none, got {norm!r}")


def uses_bias(norm_layer: NormLayer) -> bool:
    """Convolutions carry a bias only when followed by InstanceNorm (CycleGAN's rule)."""
    return isinstance(norm_layer, functools.partial) and norm_layer.func is nn.InstanceNorm2d


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
    nothing), then (x − mean) · scale in place. Elsewhere ``F.batch_norm`` one image at a
    time (for one image, the batch statistics are the instance statistics), written back.
    """
    n, channels, height, width = x.shape
    if x.device.type != "cpu":
        for i in range(n):
            x[i : i + 1] = F.batch_norm(x[i : i + 1], None, None, training=True, eps=eps)
        return x.relu_() if relu else x
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


#: A convolution with at most this many input channels reads images: under autocast it
#: runs in float32, since bfloat16 keeps only ~3 significant digits, too few for the detail
#: of a dark image (small steps on a large offset), which the next instance norm magnifies.
IMAGE_CHANNELS = 8


def _full_precision(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if not torch.is_autocast_enabled(x.device.type):
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
    fits = (tuple(pad.padding) == (p,) * 4 and conv.kernel_size == (2 * p + 1,) * 2
            and conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.padding == (0, 0)
            and conv.in_channels > IMAGE_CHANNELS and min(x.shape[-2:]) >= 2 * p)
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
    return (isinstance(layer, nn.InstanceNorm2d) and not layer.affine
            and not layer.track_running_stats)


#: Layers whose output is always a new tensor, which later layers may overwrite in place.
_FRESH_OUTPUT = (nn.Conv2d, nn.ConvTranspose2d, nn.ReflectionPad2d, nn.ReplicationPad2d,
                 nn.ZeroPad2d)


def run_inference(layers: Iterable[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """Apply ``layers`` in order as the inference path (see the module docstring).

    Returns a channels-last tensor. The input is never modified: in-place layers act only
    on tensors this function created.
    """
    x = x.contiguous(memory_format=torch.channels_last)
    owned = False  # whether x was made here (and may be overwritten)
    layers = list(layers)
    i = 0
    while i < len(layers):
        layer = layers[i]
        if owned and _is_plain_instance_norm(layer):
            relu = i + 1 < len(layers) and isinstance(layers[i + 1], nn.ReLU)
            x = instance_norm_(x, layer.eps, relu=relu)
            i += relu  # the ReLU is done
        elif owned and isinstance(layer, nn.ReLU):
            x = x.relu_()
        elif owned and isinstance(layer, nn.Tanh):
            x = x.tanh_()
        elif isinstance(layer, ResnetBlock):  # x + block(x), the sum in place
            x, owned = run_inference(layer.conv_block, x).add_(x), True
        elif isinstance(layer, nn.Conv2d) and layer.in_channels <= IMAGE_CHANNELS:
            x, owned = _full_precision(layer, x), True
        elif i + 1 < len(layers) and (p := _reflect_border(layer, layers[i + 1], x)):
            x, owned = _reflect_padded_conv(layers[i + 1], x, p), True
            i += 1  # the convolution is done
        else:
            x, owned = layer(x), owned or isinstance(layer, _FRESH_OUTPUT)
        i += 1
    return x


class ResnetBlock(nn.Module):
    """x + [pad, conv 3×3, norm, ReLU, (dropout), pad, conv 3×3, norm](x)."""

    def __init__(
        self,
        dim: int,
        norm_layer: NormLayer,
        use_dropout: bool = False,
        use_bias: bool = True,
        padding_type: str = "reflect",
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for second in (False, True):
            pad = 0
            if padding_type == "reflect":
                layers.append(nn.ReflectionPad2d(1))
            elif padding_type == "replicate":
                layers.append(nn.ReplicationPad2d(1))
            elif padding_type == "zero":
                pad = 1
            else:
                raise ValueError(f"unknown padding type {padding_type!r}")
            layers += [nn.Conv2d(dim, dim, 3, padding=pad, bias=use_bias), norm_layer(dim)]
            if not second:
                layers.append(nn.ReLU(True))
                if use_dropout:
                    layers.append(nn.Dropout(0.5))
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


def stem(input_nc: int, ngf: int, norm_layer: NormLayer) -> list[nn.Module]:
    """Reflect pad 3, conv 7×7 (input_nc → ngf), norm, ReLU: the first layers of G, Pre and H."""
    return [
        nn.ReflectionPad2d(3),
        nn.Conv2d(input_nc, ngf, 7, padding=0, bias=uses_bias(norm_layer)),
        norm_layer(ngf),
        nn.ReLU(True),
    ]


def resnet_trunk(
    input_nc: int,
    ngf: int,
    n_blocks: int,
    norm_layer: NormLayer,
    use_dropout: bool = False,
    padding_type: str = "reflect",
) -> list[nn.Module]:
    """Steps 1–4 of §1.1: stem, two stride-2 downsamplings, residual blocks, two upsamplings.

    The returned layers map (N, input_nc, H, W) to (N, ngf, H, W) for H, W divisible by 4.
    """
    use_bias = uses_bias(norm_layer)
    layers = stem(input_nc, ngf, norm_layer)
    for i in range(2):  # downsampling: ngf -> 2 ngf -> 4 ngf
        mult = 2**i
        layers += [
            nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=use_bias),
            norm_layer(ngf * mult * 2),
            nn.ReLU(True),
        ]
    for _ in range(n_blocks):
        layers.append(ResnetBlock(ngf * 4, norm_layer, use_dropout, use_bias, padding_type))
    for i in range(2):  # upsampling: 4 ngf -> 2 ngf -> ngf
        mult = 2 ** (2 - i)
        layers += [
            nn.ConvTranspose2d(
                ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1,
                bias=use_bias,
            ),
            norm_layer(ngf * mult // 2),
            nn.ReLU(True),
        ]
    return layers


class ResnetGenerator(nn.Module):
    """CycleGAN ``resnet_{n}blocks``: the trunk plus reflect pad, conv 7×7 and Tanh.

    Args:
        input_nc: input channels (6 for ``G_A``, which sees the image and the NRN output).
        output_nc: output channels.
        ngf: width of the first layer (64 in the released models).
        n_blocks: residual blocks at 1/4 resolution (9 or 6).

    Maps (N, input_nc, H, W) with H, W divisible by 4 to (N, output_nc, H, W) in [-1, 1].
    """

    def __init__(
        self,
        input_nc: int,
        output_nc: int,
        ngf: int = 64,
        n_blocks: int = 9,
        norm_layer: NormLayer | None = None,
        use_dropout: bool = False,
        padding_type: str = "reflect",
    ) -> None:
        super().__init__()
        norm_layer = norm_layer or get_norm_layer("instance")
        layers = resnet_trunk(input_nc, ngf, n_blocks, norm_layer, use_dropout, padding_type)
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if fast_inference(x):
            return run_inference(self.model, x).contiguous()
        return self.model(x)
