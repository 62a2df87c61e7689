"""Paper tables of a report: one row per method, one column per metric (mean over images).

``--table r.md`` / ``r.tex`` / ``r.csv`` of ``python -m nerco.evaluate``. Markdown and LaTeX give
each metric with its arrow (↑ higher is better, ↓ lower), the best value of each column in bold and
the protocol in a caption line; values are rounded as papers print them (:data:`METRICS`), and
"best" is decided on the printed values, so ties are all bold. CSV keeps full precision (the JSON's
numbers), a ``#`` line with the caption first. A mean PSNR of null in the JSON is an infinite PSNR
(an image identical to its ground truth).
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

from nerco.evaluation.viewer import Metric
from nerco.runtime import UserError

#: What each score is, which way is better and how many decimals papers print.
METRICS = {
    "psnr": Metric("psnr", "PSNR", True, 2, "dB"),
    "ssim": Metric("ssim", "SSIM", True, 4),
    "lpips": Metric("lpips", "LPIPS", False, 4),
    "niqe": Metric("niqe", "NIQE", False, 4),
    "loe": Metric("loe", "LOE", False, 2),
}
TABLE_FORMATS = (".md", ".tex", ".csv")


def method_means(report: dict) -> dict[str, dict[str, float | None]]:
    """``{method: {metric: mean}}`` of a report in either layout; PSNR null → inf."""
    if "methods" in report:
        means = {name: m["mean"] for name, m in report["methods"].items()}
    else:
        means = {report["protocol"].get("method", "prediction"): report["mean"]}
    return {
        name: {k: math.inf if k == "psnr" and v is None else v for k, v in m.items()}
        for name, m in means.items()
    }


def metric_keys(report: dict) -> list[str]:
    """The metrics of the report, in :data:`METRICS` order."""
    present = set().union(*(m.keys() for m in method_means(report).values()))
    return [k for k in METRICS if k in present]


def best_methods(means: dict[str, dict[str, float | None]], key: str) -> set[str]:
    """The methods whose printed value of ``key`` is the best (several on a tie)."""
    metric = METRICS[key]
    printed = {
        name: float(metric.format(m.get(key)))
        for name, m in means.items()
        if m.get(key) is not None and not math.isnan(m[key])
    }
    if len(means) < 2 or not printed:
        return set()
    best = (max if metric.higher_is_better else min)(printed.values())
    return {name for name, value in printed.items() if value == best}


def caption(report: dict) -> str:
    """One line: images, reference, channels, GT-mean and the no-reference protocols."""
    p = report["protocol"]
    parts = [p.get("scored_on") or f"{p.get('images', '?')} images"]
    if "channels" in p:
        channels = "Y (BT.601)" if p["channels"].startswith("Y") else "RGB"
        parts.append(
            f"PSNR/SSIM on 8-bit {channels}, GT-mean {'on' if p['gt_mean'] else 'off'}"
            f", SSIM Gaussian 11x11 sigma 1.5"
        )
    if "lpips" in p:
        parts.append("LPIPS AlexNet v0.1")
    if "niqe" in p:
        parts.append(
            "NIQE "
            + (
                "scikit-video 1.1.11 (NeRCo's)"
                if p.get("niqe_protocol") == "skvideo"
                else "MATLAB niqe_release"
            )
        )
    if "loe" in p:
        parts.append("LOE Wang et al. 2013 (50-pixel lightness maps)")
    return "; ".join(parts) + ". ↑ higher is better, ↓ lower."


def _rows(report: dict):
    means, keys = method_means(report), metric_keys(report)
    best = {k: best_methods(means, k) for k in keys}
    return means, keys, best


def _align(rows: list[list[str]]) -> list[str]:
    """Plain-text columns: the first left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]


def format_per_image(report: dict) -> str:
    """One method's scores as a plain-text table, 4 decimals, the mean last (null PSNR:
    ``inf``, other nulls ``n/a``)."""
    keys = list(report["mean"])

    def fmt(value, key: str) -> str:
        if value is None:
            return "inf" if key == "psnr" else "n/a"
        return f"{value:.4f}"

    header = [
        "name",
        *(METRICS[k].label + (f" ({METRICS[k].unit})" if METRICS[k].unit else "") for k in keys),
    ]
    rows = [[e["name"], *(fmt(e.get(k), k) for k in keys)] for e in report["per_image"]]
    rows.append([f"mean ({len(rows)})", *(fmt(report["mean"][k], k) for k in keys)])
    return "\n".join(_align([header, *rows]))


def format_methods(report: dict) -> str:
    """A plain-text table for the console, ``*`` after the best of each column."""
    means, keys, best = _rows(report)
    header = ["method", *(METRICS[k].heading for k in keys)]
    body = [
        [name, *(METRICS[k].format(m.get(k)) + ("*" if name in best[k] else " ") for k in keys)]
        for name, m in means.items()
    ]
    return "\n".join(_align([header, *body]) + ["* best of the column; " + caption(report)])


def to_markdown(report: dict) -> str:
    means, keys, best = _rows(report)
    lines = [
        "| Method | " + " | ".join(METRICS[k].heading for k in keys) + " |",
        "|---|" + "---:|" * len(keys),
    ]
    for name, m in means.items():
        cells = [METRICS[k].format(m.get(k)) for k in keys]
        cells = [f"**{c}**" if name in best[k] else c for c, k in zip(cells, keys, strict=True)]
        lines.append(f"| {name.replace('|', chr(92) + '|')} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\nTable: {caption(report)} Best in bold.\n"


_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    """Text safe inside a LaTeX document."""
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in text)


def to_latex(report: dict) -> str:
    means, keys, best = _rows(report)

    def head(key: str) -> str:
        m = METRICS[key]
        arrow = {True: r" $\uparrow$", False: r" $\downarrow$"}[m.higher_is_better]
        return latex_escape(m.label + (f" ({m.unit})" if m.unit else "")) + arrow

    def cell(name: str, key: str) -> str:
        text = METRICS[key].format(means[name].get(key))
        text = {"inf": r"$\infty$", "n/a": "--"}.get(text, text)
        return rf"\textbf{{{text}}}" if name in best[key] else text

    caption_text = latex_escape(caption(report) + " Best in bold.")
    caption_text = caption_text.replace("↑", r"$\uparrow$").replace("↓", r"$\downarrow$")
    lines = [
        r"% needs \usepackage{booktabs}",
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{caption_text}}}",
        r"\begin{tabular}{l" + "c" * len(keys) + "}",
        r"\toprule",
        "Method & " + " & ".join(head(k) for k in keys) + r" \\",
        r"\midrule",
    ]
    lines += [
        latex_escape(name) + " & " + " & ".join(cell(name, k) for k in keys) + r" \\"
        for name in means
    ]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_csv(report: dict) -> str:
    means, keys, _ = _rows(report)
    out = io.StringIO()
    out.write(f"# {caption(report)}\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["method", *(METRICS[k].heading for k in keys)])
    for name, m in means.items():
        writer.writerow([name, *("" if m.get(k) is None else repr(float(m[k])) for k in keys)])
    return out.getvalue()


def check_table_paths(paths: list[str]) -> None:
    """Refuse an unknown table format before any work (one line naming the file)."""
    for path in paths:
        if Path(path).suffix.lower() not in TABLE_FORMATS:
            raise UserError(
                f"--table {path}: the format comes from the extension, one of "
                f"{' '.join(TABLE_FORMATS)}"
            )


def write_table(report: dict, path: str | os.PathLike) -> Path:
    """Write the table in the format of ``path``'s extension (:data:`TABLE_FORMATS`)."""
    check_table_paths([str(path)])
    writer = {".md": to_markdown, ".tex": to_latex, ".csv": to_csv}[Path(path).suffix.lower()]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(writer(report), encoding="utf-8")
    return Path(path)
