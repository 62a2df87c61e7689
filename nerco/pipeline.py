"""Enhancing many images: decoding ahead of the network, PNG writing behind it (issue 14).

Three stages run at once, joined by bounded queues, so memory stays flat however many
images there are:

1. **decoding**, in ``threads`` threads, in task order, at most ``threads + batch_size``
   images ahead of the network (Pillow and zlib release the GIL while they decode);
2. **the network**, in the calling thread: images of one size are stacked into batches of
   up to ``batch_size`` (instance norm is per image, so a batch gives each image the result
   it gets alone); the 8-bit batch goes to the device and comes back as 8 bits, the
   conversions to [-1, 1] and back running there with ``to_tensor``'s and ``tensor2im``'s
   exact arithmetic. On CUDA the copies go through pinned memory, non-blocking, the upload
   on a stream of its own, so the next batch is copied while the current one runs;
3. **writing**, in ``threads`` threads: each PNG is encoded to a hidden temporary name
   beside its destination (``.<name>.partial``) and renamed, so a destination file is
   always complete, even when the process is killed.

An image that cannot be read, is too small, or does not fit in the device's memory becomes
a :class:`Failure` (one line naming the file and what to do) and the run goes on.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from data.image_folder import load_photo, load_rgb
from data.transforms import to_tensor
from nerco.enhancer import MIN_SIDE
from nerco.errors import UserError

logger = logging.getLogger(__name__)

#: Batches launched on a CUDA device and not yet copied back, at most.
IN_FLIGHT = 2


@dataclass(frozen=True)
class Task:
    """One image: its file, the PNG of its result and, optionally (the ``--dataroot``
    layout), a PNG of the network's input."""

    source: str
    result: str
    input_png: str | None = None


@dataclass(frozen=True)
class Failure:
    """An image that was not enhanced, and why (one line that names it)."""

    source: str
    reason: str


@dataclass(frozen=True)
class Decoded:
    """A decoded image: (H, W, 3) uint8 RGB and the ICC profile to embed in its result."""

    pixels: np.ndarray
    icc_profile: bytes | None = None


@dataclass
class Report:
    """What a run did: images written, failures, and whether a stop request ended it."""

    written: int = 0
    failures: list[Failure] = field(default_factory=list)
    stopped: bool = False


def read_dataset_image(path: str) -> Decoded:
    """``--dataroot``: pixels as stored (the authors' behaviour), no profile kept."""
    return Decoded(np.asarray(load_rgb(path)))


def read_photo(path: str) -> Decoded:
    """``--input``: pixels as displayed (EXIF orientation applied), RGB ICC profile kept."""
    image, profile = load_photo(path)
    return Decoded(np.asarray(image), profile)


def write_png(path: str, pixels: np.ndarray, icc_profile: bytes | None = None) -> None:
    """Write (H, W, 3) uint8 ``pixels`` as the PNG ``path`` through a temporary file in the
    same folder, renamed at the end, so ``path`` never holds a partial image."""
    folder, name = os.path.split(path)
    os.makedirs(folder or ".", exist_ok=True)
    temporary = os.path.join(folder, f".{name}.partial")
    options = {"icc_profile": icc_profile} if icc_profile else {}
    Image.fromarray(np.ascontiguousarray(pixels)).save(temporary, format="PNG", **options)
    os.replace(temporary, path)


def input_table() -> torch.Tensor:
    """(256,) float32: ``to_tensor``'s value for each 8-bit level, computed by ``to_tensor``
    itself, so a lookup gives its exact numbers on any device (a GPU divides by a scalar
    through its reciprocal, which differs in the last bit)."""
    levels = np.arange(256, dtype=np.uint8)
    return to_tensor(Image.fromarray(np.stack([levels] * 3, axis=-1)[None]))[0, 0]


def to_uint8(y: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in [-1, 1] → (N, H, W, 3) uint8 with ``tensor2im``'s arithmetic:
    ``(y + 1) / 2 * 255`` in float32, clipped, truncated toward zero."""
    y = ((y.float() + 1) / 2.0 * 255.0).clamp_(0.0, 255.0)
    return y.to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def _decode(read: Callable[[str], Decoded], path: str) -> Decoded | Failure:
    try:
        image = read(path)
    except UserError as err:
        return Failure(path, str(err))
    except MemoryError:
        return Failure(path, f"{path} is too large to decode in this machine's memory")
    height, width = image.pixels.shape[:2]
    if min(height, width) < MIN_SIDE:
        return Failure(path, f"{path} is {width}x{height} pixels, too small: NeRCo needs at "
                             f"least {MIN_SIDE}x{MIN_SIDE}")
    return image


def decoded_in_order(tasks: Iterable[Task], read: Callable[[str], Decoded],
                     pool: ThreadPoolExecutor, ahead: int
                     ) -> Iterator[tuple[Task, Decoded | Failure]]:
    """Each task with its decoded image, in task order, decoding at most ``ahead`` images
    before they are asked for. Closing the iterator cancels the decodes not started."""
    pending: deque[tuple[Task, Future]] = deque()
    source = iter(tasks)

    def submit_next() -> None:
        task = next(source, None)
        if task is not None:
            pending.append((task, pool.submit(_decode, read, task.source)))

    for _ in range(max(1, ahead)):
        submit_next()
    try:
        while pending:
            task, future = pending.popleft()
            submit_next()
            yield task, future.result()
    finally:
        for _, future in pending:
            future.cancel()


Batch = list[tuple[Task, Decoded]]


def batches_by_size(items: Iterable[tuple[Task, Decoded | Failure]], batch_size: int
                    ) -> Iterator[Batch | Failure]:
    """Group decoded images of one size into batches of up to ``batch_size``, in arrival
    order; failures pass straight through. At most ``2 · batch_size`` images wait: beyond
    that the oldest group goes as it is. Deterministic: it depends only on the sizes."""
    groups: OrderedDict[tuple[int, ...], Batch] = OrderedDict()
    waiting = 0
    for task, image in items:
        if isinstance(image, Failure):
            yield image
            continue
        group = groups.setdefault(image.pixels.shape, [])
        group.append((task, image))
        waiting += 1
        if len(group) == batch_size:
            waiting -= len(groups.pop(image.pixels.shape))
            yield group
        elif waiting > 2 * batch_size:
            _, oldest = groups.popitem(last=False)
            waiting -= len(oldest)
            yield oldest
    yield from groups.values()


class _Writer:
    """PNG writing in background threads; at most ``bound`` batches queued or being written.
    Each finished image puts ``(task, Failure | None)`` on :attr:`finished`; an unexpected
    error puts ``(None, exception)``, for the calling thread to raise."""

    def __init__(self, threads: int, bound: int) -> None:
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="nerco-write")
        self.slots = threading.Semaphore(bound)
        self.finished: queue.SimpleQueue = queue.SimpleQueue()

    def submit(self, batch: Batch, results: torch.Tensor, inputs: torch.Tensor | None,
               ready: torch.cuda.Event | None) -> None:
        self.slots.acquire()
        future = self.pool.submit(self._write, batch, results, inputs, ready)
        future.add_done_callback(self._done)

    def _done(self, future: Future) -> None:
        self.slots.release()
        if not future.cancelled() and future.exception() is not None:
            self.finished.put((None, future.exception()))

    def _write(self, batch: Batch, results, inputs, ready) -> None:
        if ready is not None:
            ready.synchronize()  # the copy back to pinned memory is done
        for i, (task, image) in enumerate(batch):
            try:
                if task.input_png is not None:  # before the result: a result implies both
                    write_png(task.input_png, inputs[i].numpy())
                write_png(task.result, results[i].numpy(), image.icc_profile)
                self.finished.put((task, None))
            except OSError as err:
                reason = f"cannot write {task.result}: {err.strerror or err}"
                self.finished.put((task, Failure(task.source, reason)))

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def _out_of_memory(err: BaseException) -> bool:
    if isinstance(err, torch.OutOfMemoryError):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and ("can't allocate memory" in text
                                              or "not enough memory" in text)


class Pipeline:
    """Enhances :class:`Task` lists with ``enhancer`` on ``device`` (see the module notes).

    Args:
        enhancer: (N, 3, H, W) in [-1, 1] → the same shape in [-1, 1] (an
            :class:`nerco.enhancer.Enhancer`, or any module with that contract).
        device: where ``enhancer`` runs.
        read: path → :class:`Decoded` (:func:`read_photo` or :func:`read_dataset_image`);
            it raises UserError for a file it cannot read.
        batch_size: images of one size enhanced together, at most.
        threads: decoding threads, and as many writing threads.
    """

    def __init__(self, enhancer: Callable[[torch.Tensor], torch.Tensor], device: torch.device,
                 read: Callable[[str], Decoded] = read_photo, batch_size: int = 1,
                 threads: int = 4) -> None:
        self.enhancer, self.device, self.read = enhancer, torch.device(device), read
        self.batch_size, self.threads = max(1, batch_size), max(1, threads)
        self.cuda = self.device.type == "cuda"
        self.table = input_table().to(self.device)
        self.upload_stream = torch.cuda.Stream(self.device) if self.cuda else None
        self._launched: deque[torch.cuda.Event] = deque()  # CUDA: batches not yet back
        self._progress: Callable[[int], None] = lambda n: None

    def run(self, tasks: Sequence[Task], stop: Callable[[], bool] = lambda: False,
            progress: Callable[[int], None] = lambda n: None) -> Report:
        """Enhance ``tasks``; ``stop()`` is asked before each batch (True: finish the batches
        under way and their writes, then return); ``progress(n)`` after ``n`` more images
        are written or have failed."""
        report = Report()
        self._progress = progress
        writer = _Writer(self.threads, bound=self.threads + 1)
        readers = ThreadPoolExecutor(self.threads, thread_name_prefix="nerco-read")
        items = decoded_in_order(tasks, self.read, readers, self.threads + self.batch_size)
        try:
            for group in batches_by_size(items, self.batch_size):
                if stop():
                    report.stopped = True
                    break
                if isinstance(group, Failure):
                    self._fail(report, group)
                else:
                    self._enhance(group, writer, report)
                self._collect(writer, report)
        finally:
            items.close()
            readers.shutdown(wait=True, cancel_futures=True)
            writer.close()
        self._collect(writer, report)
        return report

    def _fail(self, report: Report, failure: Failure) -> None:
        logger.warning("skipped: %s", failure.reason)
        report.failures.append(failure)
        self._progress(1)

    def _collect(self, writer: _Writer, report: Report) -> None:
        count = 0
        while True:
            try:
                task, failure = writer.finished.get_nowait()
            except queue.Empty:
                break
            if task is None:  # a bug, not a bad file: stop with its traceback
                raise failure
            if failure is None:
                report.written += 1
                count += 1
            else:
                self._fail(report, failure)
        if count:
            self._progress(count)

    def _enhance(self, batch: Batch, writer: _Writer, report: Report) -> None:
        """Enhance one batch and hand it to the writer; out of memory, a batch goes again
        one image at a time, and an image that does not fit alone is a failure."""
        try:
            results, inputs, ready = self._forward(batch)
        except Exception as err:
            if not _out_of_memory(err):
                raise
            if self.cuda:
                torch.cuda.empty_cache()
            if len(batch) > 1:
                for item in batch:
                    self._enhance([item], writer, report)
                return
            height, width = batch[0][1].pixels.shape[:2]
            where = ("the GPU's memory" if self.cuda else "this machine's memory")
            hint = ("run it on the CPU with --gpu_ids -1, or with --amp bf16" if self.cuda
                    else "use a machine with more memory, or shrink the image")
            self._fail(report, Failure(batch[0][0].source, f"{batch[0][0].source} "
                                       f"({width}x{height}) does not fit in {where}: {hint}"))
            return
        writer.submit(batch, results, inputs, ready)

    def _forward(self, batch: Batch):
        """(results, inputs or None, CUDA event): uint8 (N, H, W, 3) tensors on the host."""
        host = torch.from_numpy(np.stack([image.pixels for _, image in batch]))
        levels = self._upload(host)
        x = self.table[levels.int()].permute(0, 3, 1, 2).contiguous()  # (N, 3, H, W)
        with torch.no_grad():
            y = self.enhancer(x)
        wants_inputs = any(task.input_png is not None for task, _ in batch)
        results = self._download(to_uint8(y))
        inputs = self._download(to_uint8(x)) if wants_inputs else None
        ready = None
        if self.cuda:
            ready = torch.cuda.Event()
            ready.record()
            self._launched.append(ready)
            if len(self._launched) > IN_FLIGHT:  # bound how far the host runs ahead
                self._launched.popleft().synchronize()
        return results, inputs, ready

    def _upload(self, host: torch.Tensor) -> torch.Tensor:
        """The uint8 batch on the device; on CUDA pinned, copied on the upload stream, and
        the compute stream waits for that copy only."""
        if not self.cuda:
            return host
        host = host.pin_memory()
        with torch.cuda.stream(self.upload_stream):
            levels = host.to(self.device, non_blocking=True)
        compute = torch.cuda.current_stream(self.device)
        compute.wait_stream(self.upload_stream)
        levels.record_stream(compute)
        return levels

    def _download(self, levels: torch.Tensor) -> torch.Tensor:
        if not self.cuda:
            return levels
        host = torch.empty(levels.shape, dtype=torch.uint8, pin_memory=True)
        host.copy_(levels, non_blocking=True)
        return host
