"""train.py as a long run: exact resume, Ctrl-C / SIGTERM, torchrun, --amp, bad data."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import ALL_NETS, ROOT, make_image

import train
from nerco.training.loss_log import read_jsonl
from nerco.training.model import NeRCoModel

# 2 low-light images → 2 iterations per epoch; 3 epochs (1 + 2 of decay) → 6 iterations.
# A pool of 2 makes the pools fill up and start swapping within the run.
RUN = (
    "--ngf 4 --ndf 4 --gpu_ids -1 --num_threads 0 --display_id 0 "
    "--clip_weights random --load_size 36 --crop_size 32 --n_epochs 1 "
    "--n_epochs_decay 2 --print_freq 1 --pool_size 2 --seed 7"
).split()


class NoCLIP:
    """Stands for the CLIP term where its values do not matter: CLIP in float16 on the CPU
    takes tens of seconds per iteration."""

    def loss(self, images: torch.Tensor, target: str) -> torch.Tensor:
        return images.float().mean() * 0


def _args(root: Path, saves: Path, name: str, *extra) -> list[str]:
    return [
        "--dataroot",
        str(root),
        "--checkpoints_dir",
        str(saves),
        "--name",
        name,
        *RUN,
        *map(str, extra),
    ]


def _weights(run_dir: Path, label="latest") -> dict[str, dict[str, torch.Tensor]]:
    return {
        name: torch.load(run_dir / f"{label}_net_{name}.pth", weights_only=True)
        for name in ALL_NETS
    }


def _interrupt_after(monkeypatch, calls: int, signum=signal.SIGINT) -> None:
    """Deliver ``signum`` to this process during the ``calls``-th training iteration."""
    original = NeRCoModel.optimize_parameters
    count = {"n": 0}

    def optimize(self, real_A, real_B):
        count["n"] += 1
        if count["n"] == calls:
            os.kill(os.getpid(), signum)
        return original(self, real_A, real_B)

    monkeypatch.setattr(NeRCoModel, "optimize_parameters", optimize)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """An uninterrupted seeded run: its weights and loss log."""
    root = tmp_path_factory.mktemp("data")
    for i in range(2):
        make_image(root / "trainA" / f"low{i}.png", (36, 36), seed=i, dark=True)
    for i in range(2):
        make_image(root / "trainB" / f"normal{i}.png", (40, 36), seed=10 + i)
    saves = tmp_path_factory.mktemp("saves")
    assert train.main(_args(root, saves, "full")) == 0
    return root, saves / "full"


@pytest.mark.parametrize("stop_at", [2, 3])  # the last iteration of epoch 1; mid epoch 2
def test_resume_after_ctrl_c_matches_uninterrupted_run(
    reference_run, tmp_path, monkeypatch, capsys, stop_at
):
    root, full = reference_run
    _interrupt_after(monkeypatch, stop_at)
    assert train.main(_args(root, tmp_path, "cut")) == 128 + signal.SIGINT
    run_dir = tmp_path / "cut"
    assert "resume with the same command plus --continue_train" in capsys.readouterr().out
    assert (run_dir / "latest_train_state.pth").is_file()
    assert len(read_jsonl(run_dir / "loss_log.jsonl")) == stop_at
    monkeypatch.undo()

    assert train.main(_args(root, tmp_path, "cut", "--continue_train")) == 0
    # Counters, schedule and losses continue as if the run had not stopped.
    expected, got = read_jsonl(full / "loss_log.jsonl"), read_jsonl(run_dir / "loss_log.jsonl")
    key = ("epoch", "epoch_iter", "total_iters", "lr")
    assert [[r[k] for k in key] for r in got] == [[r[k] for k in key] for r in expected]
    assert [r["losses"] for r in got] == [r["losses"] for r in expected]
    reference, resumed = _weights(full), _weights(run_dir)
    for name in ALL_NETS:
        for key_, value in reference[name].items():
            assert torch.equal(value, resumed[name][key_]), (name, key_)


def test_weights_only_checkpoint_resumes_with_a_notice(reference_run, tmp_path, capsys):
    root, full = reference_run
    run_dir = tmp_path / "old"
    run_dir.mkdir()
    for name in ALL_NETS:  # like the authors' release: weights, no training state
        shutil.copy(full / f"latest_net_{name}.pth", run_dir / f"latest_net_{name}.pth")
    args = _args(root, tmp_path, "old", "--continue_train", "--epoch_count", "3")
    assert train.main(args) == 0
    out = capsys.readouterr().out
    assert "weights only" in out and "start fresh" in out
    records = read_jsonl(run_dir / "loss_log.jsonl")
    assert [r["epoch"] for r in records] == [3, 3]  # only the last epoch, as asked
    assert records[0]["lr"] == 0.0  # lr factor of epoch 3 of 1 + 2 (release timing)


def test_numbered_states_are_pruned(reference_run, tmp_path):
    root, _ = reference_run
    assert train.main(_args(root, tmp_path, "p", "--save_epoch_freq", "1")) == 0
    states = sorted(p.name for p in (tmp_path / "p").glob("*_train_state.pth"))
    assert states == ["3_train_state.pth", "latest_train_state.pth"]
    for epoch in (1, 2, 3):
        assert (tmp_path / "p" / f"{epoch}_net_G_A.pth").is_file()


def _long_run(root: Path, saves: Path, name: str, *extra) -> subprocess.Popen:
    """train.py in a session of its own, so that a signal can reach all its processes."""
    args = _args(root, saves, name, "--n_epochs", "50", *extra)
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _wait_for_iterations(log: Path, proc: subprocess.Popen, count: int) -> None:
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if log.is_file() and len(log.read_text().splitlines()) >= count:
            return
        time.sleep(0.2)
    pytest.fail(f"training did not reach {count} iterations: {proc.communicate()[0][-2000:]}")


def test_repeated_sigterm_to_every_process_saves_and_stops(reference_run, tmp_path):
    """As Slurm's scancel does (and torchrun, which forwards its own): SIGTERM to every
    process of the job, data workers included, more than once."""
    root, _ = reference_run
    proc = _long_run(root, tmp_path, "term", "--num_threads", "2")
    _wait_for_iterations(tmp_path / "term" / "loss_log.jsonl", proc, 2)
    for _ in range(3):
        os.killpg(proc.pid, signal.SIGTERM)
        time.sleep(0.05)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, out
    assert "Traceback" not in out, out
    assert out.count("SIGTERM received") == 1
    state = torch.load(tmp_path / "term" / "latest_train_state.pth", weights_only=True)
    records = read_jsonl(tmp_path / "term" / "loss_log.jsonl")
    assert state["total_iters"] == records[-1]["total_iters"]
    for name in ALL_NETS:
        assert (tmp_path / "term" / f"latest_net_{name}.pth").is_file()


def test_only_a_second_ctrl_c_stops_at_once():
    from nerco.training.stopping import StopRequests

    with StopRequests(announce=False) as stop:
        for _ in range(3):
            os.kill(os.getpid(), signal.SIGTERM)  # each would end the process by default
        assert stop.signum == signal.SIGTERM
        assert signal.getsignal(signal.SIGINT) == stop._handle
        os.kill(os.getpid(), signal.SIGINT)  # "save and stop" as well...
        assert stop.signum == signal.SIGTERM
        assert signal.getsignal(signal.SIGINT) == signal.SIG_DFL  # ...the next one kills
        assert signal.getsignal(signal.SIGTERM) == stop._handle
    assert signal.getsignal(signal.SIGINT) == signal.default_int_handler


def test_resume_with_other_options_names_old_and_new(reference_run, tmp_path, capsys):
    """Pools saved under bf16 autocast hold bfloat16 images: a float32 resume must take them;
    options that the state overrides, and those it does not, are named with both values."""
    root, _ = reference_run
    assert train.main(_args(root, tmp_path, "amp", "--amp", "bf16", "--n_epochs_decay", "0")) == 0
    records = read_jsonl(tmp_path / "amp" / "loss_log.jsonl")
    assert len(records) == 2
    assert all(torch.isfinite(torch.tensor(list(r["losses"].values()))).all() for r in records)
    weights = _weights(tmp_path / "amp")["G_A"]
    assert all(v.dtype == torch.float32 for v in weights.values())  # master weights stay fp32
    state = torch.load(tmp_path / "amp" / "latest_train_state.pth", weights_only=True)
    pools = state["model"]["pools"]
    assert {im.dtype for pool in pools.values() for im in pool["images"]} == {torch.bfloat16}
    capsys.readouterr()
    # Epoch 2 of 3 + 0 trains at the full rate (the last epoch at lr 0, release timing).
    assert (
        train.main(
            _args(
                root,
                tmp_path,
                "amp",
                *(
                    "--continue_train --n_epochs 3 --n_epochs_decay 0 --lr 0.001 --pool_size 1"
                ).split(),
            )
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "--lr 0.001 ignored: the training state continues with 0.0002" in out
    assert "--amp is none, the saved run used bf16: the resumed run goes on with none" in out
    assert "--pool_size is 1, the saved run used 2" in out
    assert "--n_epochs is 3, the saved run used 1" in out
    assert (
        "--n_epochs_decay 0: the release's schedule steps the learning rate before each "
        "epoch, so epoch 3 (the last) trains at 0" in out
    )
    records = read_jsonl(tmp_path / "amp" / "loss_log.jsonl")
    assert [r["epoch"] for r in records] == [1, 1, 2, 2, 3, 3]
    assert [r["lr"] for r in records[2:4]] == [0.0002, 0.0002]  # the state's, not 0.001


def test_laplacian_run_and_its_resume_keep_the_filter(reference_run, tmp_path, monkeypatch, capsys):
    """--edge_filter laplacian trains; a resume keeps the saved filter (its edge
    discriminators learnt on those maps) and says so when the command line gives another."""
    root, _ = reference_run
    used = []
    original = NeRCoModel.optimize_parameters

    def optimize(self, real_A, real_B):
        used.append(self.edge.edge_filter)
        return original(self, real_A, real_B)

    monkeypatch.setattr(NeRCoModel, "optimize_parameters", optimize)
    assert (
        train.main(
            _args(root, tmp_path, "lap", "--edge_filter", "laplacian", "--n_epochs_decay", "0")
        )
        == 0
    )
    records = read_jsonl(tmp_path / "lap" / "loss_log.jsonl")
    assert used == ["laplacian"] * 2 and len(records) == 2
    assert all(torch.isfinite(torch.tensor(list(r["losses"].values()))).all() for r in records)
    capsys.readouterr()
    # No --edge_filter: the default (gradient) is overridden by the saved laplacian.
    assert (
        train.main(
            _args(
                root,
                tmp_path,
                "lap",
                *"--continue_train --n_epochs 2 --n_epochs_decay 0".split(),
            )
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "--edge_filter gradient ignored: the resumed run goes on with laplacian" in out
    assert used == ["laplacian"] * 4
    state = torch.load(tmp_path / "lap" / "latest_train_state.pth", weights_only=True)
    assert state["options"]["edge_filter"] == "laplacian"
    # The options file records what the resumed run used, not the command line's default.
    recorded = (tmp_path / "lap" / "train_opt.txt").read_text()
    assert re.search(r"edge_filter: laplacian\s", recorded), recorded


def test_save_by_iter_keeps_one_iter_state(reference_run, tmp_path):
    root, _ = reference_run
    assert train.main(_args(root, tmp_path, "it", "--save_by_iter", "--save_latest_freq", "2")) == 0
    run_dir = tmp_path / "it"
    assert sorted(p.name for p in run_dir.glob("*_train_state.pth")) == [
        "iter_6_train_state.pth",
        "latest_train_state.pth",
    ]
    from nerco.networks.checkpoint_set import verify_set

    for label in ("iter_2", "iter_4", "iter_6"):  # weights stay, each set still checks out
        manifest = verify_set(str(run_dir), label)
        assert sorted(manifest["files"]) == sorted(
            [f"{label}_net_{n}.pth" for n in ALL_NETS]
            + ([f"{label}_train_state.pth"] if label == "iter_6" else [])
        )


def test_a_mixed_set_is_refused_on_resume(reference_run, tmp_path, capsys):
    root, full = reference_run
    run_dir = tmp_path / "mixed"
    shutil.copytree(full, run_dir)
    other = torch.load(run_dir / "latest_net_G_B.pth", weights_only=True)
    torch.save({k: v + 1 for k, v in other.items()}, run_dir / "latest_net_G_B.pth")
    assert train.main(_args(root, tmp_path, "mixed", "--continue_train")) == 2
    out = capsys.readouterr().out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in out
    assert "latest_net_G_B.pth does not belong to the set" in errors[0]


def test_disk_full_while_saving_stops_in_one_line(reference_run, tmp_path, capsys, monkeypatch):
    """The save at the end of epoch 2 runs out of space: the epoch-1 set stays whole."""
    import errno

    root, _ = reference_run
    original, calls = torch.save, {"n": 0}

    def save(obj, handle, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2 * 9 + 3:  # epoch 1: 'latest' and '1', 9 files each; then full
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(obj, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    assert train.main(_args(root, tmp_path, "full", "--save_epoch_freq", "1")) == 1
    out = capsys.readouterr().out
    errors = [line for line in out.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in out, out[-2000:]
    assert "saving 'latest'" in errors[0] and "disk full" in errors[0]
    monkeypatch.undo()
    from nerco.networks.checkpoint_set import verify_set

    assert verify_set(str(tmp_path / "full"), "latest")["total_iters"] == 2
    assert not [p for p in (tmp_path / "full").iterdir() if p.name.startswith(".")]


def test_plateau_steps_on_the_epoch_cycle_losses(reference_run, tmp_path, capsys):
    root, _ = reference_run
    assert (
        train.main(
            _args(
                root,
                tmp_path,
                "pl",
                *"--lr_policy plateau --n_epochs 2 --n_epochs_decay 0 --verbose".split(),
            )
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "[Network G_A] Total number of parameters :" in out and "ResnetGenerator(" in out
    records = read_jsonl(tmp_path / "pl" / "loss_log.jsonl")
    means = [
        sum(r["losses"]["cycle_A"] + r["losses"]["cycle_B"] for r in records if r["epoch"] == e) / 2
        for e in (1, 2)
    ]
    state = torch.load(tmp_path / "pl" / "latest_train_state.pth", weights_only=True)
    assert state["schedulers"][0]["best"] == pytest.approx(means[0])  # stepped once: epoch 2
    assert state["plateau"]["last"] == pytest.approx(means[1])
    assert "plateau on the last epoch's mean cycle_A + cycle_B" in out


def test_frequencies_count_samples(reference_run, tmp_path):
    """print_freq / save_latest_freq: every N samples, whatever the samples per iteration
    (batch × processes): with 2 per iteration and N = 3, at 4 (past 3) and 6."""
    root, _ = reference_run
    assert (
        train.main(
            _args(
                root,
                tmp_path,
                "f",
                *"--batch_size 2 --print_freq 3 --save_latest_freq 5 --save_by_iter".split(),
            )
        )
        == 0
    )
    records = read_jsonl(tmp_path / "f" / "loss_log.jsonl")
    assert [r["total_iters"] for r in records] == [4, 6]
    assert (tmp_path / "f" / "iter_6_net_G_A.pth").is_file()


def test_amp_fp16_on_cpu_is_refused(reference_run, tmp_path, capsys):
    root, _ = reference_run
    assert train.main(_args(root, tmp_path, "fp16", "--amp", "fp16")) == 2
    out = capsys.readouterr().out
    assert "error: --amp fp16 needs a CUDA GPU" in out and "Traceback" not in out


def test_checkpointing_run_matches_the_plain_run(reference_run, tmp_path, monkeypatch):
    """--checkpointing reaches the model and changes no number of the seeded run."""
    import nerco.training.memory

    calls = []
    checkpoint = nerco.training.memory.checkpoint
    monkeypatch.setattr(
        nerco.training.memory,
        "checkpoint",
        lambda *args, **kwargs: calls.append(1) or checkpoint(*args, **kwargs),
    )
    root, full = reference_run
    assert train.main(_args(root, tmp_path, "ckpt", "--checkpointing")) == 0
    assert len(calls) == 6 * 11  # 6 iterations × 11 generator calls
    expected, got = (
        read_jsonl(full / "loss_log.jsonl"),
        read_jsonl(tmp_path / "ckpt" / "loss_log.jsonl"),
    )
    assert len(got) == len(expected)
    for want, have in zip(expected, got):
        assert have["losses"] == pytest.approx(want["losses"], rel=1e-5, abs=1e-7)
    reference, trained = _weights(full), _weights(tmp_path / "ckpt")
    for name in ALL_NETS:
        for key, value in reference[name].items():
            torch.testing.assert_close(trained[name][key], value, rtol=1e-4, atol=1e-6)


def _torchrun_cmd(
    root: Path, saves: Path, name: str, ranks: Path, *extra, seed: bool = True
) -> list[str]:
    """torchrun with 2 CPU processes; each leaves its weights in ``ranks``."""
    args = _args(root, saves, name, "--n_epochs_decay", "1", *extra)
    if not seed:
        at = args.index("--seed")
        del args[at : at + 2]
    ranks.mkdir(parents=True, exist_ok=True)
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(ROOT / "tests" / "torchrun_worker.py"),
        str(ranks),
        *args,
    ]


_TORCHRUN_ENV = dict(os.environ, OMP_NUM_THREADS="1")


def _torchrun(root: Path, saves: Path, name: str, *extra) -> Path:
    cmd = _torchrun_cmd(root, saves, name, saves / f"{name}_ranks", *extra)
    proc = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=_TORCHRUN_ENV
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return saves / name


def _ranks_agree(ranks: Path) -> dict:
    """Rank 1 ends with exactly rank 0's weights (DDP averaged every gradient; the ranks
    trained on different samples, so without it they would differ). Returns rank 0's."""
    zero, one = (torch.load(ranks / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert zero["seed"] == one["seed"] and zero["total_iters"] == one["total_iters"]
    for name in ALL_NETS:
        for key, value in zero["nets"][name].items():
            assert torch.equal(value, one["nets"][name][key]), (name, key)
    return zero


@pytest.fixture(scope="module")
def ddp_run(reference_run, tmp_path_factory) -> Path:
    return _torchrun(reference_run[0], tmp_path_factory.mktemp("ddp"), "ddp")


def test_torchrun_two_processes_on_cpu(ddp_run):
    run_dir = ddp_run
    # One log, written by rank 0: 2 images over 2 processes → 1 step of 2 samples per epoch.
    records = read_jsonl(run_dir / "loss_log.jsonl")
    assert [r["total_iters"] for r in records] == [2, 4]
    assert (
        len(
            [
                line
                for line in (run_dir / "loss_log.txt").read_text().splitlines()
                if line.startswith("================")
            ]
        )
        == 1
    )
    assert "2 processes" in (run_dir / "train.log").read_text()
    rank0 = _ranks_agree(run_dir.parent / "ddp_ranks")
    for name in ALL_NETS:
        state = torch.load(run_dir / f"latest_net_{name}.pth", weights_only=True)
        assert not any(k.startswith("module.") for k in state)
        assert all(torch.equal(v, rank0["nets"][name][k]) for k, v in state.items())


def test_torchrun_without_seed_stops_everywhere_on_sigterm(reference_run, tmp_path):
    """No --seed: rank 0's random seed reaches every rank. SIGTERM to every process (as
    scancel sends it; torchrun forwards its own as well): all stop at one iteration, save."""
    ranks = tmp_path / "ranks"
    cmd = _torchrun_cmd(reference_run[0], tmp_path, "term", ranks, "--n_epochs", "50", seed=False)
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_TORCHRUN_ENV,
        start_new_session=True,
    )
    _wait_for_iterations(tmp_path / "term" / "loss_log.jsonl", proc, 2)
    workers = [int((ranks / f"rank{r}.pid").read_text()) for r in (0, 1)]
    for group in (proc.pid, *workers):  # torchrun and each worker run in their own session
        os.killpg(group, signal.SIGTERM)
    out, _ = proc.communicate(timeout=300)
    exits = [(ranks / f"rank{r}.exit").read_text() for r in (0, 1)]
    assert exits == [str(128 + signal.SIGTERM)] * 2, out[-3000:]
    rank0 = _ranks_agree(ranks)
    state = torch.load(tmp_path / "term" / "latest_train_state.pth", weights_only=True)
    assert state["total_iters"] == rank0["total_iters"] >= 4 and state["seed"] == rank0["seed"]


def test_torchrun_with_checkpointing_matches_plain_torchrun(reference_run, ddp_run, tmp_path):
    """Checkpointed calls recompute with the bare network, so gradient averaging is intact."""
    run_dir = _torchrun(reference_run[0], tmp_path, "ddp_ckpt", "--checkpointing")
    expected = read_jsonl(ddp_run / "loss_log.jsonl")
    got = read_jsonl(run_dir / "loss_log.jsonl")
    assert len(got) == len(expected)
    for want, have in zip(expected, got):
        assert have["losses"] == pytest.approx(want["losses"], rel=1e-5, abs=1e-7)
    reference, trained = _weights(ddp_run), _weights(run_dir)
    for name in ALL_NETS:
        for key, value in reference[name].items():
            torch.testing.assert_close(trained[name][key], value, rtol=1e-4, atol=1e-6)


def test_corrupt_images_are_skipped_with_a_warning(tmp_path):
    root = tmp_path / "data"
    for i in range(3):
        make_image(root / "trainA" / f"low{i}.png", (36, 36), seed=i, dark=True)
    make_image(root / "trainB" / "normal0.png", (36, 36), seed=10)
    (root / "trainA" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (root / "trainB" / "empty.jpg").write_bytes(b"")
    args = _args(root, tmp_path, "skip", "--n_epochs_decay", "0", "--serial_batches")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "skipping unreadable image" in out and "broken.png" in out and "empty.jpg" in out
    assert "Traceback" not in out
    assert len(read_jsonl(tmp_path / "skip" / "loss_log.jsonl")) == 4  # max(|A|, |B|)


@pytest.mark.parametrize("workers", ["0", "2"])
def test_folder_of_unreadable_images_stops_in_one_line(tmp_path, workers):
    root = tmp_path / "data"
    make_image(root / "trainA" / "low0.png", (36, 36), dark=True)
    for i in range(2):
        (root / "trainB" / f"bad{i}.png").parent.mkdir(parents=True, exist_ok=True)
        (root / "trainB" / f"bad{i}.png").write_bytes(b"garbage")
    args = _args(root, tmp_path, "bad", "--num_threads", workers)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "Traceback" not in out, out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no image in" in errors[0] and "trainB" in errors[0], out


def test_fp16_loss_scaling_path_and_its_state():
    """The GradScaler path of --amp fp16 (CUDA in practice; CPU autocast runs the same code)."""
    from nerco.networks.build import Architecture

    torch.manual_seed(0)
    model = NeRCoModel(Architecture(ngf=4, ndf=4), NoCLIP(), pool_size=2, amp="fp16")
    before = {k: v.clone() for k, v in model.generators["G_A"].state_dict().items()}
    real_A, real_B = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    # The default initial scale (2^16) overflows float16 gradients at first, and the scaler
    # then skips steps while it lowers the scale; start low so that this step is applied.
    model.scaler = torch.amp.GradScaler("cpu", init_scale=1.0)
    losses = model.optimize_parameters(real_A, real_B)
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert model.scaler is not None and model.scaler.is_enabled()
    assert model.skipped_steps == 0
    state = model.training_state()
    assert state["scaler"]["scale"] > 0
    changed = [
        k for k, v in model.generators["G_A"].state_dict().items() if not torch.equal(v, before[k])
    ]
    assert changed  # the scaled gradients were unscaled and applied
    other = NeRCoModel(Architecture(ngf=4, ndf=4), NoCLIP(), amp="fp16")
    other.load_training_state(state, torch.device("cpu"))
    assert other.scaler.state_dict()["scale"] == state["scaler"]["scale"]


def test_cudnn_benchmark_only_for_fixed_sizes():
    from nerco.training.trainer import set_cudnn_benchmark

    cpu = torch.device("cpu")
    assert set_cudnn_benchmark("auto", "resize_and_crop", cpu)
    assert set_cudnn_benchmark("auto", "scale_width_and_crop", cpu)
    assert not set_cudnn_benchmark("auto", "none", cpu)
    assert not set_cudnn_benchmark("auto", "scale_width", cpu)
    assert set_cudnn_benchmark("on", "none", cpu)
    assert not set_cudnn_benchmark("off", "crop", cpu)
