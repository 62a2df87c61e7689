"""The result viewer in a real browser: Playwright driving the Debian ``chromium``.

Pages are opened from ``file://`` only, on result folders generated here: every image loads,
nothing is logged as an error, no request leaves ``file://``, the sort buttons order the rows
by the clicked score, the filter hides rows, the large view keeps one zoom in every column
after a wheel event, ← → step through the rows, and the slider splits two images. Without
chromium or the playwright package (requirements-dev.txt) the tests skip with a notice.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_image
from PIL import Image
from test_compare import _methods, _preds, scene

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or sync_playwright is None,
    reason="chromium (Debian: apt install chromium) or playwright (pip install -r "
    "requirements-dev.txt) is missing; the viewer is not checked in a browser",
)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


class Page:
    """A page opened from file:// that records console errors and every request."""

    def __init__(self, browser, path: Path, size=(1280, 800)) -> None:
        self.page = browser.new_page(viewport={"width": size[0], "height": size[1]})
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(path.as_uri(), wait_until="load")

    def js(self, script: str, arg=None):
        return self.page.evaluate(script, arg)

    def load_every_image(self) -> dict:
        """Make the lazy thumbnails load, wait for all; {total, broken}."""
        self.js("() => document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; })")
        self.page.wait_for_function(
            "() => Array.from(document.images).every(i => i.complete)", timeout=30_000
        )
        return self.js("""() => ({total: document.images.length, broken: Array.from(
            document.images).filter(i => !(i.naturalWidth > 0))
            .map(i => i.getAttribute('src'))})""")

    def row_names(self) -> list[str]:
        return self.js(
            "() => Array.from(document.querySelectorAll('tbody tr'))"
            ".filter(r => !r.hidden).map(r => r.dataset.name)"
        )

    def panes(self) -> list[dict]:
        """Each large-view image: its scale and where the view centre falls in it."""
        return self.js("""() => Array.from(document.querySelectorAll('#lv .view img')).map(img => {
            const v = img.closest('.view').getBoundingClientRect(), r = img.getBoundingClientRect();
            return {scale: +img.dataset.scale, loaded: img.complete && img.naturalWidth > 0,
                    u: (v.left + v.width / 2 - r.left) / r.width,
                    v: (v.top + v.height / 2 - r.top) / r.height};})""")

    def check_clean(self) -> None:
        assert self.errors == []
        assert self.requests and all(u.startswith("file://") for u in self.requests), [
            u for u in self.requests if not u.startswith("file://")
        ]


def _report_page(tmp_path) -> tuple[Path, dict]:
    """Three methods on generated folders with odd names, scored by nerco.evaluation.scoring."""
    from nerco.evaluation.cli import main

    root = _methods(tmp_path / "runs dir #1", shape=(120, 160))
    for i, name in enumerate(("é 4", "10")):  # more rows, non-ASCII and numeric names
        gt = scene((120, 160), 7 + i)
        for folder, image in (
            ("gt", gt),
            ("low", gt // 5),
            ("good", gt),
            ("order", gt // 2),
            ("bad", 255 - gt),
        ):
            (root / folder).mkdir(exist_ok=True)
            Image.fromarray(image).save(root / folder / f"{name}.png")
    tiff = root / "gt" / "c.tif"  # browsers do not show TIFF: the page gets a PNG copy
    Image.open(root / "gt" / "c.png").save(tiff)
    (root / "gt" / "c.png").unlink()
    out = tmp_path / "report" / "r.json"
    assert (
        main(
            [
                *_preds(root),
                "--gt",
                str(root / "gt"),
                "--input",
                str(root / "low"),
                "--html",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    return out.with_name("index.html"), json.loads(out.read_text())


def test_report_page_sort_filter_large_view(browser, tmp_path):
    page_path, report = _report_page(tmp_path)
    page = Page(browser, page_path)
    assert page.load_every_image() == {"total": 5 * 5, "broken": []}  # input, 3 methods, gt
    assert page.row_names() == ["10", "a", "b", "c", "é 4"]

    def order(method, key):
        entries = report["methods"][method]["per_image"]
        values = {e["name"]: (np.inf if e[key] is None else e[key]) for e in entries}
        return sorted(values, key=values.get)

    button = "thead tr.mean button[data-c='{}'][data-m='{}']"
    page.page.click(button.format(2, "psnr"))  # columns: input, good, order, bad, gt
    assert page.row_names() == order("order", "psnr")
    page.page.click(button.format(2, "psnr"))  # again: reversed
    assert page.row_names() == order("order", "psnr")[::-1]
    page.page.click(button.format(3, "ssim"))
    assert page.row_names() == order("bad", "ssim")
    assert order("bad", "ssim") != order("order", "psnr")  # the two sorts differ
    page.page.click(button.format(1, "psnr"))  # two identical images: inf PSNR, sorted last
    assert page.row_names() == order("good", "psnr") and page.row_names()[-2:] == ["10", "é 4"]

    page.page.fill("#filter", "b")
    assert page.row_names() == ["b"]
    assert page.js("() => document.getElementById('count').textContent") == "1 of 5 shown"
    page.page.fill("#filter", "")

    first = page.row_names()[0]
    page.page.click(f"tbody tr[data-name='{first}'] td[data-c='2'] img")
    page.page.wait_for_function(
        "() => Array.from(document.querySelectorAll('#lv img'))"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    before = page.panes()
    assert len(before) == 5 and all(p["loaded"] for p in before)
    box = page.page.locator("#lv .pane .view").nth(3).bounding_box()
    page.page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.7)
    page.page.mouse.wheel(0, -500)
    page.page.wait_for_timeout(100)
    after = page.panes()
    assert after[0]["scale"] > 1.5 * before[0]["scale"]
    for pane in after[1:]:  # one zoom, one region, in every column
        assert pane["scale"] == pytest.approx(after[0]["scale"], rel=1e-9)
        assert (pane["u"], pane["v"]) == pytest.approx((after[0]["u"], after[0]["v"]), abs=1e-3)
    assert after[0]["u"] < 0.5 and after[0]["v"] > 0.5  # zoomed towards the cursor
    page.page.mouse.move(box["x"] + 50, box["y"] + 50)
    page.page.mouse.down()
    page.page.mouse.move(box["x"] + 90, box["y"] + 70, steps=4)
    page.page.mouse.up()
    dragged = page.panes()
    assert dragged[0]["u"] < after[0]["u"]
    assert all(
        (p["u"], p["v"]) == pytest.approx((dragged[0]["u"], dragged[0]["v"]), abs=1e-3)
        for p in dragged
    )

    names = page.row_names()
    lv_name = "() => document.querySelector('#lv .name').textContent"
    page.page.keyboard.press("ArrowRight")
    assert page.js(lv_name) == names[1]
    assert page.panes()[0]["scale"] == pytest.approx(dragged[0]["scale"])  # the zoom stays
    page.page.keyboard.press("ArrowLeft")
    page.page.keyboard.press("ArrowLeft")  # stops at the first row
    assert page.js(lv_name) == names[0]
    page.page.keyboard.press("1")  # one image pixel per screen pixel, in every column
    assert [p["scale"] for p in page.panes()] == pytest.approx([1.0] * 5)
    page.page.keyboard.press("0")  # fit again
    assert [p["scale"] for p in page.panes()] == pytest.approx([b["scale"] for b in before])

    page.page.keyboard.press("s")  # before/after slider: input | good by default
    split = "() => document.querySelector('#lv .clip').style.clipPath"
    assert len(page.panes()) == 2 and page.js(split).startswith("inset(0px 0px 0px")
    handle = page.page.locator("#lv .handle").bounding_box()
    x0 = handle["x"] + handle["width"] / 2
    page.page.mouse.move(x0, handle["y"] + handle["height"] / 2)
    page.page.mouse.down()
    page.page.mouse.move(x0 - 200, handle["y"] + handle["height"] / 2, steps=4)
    page.page.mouse.up()
    assert float(page.js(split).split()[-1].rstrip("px)")) == pytest.approx(
        x0 - 200 - page.page.locator("#lv .view").bounding_box()["x"], abs=2
    )
    page.page.select_option("#lv select[data-side='b']", "ground truth")
    assert page.js(
        "() => Array.from(document.querySelectorAll('#lv .view img')).map(i => i.alt)"
    ) == ["input", "ground truth"]
    page.page.screenshot(path=str(tmp_path / "viewer_slider.png"))
    page.page.keyboard.press("s")
    page.page.screenshot(path=str(tmp_path / "viewer_large.png"))
    page.page.keyboard.press("Escape")
    assert page.js("() => document.getElementById('lv').hidden")
    page.page.screenshot(path=str(tmp_path / "viewer.png"), full_page=True)
    assert Image.open(tmp_path / "viewer.png").size[0] >= 1280
    page.check_clean()


def test_test_py_gt_page(browser, tmp_path, run_script):
    sys.path.insert(0, str(Path(__file__).parent))
    from synth import write_network_weights

    write_network_weights(tmp_path / "saves" / "m", "latest", ["G_A", "Pre", "H"])
    photos, truth, out = tmp_path / "photos", tmp_path / "truth", tmp_path / "enhanced"
    make_image(photos / "day" / "p1.jpg", (28, 20), seed=1, dark=True)
    make_image(photos / "p2.tif", (20, 24), seed=2, dark=True)  # not shown by browsers
    make_image(truth / "p1.png", (28, 20), seed=3)
    make_image(truth / "p2.png", (20, 24), seed=4)
    run_script(
        "test.py",
        "--name",
        "m",
        "--checkpoints_dir",
        tmp_path / "saves",
        "--gpu_ids",
        "-1",
        "--input",
        photos,
        "--output",
        out,
        "--gt",
        truth,
    )
    scores = json.loads((out / "scores.json").read_text())
    assert [e["name"] for e in scores["per_image"]] == ["p1", "p2"]
    page = Page(browser, out / "index.html")
    assert page.load_every_image() == {"total": 6, "broken": []}
    assert page.js(
        "() => Array.from(document.querySelectorAll('thead th[data-label]'))"
        ".map(t => t.dataset.label)"
    ) == ["input", "NeRCo", "ground truth"]
    psnr = page.js(
        "() => Array.from(document.querySelectorAll('tbody [data-m=psnr]')).map(s => +s.dataset.v)"
    )
    assert psnr == pytest.approx([e["psnr"] for e in scores["per_image"]], rel=1e-12)
    page.check_clean()


def test_training_page_steps_through_epochs(browser, tmp_path):
    """web/index.html as the trainer writes it (its own save_visuals on a stand-in)."""
    from types import SimpleNamespace

    import torch

    from nerco.training.loop import VISUAL_NAMES
    from nerco.training.trainer import Trainer

    trainer = SimpleNamespace(
        web_dir=str(tmp_path / "web"),
        web_epochs=[],
        opt=SimpleNamespace(name="tiny", display_winsize=96),
    )
    for epoch in (1, 2, 3):
        gen = torch.Generator().manual_seed(epoch)
        trainer.model = SimpleNamespace(
            visuals={
                name: torch.rand(1, 1 if name == "mask" else 3, 24, 32, generator=gen) * 2 - 1
                for name in VISUAL_NAMES
            }
        )
        Trainer.save_visuals(trainer, epoch)
    page = Page(browser, tmp_path / "web" / "index.html")
    assert page.load_every_image() == {"total": 27, "broken": []}
    assert page.row_names() == ["epoch [3]", "epoch [2]", "epoch [1]"]
    assert page.js(
        "() => Array.from(document.querySelectorAll('thead th[data-label]'))"
        ".map(t => t.dataset.label)"
    ) == list(VISUAL_NAMES)
    page.page.click("tbody tr[data-name='epoch [3]'] td[data-c='4'] img")  # fake_B
    assert len(page.panes()) == 9
    page.page.keyboard.press("ArrowRight")
    assert page.js("() => document.querySelector('#lv .name').textContent") == "epoch [2]"
    page.page.wait_for_function(
        "() => Array.from(document.querySelectorAll('#lv img'))"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    page.page.mouse.move(640, 400)
    page.page.mouse.wheel(0, -300)
    page.page.wait_for_timeout(100)
    scales = [p["scale"] for p in page.panes()]
    assert len(scales) == 9 and len(set(scales)) == 1 and scales[0] > 0
    page.page.screenshot(path=str(tmp_path / "training_large.png"))
    page.check_clean()


def test_thousand_images_load_lazily(browser, tmp_path):
    from nerco.evaluation.pages import write_comparison_page

    rows = []
    for i in range(1000):
        make_image(tmp_path / "img" / f"{i}.png", (48, 32), seed=i)
        rows.append(
            {
                "name": str(i),
                "images": {"input": f"img/{i}.png", "NeRCo": f"img/{999 - i}.png"},
                "scores": {"PSNR": float(i % 37)},
            }
        )
    page = Page(
        browser,
        write_comparison_page(tmp_path, "1000", rows, ["input", "NeRCo"], score_columns=["PSNR"]),
    )
    loaded = "() => Array.from(document.images).filter(i => i.complete && i.naturalWidth).length"
    page.page.wait_for_timeout(300)
    assert page.js("() => document.images.length") == 2000
    assert page.js(loaded) < 300  # only the rows near the top
    page.js("() => window.scrollTo(0, document.body.scrollHeight)")
    page.page.wait_for_function(
        "() => { const r = document.querySelector('tbody tr:last-child');"
        " return Array.from(r.querySelectorAll('img')).every("
        "i => i.complete && i.naturalWidth > 0); }"
    )
    page.page.click("thead tr.mean button[data-m='PSNR']")
    names = page.row_names()
    assert [int(n) % 37 for n in names] == sorted(int(n) % 37 for n in names)
    page.check_clean()
    timing = page.js("() => performance.timing.loadEventEnd - performance.timing.navigationStart")
    sys.stdout.write(f"\n1000-row page: load event after {timing} ms\n")  # a figure, not a test


def test_the_checks_can_fail(browser, tmp_path):
    """A dangling image and a request to the network are caught by the same checks."""
    from nerco.evaluation.pages import write_comparison_page

    make_image(tmp_path / "there.png")
    index = write_comparison_page(
        tmp_path, "t", [{"name": "x", "images": {"a": "there.png", "b": "gone.png"}}], ["a", "b"]
    )
    text = index.read_text(encoding="utf-8")
    index.write_text(
        text.replace("</body>", '<img src="http://127.0.0.1:9/x.png"></body>'), encoding="utf-8"
    )
    page = Page(browser, index)
    assert page.load_every_image() == {
        "total": 3,
        "broken": ["gone.png", "http://127.0.0.1:9/x.png"],
    }
    with pytest.raises(AssertionError):
        page.check_clean()
    assert any(u.startswith("http://") for u in page.requests) and page.errors
