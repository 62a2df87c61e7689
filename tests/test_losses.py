"""Loss groups of nerco/training/losses.py: the term that G_B and PreConsis share.

GAN(D_B(Pre(A))) is part of G_B and of PreConsis (NERCO_SPEC.md §2). It is computed once,
by the caller, and handed to both functions: no group returns it under a private key for
another to take out. (The terms against the spec, all together: tests/test_objectives.py.)
"""

from __future__ import annotations

import pytest
import torch
from conftest import random_tensor

from nerco.networks.build import Architecture
from nerco.training import losses
from nerco.training.losses import GANLoss, LossWeights
from nerco.training.model import NeRCoModel


class NoCLIP:
    """The CLIP term where its value does not matter."""

    def loss(self, images: torch.Tensor, target: str) -> torch.Tensor:
        return images.mean() * 0


def _critic(offset: float):
    """A stand-in discriminator: a patch map that depends on its input."""
    return lambda x: x.mean(dim=1, keepdim=True) + offset


def test_adversarial_losses_take_the_shared_term_and_return_only_logged_names():
    fake_B, fake_A = random_tensor((1, 3, 8, 8), 1), random_tensor((1, 3, 8, 8), 2)
    gan = GANLoss("lsgan")
    shared = torch.tensor(0.375)  # a value no discriminator here produces
    terms = losses.adversarial_losses(
        _critic(0.1), _critic(0.2), _critic(0.3), _critic(0.4), fake_B, fake_A, shared, gan
    )
    assert set(terms) == {"G_A", "G_B", "G_A_edge", "G_B_edge"}
    assert terms["G_B"].item() == pytest.approx(gan(_critic(0.2)(fake_A), True).item() + 0.375)
    assert terms["G_A"].item() == pytest.approx(gan(_critic(0.1)(fake_B), True).item())


def test_nrn_consistency_adds_the_shared_term_it_is_given():
    pre_A, real_A = random_tensor((1, 3, 8, 8), 3), random_tensor((1, 3, 8, 8), 4)
    w = LossWeights(lambda_A=3.0, lambda_pre=2.5)
    got = losses.nrn_consistency_loss(pre_A, real_A, torch.tensor(0.625), w)
    assert got.item() == pytest.approx((pre_A - real_A).abs().mean().item() * 7.5 + 0.625)


def test_generator_step_asks_D_B_about_pre_A_once_and_both_terms_hold_it():
    torch.manual_seed(0)
    model = NeRCoModel(Architecture(ngf=4, ndf=4), NoCLIP(), objective="paper")
    visuals = model(random_tensor((1, 3, 32, 32), 5), random_tensor((1, 3, 32, 32), 6))
    model.discriminators.requires_grad_(False)
    D_B, seen = model.discriminators["D_B"], []
    handle = D_B.register_forward_hook(lambda _m, args, _out: seen.append(args[0]))
    try:
        _, terms = model.compute_G_loss(visuals)
    finally:
        handle.remove()
    assert sum(x is visuals["pre_A"] for x in seen) == 1
    with torch.no_grad():
        gan_pre_A = model.gan(D_B(visuals["pre_A"]), True)
        g_b = model.gan(D_B(visuals["fake_A"]), True) + gan_pre_A
        pre = (visuals["pre_A"] - visuals["real_A"]).abs().mean() * 4 * 10 + gan_pre_A
    assert terms["G_B"].item() == pytest.approx(g_b.item(), rel=1e-6)
    assert terms["PreConsis"].item() == pytest.approx(pre.item(), rel=1e-6)
    assert set(terms) == set(losses.LOSS_NAMES) - {"D_A", "D_B", "D_A_edge", "D_B_edge"}
