"""Tests for nerco.training.loss_log: text format, exact JSON floats, append behaviour."""

import re

import numpy as np
import torch

from nerco.training.loss_log import LossLog, read_jsonl

HEADER = re.compile(r"^================ Training Loss \(.+\) ================$")


def test_writes_header_text_and_jsonl(tmp_path) -> None:
    log = LossLog(tmp_path / "run")
    third = 1 / 3
    tenths = 0.1 + 0.2
    line = log.log(
        epoch=3,
        epoch_iter=40,
        total_iters=1040,
        t_comp=0.12345,
        t_data=0.0019,
        lr=2e-4,
        losses={"D_A": tenths, "G_A": third, "cyc_A": np.float32(1.5), "idt": torch.tensor(2.0)},
    )
    expected = (
        "(epoch: 3, iters: 40, time: 0.123, data: 0.002) "
        "D_A: 0.300 G_A: 0.333 cyc_A: 1.500 idt: 2.000 "
    )
    assert line == expected

    lines = (tmp_path / "run" / "loss_log.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    assert HEADER.match(lines[0])
    assert lines[1] == expected

    records = read_jsonl(tmp_path / "run" / "loss_log.jsonl")
    assert len(records) == 1
    rec = records[0]
    assert list(rec) == ["epoch", "epoch_iter", "total_iters", "t_comp", "t_data", "lr", "losses"]
    assert (rec["epoch"], rec["epoch_iter"], rec["total_iters"]) == (3, 40, 1040)
    assert rec["t_comp"] == 0.12345 and rec["t_data"] == 0.0019 and rec["lr"] == 2e-4
    assert list(rec["losses"]) == ["D_A", "G_A", "cyc_A", "idt"]
    assert rec["losses"]["D_A"] == tenths  # 0.30000000000000004, exactly
    assert rec["losses"]["G_A"] == third
    assert rec["losses"]["cyc_A"] == 1.5 and rec["losses"]["idt"] == 2.0


def test_appends_across_calls_and_instances(tmp_path) -> None:
    log = LossLog(tmp_path)
    log.log(
        epoch=1, epoch_iter=1, total_iters=1, t_comp=0.0, t_data=0.0, lr=1e-3, losses={"a": 1.0}
    )
    log.log(
        epoch=1, epoch_iter=2, total_iters=2, t_comp=0.0, t_data=0.0, lr=1e-3, losses={"a": 2.0}
    )
    LossLog(tmp_path).log(
        epoch=2, epoch_iter=1, total_iters=3, t_comp=0.0, t_data=0.0, lr=5e-4, losses={"a": 3.0}
    )

    lines = (tmp_path / "loss_log.txt").read_text(encoding="utf-8").splitlines()
    assert [bool(HEADER.match(x)) for x in lines] == [True, False, False, True, False]
    assert lines[1].startswith("(epoch: 1, iters: 1,")
    assert lines[2].startswith("(epoch: 1, iters: 2,")
    records = read_jsonl(tmp_path / "loss_log.jsonl")
    assert [r["losses"]["a"] for r in records] == [1.0, 2.0, 3.0]
    assert [r["lr"] for r in records] == [1e-3, 1e-3, 5e-4]


def test_read_jsonl_skips_blank_lines(tmp_path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n', encoding="utf-8")
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]
