"""The inference path (channels-last, in place, in bands) against the plain layers, and the
bfloat16 path against float32 (NERCO_SPEC.md §5; issues 4 and 6).

The plain layers are what training runs (autograd on); the inference path must give the
same numbers up to float rounding, for any size, batch and band height.
"""

from __future__ import annotations

import pytest
import torch
from conftest import random_tensor, randomise
from inference_calls import PARTS, record
from torch import nn

from nerco.inference.enhancer import Enhancer
from nerco.networks import fast_path as inference_module
from nerco.networks import nrn
from nerco.networks.build import ENHANCER_NAMES, Architecture, build_generators, enhance
from nerco.networks.fast_path import instance_norm_, instance_norm_per_image_, run_inference
from nerco.networks.nrn import NRNHead, band_rows

#: Float rounding, in [-1, 1] outputs, of the two paths through ~30 layers of these random
#: networks: each is about 2e-5 from a float64 evaluation (a wrong band or halo is ~1e-1).
ATOL = 1e-4


@pytest.fixture(scope="module")
def nets() -> nn.ModuleDict:
    torch.manual_seed(0)
    built = build_generators(Architecture(ngf=8, netG="resnet_6blocks"), names=ENHANCER_NAMES)
    return randomise(built, seed=1).eval().requires_grad_(False)


@pytest.fixture()
def always_fast(monkeypatch):
    """Take the inference path on tiny images too (normally from 128×128 pixels)."""
    monkeypatch.setattr(inference_module, "FAST_MIN_PIXELS", 0)


def _plain(nets, x: torch.Tensor) -> torch.Tensor:
    """The training computation: autograd on, so every network runs its plain layers."""
    with torch.enable_grad():
        return enhance(nets["Pre"], nets["H"], nets["G_A"], x).detach()


# --------------------------------------------------------------- inference path
@pytest.mark.parametrize("shape", [(1, 3, 24, 28), (2, 3, 20, 36)])
def test_inference_path_equals_plain_layers(nets, always_fast, shape) -> None:
    x = random_tensor(shape, seed=2)
    want = _plain(nets, x)
    with torch.no_grad():
        got = enhance(nets["Pre"], nets["H"], nets["G_A"], x)
    assert got.shape == want.shape
    assert want.std() > 1e-2  # a non-trivial output
    torch.testing.assert_close(got, want, atol=ATOL, rtol=0)


@pytest.mark.parametrize("height, width", [(23, 37), (30, 41), (33, 17)])
@pytest.mark.parametrize("rows", [None, 1, 4, 7, 100])
def test_enhancer_odd_sizes_and_bands_equal_plain(nets, always_fast, height, width, rows):
    """Sizes not multiples of 4, bands that do not divide the height, one band, one row."""
    x = random_tensor((1, 3, height, width), seed=3)
    padded = nn.functional.pad(x, (0, -width % 4, 0, -height % 4), mode="reflect")
    want = _plain(nets, padded)[..., :height, :width]
    enhancer = Enhancer(nets["Pre"], nets["H"], nets["G_A"], rows_per_chunk=rows)
    with torch.no_grad():
        got = enhancer(x)
    assert got.shape == (1, 3, height, width)
    torch.testing.assert_close(got, want, atol=ATOL, rtol=0)


def test_large_image_takes_inference_path_by_default(nets) -> None:
    """Above FAST_MIN_PIXELS the default enhancer takes the inference path (channels-last
    intermediates), and still equals the plain layers."""
    x = random_tensor((1, 3, 136, 124), seed=4)  # 16864 pixels ≥ 128·128, 136 not a band multiple
    assert x.shape[-2] * x.shape[-1] >= inference_module.FAST_MIN_PIXELS
    want = _plain(nets, x)
    seen = []
    hook = (
        nets["G_A"]
        .model[1]
        .register_forward_hook(
            lambda m, i, o: seen.append(i[0].is_contiguous(memory_format=torch.channels_last))
        )
    )
    try:
        with torch.no_grad():
            got = Enhancer(nets["Pre"], nets["H"], nets["G_A"])(x)
    finally:
        hook.remove()
    assert seen == [True]
    torch.testing.assert_close(got, want, atol=ATOL, rtol=0)


def test_small_images_keep_the_plain_numbers(nets) -> None:
    """Below FAST_MIN_PIXELS inference is bit for bit the training computation."""
    x = random_tensor((1, 3, 24, 28), seed=5)
    with torch.no_grad():
        got = enhance(nets["Pre"], nets["H"], nets["G_A"], x)
    assert torch.equal(got, _plain(nets, x))


def test_enhancer_without_no_grad_takes_inference_path(nets, always_fast) -> None:
    """Nothing requires a gradient: the enhancer drops autograd itself."""
    x = random_tensor((1, 3, 16, 20), seed=6)
    enhancer = Enhancer(nets["Pre"], nets["H"], nets["G_A"])
    got = enhancer(x)  # no torch.no_grad() here
    assert not got.requires_grad
    with torch.no_grad():
        assert torch.equal(got, enhancer(x))


def test_mask_only_equals_forward_mask(nets, always_fast) -> None:
    x = random_tensor((2, 3, 20, 24), seed=7)
    with torch.no_grad():
        _, mask = nets["H"](x)
        assert torch.equal(nets["H"].mask(x), mask)
    with torch.enable_grad():
        _, plain_mask = nets["H"](x)
    torch.testing.assert_close(mask, plain_mask, atol=1e-6, rtol=0)


def test_input_is_not_modified(nets, always_fast) -> None:
    x = random_tensor((1, 3, 16, 20), seed=8).contiguous(memory_format=torch.channels_last)
    before = x.clone()
    with torch.no_grad():
        Enhancer(nets["Pre"], nets["H"], nets["G_A"])(x)
        run_inference([nn.ReLU(), nn.Tanh()], x)  # in-place layers on a caller's tensor
    assert torch.equal(x, before)


# ------------------------------------- the path of every real run: ngf ≥ 16, ≥ 128²
# Tiny networks (ngf 8) never reach some branches: with 8 channels the 7×7 head and H's
# blocks count as image layers (IMAGE_CHANNELS), and one band covers every map. From ngf 16
# the reflect-padded convolutions skip their copies; at ngf 64 (the released width, what
# test.py runs) the 64-channel maps of a 128² image span several instance-norm bands.
#: Measured float rounding of either path against float64 is ≈ 5e-5 at ngf 16 and ≈ 2e-4
#: at ngf 64 (these randomised weights); a wrong border, band or halo is ≳ 1e-2.
WIDE_ATOL = {16: 1e-4, 64: 5e-4}


def _wide_nets(ngf: int, norm: str = "instance") -> nn.ModuleDict:
    torch.manual_seed(0)
    nets = build_generators(Architecture(ngf=ngf, norm=norm), names=ENHANCER_NAMES)
    randomise(nets, seed=ngf)
    gen = torch.Generator().manual_seed(ngf + 1)
    for name, buffer in nets.named_buffers():  # BatchNorm's running statistics
        if name.endswith("running_mean"):
            buffer.copy_(torch.randn(buffer.shape, generator=gen) * 0.1)
        elif name.endswith("running_var"):
            buffer.copy_(torch.rand(buffer.shape, generator=gen) + 0.5)
    return nets.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def wide_nets() -> dict:
    return {16: _wide_nets(16), 64: _wide_nets(64)}


def _plain_padded(nets, x: torch.Tensor) -> torch.Tensor:
    """The plain layers on ``x`` reflect-padded to a multiple of 4, cropped back (§5)."""
    height, width = x.shape[-2:]
    padded = nn.functional.pad(x, (0, -width % 4, 0, -height % 4), mode="reflect")
    return _plain(nets, padded)[..., :height, :width]


def _assert_fast_equals_plain(nets, x, atol, monkeypatch) -> None:
    calls = record(monkeypatch)
    with torch.no_grad():
        got = Enhancer(nets["Pre"], nets["H"], nets["G_A"])(x)
    # Every network took its inference path, once per call (G_A once, its trunk included).
    assert dict(calls) == dict.fromkeys(PARTS, 1)
    want = _plain_padded(nets, x)
    assert got.shape == want.shape == x.shape
    assert want.std() > 0.1  # a non-trivial output
    torch.testing.assert_close(got, want, atol=atol, rtol=0)


@pytest.mark.parametrize(
    "shape",
    [
        (1, 3, 131, 129),  # odd height and width: padded to 132 × 132
        (1, 3, 128, 200),  # non-square, already a multiple of 4
        (2, 3, 129, 150),  # a batch of two, odd sizes
        (1, 3, 263, 259),  # H's attention in two bands of rows, the NRN head in nine
    ],
)
def test_wide_inference_path_equals_plain_layers(wide_nets, monkeypatch, shape) -> None:
    x = random_tensor(shape, seed=sum(shape))
    _assert_fast_equals_plain(wide_nets[16], x, WIDE_ATOL[16], monkeypatch)


def test_released_width_inference_path_equals_plain_layers(wide_nets, monkeypatch) -> None:
    """ngf 64, as test.py runs the released models: instance norm in bands of 62 rows."""
    x = random_tensor((1, 3, 131, 129), seed=21)
    _assert_fast_equals_plain(wide_nets[64], x, WIDE_ATOL[64], monkeypatch)


def test_batch_norm_networks_inference_path_equals_plain_layers(monkeypatch) -> None:
    """--norm batch models (eval mode: running statistics) on the inference path."""
    x = random_tensor((1, 3, 130, 133), seed=22)
    _assert_fast_equals_plain(_wide_nets(16, norm="batch"), x, WIDE_ATOL[16], monkeypatch)


def test_gpu_choices_on_the_cpu(wide_nets, monkeypatch) -> None:
    """What a GPU runs instead (no GPU here): instance norm one image at a time through
    F.batch_norm, the NRN head in bands of 2^18 pixels; same numbers as the plain layers."""
    monkeypatch.setattr(inference_module, "instance_norm_", instance_norm_per_image_)
    monkeypatch.setattr(nrn, "BAND_PIXELS", nrn.GPU_BAND_PIXELS)
    x = random_tensor((2, 3, 131, 129), seed=24)
    _assert_fast_equals_plain(wide_nets[64], x, WIDE_ATOL[64], monkeypatch)


def test_bf16_at_the_released_width(monkeypatch) -> None:
    """--amp bf16 on the inference path of ngf 64 (§1.6 init, a dark 131×129 image):
    within the 2-level target on average, float32 out."""
    torch.manual_seed(13)
    nets = build_generators(Architecture(), names=ENHANCER_NAMES).eval().requires_grad_(False)
    x = random_tensor((1, 3, 131, 129), seed=12) * 0.2 - 0.7
    calls = record(monkeypatch)
    with torch.no_grad():
        want = Enhancer(nets["Pre"], nets["H"], nets["G_A"])(x)
        got = Enhancer(nets["Pre"], nets["H"], nets["G_A"], amp="bf16")(x)
    assert dict(calls) == dict.fromkeys(PARTS, 2)
    assert got.dtype == torch.float32
    levels = ((got.clamp(-1, 1) + 1) * 127.5).round() - ((want.clamp(-1, 1) + 1) * 127.5).round()
    assert levels.abs().mean() <= 2.0  # measured: 1.5
    assert 0 < (got - want).abs().max() < 0.2  # bfloat16 ran, and stayed close


def test_images_below_the_threshold_take_the_plain_layers(wide_nets, monkeypatch) -> None:
    calls = record(monkeypatch)
    x = random_tensor((1, 3, 128, 124), seed=23)  # 15872 pixels < 128²
    with torch.no_grad():
        Enhancer(wide_nets[16]["Pre"], wide_nets[16]["H"], wide_nets[16]["G_A"])(x)
    assert not calls


# ------------------------------------------------------------------ the pieces
@pytest.mark.parametrize("dtype, atol", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
@pytest.mark.parametrize("relu", [False, True])
def test_instance_norm_in_place(monkeypatch, dtype, atol, relu) -> None:
    """Several bands (a small band size), a large mean next to a small spread, batch 2."""
    monkeypatch.setattr(inference_module, "NORM_BAND_BYTES", 4096)
    gen = torch.Generator().manual_seed(9)
    x = torch.randn(2, 16, 21, 19, generator=gen) * 0.5 + torch.linspace(-40, 40, 16)[:, None, None]
    x = x.to(dtype).contiguous(memory_format=torch.channels_last)
    want = nn.functional.instance_norm(x.double())
    want = want.relu() if relu else want
    got = instance_norm_(x, eps=1e-5, relu=relu)
    assert got.data_ptr() == x.data_ptr() and got.dtype == dtype
    torch.testing.assert_close(got.double(), want, atol=atol, rtol=0)


@pytest.mark.parametrize("relu", [False, True])
def test_instance_norm_per_image_in_place(relu) -> None:
    """The GPU version of the in-place instance norm, run here on the CPU (float32 only:
    in bfloat16 the CPU's batch_norm kernel, unlike CUDA's, accumulates in bfloat16)."""
    gen = torch.Generator().manual_seed(25)
    x = torch.randn(3, 8, 13, 11, generator=gen) * 0.5 + torch.linspace(-20, 20, 8)[:, None, None]
    x = x.contiguous(memory_format=torch.channels_last)
    want = nn.functional.instance_norm(x.double())
    want = want.relu() if relu else want
    got = instance_norm_per_image_(x, eps=1e-5, relu=relu)
    assert got.data_ptr() == x.data_ptr()
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("rows", [1, 3, 5, 6, 50])
def test_nrn_head_bands_equal_convolution(monkeypatch, rows) -> None:
    head = randomise(NRNHead(feat_channels=8), seed=10)
    feat = torch.randn(2, 8, 11, 9, generator=torch.Generator().manual_seed(11))
    with torch.enable_grad():
        want = head(feat).detach()  # one 3×3 convolution on the whole map
    monkeypatch.setattr(inference_module, "FAST_MIN_PIXELS", 0)
    with torch.no_grad():
        got = head(feat, rows_per_chunk=rows)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_band_rows_by_width() -> None:
    assert band_rows(600) == 8192 // 600
    assert band_rows(100_000) == 1
    assert band_rows(4) == 2048


# --------------------------------------------------------------------- bfloat16
def test_bf16_enhancer_is_close_to_float32(always_fast) -> None:
    """Networks initialised as §1.6 (N(0, 0.02), zero biases) on a dark image: bfloat16
    stays within the target of 2 levels on average. (Networks with large random biases,
    such as the vectors' synthetic weights, amplify bfloat16 rounding far more.)"""
    torch.manual_seed(13)
    nets = build_generators(Architecture(ngf=8, netG="resnet_6blocks"), names=ENHANCER_NAMES)
    nets.eval().requires_grad_(False)
    x = random_tensor((1, 3, 40, 36), seed=12) * 0.2 - 0.7  # dark: small steps on a large offset
    with torch.no_grad():
        want = Enhancer(nets["Pre"], nets["H"], nets["G_A"])(x)
        got = Enhancer(nets["Pre"], nets["H"], nets["G_A"], amp="bf16")(x)
    assert got.dtype == torch.float32 and got.shape == want.shape

    def levels(t):
        return ((t.clamp(-1, 1) + 1) * 127.5).round()

    assert (levels(got) - levels(want)).abs().mean() <= 1.0
    assert 0 < (got - want).abs().max() < 0.05  # bfloat16 really ran, and stayed close


def test_amp_is_checked(nets) -> None:
    with pytest.raises(ValueError, match="amp"):
        Enhancer(nets["Pre"], nets["H"], nets["G_A"], amp="fp8")
