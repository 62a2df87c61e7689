"""NeRCo: Implicit Neural Representation for Cooperative Low-light Image Enhancement.

The package holds every network, the CLIP text-driven term, the loss groups and the
training model. ``load_enhancer`` is the entry point for inference from Python.
"""

__version__ = "0.1.0"


def load_enhancer(checkpoint_dir, epoch="latest", device=None):
    """Load the Pre + H + G_A enhancer saved in ``checkpoint_dir``; see :mod:`nerco.enhancer`."""
    from nerco.enhancer import load_enhancer as _load

    return _load(checkpoint_dir, epoch=epoch, device=device)


__all__ = ["load_enhancer", "__version__"]
