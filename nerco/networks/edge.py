"""High-frequency path of the text-driven appearance discriminator — NERCO_SPEC.md §1.5.

grey → 3×3 filter(s) → magnitude → 1→3 channel map → × 4. The filter is ``--edge_filter``
(:data:`EDGE_FILTERS`); the default, ``gradient``, is the release's central differences.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Luma weights of the release, applied to the [-1, 1] image as is (divided by 256).
GREY_WEIGHTS = (65.738, 129.057, 25.064)
#: Final scale of the edge map.
EDGE_SCALE = 4.0
#: Added under the square root of the magnitude (the release's), so that its gradient at a
#: flat patch is finite.
MAGNITUDE_EPS = 1e-6

#: ``--edge_filter`` name → its 3×3 kernels, each correlated with the grey image (zero
#: padding 1); the magnitude is sqrt(Σ response² + 1e-6) over the filter's kernels.
EDGE_FILTERS: dict[str, tuple[tuple[tuple[float, ...], ...], ...]] = {
    # The release: central differences, vertical then horizontal (spec §1.5).
    "gradient": (((0, -1, 0), (0, 0, 0), (0, 1, 0)), ((0, 0, 0), (-1, 0, 1), (0, 0, 0))),
    # Sobel: the central differences smoothed 1-2-1 across their direction.
    "sobel": (((-1, -2, -1), (0, 0, 0), (1, 2, 1)), ((-1, 0, 1), (-2, 0, 2), (-1, 0, 1))),
    # The 4-neighbour Laplacian, one kernel: the magnitude is |l| (sqrt(l² + 1e-6)).
    "laplacian": (((0, 1, 0), (1, -4, 1), (0, 1, 0)),),
}
DEFAULT_EDGE_FILTER = "gradient"


class EdgeOperator(nn.Module):
    """Edge map of an RGB batch: (N, 3, H, W) → (N, 3, H, W).

    Args:
        random_projection: the released behaviour (spec §8.4): the 1→3 projection is a
            fresh, randomly initialised ``nn.Conv2d(1, 3, 1)`` drawn from torch's global
            RNG at every call. ``False`` (the paper objective) replicates the magnitude to
            three channels, which makes the operator deterministic.
        edge_filter: a name of :data:`EDGE_FILTERS` (``--edge_filter``).

    Raises:
        ValueError: an ``edge_filter`` that is not in the table.
    """

    def __init__(
        self, random_projection: bool = True, edge_filter: str = DEFAULT_EDGE_FILTER
    ) -> None:
        super().__init__()
        if edge_filter not in EDGE_FILTERS:
            raise ValueError(
                f"edge_filter must be one of {tuple(EDGE_FILTERS)}, got {edge_filter!r}"
            )
        self.random_projection = random_projection
        self.edge_filter = edge_filter
        kernels = torch.tensor(EDGE_FILTERS[edge_filter], dtype=torch.float32)
        # (K, 1, 1, 3, 3): kernels[k] is one conv2d weight.
        self.register_buffer("kernels", kernels[:, None, None], persistent=False)
        self.register_buffer(
            "grey", torch.tensor(GREY_WEIGHTS).view(1, 3, 1, 1) / 256, persistent=False
        )

    def magnitude(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) → (N, 1, H, W): sqrt(Σ response² + 1e-6) of the grey image."""
        grey = (x * self.grey.to(x.dtype)).sum(dim=1, keepdim=True)
        # One convolution per kernel, squares summed in the table's order: for ``gradient``
        # exactly the release's sqrt(v² + h² + 1e-6), bit for bit.
        total = None
        for kernel in self.kernels:
            square = F.conv2d(grey, kernel.to(x.dtype), padding=1).pow(2)
            total = square if total is None else total + square
        return torch.sqrt(total + MAGNITUDE_EPS)

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
