"""scripts/benchmark.py end to end on tiny cases: the table, the JSON and its fields."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT


def test_benchmark_quick_tiny_cases(tmp_path, run_script) -> None:
    out = tmp_path / "bench.json"
    proc = run_script(
        "scripts/benchmark.py",
        *(
            "--quick --ngf 4 --threads 1 "
            "--cases infer-40x36,train-32,train-32-ckpt --dtypes fp32 "
            "--baseline"
        ).split(),
        ROOT,
        "--out",
        out,
    )
    result = json.loads(out.read_text())
    rows = [r for r in result["results"] if r["code"] == "ours"]
    assert [(r["case"], r["dtype"], r["checkpointing"]) for r in rows] == [
        ("infer-40x36", "fp32", False),
        ("train-32", "fp32", False),
        ("train-32-ckpt", "fp32", True),
    ]
    # The baseline (this same checkout here) gets a row per case, as a ratio to ours.
    baseline = [r for r in result["results"] if r["code"] == "baseline"]
    assert [r["case"] for r in baseline] == [r["case"] for r in rows]
    for theirs, ours in zip(baseline, rows):
        assert theirs["gflop"] == pytest.approx(ours["gflop"])
        assert theirs["time_vs_ours"] == pytest.approx(theirs["time_s"] / ours["time_s"])
        assert theirs["memory_vs_ours"] == pytest.approx(
            theirs["peak_memory_mb"] / ours["peak_memory_mb"]
        )
    for row in rows:
        assert "error" not in row, row.get("error")
        assert row["device"] == "cpu" and row["threads"] == 1 and row["ngf"] == 4
        assert row["time_s"] > 0 and len(row["times_s"]) == 1 and row["cpu_s"] > 0
        assert row["memory_kind"] == "peak_rss" and 100 < row["peak_memory_mb"] < 8000
        assert row["gflop"] > 0
        assert row["gflop_per_s"] == pytest.approx(row["gflop"] / row["time_s"])
        assert row["efficiency"] == pytest.approx(row["gflop_per_s"] / row["machine_gflop_per_s"])
    infer = rows[0]
    # FLOPs of the enhancer at 40x36, ngf 4, counted by hand: every convolution and the
    # NRN head's matrix products (Pre trunk + head, H without its Hm output, G_A).
    assert infer["gflop"] == pytest.approx(sum(infer["gflop_by_part"].values()))
    assert infer["gflop_by_part"]["NRN head"] == pytest.approx(
        2 * 40 * 36 * (4 * 9 * 256 + 256 * 256 * 2 + 256 * 3) / 1e9
    )
    assert all(v > 0 for v in infer["gflop_by_part"].values())
    # Training counts forward and backward: far more than one enhancement.
    assert rows[1]["gflop"] > 3 * infer["gflop"] * 32 * 32 / (40 * 36)
    # Checkpointing runs the generators' forward passes again in the backward pass (at
    # ngf 4 the frozen CLIP RN50 is most of the work, so the difference is small).
    assert rows[1]["gflop"] + 0.2 < rows[2]["gflop"] < 1.6 * rows[1]["gflop"]
    machine = result["machine"]
    assert set(machine["conv_gflop_per_s_before"]) == {"fp32"}
    assert all(v > 0 for v in machine["conv_gflop_per_s_before"].values())
    assert result["issue_gflop_600x400"]["total"] == 979
    assert "infer-40x36" in proc.stdout and "GFLOP/s" in proc.stdout


@pytest.mark.parametrize("case", ["infer-40", "train-32-fast", "train-x"])
def test_benchmark_rejects_bad_case(run_script, case) -> None:
    proc = run_script("scripts/benchmark.py", "--cases", case, expect=1)
    assert f"bad case {case!r}" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("option", ["--authors", "--baseline"])
def test_benchmark_rejects_a_foreign_checkout(run_script, tmp_path, option) -> None:
    proc = run_script("scripts/benchmark.py", option, tmp_path, "--quick", expect=1)
    assert f"{option} {tmp_path}: not a checkout" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_authors_cpu_port_refuses_unknown_code(tmp_path) -> None:
    """A tree that looks like the authors' but lacks the lines the CPU port edits."""
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("benchmark", ROOT / "scripts" / "benchmark.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    for rel, *_ in benchmark._AUTHORS_CPU_PORT:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("import torch\n")
    with pytest.raises(SystemExit, match="has no '.cuda\\(\\)'; --authors must be a checkout"):
        benchmark._authors_model(
            {"authors": str(tmp_path), "ngf": 64}, torch.device("cpu"), train=True
        )
