"""nerco.evaluation.viewer and nerco.evaluation.viewer_plot without a browser: what the page
holds."""

from __future__ import annotations

import math
import re

import pytest
from conftest import make_image
from html_tree import parse, table_rows

from nerco.evaluation.viewer import Column, Metric, Row, best_columns, relative_url, write_viewer
from nerco.evaluation.viewer_plot import distribution_svg, nice_ticks

METRICS = {"psnr": Metric("psnr", "PSNR", True, 2, "dB"), "loe": Metric("loe", "LOE", False, 1)}


def test_metric_format_and_heading():
    psnr = METRICS["psnr"]
    assert [psnr.format(v) for v in (21.456, None, math.nan, math.inf, -math.inf, 3)] == [
        "21.46",
        "n/a",
        "n/a",
        "inf",
        "-inf",
        "3.00",
    ]
    assert psnr.heading == "PSNR (dB) ↑" and METRICS["loe"].heading == "LOE ↓"
    assert Metric("x", "x").heading == "x"


def test_best_columns():
    assert best_columns({"A": 20.0, "B": 25.0, "C": None}, True) == {"B"}
    assert best_columns({"A": 20.0, "B": 25.0}, False) == {"A"}
    assert best_columns({"A": 20.0, "B": 20.0, "C": 1.0}, True) == {"A", "B"}  # a tie
    assert best_columns({"A": math.inf, "B": 30.0}, True) == {"A"}
    assert best_columns({"A": 20.0}, True) == set()  # one column: nothing to compare
    assert best_columns({"A": 20.0, "B": 25.0}, None) == set()  # direction unknown
    assert best_columns({"A": None, "B": math.nan}, True) == set()


def test_relative_url():
    assert relative_url("../gt dir #1/é.png") == "../gt%20dir%20%231/%C3%A9.png"
    with pytest.raises(ValueError, match="relative"):
        relative_url("/abs/a.png")


def _page(tmp_path):
    for name in ("x", "y"):
        make_image(tmp_path / "in" / f"{name}.png", (60, 30))
    rows = [
        Row(
            "x",
            {"input": "in/x.png", "A": "in/x.png"},
            {"A": {"psnr": 30.0, "loe": 5.0}, "B": {"psnr": 31.0, "loe": 9.0}},
            note="n1",
        ),
        Row(
            "y",
            {"input": "in/y.png", "B": "in/y.png"},
            {"A": {"psnr": 25.0, "loe": 2.0}, "B": {"psnr": math.inf, "loe": 2.0}},
        ),
    ]
    columns = [Column("input"), Column("A", ("psnr", "loe")), Column("B", ("psnr", "loe"))]
    mean = {"A": {"psnr": 27.5, "loe": 3.5}, "B": {"psnr": math.inf, "loe": 5.5}}
    return write_viewer(
        tmp_path,
        "t <1>",
        columns,
        rows,
        METRICS,
        mean=mean,
        mean_label="mean of 2",
        note="protocol",
        width=120,
    )


def _spans(node):
    return {s.attrs["data-m"]: s for s in node.all("span") if "data-m" in s.attrs}


def test_page_table_marks_the_best_and_keeps_full_precision(tmp_path):
    doc = parse(_page(tmp_path))
    assert doc.one("head").one("title").text() == "t <1>"
    x, y = table_rows(doc)
    assert (x.attrs["data-w"], x.attrs["data-h"]) == ("60", "30")
    assert [(i.attrs["width"], i.attrs["height"]) for i in x.all("img")] == [("120", "60")] * 2
    assert "n1" in x.one("th").text()
    a, b = (_spans(x.one("td", data_c=str(c))) for c in (1, 2))
    assert "best" in b["psnr"].attrs.get("class", "") and "best" not in a["psnr"].attrs.get(
        "class", ""
    )
    assert "best" in a["loe"].attrs.get("class", "")  # lower is better
    a, b = (_spans(y.one("td", data_c=str(c))) for c in (1, 2))
    assert b["psnr"].attrs["data-v"] == "Infinity" and "best" in b["psnr"].attrs["class"]
    assert "best" in a["loe"].attrs["class"] and "best" in b["loe"].attrs["class"]  # tie
    assert y.one("td", data_c="1").all("img") == []  # no image: scores only
    summary = doc.one("tr", cls="mean")
    buttons = summary.all("button")
    assert [(bt.attrs["data-c"], bt.attrs["data-m"]) for bt in buttons] == [
        ("1", "psnr"),
        ("1", "loe"),
        ("2", "psnr"),
        ("2", "loe"),
    ]
    assert [bt.text() for bt in buttons] == ["PSNR ↑ 27.50", "LOE ↓ 3.5", "PSNR ↑ inf", "LOE ↓ 5.5"]
    assert [bool(bt.all("span", cls="best")) for bt in buttons] == [False, True, True, False]
    assert "--tw: 120px" in doc.one("style").text()


def test_page_plots_one_histogram_per_metric(tmp_path):
    doc = parse(_page(tmp_path))
    figures = doc.one("section", cls="plots").all("figure")
    assert len(figures) == 2
    caption = figures[0].one("figcaption").text()
    assert caption.startswith("PSNR (dB) ↑ per image")
    assert "A 27.50" in caption and "B 31.00 (1 inf)" in caption  # the inf is counted apart
    assert len(figures[0].all("polygon")) == 2  # one outline per column


def test_page_errors(tmp_path):
    with pytest.raises(ValueError, match="unique"):
        write_viewer(tmp_path, "t", [Column("a"), Column("a")], [])
    with pytest.raises(ValueError, match="without a description"):
        write_viewer(tmp_path, "t", [Column("a", ("psnr",))], [])
    with pytest.raises(ValueError, match="relative"):
        write_viewer(tmp_path, "t", [Column("a")], [Row("r", {"a": str(tmp_path / "x.png")})])


def test_histogram_counts_and_ticks():
    svg = distribution_svg("PSNR", [("A", "#000", [1.0, 1.0, 2.0, 10.0]), ("B", "#111", [])])
    assert svg.startswith("<svg") and svg.count("<polygon") == 1  # an empty series is left out
    points = re.search(r'points="([^"]+)"', svg).group(1).split()
    heights = sorted({float(p.split(",")[1]) for p in points})
    assert len(heights) == 3  # counts 2 and 1 and the baseline (0): three levels
    assert distribution_svg("x", [("A", "#000", [])]) == ""
    assert nice_ticks(0.13, 0.97) == [0.2, 0.4, 0.6, 0.8]
    assert nice_ticks(12, 33) == [15, 20, 25, 30]
    flat = distribution_svg("x", [("A", "#000", [5.0, 5.0])])
    assert "<polygon" in flat  # all values equal: a bin around them
