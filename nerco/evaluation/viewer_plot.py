"""Per-metric distribution plots of the result viewer, drawn as inline SVG.

One plot per metric: the histogram of each column's per-image values over shared bins, as
a filled step outline in the column's colour, with a dashed line at its mean. No plotting
library: the page stays a single file that opens offline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

#: Okabe–Ito colours (distinguishable with the common colour-vision deficiencies).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#8C6D31", "#000000")
_W, _H = 380, 170
_LEFT, _RIGHT, _TOP, _BOTTOM = 34, 10, 8, 26


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values in [lo, hi] (steps of 1, 2 or 5 × 10^k), as close to ``count`` of
    them as those steps allow."""
    power = 10 ** math.floor(math.log10((hi - lo) / max(count - 1, 1)))

    def ticks(step: float) -> list[float]:
        first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
        return [round(k * step, 12) for k in range(first, last + 1)]

    options = [ticks(m * power) for m in (1, 2, 5, 10)]
    return min(options, key=lambda t: (abs(len(t) - count), -len(t)))


def _bin_edges(values: Sequence[float], n_max: int) -> list[float]:
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12 * max(1.0, abs(hi)):
        lo, hi = lo - 0.5 * max(abs(lo) * 0.01, 1e-3), hi + 0.5 * max(abs(hi) * 0.01, 1e-3)
    bins = int(min(30, max(6, math.ceil(math.sqrt(n_max)) + 2)))
    return [lo + (hi - lo) * i / bins for i in range(bins + 1)]


def _counts(values: Sequence[float], edges: Sequence[float]) -> list[int]:
    counts = [0] * (len(edges) - 1)
    lo, hi = edges[0], edges[-1]
    for v in values:
        index = int((v - lo) / (hi - lo) * len(counts))
        counts[min(max(index, 0), len(counts) - 1)] += 1
    return counts


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def distribution_svg(label: str, series: Sequence[tuple[str, str, Sequence[float]]]) -> str:
    """An SVG histogram of each series of finite values on shared bins.

    Args:
        label: the metric, written under the x axis.
        series: (name, colour, values) per column; empty value lists are left out.

    Returns:
        The ``<svg>`` element as text (empty when no series has a value).
    """
    series = [(n, c, list(v)) for n, c, v in series if len(v)]
    if not series:
        return ""
    values = [v for _, _, vs in series for v in vs]
    edges = _bin_edges(values, max(len(vs) for _, _, vs in series))
    counts = [_counts(vs, edges) for _, _, vs in series]
    top = max(max(c) for c in counts)
    x0, x1, y0, y1 = _LEFT, _W - _RIGHT, _H - _BOTTOM, _TOP

    def sx(v: float) -> float:
        return x0 + (v - edges[0]) / (edges[-1] - edges[0]) * (x1 - x0)

    def sy(c: float) -> float:
        return y0 - c / top * (y0 - y1)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" width="{_W}" '
        f'height="{_H}" role="img" aria-label="{escape(label)} per image" '
        f'font-family="system-ui, sans-serif" font-size="10">'
    ]
    for tick in nice_ticks(edges[0], edges[-1]):
        x = sx(tick)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y0}" y2="{y0 + 4}" stroke="#888"/>'
            f'<text x="{x:.1f}" y="{y0 + 14}" text-anchor="middle" fill="#555">'
            f"{_fmt(tick)}</text>"
        )
    for tick in nice_ticks(0, top, 4):
        if tick != int(tick):
            continue
        y = sy(tick)
        parts.append(
            f'<line x1="{x0 - 3}" x2="{x1}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
            f'<text x="{x0 - 5}" y="{y + 3:.1f}" text-anchor="end" fill="#555">'
            f"{int(tick)}</text>"
        )
    for (name, colour, vs), count in zip(series, counts, strict=True):
        points = [f"{sx(edges[0]):.1f},{y0}"]
        for i, c in enumerate(count):
            points += [f"{sx(edges[i]):.1f},{sy(c):.1f}", f"{sx(edges[i + 1]):.1f},{sy(c):.1f}"]
        points.append(f"{sx(edges[-1]):.1f},{y0}")
        mean = sum(vs) / len(vs)
        parts.append(
            f'<polygon points="{" ".join(points)}" fill="{colour}" fill-opacity="0.16" '
            f'stroke="{colour}" stroke-width="1.5"><title>{escape(name)}</title>'
            f'</polygon><line x1="{sx(mean):.1f}" x2="{sx(mean):.1f}" y1="{y0}" '
            f'y2="{y1}" stroke="{colour}" stroke-dasharray="4 3" stroke-width="1.5">'
            f"<title>{escape(name)} mean {_fmt(mean)}</title></line>"
        )
    parts.append(
        f'<line x1="{x0}" x2="{x1}" y1="{y0}" y2="{y0}" stroke="#888"/>'
        f'<text x="{x1}" y="{_H - 2}" text-anchor="end" fill="#333">{escape(label)}'
        f"</text></svg>"
    )
    return "".join(parts)
