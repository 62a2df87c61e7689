"""Static HTML pages for looking at training snapshots and test results.

Two writers live here:

* :class:`HTML` builds a page row by row (a header, then a table row of images with
  captions); training uses it to show the latest visuals of every epoch.
* :func:`write_comparison_page` writes a single table with one row per image and one
  column per variant (for example input | enhanced), optionally followed by score columns
  and headed by a mean row; ``test.py`` and ``nerco.evaluate`` use it.

Pages are UTF-8, and every image is referenced by a path relative to the page, so a
results folder can be moved or copied elsewhere and still display.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath
from urllib.parse import quote

import dominate
from dominate import tags

from nerco.util import mkdirs

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

_IMAGE_SUBDIR = "images"
_INDEX_NAME = "index.html"
_CELL_STYLE = "word-wrap: break-word; text-align: center; vertical-align: top;"


def _relative_url(path: PathLike) -> str:
    """Turn a relative file path into a URL fragment usable in ``src``/``href``.

    Separators become ``/`` and characters that would end or confuse a URL (``#``,
    ``?``, ``%``, spaces, non-ASCII) are percent-encoded.

    Raises:
        ValueError: If ``path`` is absolute (the page would break once moved).
    """
    pure = PurePath(path)
    if pure.is_absolute():
        raise ValueError(f"image paths must be relative to the page folder, got {path!s}")
    return quote(pure.as_posix(), safe="/")


def _new_document(title: str, refresh: int) -> dominate.document:
    """Create an empty UTF-8 document, refreshing itself every ``refresh`` seconds if > 0."""
    doc = dominate.document(title=title)
    with doc.head:
        tags.meta(charset="utf-8")
        if refresh > 0:
            tags.meta(http_equiv="refresh", content=str(refresh))
    return doc


def _write_document(doc: dominate.document, web_dir: Path) -> Path:
    """Render ``doc`` to ``web_dir/index.html`` (UTF-8) and return the file path."""
    index_path = web_dir / _INDEX_NAME
    index_path.write_text(doc.render(), encoding="utf-8")
    logger.debug("wrote %s", index_path)
    return index_path


class HTML:
    """An HTML page built incrementally and saved to ``<web_dir>/index.html``.

    Images shown on the page are expected under ``<web_dir>/images``; the paths passed
    to :meth:`add_images` are relative to that folder.

    Args:
        web_dir: Folder that holds the page; created together with its ``images``
            subfolder.
        title: Page title.
        refresh: If > 0, the page asks the browser to reload it every ``refresh``
            seconds (handy while training is running).
    """

    def __init__(self, web_dir: PathLike, title: str, refresh: int = 0) -> None:
        self.title = title
        self.web_dir = Path(web_dir)
        self.img_dir = self.web_dir / _IMAGE_SUBDIR
        mkdirs(self.web_dir, self.img_dir)
        self.doc = _new_document(title=title, refresh=refresh)

    def get_image_dir(self) -> Path:
        """Return the folder where images shown on this page should be saved."""
        return self.img_dir

    def add_header(self, text: str) -> None:
        """Append a level-3 heading.

        Args:
            text: Heading text (escaped on output).
        """
        with self.doc:
            tags.h3(text)

    def add_text(self, text: str) -> None:
        """Append a paragraph of plain text.

        Args:
            text: Paragraph text (escaped on output).
        """
        with self.doc:
            tags.p(text)

    def add_images(
        self,
        ims: Sequence[str],
        txts: Sequence[str],
        links: Sequence[str],
        width: int = 256,
    ) -> None:
        """Append a table holding one row of images.

        Each cell shows an image scaled to ``width`` pixels, links it to ``links[i]``
        (usually the same file at full size) and puts ``txts[i]`` underneath.

        Args:
            ims: Image paths relative to the ``images`` folder.
            txts: One caption per image.
            links: One link target per image, relative to the ``images`` folder.
            width: Displayed image width in pixels.

        Raises:
            ValueError: If the three lists differ in length or a path is absolute.
        """
        if not len(ims) == len(txts) == len(links):
            raise ValueError(
                f"add_images needs as many captions and links as images, got "
                f"{len(ims)} images, {len(txts)} captions, {len(links)} links"
            )
        with self.doc, tags.table(border=1, style="table-layout: fixed;"), tags.tr():
            for im, txt, link in zip(ims, txts, links, strict=True):
                src = _relative_url(PurePath(_IMAGE_SUBDIR) / im)
                href = _relative_url(PurePath(_IMAGE_SUBDIR) / link)
                with tags.td(style=_CELL_STYLE), tags.p():
                    with tags.a(href=href):
                        tags.img(style=f"width:{int(width)}px", src=src, alt=txt)
                    tags.br()
                    tags.span(txt)

    def save(self) -> Path:
        """Write the whole page to ``<web_dir>/index.html``, replacing any earlier copy.

        Returns:
            Path of the written file.
        """
        return _write_document(self.doc, self.web_dir)


def _format_score(value: object) -> str:
    """A score for a table cell: floats to 4 decimals, None and NaN as ``n/a``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.4f}"
    return str(value)


def _score_cells(scores: object, score_columns: Sequence[str], name: object) -> None:
    """Append one ``td`` per score column (empty when the row has no such score)."""
    if not isinstance(scores, Mapping):
        raise TypeError(f"row {name!r}: 'scores' must be a mapping")
    for label in score_columns:
        if label in scores:
            tags.td(_format_score(scores[label]), cls="score", style="text-align: right;")
        else:
            tags.td()


def write_comparison_page(
    web_dir: PathLike,
    title: str,
    rows: Sequence[Mapping[str, object]],
    columns: Sequence[str],
    width: int = 256,
    score_columns: Sequence[str] = (),
    mean: Mapping[str, object] | None = None,
    note: str | None = None,
) -> Path:
    """Write ``<web_dir>/index.html`` with one table comparing images side by side.

    The table starts with a header row (``name``, the column labels, then the score labels);
    with ``mean``, a bold summary row follows (its name and scores, no images); each entry of
    ``rows`` then gives one table row: its name, one cell per column with the image (``alt``
    set to the column label) linked to itself at full size, then its scores. A row with no
    image or no score for some column gets an empty cell.

    Args:
        web_dir: Folder for the page; created if missing.
        title: Page title, also shown as a heading.
        rows: Entries ``{"name": str, "images": {column_label: relative_path},
            "scores": {score_label: value}}`` where each path is relative to ``web_dir``
            and ``scores`` is optional. Floats show with 4 decimals, None/NaN as ``n/a``.
        columns: Column labels, in display order.
        width: Displayed image width in pixels.
        score_columns: Score labels, in display order (none by default).
        mean: Optional summary row ``{"name": str, "scores": {score_label: value}}``.
        note: Optional line of text under the heading (e.g. how the scores were computed).

    Returns:
        Path of the written file.

    Raises:
        ValueError: If an image path is absolute.
        TypeError: If a row's ``images`` or ``scores`` is not a mapping.
    """
    web_path = Path(web_dir)
    mkdirs(web_path)
    doc = _new_document(title=title, refresh=0)
    with doc:
        tags.h3(title)
        if note:
            tags.p(note)
        with tags.table(border=1, style="table-layout: fixed;"):
            with tags.tr():
                tags.th("name")
                for label in [*columns, *score_columns]:
                    tags.th(label)
            if mean is not None:
                with tags.tr(cls="mean", style="font-weight: bold;"):
                    tags.td(str(mean.get("name", "mean")))
                    for _ in columns:
                        tags.td()
                    _score_cells(mean.get("scores", {}), score_columns, mean.get("name"))
            for row in rows:
                images = row.get("images", {})
                if not isinstance(images, Mapping):
                    raise TypeError(f"row {row.get('name')!r}: 'images' must be a mapping")
                with tags.tr():
                    tags.td(str(row.get("name", "")))
                    for label in columns:
                        path = images.get(label)
                        if path is None:
                            tags.td()
                            continue
                        url = _relative_url(path)
                        with tags.td(style=_CELL_STYLE), tags.a(href=url):
                            tags.img(src=url, alt=label, width=str(int(width)))
                    if score_columns:
                        _score_cells(row.get("scores", {}), score_columns, row.get("name"))
    index_path = _write_document(doc, web_path)
    logger.debug("comparison page with %d rows written to %s", len(rows), index_path)
    return index_path
