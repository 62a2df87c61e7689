"""The viewer page of a report: input | each method | ground truth, with the scores.

Images are linked by paths relative to the page (no copies), except TIFF/PPM files, which
browsers do not show: those get PNG copies in ``<web_dir>/images/<column>/``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from data.image_folder import load_rgb
from nerco.evaluation.pairing import Pair
from nerco.evaluation.report_tables import METRICS, caption
from nerco.evaluation.viewer import Column, Row, write_viewer

#: Formats every browser shows; other files (TIFF, PPM) get PNG copies on the page.
BROWSER_FORMATS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def page_image(path: str, web_dir: Path, column: str, name: str) -> str:
    """A path relative to the page: a link to ``path``, or a PNG copy for TIFF/PPM files."""
    from nerco.util import save_image

    if path.lower().endswith(BROWSER_FORMATS):
        try:
            return os.path.relpath(os.path.abspath(path), web_dir.resolve())
        except ValueError:  # another drive (Windows): copy below
            pass
    copy = web_dir / "images" / column / f"{name}.png"
    save_image(np.asarray(load_rgb(path)), copy)
    return copy.relative_to(web_dir).as_posix()


def _value(key: str, value: float | None) -> float | None:
    """The JSON's null PSNR is an infinite PSNR (identical images)."""
    return math.inf if key == "psnr" and value is None else value


def write_methods_page(
    reports: Mapping[str, dict],
    pairs: Mapping[str, Sequence[Pair]],
    web_dir: str | os.PathLike,
    title: str,
    protocol: dict,
    width: int = 256,
) -> Path:
    """``<web_dir>/index.html`` for one or several methods scored on the same images.

    Args:
        reports: ``{method: single-method report}`` (``mean``, ``per_image`` in pair order).
        pairs: ``{method: pairs}``, the same names in the same order for every method.
        web_dir: folder of the page.
        title: page title.
        protocol: the report's protocol (its caption is the page's note).
        width: initial thumbnail width.

    Returns:
        The page's path.
    """
    web = Path(web_dir)
    web.mkdir(parents=True, exist_ok=True)
    names = list(reports)
    first = pairs[names[0]]
    keys = [k for k in METRICS if k in reports[names[0]]["mean"]]
    has_input, has_gt = any(p.input for p in first), any(p.gt for p in first)
    columns = ([Column("input")] if has_input else []) + [Column(n, tuple(keys)) for n in names]
    columns += [Column("ground truth")] if has_gt else []
    folders = {
        n: "pred" if len(names) == 1 else "pred_" + re.sub(r"[^\w.-]+", "_", n) for n in names
    }
    rows = []
    for i, pair in enumerate(first):
        images, scores = {}, {}
        if pair.input:
            images["input"] = page_image(pair.input, web, "input", pair.name)
        for n in names:
            entry = reports[n]["per_image"][i]
            if entry["name"] != pair.name or pairs[n][i].name != pair.name:
                raise ValueError(f"method {n}: rows out of order at {pair.name}")
            images[n] = page_image(pairs[n][i].pred, web, folders[n], pair.name)
            scores[n] = {k: _value(k, entry.get(k)) for k in keys}
        if pair.gt:
            images["ground truth"] = page_image(pair.gt, web, "gt", pair.name)
        rows.append(Row(pair.name, images, scores))
    mean = {n: {k: _value(k, reports[n]["mean"].get(k)) for k in keys} for n in names}
    note = caption({"protocol": {**protocol, "images": len(rows)}})
    return write_viewer(
        web,
        title,
        columns,
        rows,
        {k: METRICS[k] for k in keys},
        mean=mean,
        mean_label=f"mean of {len(rows)}",
        note=note,
        width=width,
    )
