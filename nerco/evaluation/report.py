"""Writing a report: strict JSON, and the viewer page of one method."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from nerco.evaluation.pairing import Pair


def write_json(report: dict, path: str | os.PathLike) -> None:
    """Write the report as strict JSON (UTF-8), creating the folder."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def write_page(
    report: dict,
    pairs: Sequence[Pair],
    web_dir: str | os.PathLike,
    title: str,
    prediction_label: str = "NeRCo",
    width: int = 256,
) -> Path:
    """``<web_dir>/index.html``: the result viewer with input | prediction | ground truth and
    the scores (see :mod:`nerco.evaluation.report_page`)."""
    from nerco.evaluation.report_page import write_methods_page

    return write_methods_page(
        {prediction_label: report},
        {prediction_label: pairs},
        web_dir,
        title,
        report["protocol"],
        width=width,
    )
