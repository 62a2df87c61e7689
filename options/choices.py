"""The names and defaults the options offer, without importing torch.

Each table mirrors the one in the module that uses it (named beside it), so that a command
with a bad option stops before torch loads; tests/test_options.py fails when they drift
apart.
"""

from __future__ import annotations

from data.sizes import PREPROCESS_CHOICES

GENERATORS = ("resnet_9blocks", "resnet_6blocks")  # nerco.networks.build.GENERATOR_BLOCKS
DISCRIMINATORS = ("basic", "n_layers", "pixel")  # nerco.networks.build.DISCRIMINATORS
NORMS = ("instance", "batch", "none")  # nerco.networks.generator.get_norm_layer
INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal")  # nerco.networks.build.INIT_TYPES
LR_POLICIES = ("linear", "step", "plateau", "cosine")  # nerco.training.schedules.LR_POLICIES
GAN_MODES = ("lsgan", "vanilla", "wgangp")  # nerco.training.losses.GAN_MODES
OBJECTIVES = ("official", "paper")  # nerco.training.model.OBJECTIVES
EDGE_FILTERS = ("gradient", "sobel", "laplacian")  # nerco.networks.edge.EDGE_FILTERS
AMP_MODES = ("none", "bf16", "fp16")
#: nerco.training.losses.LossWeights' defaults, the release's factors.
LOSS_WEIGHTS = {
    "lambda_A": 10.0,
    "lambda_B": 10.0,
    "lambda_identity": 0.5,
    "lambda_pre": 4.0,
    "lambda_clip": 0.5,
    "lambda_edge": 0.5,
    "lambda_mask": 0.5,
}

__all__ = [
    "AMP_MODES",
    "DISCRIMINATORS",
    "EDGE_FILTERS",
    "GAN_MODES",
    "GENERATORS",
    "INIT_TYPES",
    "LOSS_WEIGHTS",
    "LR_POLICIES",
    "NORMS",
    "OBJECTIVES",
    "PREPROCESS_CHOICES",
]
