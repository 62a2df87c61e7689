"""History buffer of generated images (CycleGAN's image pool) — NERCO_SPEC.md §2.

The discriminators see, with probability ½, an image generated at an earlier step
instead of the newest one (Shrivastava et al., 2017). Draws use Python's ``random``
module, as the release does, so a seeded run is repeatable.
"""

from __future__ import annotations

import random

import torch


class ImagePool:
    """A buffer of at most ``pool_size`` images; ``pool_size=0`` disables it.

    With a buffer, ``query`` returns detached tensors (the release stores ``image.data``);
    with ``pool_size=0`` it returns its input as is, gradients included, as the release does.
    Each stored image is a copy of its own (not a view that would keep the whole batch
    alive), kept in the precision it came in (bfloat16/float16 under ``--amp``) and handed
    out in the precision of the query, so a run resumed with another ``--amp`` goes on.
    """

    def __init__(self, pool_size: int = 50) -> None:
        self.pool_size = pool_size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) newest images → (N, C, H, W) images to show the discriminator."""
        if self.pool_size == 0:
            return images
        returned = []
        for image in images.detach():
            image = image.unsqueeze(0).clone()
            if len(self.images) < self.pool_size:
                self.images.append(image)
                returned.append(image)
            elif random.uniform(0, 1) > 0.5:
                slot = random.randint(0, self.pool_size - 1)
                returned.append(self.images[slot].to(images.dtype, copy=True))
                self.images[slot] = image
            else:
                returned.append(image)
        return torch.cat(returned, 0)

    def state_dict(self) -> dict:
        """The stored images (on the CPU), for exact resumption of a run."""
        return {"pool_size": self.pool_size, "images": [im.cpu() for im in self.images]}

    def load_state_dict(self, state: dict, device: torch.device | str = "cpu") -> None:
        self.images = [im.to(device) for im in state["images"]][: self.pool_size]
