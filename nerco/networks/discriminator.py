"""PatchGAN discriminators: ``D_A``, ``D_B`` and the edge-path ``D_A_edge``, ``D_B_edge``.

NERCO_SPEC.md §1.4 (the CycleGAN 70×70 PatchGAN and its ``pixel`` variant).
"""

from __future__ import annotations

import torch
from torch import nn

from nerco.networks.generator import NormLayer, get_norm_layer, uses_bias


class NLayerDiscriminator(nn.Module):
    """Conv 4×4 s2 stack → (N, 1, h, w) patch logits; ``n_layers=3`` is the released one."""

    def __init__(
        self, input_nc: int, ndf: int = 64, n_layers: int = 3, norm_layer: NormLayer | None = None
    ) -> None:
        super().__init__()
        norm_layer = norm_layer or get_norm_layer("instance")
        use_bias = uses_bias(norm_layer)
        layers: list[nn.Module] = [
            nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=use_bias),
                norm_layer(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1×1 PatchGAN (``--netD pixel``): one real/fake logit per pixel."""

    def __init__(self, input_nc: int, ndf: int = 64, norm_layer: NormLayer | None = None) -> None:
        super().__init__()
        norm_layer = norm_layer or get_norm_layer("instance")
        use_bias = uses_bias(norm_layer)
        self.net = nn.Sequential(
            nn.Conv2d(input_nc, ndf, 1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=use_bias),
            norm_layer(ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=use_bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
