"""NeRCo: Implicit Neural Representation for Cooperative Low-light Image Enhancement.

The public API: :func:`load_enhancer` (Pre + H + G_A from a checkpoint folder, for any
image size) and :class:`UserError` (from :mod:`nerco.runtime`), the one error type meant
for the person at the keyboard. The package is laid out by concern (README, "Architecture"):
:mod:`nerco.networks` (the paper's figure), :mod:`nerco.training` (the objective and the
loop), :mod:`nerco.inference` (what test.py and your code call), :mod:`nerco.evaluation`
(scores, tables and result pages). Nothing heavy is imported here: ``import nerco`` is
instant, and torch loads with the first network.
"""

from nerco.runtime import UserError

__version__ = "0.2.0"


def load_enhancer(checkpoint_dir, epoch="latest", device=None, amp=None):
    """Load the Pre + H + G_A enhancer saved in ``checkpoint_dir``.

    See :func:`nerco.inference.enhancer.load_enhancer`: the architecture is read from the
    checkpoint; the module maps (N, 3, H, W) in [-1, 1] to the enhanced image, same shape.
    """
    from nerco.inference.enhancer import load_enhancer as _load

    return _load(checkpoint_dir, epoch=epoch, device=device, amp=amp)


__all__ = ["UserError", "load_enhancer", "__version__"]
