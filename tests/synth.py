"""Deterministic synthetic weights, the rule of the reference vectors (tests/data/README.md).

A tensor named ``name`` of network ``prefix`` is drawn with numpy's legacy RandomState seeded
with ``seed + crc32(prefix + "." + name)`` (``crc32(name)`` without a prefix) and scaled:
running statistics and logit_scale get fixed values, 1-D weights ``1 + 0.1 n``, other 1-D
tensors ``0.05 n``, others ``n / sqrt(fan_in)``.
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).parent / "data"
SEED = 101


def synth_tensor(name: str, shape, seed: int, prefix: str = "") -> torch.Tensor:
    shape = tuple(int(s) for s in shape)
    leaf = name.rsplit(".", 1)[-1]
    fixed = {"running_mean": 0.0, "running_var": 1.0, "logit_scale": math.log(1 / 0.07)}
    if leaf == "num_batches_tracked":
        return torch.zeros(shape, dtype=torch.long)
    if leaf in fixed:
        return torch.full(shape, fixed[leaf])
    tag = f"{prefix}.{name}" if prefix else name
    rng = np.random.RandomState((seed + zlib.crc32(tag.encode())) % 2**32)
    n = rng.standard_normal(size=shape).astype(np.float32)
    if len(shape) <= 1:
        n = 1.0 + 0.1 * n if leaf == "weight" else 0.05 * n
    else:
        n = n / math.sqrt(float(np.prod(shape[1:])))
    return torch.from_numpy(np.ascontiguousarray(n))


def synth_state_dict(manifest: dict, seed: int = SEED, prefix: str = "") -> dict:
    return {k: synth_tensor(k, v, seed, prefix) for k, v in manifest.items()}


def network_manifests() -> dict:
    return json.loads((DATA / "checkpoint_keys.json").read_text())


def clip_manifest() -> dict:
    return json.loads((DATA / "clip_rn50_openai_keys.json").read_text())


def write_network_weights(folder: Path, label: str, names, seed: int = SEED) -> None:
    """Write ``<label>_net_<NAME>.pth`` for each name, as a user's checkpoint folder."""
    folder.mkdir(parents=True, exist_ok=True)
    manifests = network_manifests()
    for name in names:
        torch.save(
            synth_state_dict(manifests[name], seed, prefix=name), folder / f"{label}_net_{name}.pth"
        )
