"""Which networks took the inference path (nerco.inference): a counter of its entry points.

``record(monkeypatch)`` wraps, for the rest of a test, the places where each enhancement
network leaves its plain layers: the generators' and trunks' ``run_inference``, the NRN
head's banded matrix products and the mask extractor's banded attention statistics. The
counter's keys are the names below; a network that ran its plain layers adds nothing.
``run_test_py`` runs test.py in this process, where those counters see it.
"""

from __future__ import annotations

import sys
from collections import Counter

import nerco.generator
import nerco.mask_extractor
import nerco.nrn

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

    for module, part in ((nerco.generator, "G trunk"), (nerco.nrn, "Pre trunk"),
                         (nerco.mask_extractor, "H trunk")):
        monkeypatch.setattr(module, "run_inference", counting(part, module.run_inference))
    head, extractor = nerco.nrn.NRNHead, nerco.mask_extractor.MaskExtractor
    monkeypatch.setattr(head, "_forward_in_bands",
                        counting("Pre head", head._forward_in_bands))
    monkeypatch.setattr(extractor, "_spatial_stats_in_bands",
                        staticmethod(counting("H attention", extractor._spatial_stats_in_bands)))
    return calls


def run_test_py(*args) -> int:
    """test.py's ``main`` in this process, so that :func:`record` sees its networks."""
    import importlib.util

    from conftest import ROOT

    module = sys.modules.get("nerco_test_script")
    if module is None:  # "test" would be the standard library's package
        spec = importlib.util.spec_from_file_location("nerco_test_script", ROOT / "test.py")
        module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module.main([str(a) for a in args])
