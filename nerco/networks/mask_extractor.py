"""Mask Extractor ``H`` with collaborative attention — NERCO_SPEC.md §1.3.

A shallow ResNet produces a feature map F (6 pixels larger than the input per dimension,
because of the trailing reflect pad). Channel attention re-weights F; spatial attention on
the re-weighted map gives the 1-channel ``mask`` that gates the enhancer's input; a 7×7
conv on F (not on the attended map) gives the 3-channel ``Hm``.

``forward`` / ``mask`` are what training runs; ``fast_forward`` / ``fast_mask`` the
inference path they take without autograd on images of at least 128×128 pixels (the trunk
through :mod:`nerco.networks.fast_path`, the spatial attention's statistics in bands of
rows; same values up to float rounding, tests/test_fast_forward.py checks it).
"""

from __future__ import annotations

import torch
from torch import nn

from nerco.networks.fast_path import fast_inference, run_inference
from nerco.networks.generator import NormLayer, ResnetBlock, get_norm_layer, stem, uses_bias

#: Pixels per band when the inference path computes the spatial attention's statistics.
BAND_PIXELS = 65536


class MaskExtractor(nn.Module):
    """Maps (N, input_nc, H, W) in [-1, 1] to ``(Hm, mask)``.

    ``Hm`` is (N, output_nc, H, W) in [-1, 1]; ``mask`` is (N, 1, H, W) in (0, 1).

    Args:
        ngf: feature width (64 released). The attention bottleneck is ``ngf // 16`` (at
            least 1, so tiny test models still build).
        n_blocks: residual blocks (3 in the release, whatever ``--netH`` says).
    """

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        ngf: int = 64,
        n_blocks: int = 3,
        norm_layer: NormLayer | None = None,
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        norm_layer = norm_layer or get_norm_layer("instance")
        use_bias = uses_bias(norm_layer)
        trunk = stem(input_nc, ngf, norm_layer)
        trunk += [ResnetBlock(ngf, norm_layer, use_dropout, use_bias) for _ in range(n_blocks)]
        trunk.append(nn.ReflectionPad2d(3))
        # Registration order follows the release (output, model, attention convs).
        self.output = nn.Conv2d(ngf, output_nc, 7, padding=0)
        self.model = nn.Sequential(*trunk)
        bottleneck = max(1, ngf // 16)
        self.fc1 = nn.Conv2d(2 * ngf, bottleneck, 1, bias=False)
        self.fc2 = nn.Conv2d(bottleneck, 2 * ngf, 1, bias=False)
        self.conv1 = nn.Conv2d(2, 1, 7, padding=0, bias=False)
        self.conv_ca = nn.Conv2d(2 * ngf, ngf, 1, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if fast_inference(x):
            return self.fast_forward(x)
        feat = self.model(x)
        Hm = torch.tanh(self.output(feat))
        return Hm, self._mask(feat, banded=False)

    def fast_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward`` on the inference path, without autograd: the trunk through
        :func:`~nerco.networks.fast_path.run_inference` (channels-last, its residual blocks
        by their own ``fast_forward``), the spatial attention's statistics in bands."""
        feat = run_inference(self.model, x)
        Hm = torch.tanh(self.output(feat))
        return Hm, self._mask(feat, banded=True)

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        """Only the mask, (N, 1, H, W) in (0, 1): what inference needs (spec §5). Same
        values as ``forward(x)[1]`` without the 7×7 output convolution."""
        if fast_inference(x):
            return self.fast_mask(x)
        return self._mask(self.model(x), banded=False)

    def fast_mask(self, x: torch.Tensor) -> torch.Tensor:
        """``mask`` on the inference path: ``fast_forward(x)[1]`` without ``Hm``."""
        return self._mask(run_inference(self.model, x), banded=True)

    def _mask(self, feat: torch.Tensor, banded: bool) -> torch.Tensor:
        """The collaborative attention on the trunk's F, (N, ngf, H + 6, W + 6): the mask;
        ``banded`` (the inference path) computes the spatial statistics in bands."""
        # Channel attention: [avg pool, max pool] -> 1x1 -> ReLU -> 1x1 -> 1x1 (no sigmoid).
        pooled = torch.cat(
            [feat.mean(dim=(2, 3), keepdim=True), feat.amax(dim=(2, 3), keepdim=True)], 1
        )
        # One image at a time: over a batch these 1x1 layers are one matrix product whose
        # rounding depends on the batch size, and an image's mask on the images beside it.
        # Not while tracing or exporting, where a loop would fix the batch size.
        recording = (
            torch.jit.is_tracing()
            or torch.compiler.is_compiling()
            or torch.onnx.is_in_onnx_export()
        )
        weights = torch.cat(
            [
                self.conv_ca(self.fc2(torch.relu(self.fc1(p))))
                for p in ([pooled] if recording else pooled.split(1))
            ]
        )
        # Spatial attention: [channel mean, channel max] of F' = a · F -> 7x7 (no padding)
        # -> sigmoid.
        if banded:
            spatial = self._spatial_stats_in_bands(feat, weights)
        else:
            attended = weights * feat
            spatial = torch.cat(
                [attended.mean(dim=1, keepdim=True), attended.amax(dim=1, keepdim=True)], 1
            )
        return torch.sigmoid(self.conv1(spatial))

    @staticmethod
    def _spatial_stats_in_bands(feat: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """[channel mean, channel max] of ``weights · feat``, a band of rows at a time, so
        the attended map F' never exists whole (inference path)."""
        n, _, height, width = feat.shape
        spatial = feat.new_empty(n, 2, height, width)
        rows = max(1, BAND_PIXELS // width)
        for top in range(0, height, rows):
            attended = feat[:, :, top : top + rows] * weights
            torch.mean(attended, dim=1, keepdim=True, out=spatial[:, :1, top : top + rows])
            torch.amax(attended, dim=1, keepdim=True, out=spatial[:, 1:, top : top + rows])
        return spatial
