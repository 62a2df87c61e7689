"""An ``ArgumentParser`` whose errors are one line, and pointers for flags we removed.

argparse prints a usage block and then ``prog: error: ...``; here every parsing error (a
bad number, an unknown choice, a missing value, a typo) raises :class:`UserError` with one
line that names the flag and points to ``--help``, which ``train.py`` / ``test.py`` print
as ``error: ...`` with exit status 2.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence

from nerco.runtime import UserError

#: Flags of the CycleGAN lineage (and the authors' release) that do nothing here: each gets
#: a pointer instead of argparse's "unrecognized arguments".
REMOVED_FLAGS = {
    "--model": "NeRCo is the only model; drop the flag",
    "--dataset_mode": "train.py always reads unaligned <phase>A/<phase>B folders and test.py "
    "single images; drop the flag",
    "--netH": "the mask extractor H always has 3 residual blocks, as released; drop the flag",
    "--eval": "test.py always runs the networks in eval mode; drop the flag",
    "--aspect_ratio": "each result keeps its input's size; drop the flag (resize the results "
    "afterwards for another shape)",
}


class OptionParser(argparse.ArgumentParser):
    """``ArgumentParser`` that raises :class:`UserError` (one line) instead of exiting."""

    def parse_args(
        self,
        args: Sequence[str] | None = None,  # type: ignore[override]
        namespace: argparse.Namespace | None = None,
    ) -> argparse.Namespace:
        argv = list(sys.argv[1:] if args is None else args)
        for token in argv:
            if token == "--":
                break
            flag = token.split("=", 1)[0]
            if flag in REMOVED_FLAGS:
                raise UserError(f"{flag} was removed (it did nothing here): {REMOVED_FLAGS[flag]}")
        return super().parse_args(argv, namespace)

    def error(self, message: str):  # type: ignore[override]
        message = " ".join(message.split()).removeprefix("argument ")
        if message.startswith("unrecognized arguments:"):
            flags = [
                t.split("=", 1)[0] for t in message.split(":", 1)[1].split() if t.startswith("--")
            ]
            known = [s for action in self._actions for s in action.option_strings]
            close = difflib.get_close_matches(flags[0], known, n=1) if flags else []
            if close:
                message += f" (did you mean {close[0]}?)"
        raise UserError(f"{message} ({self.prog} --help lists the options)")
