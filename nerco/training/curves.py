"""Loss-curve PNGs of a training run, redrawn after every epoch (``loss_<group>.png``).

:func:`plot_loss_curves` draws the logged loss history into one PNG per loss group with
matplotlib (Agg backend), so the curves can be looked at without a visdom server.
"""

from __future__ import annotations

import logging
import os
from typing import Any

logger = logging.getLogger(__name__)

#: The groups of logged losses, one figure each.
LOSS_GROUPS: dict[str, tuple[str, ...]] = {
    "generator": ("G_A", "G_B", "G_A_edge", "G_B_edge"),
    "cycle_identity": ("cycle_A", "cycle_B", "idt_A", "idt_B"),
    "discriminator": ("D_A", "D_B", "D_A_edge", "D_B_edge"),
    "clip": ("D_A_CLIP", "D_B_CLIP"),
    "nrn_mask": ("PreConsis", "H"),
}
OTHER_GROUP = "other"


def _group_of(name: str) -> str:
    """Return the loss group that ``name`` belongs to."""
    for group, members in LOSS_GROUPS.items():
        if name in members:
            return group
    return OTHER_GROUP


def plot_loss_curves(history: list[dict[str, Any]], out_dir: str) -> list[str]:
    """Write one PNG per loss group (``loss_<group>.png``) into ``out_dir``.

    Args:
        history: Entries ``{"x": float, "losses": {name: float}}``, in order.
        out_dir: Output folder; created if missing.

    Returns:
        The paths written, in group order; groups with no losses are skipped.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    series: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for entry in history:
        x = float(entry["x"])
        for name, value in entry.get("losses", {}).items():
            xs, ys = series.setdefault(_group_of(name), {}).setdefault(name, ([], []))
            xs.append(x)
            ys.append(float(value))
    os.makedirs(out_dir, exist_ok=True)
    paths: list[str] = []
    for group in [*LOSS_GROUPS, OTHER_GROUP]:
        curves = series.get(group)
        if not curves:
            continue
        figure, axes = pyplot.subplots(figsize=(8, 4.5))
        try:
            for name, (xs, ys) in curves.items():
                axes.plot(xs, ys, label=name, marker="." if len(xs) == 1 else None)
            axes.set_xlabel("epoch")
            axes.set_ylabel("loss")
            axes.set_title(f"{group} losses")
            axes.legend()
            axes.grid(visible=True, alpha=0.3)
            path = os.path.join(out_dir, f"loss_{group}.png")
            figure.savefig(path, dpi=100)
        finally:
            pyplot.close(figure)
        paths.append(path)
        logger.debug("wrote %s", path)
    return paths
