"""Tests for nerco.html: the incremental page and the comparison page."""

from html.parser import HTMLParser

from nerco.html import HTML, write_comparison_page


class _Collector(HTMLParser):
    """Collects start tags with their attributes and the text of each tag."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data) -> None:
        if data.strip():
            self.texts.append(data.strip())


def _parse(path) -> _Collector:
    parser = _Collector()
    parser.feed(path.read_bytes().decode("utf-8"))
    return parser


def test_html_page_images_captions_links(tmp_path) -> None:
    web_dir = tmp_path / "web"
    page = HTML(web_dir, title="run")
    assert (web_dir / "images").is_dir()
    assert page.get_image_dir() == web_dir / "images"
    page.add_header("epoch [1]")
    page.add_images(
        ims=["e1_real_A.png", "e1_fake_B.png"],
        txts=["real_A", "fake_B"],
        links=["e1_real_A.png", "e1_fake_B.png"],
        width=128,
    )
    page.add_text("note ü")
    index = page.save()
    assert index == web_dir / "index.html"

    parsed = _parse(index)
    imgs = [attrs for tag, attrs in parsed.tags if tag == "img"]
    assert [a["src"] for a in imgs] == ["images/e1_real_A.png", "images/e1_fake_B.png"]
    assert all("128px" in a["style"] for a in imgs)
    hrefs = [attrs["href"] for tag, attrs in parsed.tags if tag == "a"]
    assert hrefs == ["images/e1_real_A.png", "images/e1_fake_B.png"]
    for text in ("epoch [1]", "real_A", "fake_B", "note ü"):
        assert text in parsed.texts
    assert not any(tag == "meta" and a.get("http-equiv") for tag, a in parsed.tags)
    assert str(tmp_path) not in index.read_text(encoding="utf-8")


def test_html_save_twice_writes_whole_page(tmp_path) -> None:
    page = HTML(tmp_path, title="t")
    page.add_header("first")
    page.save()
    page.add_header("second")
    text = page.save().read_text(encoding="utf-8")
    assert text.count("<html") == 1
    assert "first" in text and "second" in text


def test_html_refresh_meta(tmp_path) -> None:
    page = HTML(tmp_path, title="t", refresh=7)
    parsed = _parse(page.save())
    metas = [a for tag, a in parsed.tags if tag == "meta" and a.get("http-equiv")]
    assert metas == [{"http-equiv": "refresh", "content": "7"}]


def test_comparison_page(tmp_path) -> None:
    rows = [
        {"name": "a<b&c.png", "images": {"input": "input/a.png", "enhanced": "out/a.png"}},
        {"name": "plain", "images": {"input": "input/p.png", "enhanced": "out/p.png"}},
    ]
    index = write_comparison_page(
        web_dir=tmp_path / "cmp",
        title="test",
        rows=rows,
        columns=["input", "enhanced"],
        width=200,
    )
    assert index == tmp_path / "cmp" / "index.html"
    raw = index.read_text(encoding="utf-8")
    assert "a&lt;b&amp;c.png" in raw
    assert "a<b&c" not in raw

    parsed = _parse(index)
    assert sum(1 for tag, _ in parsed.tags if tag == "tr") == 1 + len(rows)
    assert [t for t in parsed.texts if t in ("name", "input", "enhanced")] == [
        "name",
        "input",
        "enhanced",
    ]
    assert "a<b&c.png" in parsed.texts  # unescaped back by the parser
    imgs = [a for tag, a in parsed.tags if tag == "img"]
    assert [(a["src"], a["alt"], a["width"]) for a in imgs] == [
        ("input/a.png", "input", "200"),
        ("out/a.png", "enhanced", "200"),
        ("input/p.png", "input", "200"),
        ("out/p.png", "enhanced", "200"),
    ]


def test_comparison_page_missing_image_gives_empty_cell(tmp_path) -> None:
    rows = [{"name": "only_in", "images": {"input": "i.png"}}]
    index = write_comparison_page(tmp_path, title="t", rows=rows, columns=["input", "enhanced"])
    parsed = _parse(index)
    assert sum(1 for tag, _ in parsed.tags if tag == "img") == 1
    assert sum(1 for tag, _ in parsed.tags if tag == "td") == 3


def test_comparison_page_scores_and_mean_row(tmp_path):
    rows = [
        {"name": "a", "images": {"input": "i/a.png", "NeRCo": "o/a.png"},
         "scores": {"PSNR": 21.123456, "SSIM": 0.5}},
        {"name": "b", "images": {"input": "i/b.png", "NeRCo": "o/b.png"},
         "scores": {"PSNR": float("inf"), "SSIM": None}},
    ]
    mean = {"name": "mean of 2", "scores": {"PSNR": 30.0, "SSIM": float("nan")}}
    index = write_comparison_page(tmp_path, "t", rows, ["input", "NeRCo"],
                                  score_columns=["PSNR", "SSIM"], mean=mean, note="RGB")
    parsed = _parse(index)
    assert [t for t in parsed.texts if t in ("name", "input", "NeRCo", "PSNR", "SSIM")] == [
        "name", "input", "NeRCo", "PSNR", "SSIM"]
    texts = parsed.texts
    # the mean row comes first, right after the header, then the rows in order
    assert texts.index("mean of 2") < texts.index("a") < texts.index("b")
    assert texts[texts.index("mean of 2") + 1:texts.index("mean of 2") + 3] == ["30.0000", "n/a"]
    assert texts[texts.index("a") + 1:texts.index("a") + 3] == ["21.1235", "0.5000"]
    assert texts[texts.index("b") + 1:texts.index("b") + 3] == ["inf", "n/a"]
    assert "RGB" in texts
    assert sum(1 for tag, _ in parsed.tags if tag == "tr") == 1 + 1 + len(rows)
    assert sum(1 for tag, _ in parsed.tags if tag == "img") == 4
    rows[0]["scores"] = [1.0]
    try:
        write_comparison_page(tmp_path, "t", rows, ["input"], score_columns=["PSNR"])
    except TypeError as err:
        assert "'scores' must be a mapping" in str(err)
    else:
        raise AssertionError("a list of scores was accepted")
