"""Builders for every NeRCo network, weight initialisation and learning-rate schedules.

Each builder takes explicit keyword arguments (never the whole option namespace), and
lookups by name go through the dictionaries below, which raise a clear error for an
unknown name. Network names are the checkpoint names of NERCO_SPEC.md §1.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import init
from torch.optim import lr_scheduler

from nerco.discriminator import NLayerDiscriminator, PixelDiscriminator
from nerco.errors import UserError
from nerco.generator import ResnetGenerator, get_norm_layer
from nerco.mask_extractor import MaskExtractor
from nerco.nrn import NRN

#: ``--netG`` → residual blocks of the ResNet generator.
GENERATOR_BLOCKS = {"resnet_9blocks": 9, "resnet_6blocks": 6}
#: The NRN trunk always has 9 blocks and the mask extractor 3, whatever --netG / --netH say
#: (as in the release, where those flags only pick between equivalent constructors).
NRN_BLOCKS = 9
MASK_EXTRACTOR_BLOCKS = 3
DISCRIMINATORS = ("basic", "n_layers", "pixel")
INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal")
LR_POLICIES = ("linear", "step", "plateau", "cosine")


def _choice(value: str, allowed, flag: str) -> None:
    if value not in allowed:
        raise UserError(f"{flag} {value!r} is not known; choose one of: {', '.join(allowed)}")


def init_weights(net: nn.Module, init_type: str = "normal", init_gain: float = 0.02) -> nn.Module:
    """§1.6: Conv/Linear weights ~ N(0, gain) (or xavier/kaiming/orthogonal), biases 0.

    BatchNorm weights ~ N(1, gain). Modules are visited in ``nn.Module.apply`` order, so a
    seeded run draws the same numbers every time.
    """
    _choice(init_type, INIT_TYPES, "--init_type")

    def init_module(m: nn.Module) -> None:
        name = type(m).__name__
        if getattr(m, "weight", None) is not None and ("Conv" in name or "Linear" in name):
            if init_type == "normal":
                init.normal_(m.weight.data, 0.0, init_gain)
            elif init_type == "xavier":
                init.xavier_normal_(m.weight.data, gain=init_gain)
            elif init_type == "kaiming":
                init.kaiming_normal_(m.weight.data, a=0, mode="fan_in")
            else:
                init.orthogonal_(m.weight.data, gain=init_gain)
            if getattr(m, "bias", None) is not None:
                init.constant_(m.bias.data, 0.0)
        elif "BatchNorm2d" in name:
            init.normal_(m.weight.data, 1.0, init_gain)
            init.constant_(m.bias.data, 0.0)

    net.apply(init_module)
    return net


def define_G(
    input_nc: int, output_nc: int, ngf: int = 64, netG: str = "resnet_9blocks",
    norm: str = "instance", use_dropout: bool = False,
) -> ResnetGenerator:
    """ResNet generator (``G_A``: 6 → 3 channels, ``G_B``: 3 → 3)."""
    _choice(netG, GENERATOR_BLOCKS, "--netG")
    return ResnetGenerator(
        input_nc, output_nc, ngf, GENERATOR_BLOCKS[netG], get_norm_layer(norm), use_dropout
    )


def define_Pre(
    input_nc: int = 3, output_nc: int = 3, ngf: int = 64, norm: str = "instance",
    use_dropout: bool = False,
) -> NRN:
    """The NRN ``Pre`` (§1.2)."""
    return NRN(input_nc, output_nc, ngf, NRN_BLOCKS, get_norm_layer(norm), use_dropout)


def define_H(
    input_nc: int = 3, output_nc: int = 3, ngf: int = 64, norm: str = "instance",
    use_dropout: bool = False,
) -> MaskExtractor:
    """The mask extractor ``H`` (§1.3)."""
    return MaskExtractor(
        input_nc, output_nc, ngf, MASK_EXTRACTOR_BLOCKS, get_norm_layer(norm), use_dropout
    )


def define_D(
    input_nc: int, ndf: int = 64, netD: str = "basic", n_layers_D: int = 3,
    norm: str = "instance",
) -> nn.Module:
    """PatchGAN (``basic`` = 3 layers, ``n_layers`` = ``n_layers_D``) or ``pixel`` (§1.4)."""
    _choice(netD, DISCRIMINATORS, "--netD")
    norm_layer = get_norm_layer(norm)
    if netD == "pixel":
        return PixelDiscriminator(input_nc, ndf, norm_layer)
    return NLayerDiscriminator(input_nc, ndf, 3 if netD == "basic" else n_layers_D, norm_layer)


def linear_decay_rule(n_epochs: int, n_epochs_decay: int, epoch_count: int = 1) -> Callable:
    """§6: factor 1 − max(0, step + epoch_count − n_epochs) / (n_epochs_decay + 1)."""

    def rule(step: int) -> float:
        return 1.0 - max(0, step + epoch_count - n_epochs) / float(n_epochs_decay + 1)

    return rule


def get_scheduler(
    optimizer: torch.optim.Optimizer, lr_policy: str = "linear", n_epochs: int = 100,
    n_epochs_decay: int = 200, epoch_count: int = 1, lr_decay_iters: int = 50,
):
    """The learning-rate schedule of ``--lr_policy`` (stepped once per epoch)."""
    _choice(lr_policy, LR_POLICIES, "--lr_policy")
    if lr_policy == "linear":
        rule = linear_decay_rule(n_epochs, n_epochs_decay, epoch_count)
        return lr_scheduler.LambdaLR(optimizer, lr_lambda=rule)
    if lr_policy == "step":
        return lr_scheduler.StepLR(optimizer, step_size=lr_decay_iters, gamma=0.1)
    if lr_policy == "plateau":
        return lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=0.2, threshold=0.01, patience=5
        )
    # Over the whole run (CycleGAN's T_max = n_epochs rises again during decay epochs):
    # stepped before each epoch, the last one trains at 0 as with the linear rule.
    epochs = max(1, n_epochs + n_epochs_decay - epoch_count + 1)
    return lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=0)
