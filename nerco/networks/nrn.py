"""NRN (neural representation normalisation), the network ``Pre`` — NERCO_SPEC.md §1.2.

The released NRN runs a LIIF-style MLP on every pixel of a 64-channel feature map. Its
input is the 3×3 neighbourhood of the feature (576 values, channel-major), 34 relative
coordinates and 2 cell values. In the released code the relative coordinates are the
pixel grid minus itself (exactly 0) and the cell values are exactly 2, and the four
"local ensemble" passes are identical, so the whole head equals one MLP pass on
``[unfold3x3(feat), 0, ..., 0, 2, 2]``. That pass is a 3×3 convolution (zero padding 1)
whose kernel is the first 576 columns of the first Linear and whose bias absorbs the two
constant cell inputs, followed by 1×1 convolutions. We compute it that way and keep the
MLP's parameters, so checkpoints load unchanged (``mlp.imnet.layers.{0,2,4,6}``).

``NRN`` and ``NRNHead`` each own an inference path, ``fast_forward`` next to ``forward``,
which ``forward`` takes without autograd on images of at least 128×128 pixels: the trunk
through :mod:`nerco.networks.fast_path`, the head in bands of rows as matrix products (same
values up to float rounding; tests/test_fast_forward.py checks it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nerco.networks.fast_path import fast_inference, run_inference
from nerco.networks.generator import NormLayer, get_norm_layer, resnet_trunk

#: Frequencies of the released positional encoding (2 + 2·2·L coordinate values).
POSENC_FREQUENCIES = 8
#: Relative-coordinate inputs of the MLP: the 2-D offset and its sin/cos encoding.
COORD_INPUTS = 2 + 4 * POSENC_FREQUENCIES
#: Cell-size inputs of the MLP; their value is always 2 in the released code.
CELL_INPUTS = 2
CELL_VALUE = 2.0
#: Pixels per band of the inference path's head: two (pixels, 256) float32 intermediates
#: of 8 MiB each, which stay in the CPU's last-level cache between the layers.
BAND_PIXELS = 8192
#: On a GPU: few, large bands (256 MiB intermediates), so kernel launches cost nothing.
GPU_BAND_PIXELS = 1 << 18


def band_rows(width: int, pixels: int = BAND_PIXELS) -> int:
    """Rows per band of the NRN head for images ``width`` pixels wide (at least 1)."""
    return max(1, pixels // max(width, 1))


def _check_rows(rows_per_chunk: int | None) -> None:
    if rows_per_chunk is not None and rows_per_chunk < 1:
        raise ValueError(f"rows_per_chunk must be a positive integer, got {rows_per_chunk}")


class MLP(nn.Module):
    """Linear → ReLU → … → Linear; only its parameter layout is used (see :class:`NRNHead`)."""

    def __init__(self, in_dim: int, out_dim: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        last = in_dim
        for width in hidden:
            layers += [nn.Linear(last, width), nn.ReLU()]
            last = width
        layers.append(nn.Linear(last, out_dim))
        self.layers = nn.Sequential(*layers)


class NRNHead(nn.Module):
    """The per-pixel MLP of the NRN, evaluated as convolutions.

    Args:
        feat_channels: channels of the trunk's feature map (``ngf``).
        out_channels: 3 (RGB).
        hidden: widths of the hidden layers (256, 256, 256 in the release).
    """

    def __init__(
        self, feat_channels: int, out_channels: int = 3, hidden: tuple[int, ...] = (256, 256, 256)
    ) -> None:
        super().__init__()
        self.feat_channels = feat_channels
        in_dim = feat_channels * 9 + COORD_INPUTS + CELL_INPUTS
        self.imnet = MLP(in_dim, out_channels, hidden)

    def first_layer_as_conv(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Kernel (256, C, 3, 3) and bias (256,) equivalent to the first Linear (§1.2)."""
        linear = self.imnet.layers[0]
        n_unfold = self.feat_channels * 9
        kernel = linear.weight[:, :n_unfold].reshape(-1, self.feat_channels, 3, 3)
        # The coordinate inputs are exactly 0; the two cell inputs are exactly 2.
        bias = linear.bias + CELL_VALUE * linear.weight[:, -CELL_INPUTS:].sum(dim=1)
        return kernel, bias

    def _tail(self, x: torch.Tensor) -> torch.Tensor:
        """ReLU and the remaining Linear layers as 1×1 convolutions."""
        for layer in list(self.imnet.layers)[1:]:
            if isinstance(layer, nn.Linear):
                x = F.conv2d(x, layer.weight[:, :, None, None], layer.bias)
            else:
                x = layer(x)
        return x

    def forward(self, feat: torch.Tensor, rows_per_chunk: int | None = None) -> torch.Tensor:
        """(N, C, H, W) feature → (N, 3, H, W), unbounded (no output activation).

        ``rows_per_chunk`` evaluates the head on horizontal bands of that many rows so the
        256-channel intermediates of the whole image never exist at once; the result is the
        same as the direct path. On the inference path (autograd off) the head always runs
        in bands, of :func:`band_rows` rows unless ``rows_per_chunk`` says otherwise.
        """
        _check_rows(rows_per_chunk)
        if fast_inference(feat):
            return self.fast_forward(feat, rows_per_chunk)
        kernel, bias = self.first_layer_as_conv()
        height = feat.shape[-2]
        if rows_per_chunk is None or rows_per_chunk >= height:
            return self._tail(F.conv2d(feat, kernel, bias, padding=1))
        padded = F.pad(feat, (1, 1, 1, 1))
        bands = [
            self._tail(F.conv2d(padded[:, :, top : top + rows_per_chunk + 2], kernel, bias))
            for top in range(0, height, rows_per_chunk)
        ]
        return torch.cat(bands, dim=2)

    def fast_forward(self, feat: torch.Tensor, rows_per_chunk: int | None = None) -> torch.Tensor:
        """``forward`` on the inference path, without autograd: always in bands, of
        ``rows_per_chunk`` rows or :func:`band_rows` for the device (see
        :meth:`_forward_in_bands`)."""
        _check_rows(rows_per_chunk)
        pixels = BAND_PIXELS if feat.device.type == "cpu" else GPU_BAND_PIXELS
        rows = rows_per_chunk or band_rows(feat.shape[-1], pixels)
        return self._forward_in_bands(feat, rows)

    def _forward_in_bands(self, feat: torch.Tensor, rows: int) -> torch.Tensor:
        """Inference path: per image and band of ``rows`` rows, the 3×3 layer on the band
        and its one-row halo (zero rows at the image border), then the 1×1 layers as
        matrix products on (pixels, 256) rows of the channels-last band, in place where
        possible. Only one band's 256-channel intermediates exist at a time."""
        kernel, bias = self.first_layer_as_conv()
        feat = feat.contiguous(memory_format=torch.channels_last)
        n, _, height, width = feat.shape
        layers = list(self.imnet.layers)[1:]
        out_channels = layers[-1].out_features
        # A channels-last result: the bands are rows of an (N, H, W, 3) array.
        out = feat.new_empty(n, height, width, out_channels)
        for i in range(n):
            for top in range(0, height, rows):
                bottom = min(top + rows, height)
                lo, hi = max(top - 1, 0), min(bottom + 1, height)
                band = feat[i : i + 1, :, lo:hi]
                if lo != top - 1 or hi != bottom + 1:  # zero rows beyond the image
                    band = F.pad(band, (0, 0, lo - top + 1, bottom + 1 - hi))
                hidden = F.conv2d(band, kernel, bias, padding=(0, 1))
                hidden = hidden.contiguous(memory_format=torch.channels_last)
                hidden = hidden.permute(0, 2, 3, 1).reshape(-1, hidden.shape[1])
                for layer in layers:  # Linear, ReLU, ..., Linear
                    hidden = hidden.relu_() if isinstance(layer, nn.ReLU) else layer(hidden)
                out[i, top:bottom] = hidden.view(bottom - top, width, out_channels)
        return out.permute(0, 3, 1, 2).contiguous()


class NRN(nn.Module):
    """``Pre``: ResNet trunk (no head) followed by the per-pixel MLP head.

    Maps (N, input_nc, H, W) in [-1, 1], H and W divisible by 4, to (N, 3, H, W).
    """

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        norm_layer: NormLayer | None = None,
        use_dropout: bool = False,
        hidden: tuple[int, ...] = (256, 256, 256),
    ) -> None:
        super().__init__()
        norm_layer = norm_layer or get_norm_layer("instance")
        # Registration order (mlp first) follows the release, so state_dict keys come in the
        # same order as the authors' checkpoints.
        self.mlp = NRNHead(ngf, output_nc, hidden)
        self.model = nn.Sequential(*resnet_trunk(input_nc, ngf, n_blocks, norm_layer, use_dropout))

    def forward(self, x: torch.Tensor, rows_per_chunk: int | None = None) -> torch.Tensor:
        if fast_inference(x):
            return self.fast_forward(x, rows_per_chunk)
        return self.mlp(self.model(x), rows_per_chunk=rows_per_chunk)

    def fast_forward(self, x: torch.Tensor, rows_per_chunk: int | None = None) -> torch.Tensor:
        """``forward`` on the inference path, without autograd: the trunk through
        :func:`~nerco.networks.fast_path.run_inference` (its residual blocks by their own
        ``fast_forward``), then the head, which takes :meth:`NRNHead.fast_forward` on the
        feature map of ``x``'s size. The head is called as a module, as in ``forward``, so
        its hooks (and profilers' and FLOP counters' ``Pre.mlp``) see it on both paths."""
        return self.mlp(run_inference(self.model, x), rows_per_chunk=rows_per_chunk)
