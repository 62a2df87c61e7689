"""Argument types that check a value where argparse reads it.

Each numeric option's ``type`` is one of these instead of a bare ``int`` / ``float``, so a
value out of range stops the command with one line that names the flag and what it
accepts, before anything is imported or built. The bounds stay readable
(``minimum``, ``maximum``, ...): tests/test_options.py derives its bad values from them and
fails for a numeric option that has none.
"""

from __future__ import annotations

import argparse
import math


class Checked:
    """Base of the checking types; ``allowed`` says in words what the option accepts."""

    allowed = "a value"

    def __repr__(self) -> str:  # argparse names the type in some messages
        return self.allowed


class Int(Checked):
    """An integer in [minimum, maximum] (either bound may be None), or ``inf`` if allowed.

    Args:
        minimum: Least value accepted.
        maximum: Largest value accepted.
        infinite: Also accept ``inf`` (returned as ``float('inf')``).
    """

    def __init__(
        self, minimum: int | None = None, maximum: int | None = None, *, infinite: bool = False
    ) -> None:
        self.minimum, self.maximum, self.infinite = minimum, maximum, infinite
        if minimum is not None and maximum is not None:
            words = f"an integer from {minimum} to {maximum}"
        elif minimum is not None:
            words = f"an integer >= {minimum}"
        elif maximum is not None:
            words = f"an integer <= {maximum}"
        else:
            words = "an integer"
        self.allowed = words + (", or inf" if infinite else "")

    def __call__(self, text: str) -> int | float:
        text = text.strip()
        if self.infinite and text.lower() in ("inf", "infinity"):
            return math.inf
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {self.allowed}") from None
        if (self.minimum is not None and value < self.minimum) or (
            self.maximum is not None and value > self.maximum
        ):
            raise argparse.ArgumentTypeError(f"{value} is not allowed: give {self.allowed}")
        return value


class Float(Checked):
    """A finite number above a minimum and below a maximum (either may be None).

    Args:
        minimum: Least value.
        maximum: Largest value.
        above: ``minimum`` itself is refused (value > minimum).
        below: ``maximum`` itself is refused (value < maximum).
    """

    def __init__(
        self,
        minimum: float | None = None,
        maximum: float | None = None,
        *,
        above: bool = False,
        below: bool = False,
    ) -> None:
        self.minimum, self.maximum, self.above, self.below = minimum, maximum, above, below
        bounds = []
        if minimum is not None:
            bounds.append(f"{'>' if above else '>='} {minimum:g}")
        if maximum is not None:
            bounds.append(f"{'<' if below else '<='} {maximum:g}")
        self.allowed = "a finite number" + (" " + " and ".join(bounds) if bounds else "")

    def __call__(self, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text.strip()!r} is not {self.allowed}") from None
        low, high = self.minimum, self.maximum
        if (
            not math.isfinite(value)
            or (low is not None and (value < low or (self.above and value == low)))
            or (high is not None and (value > high or (self.below and value == high)))
        ):
            raise argparse.ArgumentTypeError(f"{value:g} is not allowed: give {self.allowed}")
        return value


class GpuIds(Checked):
    """``--gpu_ids``: ``-1`` for the CPU, or distinct GPU numbers separated by commas.

    Returns the ids as given, spaces removed (``"0,1"``); the device is picked at run time
    (:func:`nerco.runtime.select_device`).
    """

    allowed = "-1 for the CPU, or GPU numbers such as 0 or 0,1"

    def __call__(self, text: str) -> str:
        parts = [part.strip() for part in text.split(",")]
        try:
            ids = [int(part) for part in parts]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {self.allowed}") from None
        if any(i < -1 for i in ids) or (-1 in ids and len(ids) > 1) or len(set(ids)) < len(ids):
            raise argparse.ArgumentTypeError(
                f"{text!r} is not allowed: give {self.allowed} (each GPU once, -1 alone)"
            )
        return ",".join(parts)
