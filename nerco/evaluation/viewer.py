"""The result viewer: one self-contained HTML page per report (or training run).

A table with a row per image and a column per image kind (input, each method, ground
truth; or training's nine visuals), each cell holding a lazily loaded thumbnail and its
scores; sort buttons per score, a filter box, a distribution plot per metric, and a large
view (click a thumbnail) that shows the row's images side by side with zoom and pan
synchronised across them, ← → to the next row, and a before/after slider between any two.

The script and style (``viewer_assets/``) are written into the page, so it works from
``file://`` offline with no request leaving the folder; images are referenced by paths
relative to the page. The table itself is plain HTML (readable without the script).
This module stays whole (about 260 lines of code): it writes the page's data model and
markup in one place; the behaviour is the JavaScript in ``viewer_assets/``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path, PurePath
from urllib.parse import quote

import dominate
from dominate import tags
from dominate.util import raw

from nerco.evaluation.viewer_plot import PALETTE, distribution_svg

logger = logging.getLogger(__name__)

ASSETS = Path(__file__).with_name("viewer_assets")
INDEX_NAME = "index.html"


@dataclass(frozen=True)
class Metric:
    """A score shown on the page: its label, which way is better (None: not known)."""

    key: str
    label: str
    higher_is_better: bool | None = None
    decimals: int = 4
    unit: str = ""

    @property
    def arrow(self) -> str:
        return {True: " ↑", False: " ↓", None: ""}[self.higher_is_better]

    @property
    def heading(self) -> str:
        """``label (unit) arrow``, e.g. ``PSNR (dB) ↑``."""
        return self.label + (f" ({self.unit})" if self.unit else "") + self.arrow

    def format(self, value: float | None) -> str:
        """``decimals`` digits; None and NaN as ``n/a``, infinities as ``inf``."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "n/a"
        if isinstance(value, float) and math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.{self.decimals}f}" if isinstance(value, float | int) else str(value)


@dataclass(frozen=True)
class Column:
    """A column of the table: images (or only scores), and the metrics its cells show."""

    label: str
    metrics: tuple[str, ...] = ()
    images: bool = True


@dataclass
class Row:
    """One row: ``images`` and optional ``links`` (full size) map a column label to a path
    relative to the page; ``scores`` map a column label to ``{metric key: value}``."""

    name: str
    images: Mapping[str, str] = field(default_factory=dict)
    scores: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)
    links: Mapping[str, str] = field(default_factory=dict)
    note: str = ""


def relative_url(path: str | os.PathLike) -> str:
    """A relative file path as a URL (``/`` separators, ``#``, ``%``, spaces… encoded).

    Raises:
        ValueError: an absolute path (the page would break once moved).
    """
    pure = PurePath(path)
    if pure.is_absolute():
        raise ValueError(f"image paths must be relative to the page folder, got {path!s}")
    return quote(pure.as_posix(), safe="/")


def _data_value(value: object) -> str:
    """A score as the script reads it: full precision, ``Infinity``; "" when not a number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    if math.isnan(number):
        return ""
    return ("Infinity" if number > 0 else "-Infinity") if math.isinf(number) else repr(number)


def best_columns(values: Mapping[str, float | None], higher_is_better: bool | None) -> set[str]:
    """The columns holding the best value (all of them on a tie); none for a single column
    or an unknown direction. None and NaN never win; +inf wins when higher is better."""
    finite = {c: v for c, v in values.items() if v is not None and not math.isnan(v)}
    if higher_is_better is None or len(values) < 2 or not finite:
        return set()
    best = (max if higher_is_better else min)(finite.values())
    return {c for c, v in finite.items() if v == best}


def _image_size(path: Path) -> tuple[int, int] | None:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError):
        return None


class _Page:
    """Renders the rows fast (string templates) and the rest with dominate."""

    def __init__(
        self, web_dir: Path, columns: Sequence[Column], metrics: Mapping[str, Metric], width: int
    ) -> None:
        self.web_dir, self.columns, self.metrics, self.width = web_dir, columns, metrics, width
        self.index = {c.label: i for i, c in enumerate(columns)}
        self.colours = {
            c.label: PALETTE[i % len(PALETTE)]
            for i, c in enumerate(c for c in columns if c.metrics)
        }

    def scores_html(self, column: Column, values: Mapping[str, float | None], best: set) -> str:
        spans = []
        for key in column.metrics:
            if key not in values:
                continue
            metric = self.metrics[key]
            cls = ' class="best"' if key in best else ""
            spans.append(
                f'<span data-m="{escape(key)}" data-v="{_data_value(values[key])}"'
                f'{cls}><span class="k">{escape(metric.label)}</span> '
                f"{escape(metric.format(values[key]))}</span>"
            )
        return f'<div class="s">{"".join(spans)}</div>' if spans else ""

    def best_by_column(self, scores: Mapping[str, Mapping[str, float | None]]) -> dict:
        best: dict[str, set] = {c.label: set() for c in self.columns}
        for key, metric in self.metrics.items():
            values = {
                c.label: scores[c.label][key]
                for c in self.columns
                if key in c.metrics and key in scores.get(c.label, {})
            }
            for label in best_columns(values, metric.higher_is_better):
                best[label].add(key)
        return best

    def row_html(self, row: Row) -> str:
        first = next((p for p in row.images.values() if p), None)
        size = _image_size(self.web_dir / first) if first else None
        w, h = size or (4, 3)
        height = max(1, round(self.width * h / w))
        best = self.best_by_column(row.scores)
        cells = [
            f'<tr class="r" data-name="{escape(row.name)}"'
            + (f' data-w="{w}" data-h="{h}"' if size else "")
            + '><th class="n" '
            f'scope="row">{escape(row.name)}'
            + (f'<div class="rn">{escape(row.note)}</div>' if row.note else "")
            + "</th>"
        ]
        for column in self.columns:
            parts = []
            path = row.images.get(column.label)
            if path:
                src, href = relative_url(path), relative_url(row.links.get(column.label, path))
                parts.append(
                    f'<a href="{href}"><img class="t" src="{src}" alt="'
                    f'{escape(column.label)}" width="{self.width}" height="{height}" '
                    f'loading="lazy" decoding="async"></a>'
                )
            parts.append(
                self.scores_html(column, row.scores.get(column.label, {}), best[column.label])
            )
            cells.append(f'<td class="c" data-c="{self.index[column.label]}">{"".join(parts)}</td>')
        return "".join(cells) + "</tr>\n"

    def head(self, mean: Mapping[str, Mapping[str, float | None]] | None, mean_label: str):
        with tags.thead():
            with tags.tr(cls="cols"):
                with tags.th(cls="n", scope="col"):
                    tags.button("name", cls="sort", data_sort="name", title="sort by name")
                for i, column in enumerate(self.columns):
                    with tags.th(scope="col", data_c=str(i), data_label=column.label):
                        if column.label in self.colours:
                            tags.span(cls="dot", style=f"--c:{self.colours[column.label]}")
                        tags.span(column.label)
            if not any(c.metrics for c in self.columns):
                return
            best = self.best_by_column(mean or {})
            with tags.tr(cls="mean"):
                tags.th(mean_label, cls="n")
                for i, column in enumerate(self.columns):
                    with tags.td(data_c=str(i)):
                        for key in column.metrics:
                            metric = self.metrics[key]
                            value = (mean or {}).get(column.label, {}).get(key)
                            with tags.button(
                                cls="sort",
                                data_c=str(i),
                                data_m=key,
                                title=f"sort by {column.label} {metric.label}",
                            ):
                                tags.span(metric.label + metric.arrow, cls="k")
                                if mean is not None:
                                    tags.span(
                                        " " + metric.format(value),
                                        cls="best" if key in best[column.label] else "",
                                    )
                            tags.br()

    def plots(self, rows: Sequence[Row]) -> list:
        figures, colours = [], self.colours
        for key, metric in self.metrics.items():
            series, legend = [], []
            for column in (c for c in self.columns if key in c.metrics):
                values = [r.scores.get(column.label, {}).get(key) for r in rows]
                finite = [v for v in values if v is not None and math.isfinite(v)]
                infinite = sum(1 for v in values if v is not None and math.isinf(v))
                series.append((column.label, colours[column.label], finite))
                mean = sum(finite) / len(finite) if finite else None
                legend.append((column.label, colours[column.label], mean, infinite))
            svg = distribution_svg(metric.heading, series)
            if svg:
                figures.append((metric, svg, legend))
        return figures


def write_viewer(
    web_dir: str | os.PathLike,
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Row],
    metrics: Mapping[str, Metric] | None = None,
    *,
    mean: Mapping[str, Mapping[str, float | None]] | None = None,
    mean_label: str = "mean",
    note: str | None = None,
    width: int = 256,
    refresh: int = 0,
) -> Path:
    """Write ``<web_dir>/index.html`` (module docstring for what it shows).

    Args:
        web_dir: folder of the page; created if missing. Image paths are relative to it.
        title: page title and heading.
        columns: the columns, in display order; labels must be unique.
        rows: the rows, in display order.
        metrics: every metric key the columns name.
        mean: ``{column label: {metric key: value}}`` for the summary row (sort buttons
            are there whether or not it is given).
        mean_label: the summary row's name, e.g. ``mean of 15``.
        note: a line under the title (e.g. the protocol).
        width: initial thumbnail width in pixels (the page has a slider).
        refresh: reload the page every ``refresh`` seconds when > 0.

    Returns:
        The page's path.

    Raises:
        ValueError: an absolute image path, a repeated column label or an unknown metric.
    """
    metrics = dict(metrics or {})
    labels = [c.label for c in columns]
    if len(set(labels)) != len(labels):
        raise ValueError(f"column labels must be unique, got {labels}")
    unknown = {k for c in columns for k in c.metrics} - set(metrics)
    if unknown:
        raise ValueError(f"metrics without a description: {sorted(unknown)}")
    web = Path(web_dir)
    web.mkdir(parents=True, exist_ok=True)
    page = _Page(web, columns, metrics, int(width))
    body = "".join(page.row_html(row) for row in rows)
    doc = dominate.document(title=title)
    with doc.head:
        tags.meta(charset="utf-8")
        tags.meta(name="viewport", content="width=device-width, initial-scale=1")
        if refresh > 0:
            tags.meta(http_equiv="refresh", content=str(refresh))
        tags.link(rel="icon", href="data:,")
        tags.style(
            raw(
                f":root {{ --tw: {int(width)}px; }}\n"
                + (ASSETS / "viewer.css").read_text(encoding="utf-8")
            )
        )
    with doc:
        with tags.header(cls="bar"):
            tags.h1(title)
            tags.input_(
                type="search",
                id="filter",
                placeholder="filter by name",
                aria_label="filter by name",
            )
            tags.span(f"{len(rows)} shown", id="count", cls="count")
            with tags.label("thumbnails"):
                tags.input_(
                    type="range", id="thumb", min="64", max="768", step="16", value=str(int(width))
                )
            tags.span("click an image for the large view", cls="hint")
            if note:
                tags.p(note, cls="note")
        figures = page.plots(rows)
        if figures:
            with tags.section(cls="plots"):
                for metric, svg, legend in figures:
                    with tags.figure():
                        raw(svg)
                        with tags.figcaption():
                            tags.b(metric.heading + " per image")
                            for name, colour, value, infinite in legend:
                                extra = f" ({infinite} inf)" if infinite else ""
                                with tags.span(cls="entry"):
                                    tags.span(cls="swatch", style=f"--c:{colour}")
                                    tags.span(f"{name} {metric.format(value)}{extra}")
        with tags.main(), tags.table(cls="grid"):
            page.head(mean, mean_label)
            tags.tbody(raw(body))
        tags.script(raw((ASSETS / "viewer.js").read_text(encoding="utf-8")))
    path = web / INDEX_NAME
    path.write_text(doc.render(), encoding="utf-8")
    logger.debug("viewer with %d rows written to %s", len(rows), path)
    return path
