"""Weight initialisation (NERCO_SPEC.md §1.6, ``--init_type`` / ``--init_gain``): each type's
statistics on all eight networks, biases zero, BatchNorm weights ~ N(1, gain).

Every check would fail on networks left with PyTorch's default initialisation (uniform
weights of std 1/sqrt(3·fan_in), non-zero biases, BatchNorm weights exactly 1). A gain
other than the default 0.02 shows whether it is used.
"""

from __future__ import annotations

import functools
import math

import pytest
import torch
from torch import nn

from nerco.networks.build import (
    INIT_TYPES,
    Architecture,
    build_discriminators,
    build_generators,
    init_weights,
)

GAIN = 0.07
WEIGHTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
#: P(|z| < 1) for a standard normal (a uniform of the same std gives 0.577).
NORMAL_WITHIN_ONE_SIGMA = math.erf(1 / math.sqrt(2))


@functools.cache  # built once per test session; the tests only read them
def _all_networks(init_type: str, norm: str = "instance") -> dict[str, nn.Module]:
    torch.manual_seed(0)
    arch = Architecture(ngf=16, ndf=16, norm=norm, init_type=init_type, init_gain=GAIN)
    return dict(build_generators(arch).items()) | dict(build_discriminators(arch).items())


def _layers(nets: dict, kinds) -> list[tuple[str, nn.Module]]:
    return [
        (f"{name}.{path}", m)
        for name, net in nets.items()
        for path, m in net.named_modules()
        if isinstance(m, kinds)
    ]


def _fans(weight: torch.Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) by PyTorch's convention, which xavier and kaiming use: dimension 1
    times the kernel size, dimension 0 times the kernel size (for ConvTranspose2d too)."""
    receptive = weight[0, 0].numel()
    return weight.shape[1] * receptive, weight.shape[0] * receptive


def _expected_std(init_type: str, weight: torch.Tensor) -> float:
    fan_in, fan_out = _fans(weight)
    return {
        "normal": GAIN,
        "xavier": GAIN * math.sqrt(2.0 / (fan_in + fan_out)),
        "kaiming": math.sqrt(2.0 / fan_in),
    }[init_type]  # a = 0, fan_in mode: no gain


@pytest.mark.parametrize("init_type", ["normal", "xavier", "kaiming"])
def test_gaussian_init_statistics(init_type: str) -> None:
    layers = _layers(_all_networks(init_type), WEIGHTED)
    assert {type(m) for _, m in layers} == set(WEIGHTED)  # the NRN MLP's Linears included
    standardised = []
    for name, m in layers:
        w = m.weight.detach().flatten()
        z = w / _expected_std(init_type, m.weight)
        standardised.append(z)
        if w.numel() >= 1000:  # each sizeable layer on its own: 5 standard errors
            assert abs(z.std().item() - 1) < 5 / math.sqrt(2 * w.numel()), name
            assert abs(z.mean().item()) < 5 / math.sqrt(w.numel()), name
    z = torch.cat(standardised)
    assert abs(z.std().item() - 1) < 5 / math.sqrt(2 * z.numel())
    assert abs(z.mean().item()) < 5 / math.sqrt(z.numel())
    within = (z.abs() < 1).float().mean().item()  # a normal, not a uniform of that std
    assert abs(within - NORMAL_WITHIN_ONE_SIGMA) < 5 * math.sqrt(0.25 / z.numel())


def test_orthogonal_init_is_orthogonal_with_gain() -> None:
    """Each weight, flattened to (out, rest), has orthogonal rows (or columns) of norm gain."""
    for name, m in _layers(_all_networks("orthogonal"), WEIGHTED):
        flat = m.weight.detach().reshape(m.weight.shape[0], -1).double()
        gram = flat @ flat.T if flat.shape[0] <= flat.shape[1] else flat.T @ flat
        eye = torch.eye(gram.shape[0], dtype=gram.dtype)
        torch.testing.assert_close(gram, GAIN**2 * eye, atol=1e-6, rtol=0, msg=name)


@pytest.mark.parametrize("init_type", INIT_TYPES)
def test_biases_are_zero(init_type: str) -> None:
    layers = [(n, m) for n, m in _layers(_all_networks(init_type), WEIGHTED) if m.bias is not None]
    assert len(layers) > 40
    for name, m in layers:
        assert torch.count_nonzero(m.bias) == 0, name


@pytest.mark.parametrize("init_type", INIT_TYPES)
def test_batch_norm_weights_are_normal_around_one(init_type: str) -> None:
    """--norm batch: BatchNorm weights ~ N(1, gain), biases 0, whatever the init type."""
    layers = _layers(_all_networks(init_type, norm="batch"), nn.BatchNorm2d)
    weights = torch.cat([m.weight.detach() for _, m in layers])
    assert weights.numel() > 2000
    assert abs(weights.mean().item() - 1) < 5 * GAIN / math.sqrt(weights.numel())
    assert abs(weights.std().item() / GAIN - 1) < 5 / math.sqrt(2 * weights.numel())
    for name, m in layers:
        assert torch.count_nonzero(m.bias) == 0, name


def test_init_weights_applies_its_arguments_to_any_module() -> None:
    """init_weights itself (not only through Architecture), on a module it did not build."""
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(32, 64, 3), nn.BatchNorm2d(64), nn.Linear(64, 48))
    init_weights(net, "normal", 0.3)
    assert abs(net[0].weight.std().item() - 0.3) < 0.01
    assert abs(net[2].weight.std().item() - 0.3) < 0.02
    assert abs(net[1].weight.std().item() - 0.3) < 0.1  # 64 values around 1
    assert net[0].bias.abs().sum() == net[2].bias.abs().sum() == net[1].bias.abs().sum() == 0


def test_init_weights_is_seeded() -> None:
    torch.manual_seed(7)
    a = build_generators(Architecture(ngf=8), names=("H",))["H"].state_dict()
    torch.manual_seed(7)
    b = build_generators(Architecture(ngf=8), names=("H",))["H"].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_default_is_normal_002() -> None:
    """The release's default (§1.6) when nothing is passed: N(0, 0.02)."""
    torch.manual_seed(0)
    nets = dict(build_generators(Architecture(ngf=8)).items())
    weight = nets["Pre"].mlp.imnet.layers[0].weight  # the NRN MLP is initialised too
    assert abs(weight.std().item() - 0.02) < 5e-4
    assert abs(nets["G_A"].model[1].weight.std().item() - 0.02) < 2e-3
