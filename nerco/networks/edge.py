"""High-frequency path of the text-driven appearance discriminator — NERCO_SPEC.md §1.5.

grey → central differences → gradient magnitude → 1→3 channel map → × 4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Luma weights of the release, applied to the [-1, 1] image as is (divided by 256).
GREY_WEIGHTS = (65.738, 129.057, 25.064)
#: Final scale of the edge map.
EDGE_SCALE = 4.0


class EdgeOperator(nn.Module):
    """Edge map of an RGB batch: (N, 3, H, W) → (N, 3, H, W).

    Args:
        random_projection: the released behaviour (spec §8.4): the 1→3 projection is a
            fresh, randomly initialised ``nn.Conv2d(1, 3, 1)`` drawn from torch's global
            RNG at every call. ``False`` (the paper objective) replicates the magnitude to
            three channels, which makes the operator deterministic.
    """

    def __init__(self, random_projection: bool = True) -> None:
        super().__init__()
        self.random_projection = random_projection
        vertical = torch.tensor([[0.0, -1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        horizontal = torch.tensor([[0.0, 0.0, 0.0], [-1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
        self.register_buffer("kernel_v", vertical.view(1, 1, 3, 3), persistent=False)
        self.register_buffer("kernel_h", horizontal.view(1, 1, 3, 3), persistent=False)
        self.register_buffer(
            "grey", torch.tensor(GREY_WEIGHTS).view(1, 3, 1, 1) / 256, persistent=False
        )

    def magnitude(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) → (N, 1, H, W): sqrt(v² + h² + 1e-6) of the grey image."""
        grey = (x * self.grey.to(x.dtype)).sum(dim=1, keepdim=True)
        dv = F.conv2d(grey, self.kernel_v.to(x.dtype), padding=1)
        dh = F.conv2d(grey, self.kernel_h.to(x.dtype), padding=1)
        return torch.sqrt(dv.pow(2) + dh.pow(2) + 1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mag = self.magnitude(x)
        if self.random_projection:
            # §8.4 (released): a new, untrained projection for every call, drawn where it is
            # used (on a GPU from its generator: no host-to-device copy, no synchronisation).
            # Drawn in float32 and then cast, so that CPU draws match the release's.
            projection = nn.Conv2d(1, 3, kernel_size=1, device=x.device).to(dtype=x.dtype)
            edges = projection(mag)
        else:
            # §8.4 (paper): the same magnitude in all three channels.
            edges = mag.expand(-1, 3, -1, -1)
        return edges * EDGE_SCALE
