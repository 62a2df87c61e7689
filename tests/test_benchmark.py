"""scripts/benchmark.py end to end on tiny cases: the table, the JSON and its fields."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT


def test_benchmark_quick_tiny_cases(tmp_path, run_script) -> None:
    out = tmp_path / "bench.json"
    proc = run_script("scripts/benchmark.py", "--quick", "--ngf", "4", "--threads", "1",
                      "--cases", "infer-40x36,train-32", "--dtypes", "fp32", "--out", out)
    result = json.loads(out.read_text())
    rows = result["results"]
    assert [(r["case"], r["dtype"]) for r in rows] == [("infer-40x36", "fp32"),
                                                       ("train-32", "fp32")]
    for row in rows:
        assert "error" not in row, row.get("error")
        assert row["device"] == "cpu" and row["threads"] == 1 and row["ngf"] == 4
        assert row["time_s"] > 0 and len(row["times_s"]) == 1 and row["cpu_s"] > 0
        assert row["memory_kind"] == "peak_rss" and 100 < row["peak_memory_mb"] < 8000
        assert row["gflop"] > 0
        assert row["gflop_per_s"] == pytest.approx(row["gflop"] / row["time_s"])
        assert row["efficiency"] == pytest.approx(row["gflop_per_s"]
                                                  / row["machine_gflop_per_s"])
    infer = rows[0]
    # FLOPs of the enhancer at 40x36, ngf 4, counted by hand: every convolution and the
    # NRN head's matrix products (Pre trunk + head, H without its Hm output, G_A).
    assert infer["gflop"] == pytest.approx(sum(infer["gflop_by_part"].values()))
    assert infer["gflop_by_part"]["NRN head"] == pytest.approx(
        2 * 40 * 36 * (4 * 9 * 256 + 256 * 256 * 2 + 256 * 3) / 1e9)
    assert all(v > 0 for v in infer["gflop_by_part"].values())
    # Training counts forward and backward: far more than one enhancement.
    assert rows[1]["gflop"] > 3 * infer["gflop"] * 32 * 32 / (40 * 36)
    machine = result["machine"]
    assert set(machine["conv_gflop_per_s_before"]) == {"fp32"}
    assert all(v > 0 for v in machine["conv_gflop_per_s_before"].values())
    assert result["issue_gflop_600x400"]["total"] == 979
    assert "infer-40x36" in proc.stdout and "GFLOP/s" in proc.stdout


def test_benchmark_rejects_bad_case(run_script) -> None:
    proc = run_script("scripts/benchmark.py", "--cases", "infer-40", expect=1)
    assert "bad case" in proc.stderr
    assert (ROOT / "scripts" / "benchmark.py").is_file()
