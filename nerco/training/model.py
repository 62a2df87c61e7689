"""The NeRCo training model: the dual closed loop and its two optimisation steps.

NERCO_SPEC.md §2. Code names vs paper names:

=========  ==============================================
code       paper
=========  ==============================================
``Pre``    NRN, neural representation normalisation
``H``      ME, mask extractor (returns Hm and the mask)
``G_A``    G_H, enhancer (low → normal light)
``G_B``    G_L, degrader (normal → low light)
``D_A``    colour discriminator of normal light (TAD)
``D_B``    colour discriminator of low light (TAD)
``D_*_edge``  high-frequency path of the TAD
CLIP       text-driven path of the TAD
=========  ==============================================

Objectives: ``official`` reproduces the released code, ``paper`` the paper; they differ
only where spec §8 says, each in one branch that names its item.
"""

from __future__ import annotations

import contextlib
import itertools

import torch
from torch import nn

from nerco.networks.build import (
    AMP_DTYPES,
    DISCRIMINATOR_NAMES,
    Architecture,
    build_discriminators,
    build_generators,
)
from nerco.networks.checkpoint import load_network, network_path, save_network, unwrap
from nerco.networks.edge import DEFAULT_EDGE_FILTER, EdgeOperator
from nerco.training import losses
from nerco.training.image_pool import ImagePool
from nerco.training.losses import GANLoss, LossWeights
from nerco.training.memory import PaddedInputs, checkpointed

OBJECTIVES = ("official", "paper")


def _steps_taken(optimizer: torch.optim.Optimizer) -> int:
    """Adam steps applied so far (its step count lives on the CPU: reading it is free)."""
    state = optimizer.state.get(optimizer.param_groups[0]["params"][0])
    return int(state["step"]) if state else 0


class NeRCoModel(nn.Module):
    """Networks, pools and optimisers of one NeRCo training run.

    Args:
        arch: network hyper-parameters.
        objective: ``official`` (released code) or ``paper`` (spec §8 fixes).
        clip_term: a :class:`nerco.training.clip_term.CLIPTerm` (built once by the caller).
        weights: loss factors.
        gan_mode, pool_size, lr, beta1: as the CycleGAN options of the same names.
        amp: ``None`` (float32), ``"bf16"`` or ``"fp16"``: run forward passes and losses
            under autocast; fp16 scales the losses with a GradScaler. Call :meth:`to` before
            the first iteration: autocast follows the device of the inputs.
        checkpointing: activation checkpointing of every call of G_A, G_B, Pre and H in the
            generator step (``--checkpointing``): same losses and gradients, about a third
            more arithmetic, a fraction of the memory (:mod:`nerco.training.memory`).
        edge_filter: the edge operator's filter, a name of
            :data:`nerco.networks.edge.EDGE_FILTERS` (``--edge_filter``).
    """

    def __init__(
        self,
        arch: Architecture,
        clip_term,
        objective: str = "official",
        weights: LossWeights = LossWeights(),
        gan_mode: str = "lsgan",
        pool_size: int = 50,
        lr: float = 2e-4,
        beta1: float = 0.5,
        amp: str | None = None,
        checkpointing: bool = False,
        edge_filter: str = DEFAULT_EDGE_FILTER,
    ) -> None:
        super().__init__()
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        if amp is not None and amp not in AMP_DTYPES:
            raise ValueError(f"amp must be None or one of {tuple(AMP_DTYPES)}, got {amp!r}")
        self.amp = amp
        self.checkpointing = checkpointing
        self.arch = arch
        self.objective = objective
        self.weights = weights
        self.clip_term = clip_term
        self.generators = build_generators(arch)
        self.discriminators = build_discriminators(arch)
        self.padded_inputs = PaddedInputs(self.generators.values())
        self.gan = GANLoss(gan_mode)
        self.set_edge_filter(edge_filter)
        self.pools = {
            name: ImagePool(pool_size)
            for name in (
                "fake_B",
                "fake_A",
                "pre_A",
                "fake_B_edge",
                "fake_A_edge",
                "fake_B_clip",
                "fake_A_clip",
            )
        }
        self.optimizer_G = torch.optim.Adam(
            itertools.chain(
                *(self.generators[name].parameters() for name in ("Pre", "G_A", "G_B", "H"))
            ),
            lr=lr,
            betas=(beta1, 0.999),
        )
        self.optimizer_D = torch.optim.Adam(
            itertools.chain(
                *(self.discriminators[name].parameters() for name in DISCRIMINATOR_NAMES)
            ),
            lr=lr,
            betas=(beta1, 0.999),
        )
        self.scaler: torch.amp.GradScaler | None = None  # made on the first fp16 iteration
        self.skipped_steps = 0

    def set_edge_filter(self, edge_filter: str) -> None:
        """(Re)build the edge operator with ``edge_filter``: a resumed run takes the saved one."""
        device = self.edge.grey.device if hasattr(self, "edge") else torch.device("cpu")
        # §8.4: the released edge operator draws a random 1→3 projection at every call.
        self.edge = EdgeOperator(
            random_projection=self.objective == "official", edge_filter=edge_filter
        ).to(device)

    # ------------------------------------------------------------ mixed precision
    def _autocast(self, device: torch.device):
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=AMP_DTYPES[self.amp])

    def _scaler(self, device: torch.device) -> torch.amp.GradScaler:
        if self.scaler is None:
            self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp == "fp16")
        return self.scaler

    # -------------------------------------------------------- multi-process (DDP)
    def distribute(self, device: torch.device) -> None:
        """Wrap every network in DistributedDataParallel (process group already joined).

        Gradients of the generators are averaged in the generator step and those of the
        discriminators in the discriminator step; the generator step calls the bare
        discriminators (frozen there), so their wrappers never wait for gradients that do
        not come. Checkpoints stay free of the ``module.`` prefix.
        """
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        for group in (self.generators, self.discriminators):
            for name in list(group.keys()):
                group[name] = DistributedDataParallel(group[name], device_ids=ids)

    # ----------------------------------------------------------------- forward (§2)
    def _generators(self) -> dict:
        """The four generators by name, as functions: checkpointed with ``checkpointing``."""
        if not self.checkpointing:
            return dict(self.generators.items())
        return {name: checkpointed(net) for name, net in self.generators.items()}

    def forward(self, real_A: torch.Tensor, real_B: torch.Tensor) -> dict[str, torch.Tensor]:
        """Both loops of §2: the images of one iteration by name, the "visuals".

        Args:
            real_A, real_B: low-light and normal-light batches, (N, 3, h, w) in [-1, 1].

        Returns:
            Every tensor is (N, 3, h, w) except ``mask``, (N, 1, h, w) in (0, 1).
        """
        generators = self._generators()
        pre_A = generators["Pre"](real_A)
        Hm, mask = generators["H"](real_A)
        fake_B = generators["G_A"](torch.cat((real_A, pre_A), 1) * mask)
        rec_A = generators["G_B"](fake_B)
        fake_A = generators["G_B"](real_B * mask)  # the mask of real_A gates real_B
        pre_A1 = generators["Pre"](fake_A)
        rec_B = generators["G_A"](torch.cat((fake_A, pre_A1), 1))  # no mask on this loop
        return {
            "real_A": real_A,
            "real_B": real_B,
            "pre_A": pre_A,
            "Hm": Hm,
            "mask": mask,
            "fake_B": fake_B,
            "rec_A": rec_A,
            "fake_A": fake_A,
            "pre_A1": pre_A1,
            "rec_B": rec_B,
        }

    # ------------------------------------------------------------ generator step
    def compute_G_loss(self, visuals: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        """Generator objective of §2 on :meth:`forward`'s ``visuals``: (weighted total to
        back-propagate, the unweighted terms by logged name)."""
        generators, weights, gan = self._generators(), self.weights, self.gan
        # The bare discriminators (no DDP wrapper): frozen in this step.
        frozen = {name: unwrap(net) for name, net in self.discriminators.items()}
        real_A, real_B, pre_A, Hm = (visuals[k] for k in ("real_A", "real_B", "pre_A", "Hm"))
        fake_B, rec_A, fake_A, rec_B = (visuals[k] for k in ("fake_B", "rec_A", "fake_A", "rec_B"))
        paper = self.objective == "paper"
        terms = losses.identity_losses(
            generators["G_A"], generators["G_B"], real_A, real_B, weights
        )
        # GAN(D_B(Pre(A))) enters G_B and PreConsis: computed once, handed to both.
        gan_pre_A = losses.nrn_adversarial_loss(frozen["D_B"], pre_A, gan)
        # §8.3: the release feeds raw images to the edge discriminators; the paper, edges.
        terms |= losses.adversarial_losses(
            frozen["D_A"],
            frozen["D_B"],
            frozen["D_A_edge"],
            frozen["D_B_edge"],
            fake_B,
            fake_A,
            gan_pre_A,
            gan,
            edge=self.edge if paper else None,
        )
        terms |= losses.cycle_losses(real_A, real_B, rec_A, rec_B, weights)
        terms["PreConsis"] = losses.nrn_consistency_loss(pre_A, real_A, gan_pre_A, weights)
        terms["H"] = losses.mask_extractor_loss(
            generators["G_A"],
            generators["H"],
            frozen["D_A"],
            frozen["D_B"],
            real_A,
            real_B,
            Hm,
            fake_B,
            fake_A,
            gan,
        )
        # §8.1/§8.2: the release sends CLIP's inputs through (mixed-up) history pools,
        # which detach them; the paper supervises the generators with the current images.
        pools = None if paper else (self.pools["fake_B_clip"], self.pools["fake_A_clip"])
        terms |= losses.clip_losses(self.clip_term, fake_B, rec_B, fake_A, rec_A, pools=pools)
        return losses.generator_total(terms, weights), terms

    # -------------------------------------------------------- discriminator step
    def compute_D_loss(self, visuals: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        """Discriminator objective of §2 on :meth:`forward`'s ``visuals`` (generated images
        detached), in the release's order of pool queries: (sum, the four terms by name)."""
        discriminators, pools, gan = self.discriminators, self.pools, self.gan
        real_A, real_B, pre_A = visuals["real_A"], visuals["real_B"], visuals["pre_A"]
        fake_A, fake_B = visuals["fake_A"], visuals["fake_B"]
        basic = losses.discriminator_loss
        terms = {"D_A": basic(discriminators["D_A"], real_B, pools["fake_B"].query(fake_B), gan)}
        # The release evaluates D_B(real_A) twice with the same weights: once here.
        D_B = discriminators["D_B"]
        verdict = D_B(real_A)
        terms["D_B"] = basic(
            D_B, real_A, pools["fake_A"].query(fake_A), gan, real_prediction=verdict
        ) + basic(D_B, real_A, pools["pre_A"].query(pre_A), gan, real_prediction=verdict)
        with torch.no_grad():
            fake_B_edge = pools["fake_B_edge"].query(self.edge(fake_B))
            real_B_edge = self.edge(real_B)
        terms["D_A_edge"] = basic(discriminators["D_A_edge"], real_B_edge, fake_B_edge, gan)
        with torch.no_grad():
            fake_A_edge = pools["fake_A_edge"].query(self.edge(fake_A))
            real_A_edge = self.edge(real_A)
        terms["D_B_edge"] = basic(discriminators["D_B_edge"], real_A_edge, fake_A_edge, gan)
        return sum(terms.values()), terms

    def optimize_parameters(self, real_A: torch.Tensor, real_B: torch.Tensor) -> dict[str, float]:
        """One iteration: forward, generator step with D frozen, then discriminator step.

        Returns every logged loss (computed from the weights before this iteration's steps);
        ``self.skipped_steps`` is then the number of the two steps that the fp16 loss scaler
        skipped (always 0 without ``amp="fp16"``).
        """
        autocast, scaler = self._autocast(real_A.device), self._scaler(real_A.device)
        fp16 = scaler.is_enabled()
        optimizers = (self.optimizer_G, self.optimizer_D)
        steps_before = [_steps_taken(o) for o in optimizers] if fp16 else []
        self.discriminators.requires_grad_(False)
        self.optimizer_G.zero_grad(set_to_none=True)
        # Autograd keeps reflection pads' inputs rather than padded copies (nerco.training.memory).
        with autocast, self.padded_inputs.saving():
            visuals = self.forward(real_A, real_B)
            loss_G, g_terms = self.compute_G_loss(visuals)
        scaler.scale(loss_G).backward()
        scaler.step(self.optimizer_G)
        # Gradients are set to None once used, so that neither step holds the other's.
        self.optimizer_G.zero_grad(set_to_none=True)
        self.discriminators.requires_grad_(True)
        self.optimizer_D.zero_grad(set_to_none=True)
        with autocast:
            loss_D, d_terms = self.compute_D_loss(visuals)
        scaler.scale(loss_D).backward()
        scaler.step(self.optimizer_D)
        self.optimizer_D.zero_grad(set_to_none=True)
        scaler.update()
        # Steps the fp16 GradScaler skipped (inf/NaN gradients): Adam did not count them.
        if fp16:
            steps_after = [_steps_taken(o) for o in optimizers]
            self.skipped_steps = sum(b == a for b, a in zip(steps_before, steps_after))
        self.visuals = {k: t.detach().float() for k, t in visuals.items()}
        terms = g_terms | d_terms
        # All losses reach the host in one transfer (the iteration's only synchronisation).
        values = torch.stack([terms[name].detach().float() for name in losses.LOSS_NAMES])
        return dict(zip(losses.LOSS_NAMES, values.tolist()))

    # ------------------------------------------------------------ training state
    def training_state(self) -> dict:
        """Optimisers, image pools and loss scaler: what a resumed run needs besides weights."""
        return {
            "optimizer_G": self.optimizer_G.state_dict(),
            "optimizer_D": self.optimizer_D.state_dict(),
            "pools": {name: pool.state_dict() for name, pool in self.pools.items()},
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
        }

    def load_training_state(self, state: dict, device: torch.device) -> None:
        """Restore what :meth:`training_state` returned (weights are loaded separately)."""
        self.optimizer_G.load_state_dict(state["optimizer_G"])
        self.optimizer_D.load_state_dict(state["optimizer_D"])
        for name, pool in self.pools.items():
            pool.load_state_dict(state["pools"][name], device)
        if state.get("scaler") and self.amp == "fp16":
            self._scaler(device).load_state_dict(state["scaler"])

    # ---------------------------------------------------------------- weights
    def networks(self) -> dict[str, nn.Module]:
        """All eight networks by checkpoint name."""
        return dict(self.generators.items()) | dict(self.discriminators.items())

    def save_networks(self, checkpoint_dir: str, label: str | int) -> None:
        for name, net in self.networks().items():
            save_network(net, network_path(checkpoint_dir, label, name))

    def load_networks(self, checkpoint_dir: str, label: str | int, names=None) -> None:
        nets = self.networks()
        for name in names or nets:
            load_network(nets[name], network_path(checkpoint_dir, label, name))
