"""A run whose losses or weights go non-finite stops in one line and saves nothing of it."""

from __future__ import annotations

import logging
import math
import sys

import pytest
import torch
from conftest import make_image
from test_training_runs import NoCLIP, _args, _weights

import train
from nerco.training.loss_log import read_jsonl
from nerco.training.model import NeRCoModel
from nerco.training.run_guard import Agreement, SkippedSteps, all_finite, first_non_finite


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    for i in range(2):
        make_image(root / "trainA" / f"low{i}.png", (36, 36), seed=i, dark=True)
        make_image(root / "trainB" / f"normal{i}.png", (40, 36), seed=10 + i)
    return root


def _one_error_line(out: str) -> str:
    errors = [line for line in out.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in out, out[-3000:]
    return errors[0].split("error: ", 1)[1]


def _all_finite_files(run_dir, label) -> bool:
    return all(
        torch.isfinite(v).all()
        for net in _weights(run_dir, label).values()
        for v in net.values()
        if v.is_floating_point()
    )


def test_lr_1e8_stops_at_the_first_nan_with_one_line(data, tmp_path, capsys):
    """The issue's reproduction: every loss NaN from the second iteration on."""
    run_dir = tmp_path / "lr"
    code = train.main(
        _args(
            data, tmp_path, "lr", "--lr", "1e8", "--save_latest_freq", "1", "--save_epoch_freq", "1"
        )
    )
    assert code == 1
    line = _one_error_line(capsys.readouterr().out)
    assert line.startswith("training diverged: loss ") and " is nan" in line
    assert "at total_iters 2 (epoch 1, iteration 2)" in line
    assert f"last good checkpoint: 'latest' in {run_dir} (total_iters 1," in line
    assert "--continue_train" in line
    # Nothing of iteration 2 was saved or logged: latest is iteration 1's, finite.
    assert _all_finite_files(run_dir, "latest")
    assert torch.load(run_dir / "latest_train_state.pth", weights_only=True)["total_iters"] == 1
    assert [r["total_iters"] for r in read_jsonl(run_dir / "loss_log.jsonl")] == [1]
    assert not list(run_dir.glob("1_*"))  # epoch 1 never finished


def test_non_finite_weights_are_never_saved_and_good_states_are_kept(
    data, tmp_path, capsys, monkeypatch
):
    """Weights turn NaN in the last step of epoch 2 (its loss, computed before, is finite):
    the epoch-2 save refuses, so epoch 1's set and state survive the pruning."""
    original, calls = NeRCoModel.optimize_parameters, {"n": 0}

    def optimize(self, real_A, real_B):
        losses = original(self, real_A, real_B)
        calls["n"] += 1
        if calls["n"] == 4:
            with torch.no_grad():
                next(self.generators["G_A"].parameters()).fill_(float("nan"))
        return losses

    monkeypatch.setattr(NeRCoModel, "optimize_parameters", optimize)
    run_dir = tmp_path / "w"
    assert train.main(_args(data, tmp_path, "w", "--save_epoch_freq", "1")) == 1
    line = _one_error_line(capsys.readouterr().out)
    assert "the weights or optimiser moments became non-finite at total_iters 4" in line
    assert "'latest'" in line and "(total_iters 2, epoch 2, iteration 0)" in line
    assert sorted(p.name for p in run_dir.glob("*_train_state.pth")) == [
        "1_train_state.pth",
        "latest_train_state.pth",
    ]
    assert not list(run_dir.glob("2_*"))
    for label in ("latest", "1"):
        assert _all_finite_files(run_dir, label)
    assert torch.load(run_dir / "latest_train_state.pth", weights_only=True)["total_iters"] == 2


def test_one_host_read_per_iteration(data, tmp_path, monkeypatch):
    """Our code reads tensors back once per iteration (the stacked losses): on a GPU each
    read is a synchronisation. Counted on the CPU by the caller's module."""
    reads: list[str] = []
    for name in ("item", "tolist", "__float__", "__int__", "__bool__", "numpy", "cpu"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            module = sys._getframe(1).f_globals.get("__name__", "")
            if module.split(".")[0] in ("nerco", "data", "train"):
                reads.append(f"{module}.{_name}")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    marks = []
    original_step = NeRCoModel.optimize_parameters

    def optimize(self, real_A, real_B):
        marks.append(len(reads))
        return original_step(self, real_A, real_B)

    monkeypatch.setattr(NeRCoModel, "optimize_parameters", optimize)
    root = tmp_path / "data4"
    for i in range(4):
        make_image(root / "trainA" / f"low{i}.png", (36, 36), seed=i, dark=True)
    make_image(root / "trainB" / "normal0.png", (36, 36), seed=10)
    assert (
        train.main(
            _args(
                root,
                tmp_path,
                "reads",
                *"--n_epochs_decay 0 --no_html --print_freq 1000 --save_latest_freq 1000".split(),
            )
        )
        == 0
    )
    per_iteration = [b - a for a, b in zip(marks, marks[1:])]
    assert per_iteration == [1, 1, 1], reads[marks[0] :]


def test_fp16_skipped_steps_are_counted(caplog):
    """A loss scale far too large: the GradScaler skips both steps, the weights stay."""
    from nerco.networks.build import Architecture

    torch.manual_seed(0)
    model = NeRCoModel(Architecture(ngf=4, ndf=4), NoCLIP(), pool_size=2, amp="fp16")
    model.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**100)
    before = {k: v.clone() for k, v in model.generators["G_A"].state_dict().items()}
    skipped = SkippedSteps(warn_after=2)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with caplog.at_level(logging.WARNING, logger="nerco.training.run_guard"):
        for _ in range(2):
            model.optimize_parameters(x, x.flip(-1))
            skipped.update(model.skipped_steps)
    assert model.skipped_steps == 2 and skipped.total == 4 and skipped.streak == 2
    assert all(torch.equal(v, before[k]) for k, v in model.generators["G_A"].state_dict().items())
    warnings = [r.message for r in caplog.records if "skipped optimiser steps" in r.message]
    assert len(warnings) == 1 and "last 2 iterations" in warnings[0]


def test_skipped_step_warnings_double_and_reset():
    skipped = SkippedSteps(warn_after=2)
    streaks = []
    for step in [1, 1, 2, 1, 1, 0, 1]:
        skipped.update(step)
        streaks.append(skipped.streak)
    assert streaks == [1, 2, 3, 4, 5, 0, 1] and skipped.total == 7
    restored = SkippedSteps(warn_after=2)
    restored.load_state_dict({"total": 7, "streak": 4})
    assert restored._next_warning == 8  # warned at 2 and 4 already


def test_all_finite_and_first_non_finite():
    assert all_finite(
        {"a": torch.ones(3), "b": [torch.zeros(2), 3, "x"], "c": torch.tensor([1, 2])}
    )
    assert not all_finite({"a": [torch.ones(2), torch.tensor([1.0, math.inf])]})
    assert not all_finite([torch.tensor([float("nan")], dtype=torch.bfloat16)])
    name, value, count = first_non_finite({"D_A": 1.0, "G_A": math.inf, "H": math.nan})
    assert (name, value, count) == ("G_A", math.inf, 2)
    assert first_non_finite({"D_A": 1.0}) is None


def test_agreement_schedule():
    single = Agreement(distributed=False)
    assert all(single.tick() for _ in range(5))
    ddp = Agreement(distributed=True)
    assert ddp.tick()  # the first check comes at once
    ddp.checked(3)
    assert [ddp.tick() for _ in range(6)] == [False, False, True, True, True, True]
    assert 1 <= ddp.proposal() <= 1000
