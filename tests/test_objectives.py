"""The two objectives differ exactly where NERCO_SPEC.md §8 says, term by term."""

from __future__ import annotations

import pytest
import torch

from nerco.networks.build import Architecture
from nerco.training.clip_term import CLIP_MEAN, CLIP_STD, CLIPTerm
from nerco.training.losses import LossWeights, generator_total, identity_losses
from nerco.training.model import NeRCoModel

TINY = Architecture(ngf=8, ndf=8)


def _model(objective, clip, seed=0):
    torch.manual_seed(seed)
    return NeRCoModel(
        TINY, CLIPTerm(clip, normalize_input=objective == "paper"), objective=objective
    )


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


#: Distinct factors, none 1 and no two alike, so that a swapped or dropped factor shows.
DISTINCT = LossWeights(
    lambda_A=3.0,
    lambda_B=7.0,
    lambda_identity=0.3,
    lambda_pre=2.5,
    lambda_clip=0.7,
    lambda_edge=0.2,
    lambda_mask=1.3,
)
GENERATOR_TERMS = (
    "G_A",
    "cycle_A",
    "idt_A",
    "D_A_CLIP",
    "G_A_edge",
    "G_B",
    "cycle_B",
    "idt_B",
    "D_B_CLIP",
    "G_B_edge",
    "H",
    "PreConsis",
)


def test_generator_total_coefficients():
    """d total / d term is each term's factor in §2's total (and nothing else enters)."""
    w = DISTINCT
    terms = {n: torch.tensor(1.5 + i, requires_grad=True) for i, n in enumerate(GENERATOR_TERMS)}
    total = generator_total(terms, w)
    grads = torch.autograd.grad(total, list(terms.values()))
    got = {n: g.item() for n, g in zip(terms, grads)}
    want = dict.fromkeys(GENERATOR_TERMS, 1.0) | {
        "D_A_CLIP": w.lambda_clip,
        "D_B_CLIP": w.lambda_clip,
        "G_A_edge": w.lambda_edge,
        "G_B_edge": w.lambda_edge,
        "H": w.lambda_mask,
    }
    assert got == pytest.approx(want, rel=1e-6)
    t = {n: v.item() for n, v in terms.items()}
    by_hand = (
        t["G_A"]
        + t["cycle_A"]
        + t["idt_A"]
        + 0.7 * t["D_A_CLIP"]
        + 0.2 * t["G_A_edge"]
        + t["G_B"]
        + t["cycle_B"]
        + t["idt_B"]
        + 0.7 * t["D_B_CLIP"]
        + 0.2 * t["G_B_edge"]
        + 1.3 * t["H"]
        + t["PreConsis"]
    )
    assert total.item() == pytest.approx(by_hand, rel=1e-6)


def _l1(a, b):
    return (a - b).abs().mean()


def _lsgan(prediction, real: bool):
    return ((prediction - (1.0 if real else 0.0)) ** 2).mean()


def _spec_generator_terms(model, v) -> dict:
    """§2 written out from the spec, with the model's networks and the DISTINCT factors."""
    g, d = model.generators, model.discriminators  # factors: DISTINCT, written as numbers
    A, B, pre_A, Hm = v["real_A"], v["real_B"], v["pre_A"], v["Hm"]
    fake_A, fake_B = v["fake_A"], v["fake_B"]
    paper = model.objective == "paper"
    edge_B, edge_A = (model.edge(fake_B), model.edge(fake_A)) if paper else (fake_B, fake_A)
    clip = model.clip_term
    bypass = _l1(fake_B, A + Hm) + _l1(B, g["G_A"](torch.cat((B - Hm, B - Hm), 1)))
    adv_h = _lsgan(d["D_A"](A + Hm), True) + _lsgan(d["D_B"](B - Hm), True)
    self_term = _l1(Hm, fake_B - A) + _l1(fake_A, B - g["H"](fake_A)[0])
    return {
        "idt_A": _l1(g["G_A"](torch.cat((B, B), 1)), B) * 7.0 * 0.3,  # λ_B·λ_idt
        "idt_B": _l1(g["G_B"](A), A) * 3.0 * 0.3,  # λ_A·λ_idt
        "G_A": _lsgan(d["D_A"](fake_B), True),
        "G_B": _lsgan(d["D_B"](fake_A), True) + _lsgan(d["D_B"](pre_A), True),
        "G_A_edge": _lsgan(d["D_A_edge"](edge_B), True),
        "G_B_edge": _lsgan(d["D_B_edge"](edge_A), True),
        "cycle_A": _l1(v["rec_A"], A) * 3.0,  # λ_A
        "cycle_B": _l1(v["rec_B"], B) * 7.0,  # λ_B
        "PreConsis": _l1(pre_A, A) * 2.5 * 3.0 + _lsgan(d["D_B"](pre_A), True),  # λ_pre·λ_A
        "H": bypass + adv_h + self_term,
        # Fresh pools return the images they are given, so the pools change no value here.
        "D_A_CLIP": clip.loss(fake_B, "high") + clip.loss(v["rec_B"], "high"),
        "D_B_CLIP": clip.loss(fake_A, "low") + clip.loss(v["rec_A"], "low"),
    }


@pytest.mark.parametrize("objective", ["official", "paper"])
def test_generator_terms_and_total_match_the_spec(objective, random_clip):
    torch.manual_seed(0)
    model = NeRCoModel(
        TINY,
        CLIPTerm(random_clip, normalize_input=objective == "paper"),
        objective=objective,
        weights=DISTINCT,
    )
    v = model(*_batch())
    model.discriminators.requires_grad_(False)
    total, terms = model.compute_G_loss(v)
    with torch.no_grad():
        want = _spec_generator_terms(model, v)
        want["total"] = (
            (
                want["G_A"]
                + want["cycle_A"]
                + want["idt_A"]
                + 0.7 * want["D_A_CLIP"]
                + 0.2 * want["G_A_edge"]
            )
            + (
                want["G_B"]
                + want["cycle_B"]
                + want["idt_B"]
                + 0.7 * want["D_B_CLIP"]
                + 0.2 * want["G_B_edge"]
            )
            + 1.3 * want["H"]
            + want["PreConsis"]
        )
    got = {name: t.item() for name, t in (terms | {"total": total}).items()}
    assert got == pytest.approx({n: t.item() for n, t in want.items()}, rel=1e-5)


def test_discriminator_terms_match_the_spec(random_clip):
    model = _model("paper", random_clip)  # deterministic edge maps
    v = model(*_batch())
    _, terms = model.compute_D_loss(v)
    d, edge = model.discriminators, model.edge

    def basic(D, real, fake):
        return 0.5 * (_lsgan(D(real), True) + _lsgan(D(fake), False))

    with torch.no_grad():  # fresh pools: the newest images come back
        want = {
            "D_A": basic(d["D_A"], v["real_B"], v["fake_B"]),
            "D_B": basic(d["D_B"], v["real_A"], v["fake_A"])
            + basic(d["D_B"], v["real_A"], v["pre_A"]),
            "D_A_edge": basic(d["D_A_edge"], edge(v["real_B"]), edge(v["fake_B"])),
            "D_B_edge": basic(d["D_B_edge"], edge(v["real_A"]), edge(v["fake_A"])),
        }
    assert {n: t.item() for n, t in terms.items()} == pytest.approx(
        {n: t.item() for n, t in want.items()}, rel=1e-5
    )


def test_lambda_identity_zero_drops_the_identity_terms():
    """As the release: no identity pass at all when λ_idt is 0."""

    def never(_):
        raise AssertionError("a generator ran")

    terms = identity_losses(never, never, *_batch(), LossWeights(lambda_identity=0.0))
    assert terms["idt_A"].item() == 0.0 and terms["idt_B"].item() == 0.0


def test_train_options_reach_the_loss_weights():
    """Each --lambda_* flag sets its own factor (distinct values: a swap shows)."""
    from nerco.training.trainer import loss_weights_from
    from options import TrainOptions

    flags = {
        "lambda_A": 3.0,
        "lambda_B": 7.0,
        "lambda_identity": 0.3,
        "lambda_pre": 2.5,
        "lambda_clip": 0.7,
        "lambda_edge": 0.2,
        "lambda_mask": 1.3,
    }
    argv = ["--dataroot", "unused"] + [a for k, x in flags.items() for a in (f"--{k}", str(x))]
    assert loss_weights_from(TrainOptions().parse(argv)) == DISTINCT == LossWeights(**flags)


@pytest.mark.parametrize("objective", ["official", "paper"])
def test_one_iteration_updates_all_networks(objective, random_clip):
    model = _model(objective, random_clip)
    before = {
        n: [p.detach().clone() for p in net.parameters()] for n, net in model.networks().items()
    }
    losses = model.optimize_parameters(*_batch())
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    for name, net in model.networks().items():
        changed = any(not torch.equal(a, b) for a, b in zip(before[name], net.parameters()))
        assert changed, name
