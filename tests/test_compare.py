"""nerco.evaluate with several methods (nerco.evaluation.cli): one protocol, reports, paper
tables."""

from __future__ import annotations

import csv
import json
import math
import re

import numpy as np
import pytest
from PIL import Image
from test_evaluate import _niqe_params, _one_error

from nerco.evaluation import loe, metrics
from nerco.evaluation.cli import main
from nerco.evaluation.pairing import method_name, parse_methods
from nerco.evaluation.report_tables import METRICS
from nerco.runtime import UserError

NAMES = ("a", "b", "c")


def scene(shape, seed):
    """A smooth colour picture with some texture, (H, W, 3) uint8."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]] / max(shape)
    base = np.stack([np.sin(6 * x + seed), np.cos(5 * y - seed), np.sin(4 * (x + y))], -1)
    image = 128 + 90 * base + rng.normal(0, 12, (*shape, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _methods(root, shape=(96, 192), skip=None):
    """Ground truth, dark inputs and three methods with distinct strengths."""
    for i, name in enumerate(NAMES):
        gt = scene(shape, i)
        dark = (gt * 0.2).astype(np.uint8)
        noise = np.random.RandomState(10 + i).normal(0, 6, gt.shape)
        outputs = {
            "good": np.clip(gt + noise, 0, 255).astype(np.uint8),  # closest to gt
            "order": (dark * 4).astype(np.uint8),  # keeps the input's order
            "bad": 255 - gt,
        }
        _save(root / "gt" / f"{name}.png", gt)
        _save(root / "low" / f"{name}.png", dark)
        for method, image in outputs.items():
            if (method, name) != skip:
                _save(root / method / f"{name}.png", image)
    return root


def _preds(root, methods=("good", "order", "bad")):
    return [arg for m in methods for arg in ("--pred", f"{m}={root / m}")]


def test_each_method_scores_as_its_folder_alone(tmp_path, capsys):
    root = _methods(tmp_path)
    params, _, _ = _niqe_params(tmp_path, ".npz")
    common = [
        "--gt",
        str(root / "gt"),
        "--input",
        str(root / "low"),
        "--loe",
        "--niqe_params",
        str(params),
    ]
    out = tmp_path / "all.json"
    assert main([*_preds(root), *common, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    both = json.loads(out.read_text())
    assert list(both["methods"]) == ["good", "order", "bad"]
    assert both["protocol"]["images"] == 3 and both["protocol"]["methods"]["bad"] == str(
        root / "bad"
    )
    for method in ("good", "order", "bad"):
        alone = tmp_path / f"{method}.json"
        assert main(["--pred", str(root / method), *common, "--out", str(alone)]) == 0
        single = json.loads(alone.read_text())
        assert both["methods"][method] == {"mean": single["mean"], "per_image": single["per_image"]}
        assert single["protocol"]["method"] == method
        for key in ("channels", "psnr", "ssim", "niqe", "loe"):
            assert single["protocol"][key] == both["protocol"][key]
    good = both["methods"]["good"]["per_image"][1]
    assert set(good) == {"name", "psnr", "ssim", "niqe", "loe", "pred", "gt"}
    pred = np.asarray(Image.open(root / "good" / "b.png"))
    low = np.asarray(Image.open(root / "low" / "b.png"))
    assert good["loe"] == loe.loe(low, pred)
    assert good["psnr"] == pytest.approx(
        metrics.psnr(pred, np.asarray(Image.open(root / "gt" / "b.png")))
    )
    # printed: a row per method, the best of each column marked
    lines = {
        line.split()[0]: line
        for line in printed.splitlines()
        if line.split() and line.split()[0] in ("good", "order", "bad")
    }
    assert "*" in lines["good"].split()[1] and "*" not in lines["bad"]


def _md_table(text):
    lines = [line for line in text.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    return header, rows


def test_paper_tables_match_the_json(tmp_path):
    root = _methods(tmp_path)
    out = tmp_path / "r.json"
    tables = [tmp_path / "t" / f"r.{ext}" for ext in ("md", "tex", "csv")]
    args = [
        *_preds(root),
        "--gt",
        str(root / "gt"),
        "--input",
        str(root / "low"),
        "--loe",
        "--out",
        str(out),
    ]
    args += ["--pred", f"twin={root / 'good'}"]  # ties: both are bold
    assert main(args + [arg for t in tables for arg in ("--table", str(t))]) == 0
    means = {m: v["mean"] for m, v in json.loads(out.read_text())["methods"].items()}
    keys = ["psnr", "ssim", "loe"]
    printed = {m: {k: METRICS[k].format(means[m][k]) for k in keys} for m in means}
    best = {}
    for k in keys:  # decided on the printed numbers, independently of the code under test
        values = {m: float(printed[m][k]) for m in means}
        target = (max if METRICS[k].higher_is_better else min)(values.values())
        best[k] = {m for m, v in values.items() if v == target}
    assert best["psnr"] == {"good", "twin"} and best["loe"] == {"order"}

    header, rows = _md_table(tables[0].read_text(encoding="utf-8"))
    assert header == ["Method", "PSNR (dB) ↑", "SSIM ↑", "LOE ↓"]
    for row in rows:
        method = row[0]
        for k, cell in zip(keys, row[1:], strict=True):
            bold = method in best[k]
            assert cell == (f"**{printed[method][k]}**" if bold else printed[method][k])
    assert [r[0] for r in rows] == ["good", "order", "bad", "twin"]
    assert "Table: 3 images" in tables[0].read_text(encoding="utf-8")

    tex = tables[1].read_text(encoding="utf-8")
    body = tex[tex.index(r"\midrule") + len(r"\midrule") : tex.index(r"\bottomrule")]
    for line in body.strip().splitlines():
        cells = [c.strip() for c in line.rstrip("\\ ").split("&")]
        for k, cell in zip(keys, cells[1:], strict=True):
            value = printed[cells[0]][k]
            assert cell == (rf"\textbf{{{value}}}" if cells[0] in best[k] else value)
    assert r"\caption{3 images" in tex and r"PSNR (dB) $\uparrow$" in tex

    lines = tables[2].read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# 3 images")
    reader = list(csv.reader(lines[1:]))
    assert reader[0] == ["method", "PSNR (dB) ↑", "SSIM ↑", "LOE ↓"]
    for row in reader[1:]:
        assert [float(v) for v in row[1:]] == [means[row[0]][k] for k in keys]  # exact


def test_missing_image_names_the_method_or_scores_the_shared_ones(tmp_path, capsys):
    root = _methods(tmp_path, skip=("bad", "b"))
    args = [*_preds(root), "--gt", str(root / "gt")]
    assert main(args) == 2
    line = _one_error(capsys)
    assert line.startswith("error: bad: 1 ground truth without prediction in") and ": b" in line
    out = tmp_path / "r.json"
    table = tmp_path / "r.md"
    assert main([*args, "--allow_missing", "--out", str(out), "--table", str(table)]) == 0
    report = json.loads(out.read_text())
    assert report["protocol"]["scored_on"] == "the 2 images all 3 methods share"
    assert "Table: the 2 images all 3 methods share; PSNR/SSIM" in table.read_text("utf-8")
    assert report["protocol"]["unpaired"]["bad"]["gt_without_pred"] == ["b"]
    assert report["protocol"]["unpaired"]["good"]["gt_without_pred"] == []
    for method in report["methods"].values():
        assert [e["name"] for e in method["per_image"]] == ["a", "c"]
    assert "bad: 1 ground truth without prediction" in capsys.readouterr().out  # the warning


def test_loe_uses_test_py_inputs_and_says_when_none(tmp_path, capsys):
    for name in NAMES[:2]:
        gt = scene((60, 80), ord(name))
        _save(tmp_path / "gt" / f"{name}.png", gt)
        _save(tmp_path / "res" / f"{name}_real_A.png", (gt * 0.3).astype(np.uint8))
        _save(tmp_path / "res" / f"{name}_fake_B.png", np.clip(gt * 0.9, 0, 255).astype(np.uint8))
        _save(tmp_path / "other" / f"{name}.png", 255 - gt)
    out = tmp_path / "r.json"
    assert (
        main(
            [
                "--pred",
                f"NeRCo={tmp_path / 'res'}",
                "--pred",
                str(tmp_path / "other"),
                "--gt",
                str(tmp_path / "gt"),
                "--loe",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    report = json.loads(out.read_text())
    assert list(report["methods"]) == ["NeRCo", "other"]
    for method, folder, suffix in (("NeRCo", "res", "_fake_B"), ("other", "other", "")):
        entry = report["methods"][method]["per_image"][0]
        pred = np.asarray(Image.open(tmp_path / folder / f"a{suffix}.png"))
        low = np.asarray(Image.open(tmp_path / "res" / "a_real_A.png"))
        assert entry["loe"] == loe.loe(low, pred)
    assert (
        main(
            [
                "--pred",
                str(tmp_path / "other"),
                "--gt",
                str(tmp_path / "gt"),
                "--loe",
                "--out",
                str(tmp_path / "no.json"),
            ]
        )
        == 2
    )
    assert "--input" in _one_error(capsys) and not (tmp_path / "no.json").exists()
    _save(tmp_path / "small" / "a.png", np.zeros((10, 10, 3), np.uint8))
    _save(tmp_path / "small" / "b.png", np.zeros((60, 80, 3), np.uint8))
    assert (
        main(
            [
                "--pred",
                str(tmp_path / "other"),
                "--gt",
                str(tmp_path / "gt"),
                "--loe",
                "--input",
                str(tmp_path / "small"),
            ]
        )
        == 2
    )
    line = _one_error(capsys)
    assert "a.png is 80x60 but its input" in line and "10x10" in line


def test_no_reference_scores_without_gt(tmp_path, capsys):
    root = _methods(tmp_path)
    out = tmp_path / "r.json"
    assert (
        main(
            [
                *_preds(root, ("good", "order")),
                "--input",
                str(root / "low"),
                "--loe",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    report = json.loads(out.read_text())
    assert report["protocol"]["reference"].startswith("none")
    assert "psnr" not in report["protocol"]
    assert set(report["methods"]["order"]["mean"]) == {"loe"}
    assert set(report["methods"]["good"]["per_image"][0]) == {"name", "loe", "pred"}
    assert main([*_preds(root, ("good",)), "--input", str(root / "low"), "--lpips"]) == 2
    assert "--gt" in _one_error(capsys)
    assert main([*_preds(root, ("good",)), "--input", str(root / "low")]) == 2
    assert "nothing to score" in _one_error(capsys)


def test_method_names(tmp_path):
    run = tmp_path / "results" / "LOL" / "test_latest" / "images"
    run.mkdir(parents=True)
    assert method_name(str(run)) == "LOL"
    assert method_name(str(tmp_path / "egan") + "/") == "egan"
    odd = tmp_path / "x=y"
    odd.mkdir()
    assert parse_methods([f"A={run}", str(tmp_path / "egan"), str(odd)]) == [
        ("A", str(run)),
        ("egan", str(tmp_path / "egan")),
        ("x=y", str(odd)),
    ]
    with pytest.raises(UserError, match="two methods are named 'A'"):
        parse_methods([f"A={run}", f"A={odd}"])
    with pytest.raises(UserError, match="'input' is taken"):
        parse_methods([f"input={run}"])


def test_bad_table_and_page_options_stop_before_scoring(tmp_path, capsys):
    root = _methods(tmp_path)
    out = tmp_path / "r.json"
    assert (
        main([*_preds(root), "--gt", str(root / "gt"), "--table", "r.txt", "--out", str(out)]) == 2
    )
    assert ".md .tex .csv" in _one_error(capsys) and not out.exists()
    assert main([*_preds(root), "--gt", str(root / "gt"), "--html"]) == 2
    assert "--web_dir" in _one_error(capsys)


def test_several_methods_page(tmp_path):
    from html_tree import parse, table_rows

    root = _methods(tmp_path)
    web = tmp_path / "page"
    out = tmp_path / "r.json"
    assert (
        main(
            [
                *_preds(root),
                "--gt",
                str(root / "gt"),
                "--input",
                str(root / "low"),
                "--html",
                "--web_dir",
                str(web),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    report = json.loads(out.read_text())
    doc = parse(web / "index.html")
    labels = [th.attrs["data-label"] for th in doc.one("tr", cls="cols").all("th")[1:]]
    assert labels == ["input", "good", "order", "bad", "ground truth"]
    rows = table_rows(doc)
    assert [r.attrs["data-name"] for r in rows] == list(NAMES)
    for row, i in zip(rows, range(3), strict=True):
        assert row.all("img")[0].attrs["src"] == f"../low/{NAMES[i]}.png"
        for c, method in enumerate(("good", "order", "bad"), start=1):
            cell = row.one("td", data_c=str(c))
            spans = {s.attrs["data-m"]: s for s in cell.all("span") if "data-m" in s.attrs}
            entry = report["methods"][method]["per_image"][i]
            assert float(spans["psnr"].attrs["data-v"]) == entry["psnr"]
            assert float(spans["ssim"].attrs["data-v"]) == entry["ssim"]
            best_psnr = max(report["methods"][m]["per_image"][i]["psnr"] for m in report["methods"])
            assert ("best" in spans["psnr"].attrs.get("class", "")) == (entry["psnr"] == best_psnr)
    assert len(doc.one("section", cls="plots").all("svg")) == 2  # PSNR and SSIM
    note = doc.one("p", cls="note").text()
    assert re.match(r"3 images; PSNR/SSIM on 8-bit RGB, GT-mean off", note)
    assert math.isfinite(report["methods"]["bad"]["mean"]["psnr"])
