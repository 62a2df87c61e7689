"""nerco.inference.pipeline and nerco.inference.shards: order, bounded queues, batches, conversions,
failures."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from conftest import make_image, randomise
from PIL import Image
from standin import Standin, expected

from nerco.inference.folder_io import (
    Decoded,
    Failure,
    Task,
    input_table,
    read_dataset_image,
    to_network,
    to_uint8,
    write_png,
)
from nerco.inference.pipeline import Pipeline, batches_by_size
from nerco.inference.shards import Shard


def _tasks(tmp_path, sizes) -> list[Task]:
    tasks = []
    for i, size in enumerate(sizes):
        source = make_image(tmp_path / "in" / f"{i:02d}.png", size, seed=i)
        tasks.append(Task(str(source), str(tmp_path / "out" / f"{i:02d}.png")))
    return tasks


def test_conversions_are_to_tensor_and_tensor2im_exactly():
    from data.transforms import to_tensor
    from nerco.util import tensor2im

    levels = np.arange(256, dtype=np.uint8)
    image = np.stack([levels, levels[::-1], np.roll(levels, 7)], -1).reshape(16, 16, 3)
    x = to_tensor(Image.fromarray(image))
    assert torch.equal(to_network(torch.from_numpy(image), input_table()), x)
    # Values at and around every level boundary, and beyond [-1, 1].
    y = torch.linspace(-1.2, 1.2, 3 * 40 * 50).reshape(1, 3, 40, 50)
    y[0, 0, 0, :4] = torch.tensor([-1.0, 1.0, float(2 * 128 / 255 - 1), 0.0])
    assert np.array_equal(to_uint8(y)[0].numpy(), tensor2im(y))


def test_batches_group_equal_sizes_in_order():
    def item(name, h, w):
        return Task(name, name + ".png"), Decoded(np.zeros((h, w, 3), np.uint8))

    bad = Failure("bad", "cannot read image bad")
    items = [
        item("a", 8, 9),
        item("b", 9, 8),
        item("c", 8, 9),
        ("x", bad),
        item("d", 8, 9),
        item("e", 9, 8),
        item("f", 10, 10),
    ]
    names = [
        g.source if isinstance(g, Failure) else [t.source for t, _ in g]
        for g in batches_by_size(items, batch_size=3)
    ]
    # Failures pass at once; a group goes when full, the rest in the order they began.
    assert names == ["bad", ["a", "c", "d"], ["b", "e"], ["f"]]
    # Never more than 2 x batch_size waiting: with 2, the oldest group goes early.
    names = [
        [t.source for t, _ in g]
        for g in batches_by_size([item(str(i), 8 + i % 5, 8) for i in range(8)], batch_size=2)
    ]
    assert names == [["0"], ["1"], ["2"], ["3"], ["4"], ["5"], ["6"], ["7"]]
    names = [
        [t.source for t, _ in g]
        for g in batches_by_size([item(str(i), 8 + i % 2, 8) for i in range(5)], batch_size=1)
    ]
    assert names == [["0"], ["1"], ["2"], ["3"], ["4"]]


def test_each_result_under_its_own_name_in_batches(tmp_path):
    sizes = [(40, 32), (32, 40), (40, 32), (40, 32), (24, 16), (32, 40), (40, 32)]
    tasks = _tasks(tmp_path, sizes)
    standin = Standin()
    report = Pipeline(
        standin, torch.device("cpu"), read_dataset_image, batch_size=3, threads=2
    ).run(tasks)
    assert report.written == len(tasks) and not report.failures and not report.stopped
    for task in tasks:
        source = np.asarray(Image.open(task.source).convert("RGB"))
        assert np.array_equal(np.asarray(Image.open(task.result)), expected(source)), task
    assert sorted(standin.batches) == [1, 1, 2, 3]  # (40, 32) x 3 + 1, (32, 40) x 2, (24, 16)
    assert not list((tmp_path / "out").glob(".*"))  # no temporary file left


def test_decoding_stays_a_bounded_distance_ahead(tmp_path):
    """A slow network: decoding runs ahead by a few images, not through the whole folder."""
    tasks = _tasks(tmp_path, [(16, 16)] * 40)
    lock, state = threading.Lock(), {"decoded": 0, "written": 0, "most": 0}
    order = []

    def read(path):
        with lock:
            order.append(path)
            state["decoded"] += 1
            state["most"] = max(state["most"], state["decoded"] - state["written"])
        return read_dataset_image(path)

    def progress(n):
        with lock:
            state["written"] += n

    threads, batch_size = 2, 2
    report = Pipeline(
        Standin(delay=0.01), torch.device("cpu"), read, batch_size=batch_size, threads=threads
    ).run(tasks, progress=progress)
    assert report.written == 40
    assert order == [t.source for t in tasks]  # decoding starts in task order
    # read-ahead + grouping + writer queue, each a few batches: far below 40.
    assert state["most"] <= threads + batch_size + 2 * batch_size + (threads + 2) * batch_size


def test_stop_request_finishes_the_batch_under_way(tmp_path):
    tasks = _tasks(tmp_path, [(16, 16)] * 6)
    calls = []
    report = Pipeline(
        Standin(on_call=calls.append), torch.device("cpu"), read_dataset_image, threads=2
    ).run(tasks, stop=lambda: len(calls) >= 2)
    assert report.stopped and report.written == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["00.png", "01.png"]


def test_out_of_memory_batch_goes_again_one_image_at_a_time(tmp_path):
    class SmallMemory(Standin):
        def forward(self, x):
            if x.shape[0] > 1 or x.shape[-1] > 32:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9 GiB")
            return super().forward(x)

    tasks = _tasks(tmp_path, [(24, 16), (24, 16), (48, 16), (24, 16)])
    report = Pipeline(
        SmallMemory(), torch.device("cpu"), read_dataset_image, batch_size=4, threads=1
    ).run(tasks)
    assert report.written == 3
    [failure] = report.failures
    assert failure.source == tasks[2].source
    assert failure.reason.startswith(f"{tasks[2].source} (48x16) does not fit in")


def test_unreadable_and_too_small_images_are_failures(tmp_path):
    tasks = _tasks(tmp_path, [(16, 16), (7, 30), (16, 16)])
    broken = tmp_path / "in" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    tasks.insert(0, Task(str(broken), str(tmp_path / "out" / "broken.png")))
    report = Pipeline(Standin(), torch.device("cpu"), read_dataset_image).run(tasks)
    assert report.written == 2
    assert [f.source for f in report.failures] == [str(broken), tasks[2].source]
    assert report.failures[0].reason.startswith(f"cannot read image {broken}")
    assert "7x30 pixels, too small" in report.failures[1].reason


def test_write_png_replaces_atomically(tmp_path):
    target = tmp_path / "a" / "r.png"
    pixels = np.random.RandomState(0).randint(0, 255, (9, 7, 3)).astype(np.uint8)
    write_png(str(target), pixels, icc_profile=b"\0" * 16 + b"RGB " + b"\0" * 100)
    assert np.array_equal(np.asarray(Image.open(target)), pixels)
    assert Image.open(target).info["icc_profile"][16:20] == b"RGB "
    assert [p.name for p in target.parent.iterdir()] == ["r.png"]


@pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param(
            "cuda",
            marks=[
                pytest.mark.cuda,
                pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
            ],
        ),
    ],
)
def test_batch_equals_single_images_at_the_released_width(device):
    """Instance norm and the attention are per image: a batch gives each image its numbers
    alone up to float rounding, on the inference path (>= 128x128) and the plain one.

    Not bit for bit: oneDNN (and cuDNN) may pick another kernel for another batch size. On
    an AVX-512/AMX Xeon the 36x44 case differs by 4e-6 (a ConvTranspose2d at 18x22); what
    would break the per-image rule (statistics over the batch) differs by far more."""
    from nerco.inference.enhancer import Enhancer
    from nerco.networks.build import ENHANCER_NAMES, Architecture, build_generators

    nets = build_generators(Architecture(ngf=64), names=ENHANCER_NAMES)
    for i, net in enumerate(nets.values()):
        randomise(net, seed=i)
    enhancer = Enhancer(nets["Pre"], nets["H"], nets["G_A"]).eval().requires_grad_(False)
    enhancer.to(device)
    gen = torch.Generator().manual_seed(0)
    for height, width in ((128, 132), (36, 44)):
        x = (torch.rand(3, 3, height, width, generator=gen) * 2 - 1).to(device)
        with torch.no_grad():
            batch = enhancer(x)
            alone = torch.cat([enhancer(x[i : i + 1]) for i in range(3)])
        gap = (batch - alone).abs().max().item()
        assert gap <= 5e-5, (height, width, gap)
        # The images differ from each other: a batch that mixed them would be far off.
        assert (alone[0] - alone[1]).abs().max() > 0.1


def test_shards_cover_each_item_exactly_once():
    items = list(range(11))
    shares = [Shard(rank=r, world_size=3).take(items) for r in range(3)]
    assert shares == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8]]
    assert Shard().take(items) == items


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_pipeline_equals_cpu(tmp_path):
    """On a GPU: pinned memory, the upload stream and the copies back give the CPU's
    conversions (the stand-in is exact arithmetic on both)."""
    tasks = _tasks(tmp_path, [(40, 32)] * 5)
    Pipeline(Standin(), torch.device("cuda"), read_dataset_image, batch_size=2).run(tasks)
    for task in tasks:
        source = np.asarray(Image.open(task.source).convert("RGB"))
        assert np.array_equal(np.asarray(Image.open(task.result)), expected(source))
