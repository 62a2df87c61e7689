"""Which networks took the inference path (nerco.networks.fast_path): a counter of its entry points.

``record(monkeypatch)`` wraps, for the rest of a test, the places where each enhancement
network leaves its plain layers: the generators' and trunks' ``run_inference``, the NRN
head's banded matrix products and the mask extractor's banded attention statistics. The
counter's keys are the names below; a network that ran its plain layers adds nothing.
``run_test_py`` runs test.py in this process, where those counters see it.
"""

from __future__ import annotations

from collections import Counter

import nerco.networks.generator
import nerco.networks.mask_extractor
import nerco.networks.nrn

#: Every entry point of the inference path, one per network part.
PARTS = ("G trunk", "Pre trunk", "Pre head", "H trunk", "H attention")


def record(monkeypatch) -> Counter:
    """Count the calls of each entry point of the inference path (keys: :data:`PARTS`)."""
    calls: Counter = Counter()

    def counting(part: str, function):
        def wrapper(*args, **kwargs):
            calls[part] += 1
            return function(*args, **kwargs)

        return wrapper

    for module, part in (
        (nerco.networks.generator, "G trunk"),
        (nerco.networks.nrn, "Pre trunk"),
        (nerco.networks.mask_extractor, "H trunk"),
    ):
        monkeypatch.setattr(module, "run_inference", counting(part, module.run_inference))
    head, extractor = nerco.networks.nrn.NRNHead, nerco.networks.mask_extractor.MaskExtractor
    monkeypatch.setattr(head, "_forward_in_bands", counting("Pre head", head._forward_in_bands))
    monkeypatch.setattr(
        extractor,
        "_spatial_stats_in_bands",
        staticmethod(counting("H attention", extractor._spatial_stats_in_bands)),
    )
    return calls


def run_test_py(*args) -> int:
    """test.py's ``main`` in this process, so that :func:`record` sees its networks."""
    from nerco.inference.cli import main

    return main([str(a) for a in args])
