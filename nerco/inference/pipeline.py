"""Enhancing many images: decoding ahead of the network, PNG writing behind it (issue 14).

Three stages run at once, joined by bounded queues, so memory stays flat however many
images there are:

1. **decoding**, in ``threads // 2`` threads (at least one), in task order, a few images
   ahead of the network (Pillow, zlib and torch release the GIL while they work);
2. **the network**, in the calling thread: images of one size are stacked into batches of
   up to ``batch_size`` (instance norm and the attention are per image, so a batch gives each
   image the numbers it gets alone, up to the float rounding of the kernels the convolution
   library picks for that batch size). On CUDA the 8-bit batch goes through pinned memory with
   a non-blocking copy on a stream of its own, so the next batch is copied while the current
   one runs, and the conversions to [-1, 1] and back run on the GPU; on the CPU they run in
   the decoding and writing threads, beside the network instead of before and after it;
3. **writing**, in ``threads`` threads: each PNG goes to a hidden temporary name beside its
   destination and is renamed (:func:`nerco.inference.folder_io.write_png`), so a
   destination file is always complete, even when the process is killed.

An image that cannot be read, is too small, or does not fit in the device's memory becomes
a :class:`~nerco.inference.folder_io.Failure` (one line naming the file and what to do) and the run
goes on.

The three stages and their hand-over (ordering, batching by size, the in-flight limit, the
stop request) share one module, which stays whole (about 250 lines of code): they are one
mechanism, and read in one place.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from nerco.inference.enhancer import MIN_SIDE
from nerco.inference.folder_io import (
    Decoded,
    Failure,
    Task,
    as_pixels,
    input_table,
    read_photo,
    to_network,
    to_uint8,
    write_png,
)
from nerco.runtime import UserError

logger = logging.getLogger(__name__)

#: Batches launched on a CUDA device and not yet copied back, at most.
IN_FLIGHT = 2
Batch = list[tuple[Task, Decoded]]


@dataclasses.dataclass
class Report:
    """What a run did: images written, failures, and whether a stop request ended it."""

    written: int = 0
    failures: list[Failure] = dataclasses.field(default_factory=list)
    stopped: bool = False


def decoded_in_order(
    tasks: Iterable[Task],
    decode: Callable[[str], Decoded | Failure],
    pool: ThreadPoolExecutor,
    ahead: int,
) -> Iterator[tuple[Task, Decoded | Failure]]:
    """Each task with its decoded image, in task order, decoding at most ``ahead`` images
    before they are asked for. Closing the iterator cancels the decodes not started."""
    pending: deque[tuple[Task, Future]] = deque()
    source = iter(tasks)

    def submit_next() -> None:
        task = next(source, None)
        if task is not None:
            pending.append((task, pool.submit(decode, task.source)))

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


def batches_by_size(
    items: Iterable[tuple[Task, Decoded | Failure]], batch_size: int
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

    def submit(
        self,
        batch: Batch,
        results: torch.Tensor,
        inputs: torch.Tensor | None,
        ready: torch.cuda.Event | None,
    ) -> None:
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
                    write_png(task.input_png, as_pixels(inputs[i]))
                write_png(task.result, as_pixels(results[i]), image.icc_profile)
                self.finished.put((task, None))
            except OSError as err:
                reason = f"cannot write {task.result}: {err.strerror or err}"
                self.finished.put((task, Failure(task.source, reason)))

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def _out_of_memory(err: BaseException) -> bool:
    text = str(err)
    return isinstance(err, torch.OutOfMemoryError) or (
        isinstance(err, RuntimeError)
        and ("can't allocate memory" in text or "not enough memory" in text)
    )


class Pipeline:
    """Enhances :class:`~nerco.inference.folder_io.Task` lists on ``device`` (see the module notes).

    Args:
        enhancer: (N, 3, H, W) in [-1, 1] → the same shape in [-1, 1] (an
            :class:`nerco.inference.enhancer.Enhancer`, or any module with that contract).
        device: where ``enhancer`` runs.
        read: path → :class:`~nerco.inference.folder_io.Decoded` (``read_photo`` or
            ``read_dataset_image``); it raises UserError for a file it cannot read.
        batch_size: images of one size enhanced together, at most.
        threads: writing threads; half as many decode (at least one): a PNG costs several
            times its decoding.
    """

    def __init__(
        self,
        enhancer: Callable[[torch.Tensor], torch.Tensor],
        device: torch.device,
        read: Callable[[str], Decoded] = read_photo,
        batch_size: int = 1,
        threads: int = 4,
    ) -> None:
        self.enhancer, self.device, self.read = enhancer, torch.device(device), read
        self.batch_size, self.threads = max(1, batch_size), max(1, threads)
        self.readers = max(1, self.threads // 2)
        self.cuda = self.device.type == "cuda"
        self.table = input_table().to(self.device)
        self.upload_stream = torch.cuda.Stream(self.device) if self.cuda else None
        self._launched: deque[torch.cuda.Event] = deque()  # CUDA: batches not yet back
        self._progress: Callable[[int], None] = lambda n: None

    def run(
        self,
        tasks: Sequence[Task],
        stop: Callable[[], bool] = lambda: False,
        progress: Callable[[int], None] = lambda n: None,
    ) -> Report:
        """Enhance ``tasks``; ``stop()`` is asked before each batch (True: finish the batches
        under way and their writes, then return); ``progress(n)`` after ``n`` more images
        are written or have failed."""
        report, self._progress = Report(), progress
        writer = _Writer(self.threads, bound=self.threads + 1)
        readers = ThreadPoolExecutor(self.readers, thread_name_prefix="nerco-read")
        items = decoded_in_order(tasks, self._decode, readers, self.readers + self.batch_size)
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

    def _decode(self, path: str) -> Decoded | Failure:
        """A decoding thread's work: read, check the size, on the CPU also convert."""
        try:
            image = self.read(path)
        except UserError as err:
            return Failure(path, str(err))
        except MemoryError:
            return Failure(path, f"{path} is too large to decode in this machine's memory")
        height, width = image.pixels.shape[:2]
        if min(height, width) < MIN_SIDE:
            return Failure(
                path,
                f"{path} is {width}x{height} pixels, too small: NeRCo needs "
                f"at least {MIN_SIDE}x{MIN_SIDE}",
            )
        if self.cuda:
            return image
        return dataclasses.replace(
            image, tensor=to_network(torch.from_numpy(image.pixels), self.table)
        )

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
            task, image = batch[0]
            height, width = image.pixels.shape[:2]
            hint = (
                "does not fit in the GPU's memory: enhance it on the CPU with --gpu_ids "
                "-1, or try --amp bf16"
                if self.cuda
                else "does not fit in this machine's memory: use one with more, or a smaller "
                "copy of the image"
            )
            self._fail(report, Failure(task.source, f"{task.source} ({width}x{height}) {hint}"))
            return
        writer.submit(batch, results, inputs, ready)

    def _forward(self, batch: Batch):
        """The batch through the network: (results, inputs or None, CUDA event or None).
        On CUDA, uint8 (N, H, W, 3) on pinned host memory, ready once the event is; on the
        CPU, the (N, 3, H, W) tensors in [-1, 1], which the writing threads convert."""
        if self.cuda:
            host = torch.from_numpy(np.stack([image.pixels for _, image in batch]))
            x = to_network(self._upload(host), self.table)
        elif len(batch) == 1:
            x = batch[0][1].tensor[None]
        else:
            x = torch.stack([image.tensor for _, image in batch])
        with torch.no_grad():
            y = self.enhancer(x)
        inputs = x if any(task.input_png is not None for task, _ in batch) else None
        if not self.cuda:
            return y, inputs, None
        results = self._download(to_uint8(y))
        inputs = None if inputs is None else self._download(to_uint8(inputs))
        ready = torch.cuda.Event()
        ready.record()
        self._launched.append(ready)
        if len(self._launched) > IN_FLIGHT:  # bound how far the host runs ahead
            self._launched.popleft().synchronize()
        return results, inputs, ready

    def _upload(self, host: torch.Tensor) -> torch.Tensor:
        """CUDA: the uint8 batch pinned and copied on the upload stream; the compute stream
        waits for that copy only, so it overlaps the batch running before it."""
        host = host.pin_memory()
        with torch.cuda.stream(self.upload_stream):
            levels = host.to(self.device, non_blocking=True)
        compute = torch.cuda.current_stream(self.device)
        compute.wait_stream(self.upload_stream)
        levels.record_stream(compute)
        return levels

    def _download(self, levels: torch.Tensor) -> torch.Tensor:
        """CUDA: a non-blocking copy of a uint8 batch into pinned host memory."""
        host = torch.empty(levels.shape, dtype=torch.uint8, pin_memory=True)
        host.copy_(levels, non_blocking=True)
        return host
