"""nerco.training.image_pool: what the history buffers keep, in which precision, and size 0."""

from __future__ import annotations

import random

import torch
from conftest import random_tensor

from nerco.networks.build import Architecture
from nerco.training.clip_term import CLIPTerm
from nerco.training.image_pool import ImagePool
from nerco.training.model import NeRCoModel


def test_each_stored_image_is_a_copy_of_its_own():
    """A view of the batch would keep all N images alive for each stored one."""
    pool = ImagePool(8)
    batch = random_tensor((4, 3, 16, 16), seed=1)
    pool.query(batch)
    one_image = 3 * 16 * 16 * batch.element_size()
    assert [im.untyped_storage().nbytes() for im in pool.images] == [one_image] * 4
    assert len({im.untyped_storage().data_ptr() for im in pool.images}) == 4
    batch.zero_()  # the caller reuses its tensor: the pool is unaffected
    assert all(im.abs().sum() > 0 for im in pool.images)


def test_half_precision_images_come_back_in_the_query_precision(monkeypatch):
    """Pools filled under --amp (bfloat16 images) and read by a float32 resume."""
    pool = ImagePool(2)
    stored = random_tensor((2, 3, 8, 8), seed=2).bfloat16()
    pool.query(stored)
    resumed = ImagePool(2)
    resumed.load_state_dict(pool.state_dict())
    assert {im.dtype for im in resumed.images} == {torch.bfloat16}
    monkeypatch.setattr(random, "uniform", lambda a, b: 1.0)  # always hand out a stored one
    monkeypatch.setattr(random, "randint", lambda a, b: 1)
    out = resumed.query(random_tensor((1, 3, 8, 8), seed=3))
    assert out.dtype == torch.float32 and torch.equal(out[0], stored[1].float())
    assert resumed.images[1].dtype == torch.float32  # the new image took its place


def test_size_zero_returns_the_images_as_they_are():
    x = random_tensor((2, 3, 8, 8), seed=4).requires_grad_()
    out = ImagePool(0).query(x)
    assert out is x and out.requires_grad


def test_pool_size_zero_lets_the_official_clip_terms_train(random_clip):
    """The release's pool of size 0 does not detach: its CLIP terms reach the generators."""
    g = torch.Generator().manual_seed(1)
    real_A = torch.rand(1, 3, 32, 32, generator=g) * 0.4 - 1.0
    real_B = torch.rand(1, 3, 32, 32, generator=g) * 1.6 - 0.8
    grads = {}
    for size in (0, 2):
        torch.manual_seed(0)
        model = NeRCoModel(Architecture(ngf=8, ndf=8), CLIPTerm(random_clip), pool_size=size)
        model.discriminators.requires_grad_(False)
        _, terms = model.compute_G_loss(model(real_A, real_B))
        grads[size] = terms["D_A_CLIP"].requires_grad
        if size == 0:
            params = list(model.generators["G_A"].parameters())
            grad = torch.autograd.grad(terms["D_A_CLIP"], params, allow_unused=True)
            assert sum(float(t.abs().sum()) for t in grad if t is not None) > 0
    assert grads == {0: True, 2: False}
