"""Unit tests for the networks (NERCO_SPEC.md §1), the enhancer (§5) and checkpoints (§6–7).

Everything runs on the CPU with tiny sizes (``ngf=8``) except the layout test, which builds
the released ``ngf=64`` networks to compare them with the authors' checkpoint manifest.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import random_tensor, randomise
from synth import network_manifests
from torch import nn

from nerco.inference.enhancer import Enhancer, infer_architecture, load_enhancer
from nerco.networks.build import (
    ENHANCER_NAMES,
    Architecture,
    build_discriminators,
    build_generators,
    define_D,
    define_G,
    enhance,
    init_weights,
)
from nerco.networks.checkpoint import load_network, network_path, read_state_dict, save_network
from nerco.networks.discriminator import NLayerDiscriminator, PixelDiscriminator
from nerco.networks.edge import EdgeOperator
from nerco.networks.generator import ResnetBlock, ResnetGenerator
from nerco.networks.mask_extractor import MaskExtractor
from nerco.networks.nrn import NRN, NRNHead
from nerco.runtime import UserError

ALL_NETS = ("G_A", "G_B", "Pre", "H", "D_A", "D_B", "D_A_edge", "D_B_edge")


def _count(net: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in net.modules())


# --------------------------------------------------------------------------- 1. layout
@pytest.fixture(scope="module")
def released_networks() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    arch = Architecture()
    return dict(build_generators(arch).items()) | dict(build_discriminators(arch).items())


@pytest.mark.parametrize("name", ALL_NETS)
def test_state_dict_matches_released_checkpoint(released_networks, name: str) -> None:
    want = network_manifests()[name]
    got = released_networks[name].state_dict()
    assert list(got) == list(want), "keys or their order differ from the release"
    for key, shape in want.items():
        assert tuple(got[key].shape) == tuple(shape), key


def test_all_eight_networks_are_built(released_networks) -> None:
    assert set(released_networks) == set(ALL_NETS) == set(network_manifests())


# ------------------------------------------------------------------------ 2. NRN head
def _make_coord(shape) -> torch.Tensor:
    """Pixel-centre grid in [-1, 1] of ``shape`` (ij order), flattened to (h·w, 2)."""
    seqs = []
    for n in shape:
        v0, v1 = -1.0, 1.0
        r = (v1 - v0) / (2 * n)
        seqs.append(v0 + r + (2 * r) * torch.arange(n).float())
    grid = torch.stack(torch.meshgrid(*seqs, indexing="ij"), dim=-1)
    return grid.reshape(-1, 2)


def _positional_encoding(x: torch.Tensor, n_freq: int = 8) -> torch.Tensor:
    """[sin(c0 f), cos(c0 f), sin(c1 f), cos(c1 f)] with f = 2^k π (the release's order)."""
    freq = 2 ** torch.arange(n_freq, dtype=torch.float32) * math.pi
    spectrum = x[..., None] * freq  # (..., 2, L)
    enc = torch.stack([spectrum.sin(), spectrum.cos()], dim=-2)  # (..., 2, 2, L)
    return enc.reshape(*x.shape[:-1], -1)


def _released_nrn_head(mlp: nn.Sequential, feat: torch.Tensor) -> torch.Tensor:
    """The released per-pixel LIIF computation (batch 1), written out step by step."""
    n, c, h, w = feat.shape
    assert n == 1
    unfolded = F.unfold(feat, 3, padding=1).view(n, c * 9, h, w)
    q_feat = unfolded.view(n, c * 9, -1).permute(0, 2, 1)  # (1, hw, 9C), channel-major
    query = _make_coord((h, w))
    coord = torch.cat([query, _positional_encoding(query)], dim=-1)[None]  # (1, hw, 34)
    cell = torch.ones_like(query)
    cell[:, 0] *= 2 / h
    cell[:, 1] *= 2 / w
    cell = cell[None]
    preds, areas = [], []
    for _vx in (-1, 1):
        for _vy in (-1, 1):
            # The release shifts a copy of the query coordinates here but never uses it.
            feat_grid = _make_coord((h, w))
            q_coord = torch.cat([feat_grid, _positional_encoding(feat_grid)], dim=-1)[None]
            rel_coord = coord - q_coord
            rel_coord[:, :, 0] *= h
            rel_coord[:, :, 1] *= w
            rel_cell = cell.clone()
            rel_cell[:, :, 0] *= h
            rel_cell[:, :, 1] *= w
            inp = torch.cat([q_feat, rel_coord, rel_cell], dim=-1)
            preds.append(mlp(inp.view(h * w, -1)).view(1, h * w, -1))
            areas.append(torch.abs(rel_coord[:, :, 0] * rel_coord[:, :, 1]) + 1e-9)
    total = torch.stack(areas).sum(dim=0)
    areas[0], areas[3] = areas[3], areas[0]
    areas[1], areas[2] = areas[2], areas[1]
    ret = sum(p * (a / total).unsqueeze(-1) for p, a in zip(preds, areas))
    return ret.view(1, h, w, -1).permute(0, 3, 1, 2)


def _mlp_of(head: NRNHead) -> nn.Sequential:
    """The head's Linear/ReLU layers, applied as a plain MLP on (pixels, in_dim)."""
    return nn.Sequential(*list(head.imnet.layers))


@pytest.fixture()
def random_head() -> NRNHead:
    return randomise(NRNHead(feat_channels=8), seed=1)


@pytest.mark.parametrize("size", [(8, 8), (6, 10)])
def test_nrn_head_equals_released_computation(random_head, size) -> None:
    feat = torch.randn(1, 8, *size, generator=torch.Generator().manual_seed(2))
    assert random_head.imnet.layers[0].in_features == 8 * 9 + 34 + 2
    with torch.no_grad():
        want = _released_nrn_head(_mlp_of(random_head), feat)
        got = random_head(feat)
    assert got.shape == (1, 3, *size)
    assert want.abs().max() > 0.1  # a non-trivial output
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_nrn_head_ignores_coordinate_columns_but_not_cell_columns(random_head) -> None:
    feat = torch.randn(1, 8, 6, 10, generator=torch.Generator().manual_seed(3))
    n_unfold = 8 * 9
    with torch.no_grad():
        base = random_head(feat)
        coord_changed = copy.deepcopy(random_head)
        coord_changed.imnet.layers[0].weight[:, n_unfold : n_unfold + 34] += 1.0
        torch.testing.assert_close(coord_changed(feat), base, atol=1e-6, rtol=0)

        cell_changed = copy.deepcopy(random_head)
        cell_changed.imnet.layers[0].weight[:, n_unfold + 34 :] += 0.5
        got = cell_changed(feat)
        assert (got - base).abs().max() > 1e-3, "the cell columns (value 2) are not used"
        want = _released_nrn_head(_mlp_of(cell_changed), feat)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_nrn_head_has_no_output_activation() -> None:
    head = NRNHead(feat_channels=8)
    with torch.no_grad():
        for param in head.parameters():
            param.zero_()
        head.imnet.layers[-1].bias.fill_(5.0)
        out = head(torch.zeros(1, 8, 4, 4))
    torch.testing.assert_close(out, torch.full_like(out, 5.0))


# -------------------------------------------------------------------- 3. chunking
@pytest.mark.parametrize("rows", [1, 3, 4, 10, 25])
def test_nrn_head_rows_per_chunk_matches_direct(random_head, rows: int) -> None:
    feat = torch.randn(2, 8, 10, 7, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        direct = random_head(feat)
        chunked = random_head(feat, rows_per_chunk=rows)
    assert chunked.shape == direct.shape == (2, 3, 10, 7)
    torch.testing.assert_close(chunked, direct, atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def small_nrn() -> NRN:
    torch.manual_seed(5)
    return randomise(NRN(ngf=8), seed=5, scale=0.05).eval()


@pytest.mark.parametrize("rows", [1, 3, 5])
def test_nrn_rows_per_chunk_matches_direct(small_nrn, rows: int) -> None:
    x = random_tensor((1, 3, 12, 16), seed=6)
    with torch.no_grad():
        direct = small_nrn(x)
        chunked = small_nrn(x, rows_per_chunk=rows)
    assert direct.shape == (1, 3, 12, 16)
    torch.testing.assert_close(chunked, direct, atol=1e-5, rtol=0)


def test_nrn_batch_of_three_equals_single_images(small_nrn) -> None:
    x = random_tensor((3, 3, 12, 16), seed=7)
    with torch.no_grad():
        batch = small_nrn(x)
        batch_chunked = small_nrn(x, rows_per_chunk=5)
        singles = torch.cat([small_nrn(x[i : i + 1]) for i in range(3)])
    assert batch.shape == (3, 3, 12, 16)
    torch.testing.assert_close(batch, singles, atol=1e-5, rtol=0)
    torch.testing.assert_close(batch_chunked, singles, atol=1e-5, rtol=0)
    # The three images really differ (the batch is not one image repeated).
    assert (batch[0] - batch[1]).abs().max() > 1e-3


def test_nrn_head_batch_equals_released_per_image(random_head) -> None:
    feat = torch.randn(3, 8, 6, 6, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        got = random_head(feat)
        want = torch.cat([_released_nrn_head(_mlp_of(random_head), f[None]) for f in feat])
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


# ----------------------------------------------------------------- 4. other networks
def test_resnet_generator_shape_and_range() -> None:
    torch.manual_seed(0)
    net = randomise(define_G(6, 3, ngf=8, netG="resnet_6blocks"), seed=9, scale=0.3)
    with torch.no_grad():
        out = net(random_tensor((2, 6, 16, 20), seed=10))
    assert out.shape == (2, 3, 16, 20)
    assert out.min() >= -1 and out.max() <= 1
    assert out.abs().max() > 0.5  # the tanh is reached, the output is not trivially small
    assert isinstance(net.model[-1], nn.Tanh)


@pytest.mark.parametrize("netG, blocks", [("resnet_6blocks", 6), ("resnet_9blocks", 9)])
def test_resnet_generator_block_count(netG: str, blocks: int) -> None:
    net = define_G(3, 3, ngf=8, netG=netG)
    assert isinstance(net, ResnetGenerator)
    assert _count(net, ResnetBlock) == blocks
    # stem + 2 down + 2 × blocks + 2 up (transposed) + head
    assert _count(net, nn.Conv2d) == 1 + 2 + 2 * blocks + 1
    assert _count(net, nn.ConvTranspose2d) == 2


@pytest.fixture()
def mask_extractor() -> MaskExtractor:
    net = randomise(MaskExtractor(ngf=8), seed=11, scale=0.2)
    x = random_tensor((2, 3, 13, 17), seed=12)
    with torch.no_grad():  # make sure the channel-attention bottleneck is active (ReLU > 0)
        feat = net.model(x)
        pooled = torch.cat([feat.mean((2, 3), keepdim=True), feat.amax((2, 3), keepdim=True)], 1)
        if (net.fc1(pooled) <= 0).any():
            net.fc1.weight.mul_(-1)
        assert (net.fc1(pooled) > 0).all()
    return net


def test_mask_extractor_outputs(mask_extractor) -> None:
    x = random_tensor((2, 3, 13, 17), seed=12)
    with torch.no_grad():
        hm, mask = mask_extractor(x)
    assert hm.shape == (2, 3, 13, 17)
    assert mask.shape == (2, 1, 13, 17)
    assert hm.min() >= -1 and hm.max() <= 1
    assert mask.min() > 0 and mask.max() < 1
    assert mask.std() > 1e-4  # the spatial attention actually varies over the image


def test_mask_extractor_matches_spec_formula(mask_extractor) -> None:
    """§1.3 written out with functional ops on the module's weights."""
    net = mask_extractor
    x = random_tensor((2, 3, 13, 17), seed=12)
    with torch.no_grad():
        feat = net.model(x)
        assert feat.shape[-2:] == (13 + 6, 17 + 6)
        pooled = torch.cat([F.adaptive_avg_pool2d(feat, 1), F.adaptive_max_pool2d(feat, 1)], 1)
        a = F.conv2d(
            F.conv2d(F.relu(F.conv2d(pooled, net.fc1.weight)), net.fc2.weight), net.conv_ca.weight
        )
        attended = a * feat
        spatial = torch.cat([attended.mean(1, keepdim=True), attended.max(1, keepdim=True)[0]], 1)
        want_mask = torch.sigmoid(F.conv2d(spatial, net.conv1.weight))
        want_h = torch.tanh(F.conv2d(feat, net.output.weight, net.output.bias))
        hm, mask = net(x)
    torch.testing.assert_close(mask, want_mask, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(hm, want_h, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("ngf, bottleneck", [(8, 1), (16, 1), (32, 2), (64, 4)])
def test_mask_extractor_bottleneck(ngf: int, bottleneck: int) -> None:
    net = MaskExtractor(ngf=ngf)
    assert net.fc1.weight.shape == (bottleneck, 2 * ngf, 1, 1)
    assert net.fc2.weight.shape == (2 * ngf, bottleneck, 1, 1)
    assert net.conv_ca.weight.shape == (ngf, 2 * ngf, 1, 1)
    assert net.conv1.weight.shape == (1, 2, 7, 7)
    assert _count(net, ResnetBlock) == 3


@pytest.mark.parametrize("layer", ["conv_ca", "fc1"])
def test_attention_weights_change_mask_but_not_hm(mask_extractor, layer: str) -> None:
    x = random_tensor((2, 3, 13, 17), seed=12)
    with torch.no_grad():
        hm, mask = mask_extractor(x)
        changed = copy.deepcopy(mask_extractor)
        weight = getattr(changed, layer).weight
        weight.add_(torch.randn(weight.shape, generator=torch.Generator().manual_seed(13)))
        weight.abs_()  # keep the ReLU bottleneck open
        hm2, mask2 = changed(x)
    assert torch.equal(hm2, hm), "H must be computed from F, not from the attended map"
    assert (mask2 - mask).abs().max() > 1e-4


def test_patchgan_basic_shape() -> None:
    net = define_D(3, ndf=8, netD="basic")
    assert isinstance(net, NLayerDiscriminator)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [c.stride[0] for c in convs] == [2, 2, 2, 1, 1]
    assert [c.out_channels for c in convs] == [8, 16, 32, 64, 1]
    assert _count(net, nn.InstanceNorm2d) == 3
    assert _count(net, nn.LeakyReLU) == 4
    with torch.no_grad():
        out = net(random_tensor((2, 3, 64, 64), seed=14))
    assert out.shape == (2, 1, 6, 6)


def test_patchgan_n_layers_and_pixel_shapes() -> None:
    x = random_tensor((2, 3, 64, 64), seed=15)
    two = define_D(3, ndf=8, netD="n_layers", n_layers_D=2)
    assert isinstance(two, NLayerDiscriminator)
    assert _count(two, nn.Conv2d) == 4
    # basic ignores n_layers_D
    assert _count(define_D(3, ndf=8, netD="basic", n_layers_D=2), nn.Conv2d) == 5
    pixel = define_D(3, ndf=8, netD="pixel")
    assert isinstance(pixel, PixelDiscriminator)
    with torch.no_grad():
        # 64 -s2-> 32 -s2-> 16 -s1-> 15 -s1-> 14
        assert two(x).shape == (2, 1, 14, 14)
        assert pixel(x).shape == (2, 1, 64, 64)
        assert define_D(3, ndf=8, netD="n_layers", n_layers_D=4)(x).shape == (2, 1, 2, 2)


# ------------------------------------------------------------------------ 5. edges
def _numpy_edges(x: np.ndarray) -> np.ndarray:
    """§1.5 without the projection: 4·sqrt(v² + h² + 1e-6) of the grey image, (H, W)."""
    r, g, b = x.astype(np.float64)
    grey = (65.738 * r + 129.057 * g + 25.064 * b) / 256
    p = np.pad(grey, 1)
    v = p[2:, 1:-1] - p[:-2, 1:-1]
    h = p[1:-1, 2:] - p[1:-1, :-2]
    return 4 * np.sqrt(v**2 + h**2 + 1e-6)


def test_edge_operator_deterministic_matches_numpy() -> None:
    values = np.array(
        [
            [
                [-1.0, -0.5, 0.0, 0.5],
                [1.0, 0.8, -0.2, 0.1],
                [0.3, -0.7, 0.9, -0.4],
                [0.0, 0.0, 0.6, -1.0],
            ],
            [
                [0.2, 0.4, -0.6, 0.8],
                [-1.0, 0.0, 1.0, 0.5],
                [0.1, 0.2, 0.3, 0.4],
                [-0.9, 0.7, -0.5, 0.3],
            ],
            [
                [1.0, -1.0, 1.0, -1.0],
                [0.0, 0.25, 0.5, 0.75],
                [-0.3, 0.6, -0.9, 0.0],
                [0.45, -0.15, 0.05, 0.95],
            ],
        ],
        dtype=np.float32,
    )
    x = torch.from_numpy(values)[None]
    op = EdgeOperator(random_projection=False)
    out = op(x)
    assert out.shape == (1, 3, 4, 4)
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 0], out[:, 2])
    assert torch.equal(op(x), out)
    np.testing.assert_allclose(out[0, 0].numpy(), _numpy_edges(values), rtol=1e-5, atol=1e-6)
    # A constant image has no edges inside but the zero padding makes its border an edge.
    flat = op(torch.full((1, 3, 4, 4), 0.5))
    assert flat[0, 0, 1:-1, 1:-1].max() < 0.01
    assert flat[0, 0, 0, 0] > 0.1


def test_edge_operator_random_projection_uses_global_rng() -> None:
    x = random_tensor((1, 3, 8, 8), seed=16)
    op = EdgeOperator(random_projection=True)
    assert len(list(op.parameters())) == 0 and len(op.state_dict()) == 0
    first, second = op(x), op(x)
    assert first.shape == (1, 3, 8, 8)
    assert not torch.allclose(first, second), "a fresh projection must be drawn every call"
    torch.manual_seed(123)
    a = op(x)
    after_a = torch.rand(1)
    torch.manual_seed(123)
    b = op(x)
    torch.manual_seed(123)
    untouched = torch.rand(1)
    assert torch.equal(a, b)
    assert not torch.equal(after_a, untouched), "the projection must consume torch's RNG"
    # Each output channel is an affine map of the same magnitude: 4·(w·m + b).
    mag = op.magnitude(x)[0, 0]
    for c in range(3):
        coef = np.polyfit(mag.flatten().numpy(), a[0, c].flatten().detach().numpy(), 1)
        fitted = np.polyval(coef, mag.flatten().numpy())
        np.testing.assert_allclose(fitted, a[0, c].flatten().detach().numpy(), atol=1e-4)


# ------------------------------------------- 6. names (init: tests/test_init_weights.py)
def test_unknown_names_raise_user_error() -> None:
    with pytest.raises(UserError, match="init_type"):
        init_weights(MaskExtractor(ngf=8), init_type="uniform")
    with pytest.raises(UserError, match="init_type"):
        build_generators(Architecture(ngf=8, init_type="bogus"), names=("H",))
    with pytest.raises(UserError, match="netG"):
        build_generators(Architecture(ngf=8, netG="unet_256"))
    with pytest.raises(UserError, match="netD"):
        build_discriminators(Architecture(ndf=8, netD="spectral"))


# ------------------------------------------------------------------ 7. enhancer
@pytest.fixture(scope="module")
def small_enhancer_nets() -> nn.ModuleDict:
    torch.manual_seed(17)
    nets = build_generators(Architecture(ngf=8, netG="resnet_6blocks"), names=ENHANCER_NAMES)
    return nets.eval()


def _enhancer(nets, rows=None) -> Enhancer:
    return Enhancer(nets["Pre"], nets["H"], nets["G_A"], rows_per_chunk=rows)


@pytest.mark.parametrize("height, width", [(23, 37), (30, 41)])
def test_enhancer_keeps_any_size(small_enhancer_nets, height: int, width: int) -> None:
    x = random_tensor((1, 3, height, width), seed=18)
    with torch.no_grad():
        out = _enhancer(small_enhancer_nets)(x)
    assert out.shape == (1, 3, height, width)
    assert out.min() >= -1 and out.max() <= 1


def test_enhancer_equals_enhance_when_divisible_by_4(small_enhancer_nets) -> None:
    nets = small_enhancer_nets
    x = random_tensor((1, 3, 16, 20), seed=19)
    with torch.no_grad():
        got = _enhancer(nets)(x)
        want = enhance(nets["Pre"], nets["H"], nets["G_A"], x)
        chunked = _enhancer(nets, rows=3)(x)
        _, mask = nets["H"](x)
        by_hand = nets["G_A"](torch.cat((x, nets["Pre"](x)), 1) * mask)
    assert torch.equal(got, want)
    torch.testing.assert_close(want, by_hand, atol=0, rtol=0)
    torch.testing.assert_close(chunked, want, atol=1e-5, rtol=0)
    assert want.std() > 1e-3


def test_enhancer_rejects_small_or_bad_input(small_enhancer_nets) -> None:
    enhancer = _enhancer(small_enhancer_nets)
    with pytest.raises(ValueError, match="too small"):
        enhancer(torch.zeros(1, 3, 6, 6))
    with pytest.raises(ValueError):
        enhancer(torch.zeros(1, 1, 16, 16))
    with torch.no_grad():
        assert enhancer(torch.zeros(1, 3, 8, 9)).shape == (1, 3, 8, 9)


@pytest.mark.parametrize("netG", ["resnet_6blocks", "resnet_9blocks"])
def test_infer_architecture_from_saved_g_a(tmp_path, netG: str) -> None:
    g_a = build_generators(Architecture(ngf=8, netG=netG), names=("G_A",))["G_A"]
    path = str(tmp_path / "latest_net_G_A.pth")
    save_network(g_a, path)
    arch = infer_architecture(read_state_dict(path))
    assert (arch.ngf, arch.netG, arch.norm) == (8, netG, "instance")
    with pytest.raises(UserError):
        infer_architecture({"foo": torch.zeros(1)})


def test_load_enhancer_round_trip(tmp_path, small_enhancer_nets) -> None:
    for name in ENHANCER_NAMES:
        save_network(small_enhancer_nets[name], network_path(str(tmp_path), 7, name))
    loaded = load_enhancer(str(tmp_path), epoch=7, device="cpu")
    assert not loaded.training
    assert all(not p.requires_grad for p in loaded.parameters())
    x = random_tensor((1, 3, 12, 13), seed=20)
    with torch.no_grad():
        want = _enhancer(small_enhancer_nets)(x)
    assert torch.equal(loaded(x), want)
    with pytest.raises(UserError):
        load_enhancer(str(tmp_path / "nowhere"), device="cpu")


# ---------------------------------------------------------------- 8. checkpoints
def _small_h(seed: int, ngf: int = 8) -> MaskExtractor:
    return randomise(MaskExtractor(ngf=ngf), seed=seed)


def test_network_path_format() -> None:
    assert network_path("saves/run", "latest", "G_A").replace("\\", "/") == (
        "saves/run/latest_net_G_A.pth"
    )
    assert network_path("d", 15, "Pre").endswith("15_net_Pre.pth")


def test_save_read_round_trip(tmp_path) -> None:
    net = _small_h(21)
    path = str(tmp_path / "latest_net_H.pth")
    save_network(net, path)
    state = read_state_dict(path)
    own = net.state_dict()
    assert list(state) == list(own)
    assert all(torch.equal(state[k], own[k]) for k in own)
    assert not any(k.startswith("module.") for k in state)
    other = _small_h(22)
    load_network(other, path)
    assert all(torch.equal(other.state_dict()[k], own[k]) for k in own)
    assert not (tmp_path / "latest_net_H.pth.tmp").exists()


def test_wrapped_network_saves_without_prefix(tmp_path) -> None:
    net = _small_h(23)
    path = str(tmp_path / "wrapped.pth")
    save_network(nn.DataParallel(net), path)
    raw = torch.load(path, weights_only=True)
    assert list(raw) == list(net.state_dict())


def test_module_prefix_is_stripped(tmp_path) -> None:
    net = _small_h(24)
    path = str(tmp_path / "ddp.pth")
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, path)
    state = read_state_dict(path)
    assert list(state) == list(net.state_dict())
    target = _small_h(25)
    load_network(target, path)
    assert all(torch.equal(target.state_dict()[k], v) for k, v in net.state_dict().items())


def test_loading_other_ngf_mentions_ngf(tmp_path) -> None:
    path = str(tmp_path / "latest_net_H.pth")
    save_network(_small_h(26, ngf=8), path)
    with pytest.raises(UserError, match="--ngf") as info:
        load_network(MaskExtractor(ngf=16), path)
    assert path in str(info.value)


def test_missing_keys_raise_user_error(tmp_path) -> None:
    net = _small_h(27)
    state = net.state_dict()
    state.pop("output.bias")
    path = str(tmp_path / "partial.pth")
    torch.save(state, path)
    with pytest.raises(UserError, match="missing"):
        load_network(_small_h(28), path)


def test_missing_file_names_the_path(tmp_path) -> None:
    path = str(tmp_path / "latest_net_G_A.pth")
    with pytest.raises(UserError) as info:
        read_state_dict(path)
    assert path in str(info.value)
    with pytest.raises(UserError):
        load_network(_small_h(29), path)


def test_corrupt_file_raises_user_error(tmp_path) -> None:
    path = tmp_path / "latest_net_H.pth"
    save_network(_small_h(30), str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError) as info:
        read_state_dict(str(path))
    assert str(path) in str(info.value)
    path.write_bytes(b"this is not a checkpoint")
    with pytest.raises(UserError):
        read_state_dict(str(path))
    torch.save([torch.zeros(2)], path)
    with pytest.raises(UserError, match="state_dict"):
        read_state_dict(str(path))


def test_bad_arguments_are_rejected_clearly():
    from nerco.networks.build import Architecture, build_generators
    from nerco.networks.nrn import NRNHead

    with pytest.raises(ValueError, match="rows_per_chunk"):
        NRNHead(8)(torch.zeros(1, 8, 4, 4), rows_per_chunk=0)
    with pytest.raises(ValueError, match="unknown generator"):
        build_generators(Architecture(ngf=8), names=("G_C",))
