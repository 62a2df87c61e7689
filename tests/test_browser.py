"""Comparison pages in a real browser: every image of the page must load in headless Chromium.

The page under test is copied, with one added script, to a wrapper in the same folder (so
relative paths resolve alike). On ``load`` (fired once every image has loaded or failed) the
script lists the images whose ``complete && naturalWidth > 0`` is false into a
``<pre id="imgcheck">``, which ``--dump-dom`` prints.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_image
from PIL import Image

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))
                 if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: "
                                "apt install chromium); the page is not checked in a browser")

_CHECK = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const broken = images.filter(i => !(i.complete && i.naturalWidth > 0))
                       .map(i => i.getAttribute("src"));
  const out = document.createElement("pre");
  out.id = "imgcheck";
  out.textContent = JSON.stringify({total: images.length, broken: broken});
  document.body.appendChild(out);
});
</script>"""


def _image_check(page: Path, tmp_path: Path) -> dict:
    """Open ``page`` (through a wrapper beside it) in Chromium; return {total, broken}."""
    wrapper = page.with_name("_imgcheck.html")
    wrapper.write_text(page.read_text(encoding="utf-8").replace("</body>", _CHECK + "</body>"),
                       encoding="utf-8")
    proc = subprocess.run(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", "--dump-dom", wrapper.as_uri()],
        capture_output=True, text=True, timeout=120)
    wrapper.unlink()
    found = re.search(r'<pre id="imgcheck">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"no result from chromium (rc {proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


def _evaluate_folders(root: Path) -> tuple[Path, Path]:
    """test.py-style predictions (with inputs) and ground truth in PNG, JPEG and TIFF."""
    pred, gt = root / "results" / "images", root / "data" / "gt dir #1"
    for i, (name, ext) in enumerate([("1", ".png"), ("b é", ".jpg"), ("c", ".tif")]):
        make_image(pred / f"{name}_fake_B.png", (24, 20), seed=i)
        make_image(pred / f"{name}_real_A.png", (24, 20), seed=10 + i, dark=True)
        make_image(gt / "nested" / f"{name}{ext}", (24, 20), seed=20 + i)
    return pred, gt


def test_evaluate_html_page_loads_every_image(tmp_path, capsys):
    from nerco.evaluate import main

    pred, gt = _evaluate_folders(tmp_path)
    out = tmp_path / "report" / "scores.json"
    assert main(["--pred", str(pred), "--gt", str(gt), "--out", str(out), "--html"]) == 0
    page = out.with_name("index.html")
    text = page.read_text(encoding="utf-8")
    assert "mean of 3" in text and text.index("mean of 3") < text.index("c_fake_B.png")
    assert "../data/gt%20dir%20%231/nested/1.png" in text  # linked, not copied
    assert (out.parent / "images" / "gt" / "c.png").is_file()  # TIFF: PNG copy
    check = _image_check(page, tmp_path)
    assert check == {"total": 9, "broken": []}


def test_image_check_reports_a_missing_image(tmp_path):
    """The check itself can fail: a page with one dangling link is caught."""
    from nerco.html import write_comparison_page

    make_image(tmp_path / "there.png")
    page = write_comparison_page(tmp_path, "t", [{"name": "x", "images": {
        "a": "there.png", "b": "gone.png"}}], ["a", "b"])
    assert _image_check(page, tmp_path) == {"total": 2, "broken": ["gone.png"]}


def test_test_py_gt_page_loads_every_image(tmp_path, run_script):
    sys.path.insert(0, str(Path(__file__).parent))
    from synth import write_network_weights

    write_network_weights(tmp_path / "saves" / "m", "latest", ["G_A", "Pre", "H"])
    photos, truth, out = tmp_path / "photos", tmp_path / "truth", tmp_path / "enhanced"
    make_image(photos / "day" / "p1.jpg", (28, 20), seed=1, dark=True)
    make_image(photos / "p2.tif", (20, 24), seed=2, dark=True)  # not shown by browsers
    make_image(truth / "p1.png", (28, 20), seed=3)
    make_image(truth / "p2.png", (20, 24), seed=4)
    run_script("test.py", "--name", "m", "--checkpoints_dir", tmp_path / "saves", "--gpu_ids",
               "-1", "--input", photos, "--output", out, "--gt", truth)
    assert sorted(p.name for p in out.glob("*.png")) == ["p1.png", "p2.png"]
    assert Image.open(out / "p2.png").size == (20, 24)
    scores = json.loads((out / "scores.json").read_text())
    assert [e["name"] for e in scores["per_image"]] == ["p1", "p2"]
    assert all(np.isfinite(e["psnr"]) for e in scores["per_image"])
    check = _image_check(out / "index.html", tmp_path)
    assert check == {"total": 6, "broken": []}
