"""nerco.training.memory and the lean training iteration: same numbers, less kept for backward."""

from __future__ import annotations

import gc
import random
import weakref

import pytest
import torch

from nerco.networks.build import GENERATOR_NAMES, Architecture
from nerco.networks.generator import ResnetGenerator
from nerco.networks.mask_extractor import MaskExtractor
from nerco.training.clip_term import CLIPTerm, build_clip
from nerco.training.memory import PaddedInputs
from nerco.training.model import NeRCoModel

TINY = Architecture(ngf=8, ndf=8)


def _batch(size=32, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.rand(1, 3, size, size, generator=g) * 0.4 - 1.0,
        torch.rand(1, 3, size, size, generator=g) * 1.6 - 0.8,
    )


def _model(clip, objective="official", checkpointing=False):
    torch.manual_seed(0)
    return NeRCoModel(
        TINY,
        CLIPTerm(clip, normalize_input=objective == "paper"),
        objective=objective,
        checkpointing=checkpointing,
    )


def _activation_bytes(tensors, net) -> int:
    """Bytes of the distinct storages behind ``tensors``, ``net``'s parameters left out."""
    params = {p.untyped_storage().data_ptr() for p in net.parameters()}
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}
    return sum(n for ptr, n in storages.items() if ptr not in params)


class _Recording(PaddedInputs):
    """PaddedInputs that also lists what it hands to autograd."""

    def __init__(self, networks):
        super().__init__(networks)
        self.kept = []

    def _pack(self, tensor):
        saved = super()._pack(tensor)
        self.kept.append(saved)
        return saved

    def kept_tensors(self):
        for saved in self.kept:
            if isinstance(saved, torch.Tensor):
                yield saved
            else:  # a _Repad: the padded tensor if kept, else its source
                yield saved.padded if saved.padded is not None else saved.source


def _kept_plainly(loss_fn):
    """Tensors autograd keeps for the backward pass of ``loss_fn()``, without any help."""
    kept = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: kept.append(t) or t, lambda t: t):
        loss = loss_fn()
    return loss, kept


@pytest.mark.parametrize(
    "make",
    [
        lambda: ResnetGenerator(3, 3, ngf=8),
        lambda: MaskExtractor(3, 3, ngf=8),  # its last pad's output is kept by two operations
    ],
    ids=["generator", "mask_extractor"],
)
def test_padded_inputs_keep_less_and_give_the_same_gradients(make):
    torch.manual_seed(0)
    net = make()
    x = torch.rand(1, 3, 40, 40) * 2 - 1

    def loss_fn():
        out = net(x)
        return sum(o.square().mean() for o in (out if isinstance(out, tuple) else (out,)))

    loss, plain = _kept_plainly(loss_fn)
    expected = torch.autograd.grad(loss, list(net.parameters()))
    recording = _Recording([net])
    with recording.saving():
        loss = loss_fn()
    got = torch.autograd.grad(loss, list(net.parameters()))
    for want, have in zip(expected, got):
        assert torch.equal(want, have)  # the re-padded tensors are the same values
    lean = _activation_bytes(recording.kept_tensors(), net)
    assert lean < 0.9 * _activation_bytes(plain, net)
    # Outside saving(), nothing is recorded or replaced.
    assert not recording._sources and not recording._active


def test_padded_inputs_within_the_iteration_change_no_loss(random_clip):
    """The full generator step with and without the hooks: identical losses and gradients."""
    results = []
    for lean in (False, True):
        model = _model(random_clip, objective="paper")
        model.discriminators.requires_grad_(False)
        random.seed(0)
        torch.manual_seed(0)
        context = model.padded_inputs.saving() if lean else torch.enable_grad()
        with context:
            loss, terms = model.compute_G_loss(model(*_batch()))
        loss.backward()
        grads = [
            p.grad.clone() for name in GENERATOR_NAMES for p in model.generators[name].parameters()
        ]
        results.append((loss.item(), grads))
    assert results[0][0] == results[1][0]
    assert all(torch.equal(a, b) for a, b in zip(results[0][1], results[1][1]))


def _count_calls(net) -> list:
    """Calls of ``net.forward`` (module hooks do not run when checkpointing recomputes)."""
    calls, forward = [], net.forward

    def counted(*args, **kwargs):
        calls.append(1)
        return forward(*args, **kwargs)

    net.forward = counted
    return calls


@pytest.mark.parametrize("objective", ["official", "paper"])
def test_checkpointing_gives_the_same_gradients(objective, random_clip):
    grads, losses, forwards = {}, {}, {}
    for checkpointing in (False, True):
        model = _model(random_clip, objective, checkpointing)
        calls = _count_calls(model.generators["G_A"])
        model.discriminators.requires_grad_(False)
        random.seed(0)
        torch.manual_seed(0)
        loss, terms = model.compute_G_loss(model(*_batch()))
        loss.backward()
        losses[checkpointing] = {k: v.item() for k, v in terms.items()}
        grads[checkpointing] = {
            f"{n}.{k}": p.grad
            for n in GENERATOR_NAMES
            for k, p in model.generators[n].named_parameters()
        }
        forwards[checkpointing] = len(calls)
    assert losses[True] == pytest.approx(losses[False], rel=1e-6, abs=1e-9)
    for key, want in grads[False].items():
        torch.testing.assert_close(grads[True][key], want, rtol=1e-5, atol=1e-8, msg=key)
    # G_A runs 4 times in the generator step; checkpointed, each call runs again in backward.
    assert forwards == {False: 4, True: 8}


def test_checkpointing_gives_the_same_iteration(random_clip):
    """optimize_parameters (both steps, pools, random edge projections) with and without."""
    models, losses = {}, {}
    for checkpointing in (False, True):
        model = _model(random_clip, "official", checkpointing)
        random.seed(0)
        torch.manual_seed(0)
        losses[checkpointing] = [model.optimize_parameters(*_batch(seed=s)) for s in (1, 2)]
        models[checkpointing] = model
    for plain, ckpt in zip(losses[False], losses[True]):
        assert ckpt == pytest.approx(plain, rel=1e-6, abs=1e-9)
    nets = {k: m.networks() for k, m in models.items()}
    for name, net in nets[False].items():
        for (key, want), have in zip(
            net.state_dict().items(), nets[True][name].state_dict().values()
        ):
            torch.testing.assert_close(have, want, rtol=1e-5, atol=1e-7, msg=f"{name}.{key}")
    # Gradients are released after each step (neither step holds the other's).
    assert all(p.grad is None for p in models[True].parameters())


def test_clip_term_lets_the_text_tower_go():
    clip = build_clip(random_init=True)
    text_tower = weakref.ref(clip.transformer)
    term = CLIPTerm(clip)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        want = (
            clip.logit_scale.exp()
            * clip.encode_image(term.prepare(x), normalize=True)
            @ term.text_features.t()
        )
    del clip
    gc.collect()
    assert text_tower() is None
    with torch.no_grad():
        assert torch.equal(term.probabilities(x), want.softmax(dim=-1))


def test_checkpointing_under_bf16_autocast_matches(random_clip):
    """The recomputation runs under the same autocast as the forward pass."""
    results = {}
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = NeRCoModel(TINY, CLIPTerm(random_clip), amp="bf16", checkpointing=checkpointing)
        random.seed(0)
        torch.manual_seed(0)
        results[checkpointing] = [model.optimize_parameters(*_batch(seed=s)) for s in (1, 2)]
    for plain, ckpt in zip(results[False], results[True]):
        assert ckpt == pytest.approx(plain, rel=1e-3, abs=1e-5)
