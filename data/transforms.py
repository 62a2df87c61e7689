"""Training preprocessing, as in the authors' CycleGAN-derived code.

``get_transform`` builds the same chain of torchvision transforms, in the same order, so a
seeded run draws the same random numbers (``RandomCrop`` and ``RandomHorizontalFlip`` use
torch's global generator). The lambdas of the original are small callable classes here, so
the pipeline pickles for ``DataLoader`` worker processes. One addition: an image smaller
than the crop is scaled up (with a warning) instead of crashing ``RandomCrop``.
"""

from __future__ import annotations

import logging

import torch
from PIL import Image
from torchvision import transforms
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from data.sizes import PREPROCESS_CHOICES, nearest_multiple_size, scale_width_size
from nerco.runtime import UserError

logger = logging.getLogger(__name__)

_PIL_TO_TV = {
    Image.NEAREST: InterpolationMode.NEAREST,
    Image.LANCZOS: InterpolationMode.LANCZOS,
    Image.BILINEAR: InterpolationMode.BILINEAR,
    Image.BICUBIC: InterpolationMode.BICUBIC,
    Image.BOX: InterpolationMode.BOX,
    Image.HAMMING: InterpolationMode.HAMMING,
}
_TV_TO_PIL = {tv: int(pil) for pil, tv in _PIL_TO_TV.items()}


def _interpolation_pair(method: int | InterpolationMode) -> tuple[int, InterpolationMode]:
    """Return ``method`` both as a PIL resampling constant and as a torchvision mode."""
    if isinstance(method, InterpolationMode):
        if method not in _TV_TO_PIL:
            raise ValueError(f"interpolation {method} has no PIL equivalent")
        return _TV_TO_PIL[method], method
    if int(method) not in _PIL_TO_TV:
        raise ValueError(f"unknown PIL resampling method {method!r}")
    return int(method), _PIL_TO_TV[int(method)]


class ScaleWidth:
    """Scale a PIL image to a given width, keeping its aspect ratio.

    The height becomes ``int(max(width * oh / ow, min_height))``. The image is returned
    unchanged when it already has that width and is at least ``min_height`` tall.

    Args:
        width: Target width in pixels (``--load_size``).
        min_height: Smallest height allowed (``--crop_size``).
        method: PIL resampling constant.
    """

    def __init__(self, *, width: int, min_height: int, method: int = Image.BICUBIC) -> None:
        self.width = width
        self.min_height = min_height
        self.method = method

    def __call__(self, img: Image.Image) -> Image.Image:
        size = scale_width_size(*img.size, self.width, self.min_height)
        return img if size == img.size else img.resize(size, self.method)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(width={self.width}, min_height={self.min_height})"


class MakeMultiple:
    """Resize a PIL image so that both sides are the nearest multiple of ``base``.

    Each side becomes ``int(round(side / base) * base)`` (Python's round, so halves go to
    the even multiple), but never less than ``base``. A warning is logged the first time an
    image actually changes size.

    Args:
        base: The multiple, 4 in the reference code.
        method: PIL resampling constant.
    """

    def __init__(self, *, base: int = 4, method: int = Image.BICUBIC) -> None:
        self.base = base
        self.method = method
        self._warned = False

    def __call__(self, img: Image.Image) -> Image.Image:
        ow, oh = img.size
        w, h = nearest_multiple_size(ow, oh, self.base)
        if (w, h) == (ow, oh):
            return img
        if not self._warned:
            logger.warning(
                "image size %dx%d is not a multiple of %d: resizing to %dx%d "
                "(logged once for this transform)",
                ow,
                oh,
                self.base,
                w,
                h,
            )
            self._warned = True
        return img.resize((w, h), self.method)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base={self.base})"


class RandomCropUpscaling:
    """``transforms.RandomCrop(size)`` that first scales up images smaller than the crop.

    An image narrower or shorter than ``size`` is resized, keeping its aspect ratio, so
    that its smaller side equals ``size``; a warning naming its size is logged the first
    time (later ones go to DEBUG). The crop itself is torchvision's ``RandomCrop``, so the
    random draws are the same as the reference code's.

    Args:
        size: Square crop side in pixels (``--crop_size``).
        method: Interpolation used when scaling up.
    """

    def __init__(self, *, size: int, method: int | InterpolationMode = Image.BICUBIC) -> None:
        self.size = size
        self.interpolation = _interpolation_pair(method)[1]
        self.crop = transforms.RandomCrop(size)
        self._warned = False

    def _upscaled_size(self, w: int, h: int) -> tuple[int, int]:
        """Return (width, height) with the smaller side = size, rounding the other one up."""
        s = self.size
        if w <= h:
            return s, max(s, -(-h * s // w))
        return max(s, -(-w * s // h)), s

    def __call__(self, img: Image.Image | torch.Tensor) -> Image.Image | torch.Tensor:
        w, h = TF.get_image_size(img)
        if w < self.size or h < self.size:
            nw, nh = self._upscaled_size(w, h)
            log = logger.debug if self._warned else logger.warning
            log(
                "image of size %dx%d is smaller than the %d crop: scaling it up to %dx%d "
                "(use bigger images or a smaller --crop_size)",
                w,
                h,
                self.size,
                nw,
                nh,
            )
            self._warned = True
            img = TF.resize(img, [nh, nw], interpolation=self.interpolation)
        return self.crop(img)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size})"


def _check_size(name: str, value: int) -> None:
    """Raise UserError unless ``value`` is a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise UserError(f"--{name} must be a positive integer, got {value!r}")


def get_transform(
    preprocess: str = "resize_and_crop",
    load_size: int = 512,
    crop_size: int = 512,
    no_flip: bool = False,
    method: int | InterpolationMode = Image.BICUBIC,
    grayscale: bool = False,
    convert: bool = True,
) -> transforms.Compose:
    """Build the training preprocessing of the reference code.

    Steps, in order: optional greyscale; resize to ``load_size`` square (``'resize'`` in
    ``preprocess``) or scale the width to ``load_size`` (``'scale_width'``); random
    ``crop_size`` square crop (``'crop'``); with ``'none'``, resize each side to the nearest
    multiple of 4; random horizontal flip unless ``no_flip``; then ``ToTensor`` and
    ``Normalize(0.5, 0.5)``.

    Args:
        preprocess: One of :data:`PREPROCESS_CHOICES`.
        load_size: Side (or width) images are resized to before cropping.
        crop_size: Side of the square random crop.
        no_flip: Skip the random horizontal flip.
        method: PIL resampling constant (or torchvision ``InterpolationMode``) for resizes.
        grayscale: Convert to one channel first.
        convert: Append ``ToTensor`` and ``Normalize``.

    Returns:
        A ``Compose`` taking a PIL image. With ``convert`` it returns a float tensor of
        shape (C, H, W), C = 3 (1 with ``grayscale``), values in [-1, 1]; for
        ``'resize_and_crop'``/``'crop'``/``'scale_width_and_crop'`` H = W = ``crop_size``.

    Raises:
        UserError: ``preprocess`` is not a valid choice, or a size is not positive.
    """
    if preprocess not in PREPROCESS_CHOICES:
        raise UserError(
            f"--preprocess {preprocess!r} is not valid: use one of {', '.join(PREPROCESS_CHOICES)}"
        )
    pil_method, tv_method = _interpolation_pair(method)
    steps: list = []
    if grayscale:
        steps.append(transforms.Grayscale(1))
    if "resize" in preprocess:
        _check_size("load_size", load_size)
        steps.append(transforms.Resize([load_size, load_size], tv_method))
    elif "scale_width" in preprocess:
        _check_size("load_size", load_size)
        _check_size("crop_size", crop_size)
        steps.append(ScaleWidth(width=load_size, min_height=crop_size, method=pil_method))
    if "crop" in preprocess:
        _check_size("crop_size", crop_size)
        steps.append(RandomCropUpscaling(size=crop_size, method=tv_method))
    if preprocess == "none":
        steps.append(MakeMultiple(base=4, method=pil_method))
    if not no_flip:
        steps.append(transforms.RandomHorizontalFlip())
    if convert:
        steps.append(transforms.ToTensor())
        if grayscale:
            steps.append(transforms.Normalize((0.5,), (0.5,)))
        else:
            steps.append(transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)))
    return transforms.Compose(steps)


_TO_TENSOR = transforms.Compose(
    [transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]
)


def to_tensor(img: Image.Image) -> torch.Tensor:
    """Convert an RGB PIL image to a normalised tensor, without resizing (for inference).

    Args:
        img: PIL image in mode RGB, size (W, H), values 0..255.

    Returns:
        Float tensor of shape (3, H, W) with values in [-1, 1] (``x / 255 * 2 - 1``).
    """
    return _TO_TENSOR(img)
