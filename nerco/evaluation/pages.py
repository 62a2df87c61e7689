"""HTML pages for training snapshots and test results, drawn by the result viewer.

Two writers live here, both producing a :mod:`nerco.evaluation.viewer` page (sortable, filterable
table of lazy thumbnails, large view with synchronised zoom and pan, ← → between rows):

* :class:`HTML` builds a page row by row (a header, then a row of images with captions);
  training uses it for ``web/index.html``: one row per epoch, one column per visual, so
  the large view steps through the epochs.
* :func:`write_comparison_page` writes one row per image and one column per variant (for
  example input | enhanced), optionally with score columns and a mean row; ``test.py``
  uses it.

Pages are UTF-8, and every image is referenced by a path relative to the page, so a
results folder can be moved or copied elsewhere and still display.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath

from nerco.evaluation.viewer import Column, Metric, Row, relative_url, write_viewer
from nerco.util import mkdirs

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

_IMAGE_SUBDIR = "images"
#: The column of a comparison page that holds its scores.
SCORES_COLUMN = "scores"


class HTML:
    """A page built incrementally and saved to ``<web_dir>/index.html``.

    Each :meth:`add_images` call adds a row named by the latest :meth:`add_header`; the
    captions are the column labels. Images shown on the page are expected under
    ``<web_dir>/images``; the paths passed to :meth:`add_images` are relative to it.

    Args:
        web_dir: Folder that holds the page; created together with its ``images``
            subfolder.
        title: Page title.
        refresh: If > 0, the page asks the browser to reload it every ``refresh``
            seconds (handy while training is running).
    """

    def __init__(self, web_dir: PathLike, title: str, refresh: int = 0) -> None:
        self.title = title
        self.refresh = refresh
        self.web_dir = Path(web_dir)
        self.img_dir = self.web_dir / _IMAGE_SUBDIR
        mkdirs(self.web_dir, self.img_dir)
        self._header, self._pending = "", False
        self._notes: list[str] = []
        self._rows: list[Row] = []
        self._columns: list[str] = []
        self._width = 256

    def get_image_dir(self) -> Path:
        """Return the folder where images shown on this page should be saved."""
        return self.img_dir

    def add_header(self, text: str) -> None:
        """Start a new row group: the next rows are named ``text`` (a header that gets no
        images is shown as a row of its own).

        Args:
            text: Row name (escaped on output).
        """
        if self._pending:
            self._rows.append(Row(name=self._header))
        self._header, self._pending = text, True

    def add_text(self, text: str) -> None:
        """Add a line of text: under the title before any row, else under the last row's name.

        Args:
            text: Plain text (escaped on output).
        """
        if self._rows:
            row = self._rows[-1]
            row.note = f"{row.note} {text}".strip()
        else:
            self._notes.append(text)

    def add_images(
        self,
        ims: Sequence[str],
        txts: Sequence[str],
        links: Sequence[str],
        width: int = 256,
    ) -> None:
        """Add a row of images: ``ims[i]`` in column ``txts[i]``, linked to ``links[i]``.

        Args:
            ims: Image paths relative to the ``images`` folder.
            txts: One caption per image: the column it goes in.
            links: One link target per image (the full-size file the large view shows),
                relative to the ``images`` folder.
            width: Thumbnail width in pixels.

        Raises:
            ValueError: If the three lists differ in length or a path is absolute.
        """
        if not len(ims) == len(txts) == len(links):
            raise ValueError(
                f"add_images needs as many captions and links as images, got "
                f"{len(ims)} images, {len(txts)} captions, {len(links)} links"
            )
        images, targets = {}, {}
        for im, txt, link in zip(ims, txts, links, strict=True):
            label, n = str(txt), 2
            while label in images:  # a caption used twice in one row gets its own column
                label, n = f"{txt} ({n})", n + 1
            for path in (im, link):
                relative_url(path)  # raises ValueError for an absolute path, before saving
            images[label] = (PurePath(_IMAGE_SUBDIR) / im).as_posix()
            targets[label] = (PurePath(_IMAGE_SUBDIR) / link).as_posix()
            if label not in self._columns:
                self._columns.append(label)
        name = self._header or f"row {len(self._rows) + 1}"
        self._rows.append(Row(name=name, images=images, links=targets))
        self._pending, self._width = False, int(width)

    def save(self) -> Path:
        """Write the whole page to ``<web_dir>/index.html``, replacing any earlier copy.

        Returns:
            Path of the written file.
        """
        rows = self._rows + ([Row(name=self._header)] if self._pending else [])
        return write_viewer(
            self.web_dir,
            self.title,
            [Column(c) for c in self._columns],
            rows,
            note=" ".join(self._notes) or None,
            width=self._width,
            refresh=self.refresh,
        )


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
    """Write ``<web_dir>/index.html`` comparing images side by side (a viewer page).

    One row per entry of ``rows``: its name, one cell per column with the image, then,
    with ``score_columns``, a :data:`SCORES_COLUMN` cell with its scores (sortable). With
    ``mean``, the header's summary row holds its name and scores. A row with no image or
    no score for some column gets an empty cell.

    Args:
        web_dir: Folder for the page; created if missing.
        title: Page title, also shown as a heading.
        rows: Entries ``{"name": str, "images": {column_label: relative_path},
            "scores": {score_label: value}}`` where each path is relative to ``web_dir``
            and ``scores`` is optional. Floats show with 4 decimals, None/NaN as ``n/a``.
        columns: Column labels, in display order.
        width: Thumbnail width in pixels.
        score_columns: Score labels, in display order (none by default).
        mean: Optional summary row ``{"name": str, "scores": {score_label: value}}``.
        note: Optional line of text under the heading (e.g. how the scores were computed).

    Returns:
        Path of the written file.

    Raises:
        ValueError: If an image path is absolute.
        TypeError: If a row's ``images`` or ``scores`` is not a mapping.
    """
    mkdirs(Path(web_dir))
    view_rows = []
    for row in rows:
        images, scores = row.get("images", {}), row.get("scores", {})
        for what, value in (("images", images), ("scores", scores)):
            if not isinstance(value, Mapping):
                raise TypeError(f"row {row.get('name')!r}: '{what}' must be a mapping")
        view_rows.append(
            Row(
                name=str(row.get("name", "")),
                images={c: str(p) for c, p in images.items() if p is not None},
                scores={SCORES_COLUMN: dict(scores)},
            )
        )
    view_columns = [Column(c) for c in columns]
    if score_columns:
        view_columns.append(Column(SCORES_COLUMN, tuple(score_columns), images=False))
    summary = None
    if mean is not None:
        if not isinstance(mean.get("scores", {}), Mapping):
            raise TypeError(f"row {mean.get('name')!r}: 'scores' must be a mapping")
        summary = {SCORES_COLUMN: dict(mean.get("scores", {}))}
    page = write_viewer(
        web_dir,
        title,
        view_columns,
        view_rows,
        {k: Metric(k, k) for k in score_columns},
        mean=summary,
        mean_label=str((mean or {}).get("name", "mean")),
        note=note,
        width=width,
    )
    logger.debug("comparison page with %d rows written to %s", len(rows), page)
    return page
