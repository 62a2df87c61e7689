"""Loss groups of the NeRCo objective — NERCO_SPEC.md §2 and §3.

One function per group of equations. Each returns its terms in a dict keyed by the
logged names (the values the release logs, which already include λ_A / λ_B where the
release multiplies them in); :func:`generator_total` combines them into the weighted sum
that is back-propagated. Paper names: G_A is the enhancer G_H, G_B the degrader G_L,
Pre the NRN, H the mask extractor (ME), D_* the text-driven appearance discriminator (TAD).

Paper references: each docstring names the part of the paper (arXiv 2303.11722) that the
term belongs to — the NRN, the mask extractor ME, the text-driven appearance discriminator
TAD (NERCO_SPEC.md §1), the abstract's "dual-closed-loop constrained enhancement" — and
the spec section that writes the formula out. The paper's equation numbers are not given:
its text could not be consulted to check them, and a wrong number misleads more than none.

Shapes: images are (N, 3, h, w) in [-1, 1] (lower-case h, w: ``H`` is the mask extractor,
and ``loss_H`` / the logged ``H`` its loss); ``Hm`` is H's 3-channel output in [-1, 1].
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nerco.runtime import UserError

#: Logged loss names, in the order of the release's log line (spec §2), then the two
#: generator edge terms, which the reference vectors also pin down.
LOSS_NAMES = (
    "D_A",
    "G_A",
    "cycle_A",
    "idt_A",
    "D_B",
    "G_B",
    "cycle_B",
    "idt_B",
    "D_A_edge",
    "D_B_edge",
    "D_A_CLIP",
    "D_B_CLIP",
    "PreConsis",
    "H",
    "G_A_edge",
    "G_B_edge",
)
GAN_MODES = ("lsgan", "vanilla", "wgangp")


@dataclass(frozen=True)
class LossWeights:
    """Every factor of the objective, named (defaults are the release's).

    Attributes:
        lambda_A: cycle weight A → B → A (also scales idt_B and PreConsis' L1).
        lambda_B: cycle weight B → A → B (also scales idt_A).
        lambda_identity: identity weight relative to the cycle weight.
        lambda_pre: the hard-coded 4 of PreConsis = lambda_pre · λ_A · L1(pre_A, real_A).
        lambda_clip: weight of D_A_CLIP and D_B_CLIP in the generator total (0.5).
        lambda_edge: weight of G_A_edge and G_B_edge in the generator total (0.5).
        lambda_mask: weight of the mask-extractor loss H in the generator total (0.5).
    """

    lambda_A: float = 10.0
    lambda_B: float = 10.0
    lambda_identity: float = 0.5
    lambda_pre: float = 4.0
    lambda_clip: float = 0.5
    lambda_edge: float = 0.5
    lambda_mask: float = 0.5


class GANLoss(nn.Module):
    """GAN(x, real?) for a patch map of logits: LSGAN (MSE to 1/0), vanilla (BCE) or WGAN."""

    def __init__(self, gan_mode: str = "lsgan") -> None:
        super().__init__()
        if gan_mode not in GAN_MODES:
            raise UserError(
                f"--gan_mode {gan_mode!r} is not known; choose one of {', '.join(GAN_MODES)}"
            )
        self.gan_mode = gan_mode

    def forward(self, prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        if self.gan_mode == "wgangp":
            return -prediction.mean() if target_is_real else prediction.mean()
        target = torch.full_like(prediction, 1.0 if target_is_real else 0.0)
        if self.gan_mode == "lsgan":
            return F.mse_loss(prediction, target)
        return F.binary_cross_entropy_with_logits(prediction, target)


def identity_losses(G_A, G_B, real_A, real_B, weights: LossWeights) -> dict[str, torch.Tensor]:
    """Identity terms of the dual closed loop (CycleGAN's; spec §2).

    idt_A = λ_B·λ_idt·‖G_A([B, B]) − B‖₁,  idt_B = λ_A·λ_idt·‖G_B(A) − A‖₁.

    Args:
        G_A: the enhancer G_H, (N, 6, h, w) → (N, 3, h, w).
        G_B: the degrader G_L, (N, 3, h, w) → (N, 3, h, w).
        real_A, real_B: low-light and normal-light batches, (N, 3, h, w) in [-1, 1].
        weights: λ_A, λ_B and λ_idt; with λ_idt = 0 no generator runs (as released).

    Returns:
        ``idt_A`` and ``idt_B``, scalars.
    """
    if weights.lambda_identity <= 0:
        zero = real_A.new_zeros(())
        return {"idt_A": zero, "idt_B": zero}
    idt_A = F.l1_loss(G_A(torch.cat((real_B, real_B), 1)), real_B)
    idt_B = F.l1_loss(G_B(real_A), real_A)
    return {
        "idt_A": idt_A * weights.lambda_B * weights.lambda_identity,
        "idt_B": idt_B * weights.lambda_A * weights.lambda_identity,
    }


def cycle_losses(real_A, real_B, rec_A, rec_B, weights: LossWeights) -> dict[str, torch.Tensor]:
    """Cycle consistency of the dual closed loop (spec §2).

    cycle_A = λ_A·‖rec_A − A‖₁,  cycle_B = λ_B·‖rec_B − B‖₁.

    Args:
        real_A, real_B: the batches, (N, 3, h, w) in [-1, 1].
        rec_A: G_B(fake_B), (N, 3, h, w); rec_B: G_A([fake_A, Pre(fake_A)]), (N, 3, h, w).
        weights: λ_A and λ_B.

    Returns:
        ``cycle_A`` and ``cycle_B``, scalars.
    """
    return {
        "cycle_A": F.l1_loss(rec_A, real_A) * weights.lambda_A,
        "cycle_B": F.l1_loss(rec_B, real_B) * weights.lambda_B,
    }


def nrn_adversarial_loss(D_B, pre_A, gan: GANLoss) -> torch.Tensor:
    """GAN(D_B(Pre(A))): the low-light discriminator's verdict on the NRN's output.

    The one term that two groups share (spec §2): it is part of G_B
    (:func:`adversarial_losses`) and of PreConsis (:func:`nrn_consistency_loss`). The
    caller computes it once and passes it to both, as the release adds the same value.

    Args:
        D_B: the colour discriminator of low light (TAD), (N, 3, h, w) → patch logits.
        pre_A: Pre(real_A), (N, 3, h, w) (not squashed into [-1, 1]).
        gan: the GAN criterion.

    Returns:
        A scalar.
    """
    return gan(D_B(pre_A), True)


def adversarial_losses(
    D_A, D_B, D_A_edge, D_B_edge, fake_B, fake_A, gan_pre_A, gan: GANLoss, edge=None
) -> dict[str, torch.Tensor]:
    """Generator side of the TAD's colour and high-frequency (edge) paths (spec §2, §8.3).

    G_A = GAN(D_A(fake_B));  G_B = GAN(D_B(fake_A)) + GAN(D_B(Pre(A)));
    G_A_edge = GAN(D_A_edge(·)) on fake_B;  G_B_edge = GAN(D_B_edge(·)) on fake_A.

    Args:
        D_A, D_B: colour discriminators of normal and low light.
        D_A_edge, D_B_edge: the discriminators of the high-frequency path.
        fake_B: G_A's enhanced batch, (N, 3, h, w); fake_A: G_B's darkened one.
        gan_pre_A: :func:`nrn_adversarial_loss`, the scalar GAN(D_B(Pre(A))).
        gan: the GAN criterion.
        edge: ``None`` is the release (spec §8.3: the raw images go to the edge
            discriminators); the paper passes the edge operator, (N, 3, h, w) → (N, 3, h, w).

    Returns:
        ``G_A``, ``G_B``, ``G_A_edge`` and ``G_B_edge``, scalars.
    """
    edge_B, edge_A = (fake_B, fake_A) if edge is None else (edge(fake_B), edge(fake_A))
    return {
        "G_A": gan(D_A(fake_B), True),
        "G_B": gan(D_B(fake_A), True) + gan_pre_A,
        "G_A_edge": gan(D_A_edge(edge_B), True),
        "G_B_edge": gan(D_B_edge(edge_A), True),
    }


def nrn_consistency_loss(pre_A, real_A, gan_pre_A, weights: LossWeights) -> torch.Tensor:
    """PreConsis, the NRN's loss (spec §2): lambda_pre·λ_A·‖Pre(A) − A‖₁ + GAN(D_B(Pre(A))).

    Args:
        pre_A: Pre(real_A), (N, 3, h, w).
        real_A: the low-light batch, (N, 3, h, w) in [-1, 1].
        gan_pre_A: :func:`nrn_adversarial_loss`, the scalar GAN(D_B(Pre(A))).
        weights: lambda_pre (the release's hard-coded 4) and λ_A.

    Returns:
        A scalar, logged as ``PreConsis``.
    """
    return F.l1_loss(pre_A, real_A) * weights.lambda_pre * weights.lambda_A + gan_pre_A


def mask_extractor_loss(
    G_A, mask_extractor, D_A, D_B, real_A, real_B, Hm, fake_B, fake_A, gan: GANLoss
) -> torch.Tensor:
    """The mask extractor's loss (ME, logged as ``H``) = bypass + adv_h + self (spec §2).

    bypass = ‖fake_B − (A + Hm)‖₁ + ‖B − G_A([B − Hm, B − Hm])‖₁
    adv_h  = GAN(D_A(A + Hm)) + GAN(D_B(B − Hm))
    self   = ‖Hm − (fake_B − A)‖₁ + ‖fake_A − (B − Hm')‖₁,  Hm' = H(fake_A)'s first output

    Args:
        G_A: the enhancer, (N, 6, h, w) → (N, 3, h, w).
        mask_extractor: the network H, (N, 3, h, w) → (Hm (N, 3, h, w), mask (N, 1, h, w)).
        D_A, D_B: colour discriminators of normal and low light.
        real_A, real_B: the batches, (N, 3, h, w) in [-1, 1].
        Hm: H(real_A)'s first output, (N, 3, h, w) in [-1, 1].
        fake_B, fake_A: the enhanced and the darkened batch, (N, 3, h, w).
        gan: the GAN criterion.

    Returns:
        A scalar.
    """
    darker_B = real_B - Hm
    bypass = F.l1_loss(fake_B, real_A + Hm) + F.l1_loss(
        real_B, G_A(torch.cat((darker_B, darker_B), 1))
    )
    adv_h = gan(D_A(real_A + Hm), True) + gan(D_B(darker_B), True)
    Hm_fake_A, _ = mask_extractor(fake_A)
    self_term = F.l1_loss(Hm, fake_B - real_A) + F.l1_loss(fake_A, real_B - Hm_fake_A)
    return bypass + adv_h + self_term


def clip_losses(clip_term, fake_B, rec_B, fake_A, rec_A, pools=None) -> dict[str, torch.Tensor]:
    """The TAD's text-driven path, CLIP (spec §3; the abstract's "semantic-orientated
    supervision"): D_A_CLIP pushes fake_B and rec_B towards "high light", D_B_CLIP pushes
    fake_A and rec_A towards "low light".

    D_A_CLIP = clip(fake_B, high) + clip(rec_B, high),
    D_B_CLIP = clip(fake_A, low) + clip(rec_A, low).

    ``pools=None`` is the paper (§8.1, §8.2): the current images, with gradients. The
    release passes ``(pool_B, pool_A)``: fake_B, rec_B and fake_A go through ``pool_B``
    and rec_A through ``pool_A``; the pools return detached images, so no gradient flows
    and the terms are only logged — they are evaluated under ``no_grad`` here. Pools of size
    0 (``--pool_size 0``) return the images as they are, and then, as in the release, the
    terms train the generators.

    Args:
        clip_term: :class:`nerco.training.clip_term.CLIPTerm` (its ``loss(images, target)``).
        fake_B, rec_B, fake_A, rec_A: (N, 3, h, w) images of the two loops.
        pools: ``None`` or two :class:`nerco.training.image_pool.ImagePool`.

    Returns:
        ``D_A_CLIP`` and ``D_B_CLIP``, scalars.
    """
    if pools is None:
        return {
            "D_A_CLIP": clip_term.loss(fake_B, "high") + clip_term.loss(rec_B, "high"),
            "D_B_CLIP": clip_term.loss(fake_A, "low") + clip_term.loss(rec_A, "low"),
        }
    pool_B, pool_A = pools
    # Query order matters for the pools' random draws: the release's order.
    fake_B, rec_B, fake_A = pool_B.query(fake_B), pool_B.query(rec_B), pool_B.query(fake_A)
    rec_A = pool_A.query(rec_A)
    detached = pool_B.pool_size > 0 and pool_A.pool_size > 0
    with torch.no_grad() if detached else contextlib.nullcontext():
        return {
            "D_A_CLIP": clip_term.loss(fake_B, "high") + clip_term.loss(rec_B, "high"),
            "D_B_CLIP": clip_term.loss(fake_A, "low") + clip_term.loss(rec_A, "low"),
        }


def generator_total(terms: dict[str, torch.Tensor], weights: LossWeights) -> torch.Tensor:
    """The generators' objective (spec §2), one Adam step over Pre, G_A, G_B and H.

    (G_A + cycle_A + idt_A + λ_clip·D_A_CLIP + λ_edge·G_A_edge)
    + (G_B + cycle_B + idt_B + λ_clip·D_B_CLIP + λ_edge·G_B_edge) + λ_mask·H + PreConsis

    Args:
        terms: the scalars above, by logged name (``H`` is the mask extractor's loss).
        weights: λ_clip, λ_edge and λ_mask (the release's 0.5s).

    Returns:
        The scalar to back-propagate.
    """
    t, w = terms, weights  # short names keep the sum on the lines of the formula
    loss_A = (
        t["G_A"]
        + t["cycle_A"]
        + t["idt_A"]
        + w.lambda_clip * t["D_A_CLIP"]
        + w.lambda_edge * t["G_A_edge"]
    )
    loss_B = (
        t["G_B"]
        + t["cycle_B"]
        + t["idt_B"]
        + w.lambda_clip * t["D_B_CLIP"]
        + w.lambda_edge * t["G_B_edge"]
    )
    return loss_A + loss_B + w.lambda_mask * t["H"] + t["PreConsis"]


def discriminator_loss(
    D, real, fake, gan: GANLoss, real_prediction: torch.Tensor | None = None
) -> torch.Tensor:
    """One discriminator's loss, D_basic of spec §2 (the TAD's colour and edge paths).

    D_basic = 0.5·[GAN(D(real), 1) + GAN(D(fake.detach()), 0)].

    Args:
        D: a PatchGAN of the TAD, (N, 3, h, w) → (N, 1, h', w') logits.
        real, fake: (N, 3, h, w) images (for the edge discriminators, edge maps); ``fake``
            is detached here, so only D learns from this term.
        gan: the GAN criterion.
        real_prediction: D(real) when the caller already has it (same weights, same value).

    Returns:
        A scalar.
    """
    if real_prediction is None:
        real_prediction = D(real)
    return 0.5 * (gan(real_prediction, True) + gan(D(fake.detach()), False))
