"""train.py with the non-default options, one tiny run per variant: --batch_size 2,
--gan_mode vanilla / wgangp, --lr_policy step / cosine / plateau, --netD pixel, --norm batch,
--save_by_iter. Each run must finish and log finite losses; each variant must also show
its own effect (counters, learning rates, saved keys, labels).
"""

from __future__ import annotations

import math

import pytest
import torch
from clip_stand_in import small_clip_term
from conftest import ALL_NETS, make_image
from inference_calls import run_test_py

import nerco.training.loop
import nerco.training.trainer
import train
from nerco.training.loss_log import read_jsonl

LR = 2e-4
# One image per folder (--max_dataset_size 1): one iteration per epoch. Two epochs: the
# release's linear rule trains epoch 1 at LR and the last epoch at 0, so the second
# iteration's losses come after one real step.
RUN = [
    *(
        "--ngf 4 --ndf 4 --gpu_ids -1 --num_threads 0 --display_id 0 "
        "--clip_weights random --load_size 36 --crop_size 32 --n_epochs 2 "
        "--n_epochs_decay 0 --print_freq 1 --pool_size 2 --seed 7 --lr"
    ).split(),
    str(LR),
    "--no_html",
    "--max_dataset_size",
    "1",
]
#: Logged terms without a GAN loss in them: the same in the first iteration of any gan_mode.
NON_GAN_TERMS = ("cycle_A", "cycle_B", "idt_A", "idt_B", "D_A_CLIP", "D_B_CLIP")
GAN_TERMS = ("D_A", "G_A", "D_B", "G_B", "G_A_edge", "G_B_edge", "PreConsis", "H")


@pytest.fixture(scope="module")
def train_run(tmp_path_factory, random_clip):
    """``run(name, *options)`` trains in this process and returns its folder and loss log.

    CLIP is the session's random CLIP (what ``--clip_weights random`` builds) with a small
    image tower (clip_stand_in), the loss curves are not drawn, and torch uses one thread:
    RN50 at 224², matplotlib and two threads contending for a busy CPU over layers of 4
    channels made most of each run's time, and none of them is what these tests are for.
    """
    root = tmp_path_factory.mktemp("data")
    for i in range(3):
        make_image(root / "trainA" / f"low{i}.png", (36, 36), seed=i, dark=True)
    for i in range(2):
        make_image(root / "trainB" / f"normal{i}.png", (40, 36), seed=10 + i)
    make_image(root / "testA" / "a.png", (37, 23), seed=20, dark=True)
    saves = tmp_path_factory.mktemp("saves")

    def run(name: str, *options):
        args = ["--dataroot", root, "--checkpoints_dir", saves, "--name", name, *RUN, *options]
        threads = torch.get_num_threads()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(nerco.training.trainer, "build_clip", lambda *a, **k: random_clip)
            patch.setattr(nerco.training.trainer, "CLIPTerm", small_clip_term)
            patch.setattr(nerco.training.loop, "plot_loss_curves", lambda *a, **k: None)
            torch.set_num_threads(1)
            try:
                assert train.main([str(a) for a in args]) == 0
            finally:
                torch.set_num_threads(threads)
        records = read_jsonl(saves / name / "loss_log.jsonl")
        for record in records:
            assert all(math.isfinite(v) for v in record["losses"].values()), record
        return saves / name, records

    run.root = root
    return run


def _weights(run_dir, label: str, name: str) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / f"{label}_net_{name}.pth", weights_only=True)


@pytest.fixture(scope="module")
def lsgan_records(train_run) -> list[dict]:
    return train_run("lsgan")[1]


def test_batch_size_two(train_run):
    """Counters count samples (as the release): 3 images, steps of 2 and 1 per epoch."""
    run_dir, records = train_run("batch2", "--batch_size", "2", "--max_dataset_size", "3")
    assert [(r["epoch"], r["epoch_iter"], r["total_iters"]) for r in records] == [
        (1, 2, 2),
        (1, 3, 3),
        (2, 2, 5),
        (2, 3, 6),
    ]
    assert all((run_dir / f"latest_net_{name}.pth").is_file() for name in ALL_NETS)


@pytest.mark.parametrize("mode", ["vanilla", "wgangp"])
def test_gan_mode(train_run, lsgan_records, mode):
    """Same seed, same first forward pass: the terms without a GAN loss equal the LSGAN
    run's, every term with one differs."""
    _, records = train_run(mode, "--gan_mode", mode)
    assert len(records) == 2
    first, lsgan = records[0]["losses"], lsgan_records[0]["losses"]
    for name in NON_GAN_TERMS:
        assert first[name] == pytest.approx(lsgan[name], rel=1e-6), name
    for name in GAN_TERMS:
        assert first[name] != pytest.approx(lsgan[name], rel=1e-3), name
    if mode == "vanilla":  # binary cross-entropies
        assert all(first[n] > 0 for n in ("D_A", "D_B", "G_A", "G_B"))


# Release timing: the schedule steps at the start of every epoch, so epoch e (from 1)
# trains with the rate after e steps.
@pytest.mark.parametrize(
    "policy, options, rates",
    [
        # StepLR(step_size=2, gamma=0.1): 0.1^(e // 2)
        ("step", ["--lr_decay_iters", "2"], [LR, LR * 0.1, LR * 0.1]),
        # CosineAnnealingLR(T_max=n_epochs=3): (1 + cos(π e / 3)) / 2
        ("cosine", [], [LR * 0.75, LR * 0.25, 0.0]),
    ],
)
def test_lr_policy(train_run, policy, options, rates):
    _, records = train_run(policy, "--lr_policy", policy, "--n_epochs", "3", *options)
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert [r["lr"] for r in records] == pytest.approx(rates, abs=1e-12)


def test_lr_policy_plateau_builds_and_runs(train_run):
    _, records = train_run("plateau", "--lr_policy", "plateau")
    assert len(records) == 2


def test_pixel_discriminators(train_run):
    from nerco.networks.build import Architecture, define_D
    from nerco.training.model import NeRCoModel

    run_dir, records = train_run("pixel", "--netD", "pixel")
    assert len(records) == 2
    want = {k: v.shape for k, v in define_D(3, ndf=4, netD="pixel").state_dict().items()}
    for name in ("D_A", "D_B", "D_A_edge", "D_B_edge"):
        assert {k: v.shape for k, v in _weights(run_dir, "latest", name).items()} == want
    model = NeRCoModel(Architecture(ngf=4, ndf=4, netD="pixel"), clip_term=None)
    model.load_networks(str(run_dir), "latest")


def test_batch_norm_state_saved_and_loaded(train_run, tmp_path):
    """--norm batch: running statistics are trained, saved, loaded for training and for
    test.py (which reads the norm off the checkpoint and runs them in eval mode)."""
    from nerco.inference.enhancer import load_enhancer
    from nerco.networks.build import Architecture
    from nerco.training.model import NeRCoModel

    run_dir, records = train_run("batchnorm", "--norm", "batch")
    assert len(records) == 2
    saved = {name: _weights(run_dir, "latest", name) for name in ALL_NETS}
    for name in ALL_NETS:
        stats = [k for k in saved[name] if k.endswith("running_mean")]
        assert stats, name
        for key in stats:
            prefix = key.removesuffix("running_mean")
            assert saved[name][prefix + "num_batches_tracked"] > 0, key
            assert saved[name][prefix + "running_var"].min() > 0, key
        assert any(saved[name][k].abs().max() > 0 for k in stats), name  # trained, not 0
    model = NeRCoModel(Architecture(ngf=4, ndf=4, norm="batch"), clip_term=None)
    model.load_networks(str(run_dir), "latest")
    for name, net in model.networks().items():
        for key, value in net.state_dict().items():
            assert torch.equal(value, saved[name][key]), (name, key)
    enhancer = load_enhancer(str(run_dir), device="cpu")
    g_a = enhancer.G_A.state_dict()
    assert all(torch.equal(g_a[k], v) for k, v in saved["G_A"].items())
    assert not enhancer.G_A.training  # running statistics, not the batch's
    results = tmp_path / "results"
    assert (
        run_test_py(
            "--dataroot",
            train_run.root,
            "--name",
            "batchnorm",
            "--checkpoints_dir",
            run_dir.parent,
            "--results_dir",
            results,
            "--gpu_ids",
            "-1",
        )
        == 0
    )
    assert (results / "batchnorm" / "test_latest" / "images" / "a_fake_B.png").is_file()


def test_save_by_iter_labels_are_written_and_loadable(train_run):
    """--save_by_iter: iter_<total_iters> sets, loadable by test code and by --load_iter."""
    from nerco.inference.enhancer import load_enhancer

    # Two iterations per epoch (labels by iteration, not epoch), a constant learning rate.
    by_iter = (
        "--save_by_iter --save_latest_freq 1 --max_dataset_size 2 "
        "--lr_policy step --lr_decay_iters 100"
    ).split()
    run_dir, records = train_run("by_iter", *by_iter, "--n_epochs", "1")
    assert [r["total_iters"] for r in records] == [1, 2]
    for name in ALL_NETS:
        iter_2, latest = _weights(run_dir, "iter_2", name), _weights(run_dir, "latest", name)
        assert all(torch.equal(iter_2[k], latest[k]) for k in latest), name  # same iteration
    first, second = _weights(run_dir, "iter_1", "G_A"), _weights(run_dir, "iter_2", "G_A")
    assert any(not torch.equal(first[k], second[k]) for k in first)  # one step apart
    assert (run_dir / "iter_2_train_state.pth").is_file()
    load_enhancer(str(run_dir), epoch="iter_2", device="cpu")
    # Resume from iter_2 for one epoch more: counters go on, iter_3 and iter_4 are written.
    _, records = train_run(
        "by_iter", *by_iter, "--n_epochs", "2", "--continue_train", "--load_iter", "2"
    )
    assert [(r["epoch"], r["total_iters"]) for r in records] == [(1, 1), (1, 2), (2, 3), (2, 4)]
    assert all((run_dir / f"iter_{i}_net_{n}.pth").is_file() for i in (3, 4) for n in ALL_NETS)
    third = _weights(run_dir, "iter_3", "G_A")
    assert any(not torch.equal(second[k], third[k]) for k in second)


def test_options_reach_the_architecture():
    """Each network flag sets its own Architecture field (distinct values: a swap shows)."""
    from nerco.networks.build import Architecture
    from options import TrainOptions

    opt = TrainOptions().parse(
        (
            "--dataroot unused --ngf 12 --ndf 10 --netG resnet_6blocks "
            "--netD n_layers --n_layers_D 4 --norm batch --init_type xavier "
            "--init_gain 0.3"
        ).split()
    )
    assert nerco.training.trainer.architecture_from(opt) == Architecture(
        ngf=12,
        ndf=10,
        netG="resnet_6blocks",
        netD="n_layers",
        n_layers_D=4,
        norm="batch",
        init_type="xavier",
        init_gain=0.3,
    )
