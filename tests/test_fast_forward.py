"""Each network's two forwards agree: ``forward`` (what training runs) and ``fast_forward``
(the no-autograd inference path that test.py and the Enhancer take; issue 12).

Every class of ``nerco.networks`` that defines ``fast_forward`` is checked here at the
widths of the tests and of the release, on odd sizes of at least 128², so an edit of one
forward without the same edit of the other fails. The checks below the cases show that the
comparison is not vacuous (an edited ``forward`` is caught) and that the fast path runs
each module's own ``fast_forward`` instead of guessing what a module computes.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable

import pytest
import torch
from conftest import random_tensor, randomise
from torch import nn

import nerco.networks
from nerco.networks.fast_path import run_inference
from nerco.networks.generator import ResnetBlock, ResnetGenerator, get_norm_layer
from nerco.networks.mask_extractor import MaskExtractor
from nerco.networks.nrn import NRN, NRNHead

#: Float rounding between the two forwards, measured at ≈ 1.5e-5 (width 16) and ≈ 5e-5
#: (width 64) on these outputs of magnitude up to ~8; an edit of a block by 0.1 % is ≳ 1e-3.
ATOL = {16: 5e-5, 64: 2e-4}


def _net(net: nn.Module, seed: int) -> nn.Module:
    """``net`` with seeded random parameters and BatchNorm statistics, in eval mode."""
    randomise(net, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    for name, buffer in net.named_buffers():
        if name.endswith("running_mean"):
            buffer.copy_(torch.randn(buffer.shape, generator=gen) * 0.1)
        elif name.endswith("running_var"):
            buffer.copy_(torch.rand(buffer.shape, generator=gen) + 0.5)
    return net.eval().requires_grad_(False)


def _block(dim: int, **options) -> ResnetBlock:
    norm = get_norm_layer(options.pop("norm", "instance"))
    return ResnetBlock(dim, norm, use_bias=True, **options)


#: (id, width for the tolerance, network, input shape, keyword arguments of both forwards).
CASES: list[tuple[str, int, Callable[[], nn.Module], tuple[int, ...], dict]] = [
    ("block-16", 16, lambda: _block(16), (1, 16, 131, 129), {}),
    ("block-64", 64, lambda: _block(64), (1, 64, 131, 129), {}),
    ("block-256", 64, lambda: _block(256), (1, 256, 33, 35), {}),  # G's blocks at ngf 64
    ("block-16-replicate", 16, lambda: _block(16, padding_type="replicate"), (2, 16, 129, 133), {}),
    ("block-16-zero", 16, lambda: _block(16, padding_type="zero"), (1, 16, 131, 129), {}),
    (
        "block-16-batch-dropout",
        16,
        lambda: _block(16, norm="batch", use_dropout=True),
        (1, 16, 131, 129),
        {},
    ),
    ("G-16-9blocks", 16, lambda: ResnetGenerator(6, 3, 16, 9), (1, 6, 131, 129), {}),
    ("G-16-6blocks", 16, lambda: ResnetGenerator(3, 3, 16, 6), (2, 3, 132, 140), {}),
    ("G-64-9blocks", 64, lambda: ResnetGenerator(6, 3, 64, 9), (1, 6, 131, 129), {}),
    ("G-64-6blocks", 64, lambda: ResnetGenerator(3, 3, 64, 6), (1, 3, 129, 131), {}),
    (
        "G-16-batch",
        16,
        lambda: ResnetGenerator(6, 3, 16, 6, get_norm_layer("batch")),
        (1, 6, 131, 129),
        {},
    ),
    ("NRNHead-16", 16, lambda: NRNHead(16), (2, 16, 131, 129), {}),
    ("NRNHead-64-rows7", 64, lambda: NRNHead(64), (1, 64, 131, 129), {"rows_per_chunk": 7}),
    ("NRN-16", 16, lambda: NRN(ngf=16), (2, 3, 131, 129), {}),
    ("NRN-16-rows5", 16, lambda: NRN(ngf=16, n_blocks=6), (1, 3, 131, 129), {"rows_per_chunk": 5}),
    ("NRN-64", 64, lambda: NRN(ngf=64), (1, 3, 131, 129), {}),
    ("H-16", 16, lambda: MaskExtractor(ngf=16), (2, 3, 131, 129), {}),
    ("H-64", 64, lambda: MaskExtractor(ngf=64), (1, 3, 263, 131), {}),  # attention in 2 bands
]


def _outputs(result) -> tuple[torch.Tensor, ...]:
    return result if isinstance(result, tuple) else (result,)


def assert_forwards_agree(net: nn.Module, x: torch.Tensor, atol: float, **kwargs) -> None:
    """``net.fast_forward(x)`` (no autograd) equals ``net(x)`` with autograd on (the
    plain layers), every output, within ``atol``."""
    with torch.enable_grad():
        plain = _outputs(net(x, **kwargs))
    with torch.no_grad():
        fast = _outputs(net.fast_forward(x, **kwargs))
    assert len(fast) == len(plain)
    for want, got in zip(plain, fast):
        assert got.shape == want.shape and got.dtype == want.dtype
        assert want.std() > 1e-3  # a non-trivial output
        torch.testing.assert_close(got, want.detach(), atol=atol, rtol=0)


@pytest.mark.parametrize(
    "width, make, shape, kwargs", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_fast_forward_equals_forward(width, make, shape, kwargs) -> None:
    net = _net(make(), seed=sum(shape))
    x = random_tensor(shape, seed=len(shape) + shape[1])
    before = x.clone()
    assert_forwards_agree(net, x, ATOL[width], **kwargs)
    assert torch.equal(x, before)  # the fast path works in place on its own tensors only
    if not isinstance(net, ResnetBlock):  # a block alone keeps forward in every mode
        # Without autograd, forward is fast_forward (≥ 128² pixels).
        with torch.no_grad():
            dispatched, fast = net(x, **kwargs), net.fast_forward(x, **kwargs)
        assert all(map(torch.equal, _outputs(dispatched), _outputs(fast)))


def test_mask_only_paths_equal_forward_mask() -> None:
    """MaskExtractor.mask / fast_mask: the second output of forward / fast_forward."""
    net = _net(MaskExtractor(ngf=16), seed=30)
    x = random_tensor((1, 3, 131, 129), seed=31)
    with torch.no_grad():
        assert torch.equal(net.fast_mask(x), net.fast_forward(x)[1])
        assert torch.equal(net.mask(x), net.fast_mask(x))
    with torch.enable_grad():
        assert torch.equal(net.mask(x), net(x)[1])
    with torch.no_grad():
        torch.testing.assert_close(net.fast_mask(x), net(x)[1], atol=ATOL[16], rtol=0)


# ------------------------------------------------------ the comparison is not vacuous
def _edited_block_forward(self, x):  # a 0.1 % change, as an innocent-looking edit might make
    return x + self.conv_block(x) * 1.001


@pytest.mark.parametrize("case", ["block-64", "G-16-9blocks", "NRN-16", "H-16"])
def test_an_edit_of_resnet_block_forward_alone_is_caught(monkeypatch, case) -> None:
    """Edit ResnetBlock.forward (what training runs) and not its fast_forward: the two
    forwards of the block and of every network built from blocks disagree."""
    _, width, make, shape, kwargs = next(c for c in CASES if c[0] == case)
    net = _net(make(), seed=sum(shape))
    x = random_tensor(shape, seed=len(shape) + shape[1])
    assert_forwards_agree(net, x, ATOL[width], **kwargs)
    monkeypatch.setattr(ResnetBlock, "forward", _edited_block_forward)
    with pytest.raises(AssertionError):
        assert_forwards_agree(net, x, ATOL[width], **kwargs)


def test_networks_run_their_blocks_own_fast_forward(monkeypatch) -> None:
    """Edit both forwards of ResnetBlock alike: the networks' forward with and without
    autograd (plain layers, fast path) still agree, so the fast path ran the block's
    fast_forward. (The old fast path ran any module with a ``conv_block`` as
    ``x + conv_block(x)``, whatever its forward said, and disagrees here.)"""

    def edited_fast_forward(self, x):
        return x.contiguous(memory_format=torch.channels_last) - self.conv_block(x)

    monkeypatch.setattr(ResnetBlock, "forward", lambda self, x: x - self.conv_block(x))
    monkeypatch.setattr(ResnetBlock, "fast_forward", edited_fast_forward, raising=False)
    for net, shape in (
        (ResnetGenerator(6, 3, 16, 6), (1, 6, 131, 129)),
        (MaskExtractor(ngf=16), (1, 3, 131, 129)),
    ):
        net, x = _net(net, seed=40), random_tensor(shape, seed=41)
        with torch.enable_grad():
            want = _outputs(net(x))
        with torch.no_grad():
            got = _outputs(net(x))  # ≥ 128² pixels: the fast path
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w.detach(), atol=ATOL[16], rtol=0)


def test_the_fast_path_runs_a_module_without_fast_forward_by_its_forward() -> None:
    """No duck typing: a module with a ``conv_block`` that is no residual block runs its
    own forward on the fast path."""

    class Gate(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv_block = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * torch.sigmoid(self.conv_block(x))

    layers = [_net(layer, seed=50) for layer in (nn.Conv2d(3, 4, 1), Gate(), nn.ReLU())]
    x = random_tensor((1, 3, 131, 129), seed=52)
    with torch.no_grad():
        torch.testing.assert_close(
            run_inference(layers, x), nn.Sequential(*layers)(x), atol=1e-6, rtol=0
        )


# ----------------------------------------------------------- every fast path is checked
def _network_classes() -> list[type[nn.Module]]:
    """Every nn.Module subclass defined in a module of nerco.networks."""
    found = []
    for info in pkgutil.iter_modules(nerco.networks.__path__, "nerco.networks."):
        module = importlib.import_module(info.name)
        found += [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, nn.Module) and cls.__module__ == module.__name__
        ]
    return found


def test_every_class_with_a_fast_forward_has_a_case() -> None:
    with_fast = {cls for cls in _network_classes() if hasattr(cls, "fast_forward")}
    checked = {type(make()) for _, _, make, _, _ in CASES}
    assert with_fast == checked
    assert {ResnetBlock, ResnetGenerator, NRNHead, NRN, MaskExtractor} <= with_fast


@pytest.mark.parametrize(
    "make",
    [lambda: ResnetGenerator(6, 3, 16, 9), lambda: NRN(ngf=16), lambda: MaskExtractor(ngf=16)],
    ids=["G", "Pre", "H"],
)
def test_every_module_on_a_fast_path_is_torch_nn_or_has_fast_forward(make) -> None:
    """What the runner meets in ``model`` is a torch.nn layer or one of ours that owns its
    inference path; one of ours without fast_forward would run its forward unchecked."""
    ours = [
        type(m).__name__
        for m in make().model.modules()
        if not type(m).__module__.startswith("torch.nn.") and not hasattr(m, "fast_forward")
    ]
    assert not ours
