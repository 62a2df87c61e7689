"""The two objectives differ exactly where NERCO_SPEC.md §8 says, term by term."""

from __future__ import annotations

import pytest
import torch

from nerco.clip_term import CLIP_MEAN, CLIP_STD, CLIPTerm
from nerco.losses import LossWeights, generator_total
from nerco.model import Architecture, NeRCoModel

TINY = Architecture(ngf=8, ndf=8)


def _model(objective, clip, seed=0):
    torch.manual_seed(seed)
    return NeRCoModel(TINY, CLIPTerm(clip, normalize_input=objective == "paper"),
                      objective=objective)


def _batch(seed=1, size=32):
    g = torch.Generator().manual_seed(seed)
    real_A = torch.rand(1, 3, size, size, generator=g) * 0.4 - 1.0  # dark
    real_B = torch.rand(1, 3, size, size, generator=g) * 1.6 - 0.8
    return real_A, real_B


def _grad_norm(loss, net):
    params = [p for p in net.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return sum(float(g.abs().sum()) for g in grads if g is not None)


def test_paper_clip_term_trains_the_generators(random_clip):
    model = _model("paper", random_clip)
    v = model(*_batch())
    model.discriminators.requires_grad_(False)
    _, terms = model.compute_G_loss(v)
    assert _grad_norm(terms["D_A_CLIP"], model.generators["G_A"]) > 0
    assert _grad_norm(terms["D_B_CLIP"], model.generators["G_B"]) > 0
    # §8.2: no history pools on the CLIP path in the paper objective.
    assert not model.pools["fake_B_clip"].images and not model.pools["fake_A_clip"].images


def test_official_clip_term_is_detached_and_pools_are_mixed(random_clip):
    model = _model("official", random_clip)
    v = model(*_batch())
    _, terms = model.compute_G_loss(v)
    assert not terms["D_A_CLIP"].requires_grad and not terms["D_B_CLIP"].requires_grad  # §8.1
    # §8.2: fake_B, rec_B and fake_A all went through the fake_B CLIP pool.
    assert len(model.pools["fake_B_clip"].images) == 3
    assert len(model.pools["fake_A_clip"].images) == 1
    assert torch.equal(model.pools["fake_B_clip"].images[2], v["fake_A"][:1].detach())


@pytest.mark.parametrize("objective", ["official", "paper"])
def test_generator_edge_term_input(objective, random_clip):
    """§8.3: the release feeds raw images to the edge discriminators, the paper edge maps."""
    model = _model(objective, random_clip)
    v = model(*_batch())
    seen = []
    model.discriminators["D_A_edge"].register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    model.discriminators.requires_grad_(False)
    _, terms = model.compute_G_loss(v)
    expected = v["fake_B"] if objective == "official" else model.edge(v["fake_B"])
    assert torch.allclose(seen[0], expected)
    assert _grad_norm(terms["G_A_edge"], model.generators["G_A"]) > 0


def test_edge_operator_deterministic_only_in_paper(random_clip):
    x = _batch()[0]
    assert torch.equal(_model("paper", random_clip).edge(x), _model("paper", random_clip).edge(x))
    official = _model("official", random_clip).edge
    assert not torch.allclose(official(x), official(x))  # §8.4: a fresh projection per call


@pytest.mark.parametrize("normalize", [False, True])
def test_clip_input_normalisation(normalize, random_clip):
    """§8.5: the paper maps [-1, 1] to CLIP's mean/std; the release feeds [-1, 1] as is."""
    term = CLIPTerm(random_clip, normalize_input=normalize)
    x = torch.full((1, 3, 50, 70), 0.2)
    seen = []
    handle = random_clip.visual.register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    term.loss(x, "high")
    handle.remove()
    assert seen[0].shape == (1, 3, 224, 224)
    if normalize:
        mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
        expected = ((x[:, :, :1, :1] + 1) / 2 - mean) / std
        assert torch.allclose(seen[0], expected.expand_as(seen[0]), atol=1e-6)
    else:
        assert torch.allclose(seen[0], torch.full_like(seen[0], 0.2), atol=1e-6)


def test_clip_loss_is_l1_to_target(random_clip):
    term = CLIPTerm(random_clip)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        p = term.probabilities(x)
        assert torch.allclose(p.sum(-1), torch.ones(2), atol=1e-6)
        high = term.loss(x, "high")
        low = term.loss(x, "low")
    want_high = float((p[:, 0].abs() + (p[:, 1] - 1).abs()).mean() / 2)
    want_low = float(((p[:, 0] - 1).abs() + p[:, 1].abs()).mean() / 2)
    assert high.item() == pytest.approx(want_high, abs=1e-6)
    assert low.item() == pytest.approx(want_low, abs=1e-6)


def test_generator_total_uses_named_weights():
    names = ["G_A", "cycle_A", "idt_A", "D_A_CLIP", "G_A_edge", "G_B", "cycle_B", "idt_B",
             "D_B_CLIP", "G_B_edge", "H", "PreConsis"]
    ones = {n: torch.tensor(1.0) for n in names}
    assert generator_total(ones, LossWeights()).item() == pytest.approx(2 * 4 + 0.5 + 1)
    custom = LossWeights(lambda_clip=1.0, lambda_edge=0.0, lambda_mask=2.0)
    assert generator_total(ones, custom).item() == pytest.approx(2 * 4 + 2 + 1)


@pytest.mark.parametrize("objective", ["official", "paper"])
def test_one_iteration_updates_all_networks(objective, random_clip):
    model = _model(objective, random_clip)
    before = {n: [p.detach().clone() for p in net.parameters()]
              for n, net in model.networks().items()}
    losses = model.optimize_parameters(*_batch())
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    for name, net in model.networks().items():
        changed = any(not torch.equal(a, b) for a, b in zip(before[name], net.parameters()))
        assert changed, name
