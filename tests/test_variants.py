"""The non-default options as units: --gan_mode, --netD / --n_layers_D output shapes, and
--batch_size > 1 against single images (train.py runs of each variant: test_variant_runs.py).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from clip_stand_in import small_clip_term
from conftest import random_tensor

from nerco.networks.build import Architecture, define_D
from nerco.training.losses import GANLoss
from nerco.training.model import NeRCoModel

#: A patch map with distinct positive and negative logits, (2, 1, 2, 3).
PREDICTION = torch.tensor(
    [[[[-2.0, -0.5, 0.0], [0.3, 1.2, 3.0]]], [[[0.7, -1.1, 2.2], [-0.2, 0.9, -3.5]]]]
)


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


# Hand formulas, value by value (no torch loss function): the mean over the patch map of
# LSGAN (p − t)², vanilla −log σ(p) for real and −log(1 − σ(p)) for fake, WGAN ∓p.
HAND = {
    ("lsgan", True): lambda p: (p - 1) ** 2,
    ("lsgan", False): lambda p: p**2,
    ("vanilla", True): lambda p: _softplus(-p),
    ("vanilla", False): lambda p: _softplus(p),
    ("wgangp", True): lambda p: -p,
    ("wgangp", False): lambda p: p,
}


@pytest.mark.parametrize("mode, real", list(HAND))
def test_gan_loss_equals_hand_formula(mode: str, real: bool) -> None:
    values = PREDICTION.flatten().tolist()
    want = sum(HAND[mode, real](p) for p in values) / len(values)
    got = GANLoss(mode)(PREDICTION, real)
    assert got.shape == ()
    assert got.item() == pytest.approx(want, rel=1e-6)


def test_gan_losses_of_real_and_fake_differ_in_each_mode() -> None:
    for mode in ("lsgan", "vanilla", "wgangp"):
        loss = GANLoss(mode)
        assert loss(PREDICTION, True).item() != pytest.approx(loss(PREDICTION, False).item())


# ------------------------------------------------------------- discriminator shapes
def _patch_side(side: int, n_layers: int) -> int:
    """4×4 convolutions, padding 1: ``n_layers`` of stride 2 (s → ⌊s/2⌋), two of stride 1
    (s → s − 1)."""
    for _ in range(n_layers):
        side //= 2
    return side - 2


@pytest.mark.parametrize(
    "netD, n_layers",
    [("basic", 3), ("n_layers", 1), ("n_layers", 2), ("n_layers", 4), ("pixel", 0)],
)
@pytest.mark.parametrize("height, width", [(70, 53), (97, 64)])
def test_discriminator_output_shapes(netD, n_layers, height, width) -> None:
    net = define_D(3, ndf=4, netD=netD, n_layers_D=n_layers)
    with torch.no_grad():
        out = net(random_tensor((2, 3, height, width), seed=height + width))
    if netD == "pixel":  # one logit per pixel
        assert out.shape == (2, 1, height, width)
    else:
        assert out.shape == (2, 1, _patch_side(height, n_layers), _patch_side(width, n_layers))
    assert out.std() > 0  # depends on the input


# ------------------------------------------------------------------- batch of two
# With instance norm (and CLIP's BatchNorms in eval mode) each image of a batch goes
# through every network on its own; every loss is a mean over equal-sized images, and fresh
# history pools return their input. So the losses of a batch of two are the means of each
# image's losses, and so are the gradients. (BatchNorm, --norm batch, mixes a batch: not so.)
# In float64, since float32 rounding, amplified through ~60 layers, leaves the NRN's
# gradients 1e-3 apart (float64: 1e-14); and with a small image tower in place of CLIP
# RN50's (clip_stand_in), which costs tens of seconds in float64.
def _terms_and_grads(model, real_A, real_B, seed: int):
    """Logged terms of both steps and the gradients of the two totals, from fresh pools."""
    for pool in model.pools.values():
        pool.images = []
    v = model(real_A, real_B)
    model.discriminators.requires_grad_(False)
    loss_G, g_terms = model.compute_G_loss(v)
    grads_G = torch.autograd.grad(loss_G, list(model.generators.parameters()))
    model.discriminators.requires_grad_(True)
    torch.manual_seed(seed)  # the official objective's random edge projections
    loss_D, d_terms = model.compute_D_loss(v)
    grads_D = torch.autograd.grad(loss_D, list(model.discriminators.parameters()))
    terms = {n: t.item() for n, t in (g_terms | d_terms).items()}
    return terms, grads_G + grads_D


@pytest.mark.parametrize("objective", ["official", "paper"])
def test_batch_of_two_gives_the_mean_of_single_images(objective, random_clip) -> None:
    torch.manual_seed(0)
    term = small_clip_term(random_clip, objective == "paper", torch.float64)
    model = NeRCoModel(Architecture(ngf=4, ndf=4), term, objective=objective).double()
    real_A = random_tensor((2, 3, 32, 32), seed=1).double() * 0.3 - 0.6  # two dark images
    real_B = random_tensor((2, 3, 32, 32), seed=2).double()
    batch, batch_grads = _terms_and_grads(model, real_A, real_B, seed=3)
    singles = [
        _terms_and_grads(model, real_A[i : i + 1], real_B[i : i + 1], seed=3) for i in range(2)
    ]
    mean = {n: (singles[0][0][n] + singles[1][0][n]) / 2 for n in batch}
    assert batch == pytest.approx(mean, rel=1e-10, abs=1e-12)
    differing = [n for n in batch if singles[0][0][n] != pytest.approx(singles[1][0][n])]
    assert len(differing) >= len(batch) - 2  # the two images really give other losses
    for got, a, b in zip(batch_grads, singles[0][1], singles[1][1]):
        torch.testing.assert_close(got, (a + b) / 2, rtol=1e-9, atol=1e-11)


def test_batch_norm_networks_mix_the_batch() -> None:
    """The counterpart: with --norm batch in training mode the images are not independent,
    which is why the test above is for instance norm."""
    torch.manual_seed(0)
    net = define_D(3, ndf=4, netD="basic", norm="batch").train()
    x = random_tensor((2, 3, 32, 32), seed=4)
    together = net(x)[:1]
    alone = net(x[:1])
    assert not torch.allclose(together, alone, atol=1e-4)
    assert F.l1_loss(together, alone) > 1e-3


# The release steps its schedulers at the start of each epoch, before any optimizer step:
# torch warns about that order, which is the point here.
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
def test_cosine_schedule_falls_over_the_whole_run():
    """With decay epochs the cosine rule must not rise again (CycleGAN's T_max = n_epochs
    did): it falls monotonically to 0 at the last epoch, whatever the first epoch."""
    from nerco.training.schedules import get_scheduler

    for n_epochs, n_epochs_decay, epoch_count in ((2, 3, 1), (4, 4, 3)):
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        scheduler = get_scheduler(optimizer, "cosine", n_epochs, n_epochs_decay, epoch_count)
        rates = []
        for _ in range(epoch_count, n_epochs + n_epochs_decay + 1):
            scheduler.step()  # the release's timing: at the start of each epoch
            rates.append(optimizer.param_groups[0]["lr"])
        assert all(a > b for a, b in zip(rates, rates[1:])), rates
        assert rates[-1] == pytest.approx(0.0, abs=1e-12)
