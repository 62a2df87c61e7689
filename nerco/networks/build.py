"""Building the networks of the paper's figure: names, architecture, builders, init.

Each builder takes explicit keyword arguments (never the whole option namespace), and
lookups by name go through the tables below, which raise a clear error for an unknown
name. Network names are the checkpoint names of NERCO_SPEC.md §1: ``G_A`` (the paper's
enhancer G_H), ``G_B`` (the degrader G_L), ``Pre`` (the NRN), ``H`` (the mask extractor)
and the discriminators ``D_A``, ``D_B``, ``D_A_edge``, ``D_B_edge``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import init

from nerco.networks.checkpoint import unwrap
from nerco.networks.discriminator import NLayerDiscriminator, PixelDiscriminator
from nerco.networks.generator import ResnetGenerator, get_norm_layer
from nerco.networks.mask_extractor import MaskExtractor
from nerco.networks.nrn import NRN
from nerco.runtime import UserError

GENERATOR_NAMES = ("G_A", "G_B", "Pre", "H")
DISCRIMINATOR_NAMES = ("D_A", "D_B", "D_A_edge", "D_B_edge")
#: Networks needed to enhance an image (spec §5).
ENHANCER_NAMES = ("Pre", "H", "G_A")
#: Mixed-precision choices (``--amp``) of training and the enhancer: autocast dtype by name.
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
#: ``--netG`` → residual blocks of the ResNet generator.
GENERATOR_BLOCKS = {"resnet_9blocks": 9, "resnet_6blocks": 6}
#: The NRN trunk always has 9 blocks and the mask extractor 3, whatever --netG / --netH say
#: (as in the release, where those flags only pick between equivalent constructors).
NRN_BLOCKS = 9
MASK_EXTRACTOR_BLOCKS = 3
DISCRIMINATORS = ("basic", "n_layers", "pixel")
INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal")


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
    input_nc: int,
    output_nc: int,
    ngf: int = 64,
    netG: str = "resnet_9blocks",
    norm: str = "instance",
    use_dropout: bool = False,
) -> ResnetGenerator:
    """ResNet generator (``G_A``: 6 → 3 channels, ``G_B``: 3 → 3)."""
    _choice(netG, GENERATOR_BLOCKS, "--netG")
    return ResnetGenerator(
        input_nc, output_nc, ngf, GENERATOR_BLOCKS[netG], get_norm_layer(norm), use_dropout
    )


def define_Pre(
    input_nc: int = 3,
    output_nc: int = 3,
    ngf: int = 64,
    norm: str = "instance",
    use_dropout: bool = False,
) -> NRN:
    """The NRN ``Pre`` (§1.2)."""
    return NRN(input_nc, output_nc, ngf, NRN_BLOCKS, get_norm_layer(norm), use_dropout)


def define_H(
    input_nc: int = 3,
    output_nc: int = 3,
    ngf: int = 64,
    norm: str = "instance",
    use_dropout: bool = False,
) -> MaskExtractor:
    """The mask extractor ``H`` (§1.3)."""
    return MaskExtractor(
        input_nc, output_nc, ngf, MASK_EXTRACTOR_BLOCKS, get_norm_layer(norm), use_dropout
    )


def define_D(
    input_nc: int,
    ndf: int = 64,
    netD: str = "basic",
    n_layers_D: int = 3,
    norm: str = "instance",
) -> nn.Module:
    """PatchGAN (``basic`` = 3 layers, ``n_layers`` = ``n_layers_D``) or ``pixel`` (§1.4)."""
    _choice(netD, DISCRIMINATORS, "--netD")
    norm_layer = get_norm_layer(norm)
    if netD == "pixel":
        return PixelDiscriminator(input_nc, ndf, norm_layer)
    return NLayerDiscriminator(input_nc, ndf, 3 if netD == "basic" else n_layers_D, norm_layer)


@dataclass(frozen=True)
class Architecture:
    """Network hyper-parameters shared by training and inference (explicit, no ``opt``)."""

    input_nc: int = 3
    output_nc: int = 3
    ngf: int = 64
    ndf: int = 64
    netG: str = "resnet_9blocks"
    netD: str = "basic"
    n_layers_D: int = 3
    norm: str = "instance"
    use_dropout: bool = False
    init_type: str = "normal"
    init_gain: float = 0.02


def build_generators(arch: Architecture, names=GENERATOR_NAMES) -> nn.ModuleDict:
    """G_A (6 → 3), G_B (3 → 3), Pre and H (or the subset ``names``), initialised as §1.6."""
    builders = {
        "G_A": lambda: define_G(
            arch.input_nc * 2, arch.output_nc, arch.ngf, arch.netG, arch.norm, arch.use_dropout
        ),
        "G_B": lambda: define_G(
            arch.output_nc, arch.input_nc, arch.ngf, arch.netG, arch.norm, arch.use_dropout
        ),
        "Pre": lambda: define_Pre(
            arch.output_nc, arch.input_nc, arch.ngf, arch.norm, arch.use_dropout
        ),
        "H": lambda: define_H(arch.input_nc, arch.output_nc, arch.ngf, arch.norm, arch.use_dropout),
    }
    unknown = set(names) - set(GENERATOR_NAMES)
    if unknown:
        raise ValueError(f"unknown generator names {sorted(unknown)}; known: {GENERATOR_NAMES}")
    # Built and initialised one after the other in the release's order (G_A, G_B, Pre, H).
    nets = {
        name: init_weights(builders[name](), arch.init_type, arch.init_gain)
        for name in GENERATOR_NAMES
        if name in names
    }
    return nn.ModuleDict(nets)


def build_discriminators(arch: Architecture) -> nn.ModuleDict:
    """D_A, D_B, D_A_edge, D_B_edge (PatchGANs), initialised as §1.6."""
    channels = {
        "D_A": arch.output_nc,
        "D_B": arch.input_nc,
        "D_A_edge": arch.output_nc,
        "D_B_edge": arch.input_nc,
    }
    nets = {
        name: define_D(nc, arch.ndf, arch.netD, arch.n_layers_D, arch.norm)
        for name, nc in channels.items()
    }
    for net in nets.values():
        init_weights(net, arch.init_type, arch.init_gain)
    return nn.ModuleDict(nets)


def enhance(
    Pre: nn.Module, H: nn.Module, G_A: nn.Module, x: torch.Tensor, rows_per_chunk: int | None = None
) -> torch.Tensor:
    """§5: G_A([x, Pre(x)] · mask(x)); (N, 3, H, W) in [-1, 1], H and W divisible by 4.

    Only H's mask is computed (``MaskExtractor.mask``: its Hm output is not needed), and each
    network's full-resolution intermediates are freed before the next network runs.
    """
    mask = H.mask(x) if hasattr(H, "mask") else H(x)[1]
    pre = Pre(x) if rows_per_chunk is None else Pre(x, rows_per_chunk=rows_per_chunk)
    return G_A(torch.cat((x, pre), 1) * mask)


def describe_networks(networks: dict[str, nn.Module], verbose: bool = False) -> str:
    """Parameter count of each network (CycleGAN's lines), with ``verbose`` the layers too."""
    lines = ["---------- Networks initialized -------------"]
    for name, net in networks.items():
        if verbose:
            lines.append(str(unwrap(net)))
        count = sum(p.numel() for p in net.parameters())
        lines.append(f"[Network {name}] Total number of parameters : {count / 1e6:.3f} M")
    lines.append("-----------------------------------------------")
    return "\n".join(lines)
