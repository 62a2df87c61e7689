"""Data loading: image listing and decoding, the reference preprocessing, and datasets.

``UnalignedDataset`` serves unpaired low-light / normal-light training crops;
``SingleImageDataset`` serves whole images for inference.
"""

from data.image_folder import (
    IMG_EXTENSIONS,
    is_image_file,
    load_rgb,
    make_dataset,
    require_images,
)
from data.single_dataset import SingleImageDataset
from data.transforms import PREPROCESS_CHOICES, get_transform, to_tensor
from data.unaligned_dataset import UnalignedDataset

__all__ = [
    "IMG_EXTENSIONS",
    "PREPROCESS_CHOICES",
    "SingleImageDataset",
    "UnalignedDataset",
    "get_transform",
    "is_image_file",
    "load_rgb",
    "make_dataset",
    "require_images",
    "to_tensor",
]
