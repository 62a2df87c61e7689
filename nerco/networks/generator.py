"""ResNet generator of CycleGAN, used for the enhancer ``G_A`` and the degrader ``G_B``.

NERCO_SPEC.md §1.1. Layer indices inside ``model`` are those of the released checkpoints
(``model.1`` is the 7×7 stem, ``model.10``–``model.18`` the residual blocks, ``model.26`` the
7×7 head), so the authors' ``latest_net_G_A.pth`` loads without renaming.

Each class owns its two forwards: ``forward`` is what training runs (the plain layers),
``fast_forward`` the inference path (channels-last, in place, through the layer primitives of
:mod:`nerco.networks.fast_path`; same values up to float rounding), which
``ResnetGenerator.forward`` takes without autograd on images of at least 128×128 pixels. An
edit of one forward needs the same edit of the other: tests/test_fast_forward.py fails when
they disagree.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn

from nerco.networks.fast_path import fast_inference, run_inference, run_layers

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

    def fast_forward(self, x: torch.Tensor) -> torch.Tensor:
        """``forward`` on the inference path, without autograd: ``conv_block`` through
        :func:`~nerco.networks.fast_path.run_layers`, the sum in place. A new channels-last
        tensor; ``x`` is not modified. The networks that hold blocks call it from their
        own ``fast_forward``; a block alone keeps ``forward`` in every mode."""
        x = x.contiguous(memory_format=torch.channels_last)
        y, fresh = run_layers(self.conv_block, x)
        return y.add_(x) if fresh else y + x


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
                ngf * mult,
                ngf * mult // 2,
                3,
                stride=2,
                padding=1,
                output_padding=1,
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
            return self.fast_forward(x)
        return self.model(x)

    def fast_forward(self, x: torch.Tensor) -> torch.Tensor:
        """``forward`` on the inference path, without autograd: ``model`` through
        :func:`~nerco.networks.fast_path.run_inference` (the residual blocks by their own
        :meth:`ResnetBlock.fast_forward`), returned contiguous."""
        return run_inference(self.model, x).contiguous()
