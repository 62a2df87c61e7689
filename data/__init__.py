"""Data loading: image listing and decoding, the reference preprocessing, and datasets.

``UnalignedDataset`` serves unpaired low-light / normal-light training crops;
``SingleImageDataset`` serves whole images for inference. The names below are imported on
first use, so ``data.sizes`` (what the option checks need) loads without torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "IMG_EXTENSIONS": "data.image_folder",
    "is_image_file": "data.image_folder",
    "load_rgb": "data.image_folder",
    "make_dataset": "data.image_folder",
    "require_images": "data.image_folder",
    "SingleImageDataset": "data.single_dataset",
    "PREPROCESS_CHOICES": "data.sizes",
    "get_transform": "data.transforms",
    "to_tensor": "data.transforms",
    "UnalignedDataset": "data.unaligned_dataset",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'data' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
