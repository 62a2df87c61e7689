"""The CUDA code paths, run on a real GPU: ``pytest -m cuda`` (``scripts/gpu_check.sh``).

Every test here is marked ``cuda`` and skips without a CUDA device, so the default suite on
a CPU machine only collects them. What each one compares, and why its tolerance:

* **Training on CUDA against the CPU.** The first iteration from the same weights and
  inputs: its 16 losses (the forward) and the gradients each optimiser steps with (the
  backward, by cosine similarity). float32 with TF32 off differs only in summation order
  (relative 1e-6 per layer): losses within 1e-4, and four iterations in a row within 2e-3
  (Adam's first update, lr·g/(|g| + eps), turns gradient noise into at most ~lr on
  weights whose gradient is itself noise). PyTorch's default lets cuDNN convolutions use
  TF32 (10 mantissa bits, relative 5e-4 per convolution, some 60 deep): 1e-2. bf16 keeps
  8 mantissa bits: losses within 3e-2, gradients at cosine >= 0.85 (measured 0.88 / 0.97
  on the CPU). fp16's GradScaler skips the first steps while it finds its scale (it
  starts at 2^16): its first losses are compared at 3e-2 and the run must take real steps
  afterwards. The ``paper`` objective is used: the official one draws a random edge
  projection on the device at each call (spec §8.4), which no CPU run can reproduce.
* **Enhancement on CUDA against the CPU**, on the no-autograd path (images >= 128²) with
  GPU-sized bands: float32 with TF32 off within 1e-4 on [-1, 1] outputs, TF32 within
  2e-2; bf16 / fp16 within a mean of 1.5 and a 99th percentile of 6 8-bit levels (random
  weights amplify rounding more than trained ones: with the demo's trained weights bf16 is
  0.14 levels on average, docs/performance.md).
* **Command lines**: test.py with batches (each batch size gives the same PNGs within one
  level: cuDNN may pick another algorithm per batch size), torchrun + NCCL without
  ``--seed``, SIGTERM under torchrun (saves a resumable ``latest``), ``--checkpointing``.
"""

from __future__ import annotations

import copy
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, make_image, randomise
from PIL import Image

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

#: Losses whose value depends on the official objective's random edge projection.
RANDOM_EDGE = ("D_A_edge", "D_B_edge")


@pytest.fixture()
def fp32_exact():
    """float32 without TF32 for the duration of a test."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _images(size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    real_A = torch.rand(1, 3, size, size, generator=gen) * 0.6 - 1  # dark
    real_B = torch.rand(1, 3, size, size, generator=gen) * 2 - 1
    return real_A, real_B


def _models(amp: str | None, ngf: int = 16, checkpointing: bool = False):
    """The same freshly initialised model on the CPU (float32) and on CUDA (``amp``)."""
    from nerco.networks.build import Architecture
    from nerco.training.clip_term import CLIPTerm, build_clip
    from nerco.training.model import NeRCoModel

    torch.manual_seed(0)
    clip = build_clip(random_init=True)
    models = []
    for device, options in (("cpu", {}), ("cuda", {"amp": amp, "checkpointing": checkpointing})):
        term = CLIPTerm(copy.deepcopy(clip).to(device), normalize_input=True)  # paper: §8.5
        torch.manual_seed(1)  # the same initial weights for both
        models.append(
            NeRCoModel(
                Architecture(ngf=ngf, ndf=ngf), term, objective="paper", pool_size=4, **options
            ).to(device)
        )
    return tuple(models)


def _iterations(model, device, real_A, real_B, count: int) -> list[dict[str, float]]:
    import random

    random.seed(3)  # the pools draw from Python's generator
    return [model.optimize_parameters(real_A.to(device), real_B.to(device)) for _ in range(count)]


def _first_step(model, device, real_A, real_B) -> tuple[dict[str, float], dict]:
    """One iteration's losses and the gradients each optimiser stepped with (flattened,
    float32, unscaled: GradScaler unscales before it calls ``step``)."""
    grads = {}
    for name in ("optimizer_G", "optimizer_D"):
        optimizer = getattr(model, name)

        def step(*args, _name=name, _opt=optimizer, _step=optimizer.step, **kwargs):
            grads[_name] = torch.cat(
                [
                    p.grad.detach().float().flatten().cpu()
                    for group in _opt.param_groups
                    for p in group["params"]
                    if p.grad is not None
                ]
            )
            return _step(*args, **kwargs)

        optimizer.step = step
    return _iterations(model, device, real_A, real_B, 1)[0], grads


def _assert_losses_close(got: dict, want: dict, rtol: float, atol: float) -> None:
    bad = {
        name: (got[name], want[name])
        for name in want
        if abs(got[name] - want[name]) > rtol * abs(want[name]) + atol
    }
    assert not bad, f"losses off by more than rtol {rtol}, atol {atol}: {bad}"


@pytest.mark.parametrize(
    "amp,tf32,rtol,atol,cosine",
    [
        (None, False, 1e-4, 1e-6, 0.9999),
        (None, True, 1e-2, 1e-4, 0.999),
        ("bf16", True, 3e-2, 1e-3, 0.85),
    ],
)
def test_training_step_on_cuda_matches_the_cpu(amp, tf32, rtol, atol, cosine):
    """The first iteration's losses (the forward) and the gradients of both steps (the
    backward). Later iterations are not compared under TF32 or bf16: Adam's first update,
    lr·g/|g|, moves every weight by about lr whatever the gradient's size, so rounding noise
    in the smallest gradients flips whole updates (bf16: the second iteration's losses
    differ by up to 17 % between bf16 and float32 on the CPU alone). The bf16 gradients'
    cosine similarity to float32's was measured on the CPU at 0.884 (generators) and 0.966
    (discriminators) for this model; CUDA's bf16 kernels accumulate in float32, the CPU's
    instance norm in bf16, so the GPU should do no worse than 0.85."""
    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = tf32
    try:
        cpu, cuda = _models(amp)
        real_A, real_B = _images(64, seed=1)
        want, want_grads = _first_step(cpu, torch.device("cpu"), real_A, real_B)
        got, got_grads = _first_step(cuda, torch.device("cuda"), real_A, real_B)
    finally:
        torch.backends.cudnn.allow_tf32 = saved
    _assert_losses_close(got, want, rtol, atol)
    for name, expected in want_grads.items():
        similarity = torch.nn.functional.cosine_similarity(got_grads[name], expected, dim=0)
        assert similarity >= cosine, f"{name}: gradient cosine {similarity:.6f} < {cosine}"


def test_float32_training_on_cuda_follows_the_cpu_for_several_steps(fp32_exact):
    """Without TF32 the two runs differ only in summation order: 4 iterations agree."""
    cpu, cuda = _models(None)
    real_A, real_B = _images(64, seed=1)
    want = _iterations(cpu, torch.device("cpu"), real_A, real_B, 4)
    got = _iterations(cuda, torch.device("cuda"), real_A, real_B, 4)
    for have, expected in zip(got, want):
        _assert_losses_close(have, expected, 2e-3, 1e-4)


def test_fp16_training_scales_losses_and_takes_steps():
    cpu, cuda = _models("fp16")
    real_A, real_B = _images(64, seed=2)
    want = _iterations(cpu, torch.device("cpu"), real_A, real_B, 1)[0]
    initial = {n: p.detach().cpu().clone() for n, p in cuda.generators["G_A"].named_parameters()}
    got = _iterations(cuda, torch.device("cuda"), real_A, real_B, 12)
    _assert_losses_close(got[0], want, 3e-2, 1e-2)
    assert all(np.isfinite(list(losses.values())).all() for losses in got)
    scaler = cuda.scaler
    assert scaler is not None and scaler.is_enabled()
    # Skipped steps halve the scale; taken ones leave it. Over 12 iterations (24 steps of
    # the one scaler: G and D) it must have settled below 2^16 and the weights moved.
    assert scaler.get_scale() < 2.0**16
    moved = any(
        not torch.equal(p.detach().cpu(), initial[n])
        for n, p in cuda.generators["G_A"].named_parameters()
    )
    assert moved, "fp16: every optimiser step was skipped"


def test_checkpointing_on_cuda_gives_the_same_losses_with_less_memory(fp32_exact):
    results = {}
    for checkpointing in (False, True):
        _, cuda = _models(None, ngf=32, checkpointing=checkpointing)
        real_A, real_B = _images(256, seed=4)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        losses = _iterations(cuda, torch.device("cuda"), real_A, real_B, 2)
        torch.cuda.synchronize()
        results[checkpointing] = losses, torch.cuda.max_memory_allocated()
        del cuda
        torch.cuda.empty_cache()
    (plain, plain_peak), (ckpt, ckpt_peak) = results[False], results[True]
    for have, want in zip(ckpt, plain):
        _assert_losses_close(have, want, 1e-4, 1e-6)
    print(
        f"peak CUDA memory at 256², ngf 32: plain {plain_peak / 2**30:.2f} GiB, "
        f"--checkpointing {ckpt_peak / 2**30:.2f} GiB"
    )
    assert ckpt_peak < 0.7 * plain_peak


def _enhancer(ngf: int = 16):
    from nerco.inference.enhancer import Enhancer
    from nerco.networks.build import ENHANCER_NAMES, Architecture, build_generators

    nets = build_generators(Architecture(ngf=ngf), names=ENHANCER_NAMES)
    for i, net in enumerate(nets.values()):
        randomise(net, seed=i, scale=0.05)
    return Enhancer(nets["Pre"], nets["H"], nets["G_A"]).eval().requires_grad_(False)


def _photo(width: int, height: int, seed: int) -> torch.Tensor:
    return torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(seed)) - 1


@pytest.mark.parametrize("tf32,atol", [(False, 1e-4), (True, 2e-2)])
def test_enhancement_on_cuda_matches_the_cpu(tf32, atol):
    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = tf32
    try:
        enhancer = _enhancer()
        x = _photo(403, 258, seed=5)  # odd sizes: pad and crop on the GPU too
        with torch.no_grad():
            want = enhancer(x)
            got = copy.deepcopy(enhancer).cuda()(x.cuda()).cpu()
    finally:
        torch.backends.cudnn.allow_tf32 = saved
    torch.testing.assert_close(got, want, rtol=0, atol=atol)


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_enhancement_on_cuda_is_within_a_few_levels(amp):
    enhancer = _enhancer()
    x = _photo(640, 384, seed=6)
    with torch.no_grad():
        want = enhancer(x)
        fast = copy.deepcopy(enhancer).cuda()
        fast.amp = amp
        got = fast(x.cuda()).cpu()
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    levels = ((got - want).abs() * 127.5).flatten()
    assert levels.mean() < 1.5 and torch.quantile(levels, 0.99) < 6, (
        f"{amp}: mean {levels.mean():.2f}, p99 {torch.quantile(levels, 0.99):.2f} levels"
    )


def test_4k_photo_enhances_in_bf16_within_memory():
    enhancer = _enhancer(ngf=64).cuda()
    enhancer.amp = "bf16"
    x = _photo(3840, 2160, seed=7).cuda()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    with torch.no_grad():
        y = enhancer(x)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() / 2**30
    print(f"3840x2160 bf16 enhancement: peak {peak:.2f} GiB")
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert peak < 24, f"a 4K photo took {peak:.1f} GiB"


# ------------------------------------------------------------------ command lines
TRAIN = (
    "--ngf 8 --ndf 8 --gpu_ids 0 --num_threads 0 --display_id 0 "
    "--clip_weights random --load_size 68 --crop_size 64 "
    "--print_freq 1 --pool_size 2"
).split()


@pytest.fixture()
def train_data(tmp_path) -> Path:
    root = tmp_path / "data"
    for i in range(4):
        make_image(root / "trainA" / f"low{i}.png", (72, 68), seed=i, dark=True)
        make_image(root / "trainB" / f"normal{i}.png", (70, 68), seed=10 + i)
    return root


def _torchrun(*args) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "1",
        str(ROOT / "train.py"),
        *map(str, args),
    ]


def test_torchrun_nccl_without_seed(train_data, tmp_path):
    """The README's torchrun command (no --seed): the seed is broadcast over NCCL; data
    workers with pinned memory feed the GPU."""
    cmd = _torchrun(
        "--dataroot",
        train_data,
        "--checkpoints_dir",
        tmp_path,
        *"--name nccl --n_epochs 1 --n_epochs_decay 1".split(),
        *TRAIN,
        "--num_threads",
        "2",
    )
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = (tmp_path / "nccl" / "train.log").read_text()
    assert "nccl" in log.lower() and "training finished" in log, log[-3000:]
    assert (tmp_path / "nccl" / "latest_net_G_A.pth").is_file()


def _run_until(cmd: list[str], ready, timeout: float = 240) -> tuple[int, str]:
    """Start ``cmd``, send SIGTERM once ``ready()`` holds, return (exit status, output)."""
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None and not ready():
            time.sleep(0.5)
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        proc.send_signal(signal.SIGTERM)  # what Slurm and Kubernetes send first
        out = proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out


def test_sigterm_under_torchrun_saves_a_resumable_latest(train_data, tmp_path):
    run_dir = tmp_path / "term"
    args = [
        "--dataroot",
        train_data,
        "--checkpoints_dir",
        tmp_path,
        *"--name term --n_epochs 500 --n_epochs_decay 0 --seed 1".split(),
        *TRAIN,
    ]
    log = run_dir / "loss_log.jsonl"
    status, out = _run_until(
        _torchrun(*args), lambda: log.is_file() and log.read_text().count("\n") >= 3
    )
    assert status != 0 and (run_dir / "latest_train_state.pth").is_file(), out[-3000:]
    done = log.read_text().count("\n")
    train_log = run_dir / "train.log"
    status, out = _run_until(
        [sys.executable, str(ROOT / "train.py"), *map(str, args), "--continue_train"],
        lambda: "resuming epoch" in train_log.read_text(),
    )
    assert status == 128 + signal.SIGTERM, out[-3000:]
    assert "resuming epoch" in train_log.read_text()
    assert log.read_text().count("\n") >= done  # the log goes on, nothing was lost


def test_test_py_batches_give_the_same_images(tmp_path):
    from nerco.networks.build import ENHANCER_NAMES

    saves = tmp_path / "saves" / "m"
    saves.mkdir(parents=True)
    enhancer = _enhancer()
    for name in ENHANCER_NAMES:
        torch.save(getattr(enhancer, name).state_dict(), saves / f"latest_net_{name}.pth")
    photos = tmp_path / "photos"
    for i in range(6):
        make_image(photos / f"same{i}.png", (256, 192), seed=i, dark=True)
    make_image(photos / "other.png", (200, 136), seed=9, dark=True)
    outputs = {}
    for batch in (1, 4):
        out = tmp_path / f"out{batch}"
        proc = subprocess.run(
            [
                sys.executable,
                str(ROOT / "test.py"),
                "--name",
                "m",
                "--checkpoints_dir",
                str(tmp_path / "saves"),
                "--input",
                str(photos),
                "--output",
                str(out),
                "--gpu_ids",
                "0",
                "--batch_size",
                str(batch),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        outputs[batch] = {
            p.name: np.asarray(Image.open(p), dtype=np.int16) for p in sorted(out.glob("*.png"))
        }
    assert sorted(outputs[1]) == sorted(outputs[4]) and len(outputs[1]) == 7
    for name, image in outputs[1].items():
        assert np.abs(outputs[4][name] - image).max() <= 1, name
