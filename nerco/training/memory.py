"""Activation memory of a training iteration (NERCO_SPEC.md §2): what autograd keeps.

Two tools, both exact (the backward pass sees the same values):

* :class:`PaddedInputs` — every convolution after a reflection pad keeps its padded input
  for the weight gradient, a copy of the pad's input with a border. Most pad inputs are
  kept anyway (a ReLU keeps its output), so the copy is pure overhead: about a fifth of a
  generator's saved activations. Inside :meth:`PaddedInputs.saving`, autograd keeps the
  pad's input instead and pads it again when the backward pass needs it.
* :func:`checkpointed` — activation checkpointing of one network call
  (``torch.utils.checkpoint``, non-reentrant): only the call's inputs are kept and the
  network runs forward again in the backward pass. About a third more arithmetic, and the
  activations of one network at a time instead of all of them (``--checkpointing``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint
from torch.utils.weak import WeakIdKeyDictionary


class _Repad:
    """What autograd keeps for a reflection-padded tensor: the pad's input and its border,
    or the padded tensor itself once some other operation has kept that too."""

    __slots__ = ("source", "padding", "padded", "saves")

    def __init__(self, source: torch.Tensor, padding: tuple[int, ...]) -> None:
        self.source, self.padding = source, padding
        self.padded: torch.Tensor | None = None
        self.saves = 0

    def tensor(self) -> torch.Tensor:
        if self.padded is not None:
            return self.padded
        return F.pad(self.source, self.padding, mode="reflect")


class PaddedInputs:
    """Saved-tensor hooks that keep reflection pads' inputs instead of their outputs.

    Args:
        networks: the networks whose ``nn.ReflectionPad2d`` layers are watched (forward
            hooks registered once, here; they record only inside :meth:`saving`).

    A padded tensor kept by a single operation (the convolution after the pad) is replaced
    by its source; one kept by two or more (the mask extractor's last pad feeds a
    convolution and the attention) is kept as is, so this never keeps more than autograd
    alone would. The source must not change in place before the backward pass, which
    autograd's own checks already ensure for every tensor a ReLU keeps.
    """

    def __init__(self, networks: Iterable[nn.Module]) -> None:
        self._sources = WeakIdKeyDictionary()  # padded tensor -> _Repad
        self._active = False
        for net in networks:
            for layer in net.modules():
                if isinstance(layer, nn.ReflectionPad2d):
                    layer.register_forward_hook(self._record)

    def _record(self, layer: nn.ReflectionPad2d, args: tuple, padded: torch.Tensor) -> None:
        if self._active and torch.is_grad_enabled():
            self._sources[padded] = _Repad(args[0], tuple(layer.padding))

    def _pack(self, tensor: torch.Tensor):
        entry = self._sources.get(tensor)
        if entry is None:
            return tensor
        entry.saves += 1
        if entry.saves > 1:  # kept by another operation too: keep it, drop the source
            entry.padded, entry.source = tensor, None
        return entry

    @staticmethod
    def _unpack(saved):
        return saved.tensor() if isinstance(saved, _Repad) else saved

    @contextlib.contextmanager
    def saving(self) -> Iterator[None]:
        """Forward passes run inside keep pad inputs instead of padded copies."""
        self._active = True
        try:
            with torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack):
                yield
        finally:
            self._active = False
            self._sources = WeakIdKeyDictionary()


def checkpointed(net: nn.Module) -> Callable:
    """``net`` as a function whose calls are checkpointed (non-reentrant).

    Under DistributedDataParallel the wrapper runs in the forward pass (it prepares the
    gradient reduction) and the bare network in the recomputation, which happens in the
    middle of the backward pass where a second preparation would reset the reduction.
    """
    bare = getattr(net, "module", net)

    def run(*args, **kwargs):
        calls = 0

        def forward(*inner_args):
            nonlocal calls
            calls += 1
            return (net if calls == 1 else bare)(*inner_args, **kwargs)

        return checkpoint(forward, *args, use_reentrant=False)

    return run
