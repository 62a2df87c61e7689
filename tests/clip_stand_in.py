"""A CLIP term whose image tower is a small per-image encoder instead of CLIP RN50's.

For tests of the model around CLIP (batches, options, schedules) where RN50 at 224² would
be most of the cost: the prompts' text features, the logit scale, the resizing to 224², the
normalisation and the loss are CLIP's; only the image tower is smaller. Like RN50 in eval
mode it sees each image on its own.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from nerco.training.clip_term import CLIPTerm

_TERMS: dict[tuple[int, bool], CLIPTerm] = {}  # the prompts encoded once per CLIP


def small_clip_term(
    clip: nn.Module, normalize_input: bool = False, dtype: torch.dtype = torch.float32
) -> CLIPTerm:
    """:class:`CLIPTerm` of ``clip`` (text features, logit scale) with a small, seeded,
    frozen image tower, in ``dtype``."""
    key = (id(clip), normalize_input)
    if key not in _TERMS:
        _TERMS[key] = CLIPTerm(clip, normalize_input=normalize_input)
    term = copy.copy(_TERMS[key])
    with torch.random.fork_rng():  # the caller's random stream stays as it was
        torch.manual_seed(5)
        tower = nn.Sequential(
            nn.Conv2d(3, 8, 8, stride=8),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(8, term.text_features.shape[1]),
        )
    term.visual = tower.to(dtype).eval().requires_grad_(False)
    term.text_features = term.text_features.to(dtype)
    term.logit_scale = term.logit_scale.to(dtype)
    term.mean, term.std = term.mean.to(dtype), term.std.to(dtype)
    return term
