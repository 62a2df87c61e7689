"""The folder case of scripts/benchmark.py on a tiny folder: its rows and their ratios."""

from __future__ import annotations

import json

import pytest


def test_folder_case_standin(tmp_path, run_script) -> None:
    out = tmp_path / "bench.json"
    proc = run_script(
        "scripts/benchmark.py",
        "--cases",
        "folder-48x40-standin",
        "--images",
        6,
        "--standin_ms",
        20,
        "--memory_images",
        "3",
        "--out",
        out,
    )
    rows = json.loads(out.read_text())["folder"]
    assert [(r["case"], r["images"]) for r in rows] == [
        ("folder-48x40-standin", 6),
        ("folder-48x40-standin-memory", 3),
    ]
    timing, memory = rows
    assert "error" not in timing and "error" not in memory, rows
    assert timing["enhanced"] == 6 and memory["enhanced"] == 3
    assert timing["standin_ms"] == 20
    assert timing["network_s"] >= 0.02  # the stand-in sleeps 20 ms per batch of one
    assert timing["pipeline_vs_larger"] == pytest.approx(
        timing["pipeline_s"] / max(timing["io_s"], timing["network_s"])
    )
    assert timing["pipeline_vs_sum"] == pytest.approx(
        timing["pipeline_s"] / (timing["io_s"] + timing["network_s"])
    )
    assert timing["busy"] == pytest.approx(min(1, timing["network_s"] / timing["pipeline_s"]))
    assert 100 < memory["peak_rss_mb"] < 8000 and "io_s" not in memory
    assert "folder-48x40-standin" in proc.stdout


def test_folder_case_names(run_script) -> None:
    proc = run_script("scripts/benchmark.py", "--cases", "folder-48", expect=1)
    assert "bad case 'folder-48'" in proc.stderr and "folder-<W>x<H>" in proc.stderr
