"""nerco.evaluation.pages: training's incremental page and test.py's comparison page, as viewer
pages."""

import pytest
from conftest import make_image
from html_tree import parse, table_rows

from nerco.evaluation.pages import HTML, SCORES_COLUMN, write_comparison_page


def _cells(row):
    return row.all("td")


def test_html_page_rows_are_headers_columns_are_captions(tmp_path) -> None:
    web_dir = tmp_path / "web"
    page = HTML(web_dir, title="run")
    assert (web_dir / "images").is_dir()
    assert page.get_image_dir() == web_dir / "images"
    page.add_text("note ü")
    for epoch in (2, 1):  # the trainer lists the newest epoch first
        names = [f"e{epoch}_real_A.png", f"e{epoch}_fake_B.png"]
        for name in names:
            make_image(web_dir / "images" / name, (40, 20), seed=epoch)
        page.add_header(f"epoch [{epoch}]")
        page.add_images(ims=names, txts=["real_A", "fake_B"], links=names, width=128)
    index = page.save()
    assert index == web_dir / "index.html"

    doc = parse(index)
    assert [th.attrs["data-label"] for th in doc.one("tr", cls="cols").all("th")[1:]] == [
        "real_A",
        "fake_B",
    ]
    rows = table_rows(doc)
    assert [r.attrs["data-name"] for r in rows] == ["epoch [2]", "epoch [1]"]
    assert (rows[0].attrs["data-w"], rows[0].attrs["data-h"]) == ("40", "20")
    imgs = [img.attrs for img in rows[1].all("img")]
    assert [(a["src"], a["alt"], a["width"], a["height"], a["loading"]) for a in imgs] == [
        ("images/e1_real_A.png", "real_A", "128", "64", "lazy"),
        ("images/e1_fake_B.png", "fake_B", "128", "64", "lazy"),
    ]
    assert [a.attrs["href"] for a in rows[1].all("a")] == [
        "images/e1_real_A.png",
        "images/e1_fake_B.png",
    ]
    assert "note ü" in doc.one("p", cls="note").text()
    assert not doc.all("meta", http_equiv="refresh")
    text = index.read_text(encoding="utf-8")
    assert str(tmp_path) not in text
    # self-contained: the script and style are in the page, nothing is fetched from elsewhere
    assert all("src" not in script.attrs for script in doc.all("script"))
    assert "function sortBy" in doc.one("script").text() and "table.grid" in doc.one("style").text()
    assert not [
        n
        for n in doc.all()
        if n.tag in ("link", "script", "img")
        and any(
            str(n.attrs.get(k, "")).startswith(("http:", "https:", "//")) for k in ("src", "href")
        )
    ]


def test_html_save_twice_writes_whole_page(tmp_path) -> None:
    page = HTML(tmp_path, title="t")
    page.add_header("first")
    page.save()
    page.add_header("second")
    page.add_images(["a.png"], ["x"], ["a.png"])
    text = page.save().read_text(encoding="utf-8")
    assert text.count("<html") == 1
    assert [r.attrs["data-name"] for r in table_rows(parse(tmp_path / "index.html"))] == [
        "first",
        "second",
    ]


def test_html_refresh_meta_and_bad_calls(tmp_path) -> None:
    page = HTML(tmp_path, title="t", refresh=7)
    metas = [n.attrs for n in parse(page.save()).all("meta") if n.attrs.get("http-equiv")]
    assert metas == [{"http-equiv": "refresh", "content": "7"}]
    with pytest.raises(ValueError, match="as many captions"):
        page.add_images(["a.png"], ["a", "b"], ["a.png"])
    with pytest.raises(ValueError, match="relative"):
        page.add_images([str(tmp_path / "a.png")], ["a"], ["a.png"])


def test_comparison_page(tmp_path) -> None:
    rows = [
        {"name": "a<b&c.png", "images": {"input": "input/a.png", "enhanced": "out/a #1.png"}},
        {"name": "plain", "images": {"input": "input/p.png", "enhanced": "out/p.png"}},
    ]
    index = write_comparison_page(
        web_dir=tmp_path / "cmp", title="test", rows=rows, columns=["input", "enhanced"], width=200
    )
    assert index == tmp_path / "cmp" / "index.html"
    raw = index.read_text(encoding="utf-8")
    assert "a&lt;b&amp;c.png" in raw and "a<b&c" not in raw
    doc = parse(index)
    assert [r.attrs["data-name"] for r in table_rows(doc)] == ["a<b&c.png", "plain"]
    assert [th.text() for th in doc.one("tr", cls="cols").all("th")] == [
        "name",
        "input",
        "enhanced",
    ]
    imgs = [a.attrs for a in doc.one("tbody").all("img")]
    assert [(a["src"], a["alt"], a["width"]) for a in imgs] == [
        ("input/a.png", "input", "200"),
        ("out/a%20%231.png", "enhanced", "200"),
        ("input/p.png", "input", "200"),
        ("out/p.png", "enhanced", "200"),
    ]
    assert not doc.all("tr", cls="mean")  # no scores: no summary row


def test_comparison_page_missing_image_gives_empty_cell(tmp_path) -> None:
    rows = [{"name": "only_in", "images": {"input": "i.png"}}]
    index = write_comparison_page(tmp_path, title="t", rows=rows, columns=["input", "enhanced"])
    (row,) = table_rows(parse(index))
    assert len(row.all("img")) == 1 and len(_cells(row)) == 2
    assert _cells(row)[1].children == []


def test_comparison_page_scores_and_mean_row(tmp_path):
    rows = [
        {
            "name": "a",
            "images": {"input": "i/a.png", "NeRCo": "o/a.png"},
            "scores": {"PSNR": 21.123456, "SSIM": 0.5},
        },
        {
            "name": "b",
            "images": {"input": "i/b.png", "NeRCo": "o/b.png"},
            "scores": {"PSNR": float("inf"), "SSIM": None},
        },
    ]
    mean = {"name": "mean of 2", "scores": {"PSNR": 30.0, "SSIM": float("nan")}}
    index = write_comparison_page(
        tmp_path,
        "t",
        rows,
        ["input", "NeRCo"],
        score_columns=["PSNR", "SSIM"],
        mean=mean,
        note="RGB",
    )
    doc = parse(index)
    labels = [th.text() for th in doc.one("tr", cls="cols").all("th")]
    assert labels == ["name", "input", "NeRCo", SCORES_COLUMN]
    summary = doc.one("tr", cls="mean")
    assert summary.one("th").text() == "mean of 2"
    assert [b.text() for b in summary.all("button")] == ["PSNR 30.0000", "SSIM n/a"]
    text = index.read_text(encoding="utf-8")
    assert text.index("mean of 2") < text.index('data-name="a"') < text.index('data-name="b"')

    def scores(row):
        return [
            (s.attrs["data-m"], s.attrs["data-v"], s.text())
            for s in row.all("span")
            if "data-m" in s.attrs
        ]

    a, b = table_rows(doc)
    assert scores(a) == [("PSNR", "21.123456", "PSNR 21.1235"), ("SSIM", "0.5", "SSIM 0.5000")]
    assert scores(b) == [("PSNR", "Infinity", "PSNR inf"), ("SSIM", "", "SSIM n/a")]
    assert "RGB" in doc.one("p", cls="note").text()
    assert len(doc.one("tbody").all("img")) == 4
    rows[0]["scores"] = [1.0]
    with pytest.raises(TypeError, match="'scores' must be a mapping"):
        write_comparison_page(tmp_path, "t", rows, ["input"], score_columns=["PSNR"])
