"""Sources of training batches: tensors in memory, or rows streamed from disk.

The training loop asks a batch source for ``n`` (samples per epoch), ``steps`` (batches per
epoch), ``device`` and ``epoch(i)`` (an iterator of batch tuples); it knows no more of where
the batches come from.

- ``TensorBatches``: tensors already on the device, shuffled by one ``torch.randperm`` gather
  per epoch (the reference path: the seeded MNIST numbers come from it).
- ``StreamBatches``: a ``sources.Source`` read as contiguous slices in an order shuffled by
  blocks and within a window (``epoch_order``), converted to float32 by a background thread
  that keeps at most ``depth`` batches ready. Memory is one window of stored rows plus
  ``depth`` float32 batches, whatever the number of rows.

The order is a pure function of ``(seed, epoch)`` and the row layout, and ``shard`` cuts each
global batch into one contiguous part per rank: with ``world_size`` ranks each reads its own
part of every global batch, so the global batches (and the result) do not depend on the number
of ranks.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from aekit._utils import InputError

__all__ = [
    "Batches",
    "RowBlocks",
    "StreamBatches",
    "TensorBatches",
    "batch_bounds",
    "epoch_order",
    "shard",
]

Batch = tuple[torch.Tensor, ...]
#: ``convert(raw_rows, row_ids) -> float32 rows``: the pixel rule and the checks of the input (run in the worker)
Convert = Callable[[np.ndarray, np.ndarray], np.ndarray]

#: ``data_loading`` choices (the estimators' parameter): see ``base`` for the "auto" rule
DATA_LOADING = ("auto", "memory", "stream")
WINDOW_BLOCKS = 16  # blocks read and shuffled together: rows mix within a window, blocks across the epoch
PREFETCH_DEPTH = 4  # float32 batches the worker keeps ready
MIN_BLOCKS = 64  # small data: blocks shrink so that a split and a shuffle have at least this many to work with


class Batches(Protocol):
    """What the training loop reads: ``epoch(i)`` yields ``steps`` batches covering ``n`` samples."""

    n: int
    steps: int
    device: torch.device

    def epoch(self, epoch: int) -> Iterator[Batch]: ...


def batch_bounds(n: int, batch_size: int, min_batch: int = 1) -> list[tuple[int, int]]:
    """``(start, stop)`` of each batch over ``n`` samples; a last batch below ``min_batch`` joins the one before.

    Raises ``InputError`` when ``n < min_batch`` (BatchNorm needs 2 samples).
    """
    if n < min_batch:
        raise InputError(
            f"got {n} training sample(s); this model trains on batches of at least {min_batch} samples "
            "(BatchNorm), pass more data"
        )
    steps = math.ceil(n / batch_size)
    if steps > 1 and n - (steps - 1) * batch_size < min_batch:
        steps -= 1  # the short last batch is merged into the one before it
    return [(i * batch_size, n if i == steps - 1 else (i + 1) * batch_size) for i in range(steps)]


def shard(start: int, stop: int, rank: int, world_size: int) -> tuple[int, int]:
    """Rank ``rank``'s contiguous part of the global batch ``[start, stop)`` (sizes differ by at most one)."""
    m = stop - start
    return start + m * rank // world_size, start + m * (rank + 1) // world_size


class TensorBatches:
    """In-memory tensors (same first dimension, on the device); one ``randperm`` gather per epoch.

    With ``world_size`` ranks, every rank draws the same permutation and takes its ``shard`` of
    every global batch of ``batch_size``; ``generator`` (a copy of the seeded RNG's state, the same on
    every rank) then draws the permutations, so that random layers drawing different amounts on each
    rank cannot make the ranks' orders differ.
    """

    def __init__(
        self,
        tensors: Sequence[torch.Tensor],
        batch_size: int,
        *,
        min_batch: int = 1,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        generator: torch.Generator | None = None,
    ) -> None:
        self.tensors = tuple(tensors)
        total = int(self.tensors[0].shape[0])
        global_bounds = batch_bounds(total, batch_size, min_batch * world_size)
        self.global_sizes = [b - a for a, b in global_bounds]  # every rank's samples in each step
        self.bounds = [shard(a, b, rank, world_size) for a, b in global_bounds]
        self.generator = generator
        self.n = sum(b - a for a, b in self.bounds)
        self.steps = len(self.bounds)
        self.device = self.tensors[0].device
        self.shuffle = shuffle

    def epoch(self, epoch: int) -> Iterator[Batch]:
        data = self.tensors
        if self.shuffle:  # the caller's seeded torch RNG: the reference path's order
            n = int(data[0].shape[0])
            if self.generator is None:
                perm = torch.randperm(n, device=self.device)
            else:
                perm = torch.randperm(n, device=self.device, generator=self.generator)
            data = tuple(t[perm] for t in data)  # one gather per epoch
        for start, stop in self.bounds:
            yield tuple(t[start:stop] for t in data)


# ----------------------------------------------------------------------------- the streaming order


@dataclass(frozen=True)
class RowBlocks:
    """Rows ``[0, n)`` cut into blocks of ``block`` rows (the last may be shorter); ``ids``: the blocks used."""

    n: int
    block: int
    ids: np.ndarray  # (n_used_blocks,) int64, ascending

    @classmethod
    def all(cls, n: int, preferred: int) -> RowBlocks:
        block = max(1, min(preferred, math.ceil(n / MIN_BLOCKS)))
        return cls(n, block, np.arange(math.ceil(n / block), dtype=np.int64))

    def size(self, ids: np.ndarray) -> np.ndarray:
        return np.minimum(self.n, (ids + 1) * self.block) - ids * self.block

    @property
    def n_rows(self) -> int:
        return int(self.size(self.ids).sum())

    def split(self, fraction: float, seed: int) -> tuple[RowBlocks, RowBlocks]:
        """(training, validation): a seeded random choice of whole blocks, ``fraction`` of them held out."""
        n_val = max(1, int(round(len(self.ids) * fraction)))
        if n_val >= len(self.ids):
            raise InputError(f"validation_fraction={fraction} leaves no training samples out of {self.n_rows}")
        rng = np.random.default_rng([seed, 0x5EED])
        val = np.sort(rng.choice(self.ids, size=n_val, replace=False))
        train = np.setdiff1d(self.ids, val)
        return RowBlocks(self.n, self.block, train), RowBlocks(self.n, self.block, val)


def epoch_order(seed: int, epoch: int, blocks: RowBlocks, window: int = WINDOW_BLOCKS) -> list[np.ndarray]:
    """The training order of one epoch: one array of row ids per window, in the order they are visited.

    Pure: a function of ``(seed, epoch)`` and the layout only. The blocks are shuffled; every
    ``window`` consecutive blocks form a window whose rows are shuffled together. Each row
    appears exactly once.
    """
    rng = np.random.default_rng([seed, epoch])
    ids = rng.permutation(blocks.ids)
    out = []
    for w, start in enumerate(range(0, len(ids), window)):
        rows = _rows(blocks, np.sort(ids[start : start + window]))  # read in file order
        out.append(rows[np.random.default_rng([seed, epoch, w + 1]).permutation(len(rows))])
    return out


def _rows(blocks: RowBlocks, ids: np.ndarray) -> np.ndarray:
    sizes = blocks.size(ids)
    starts = np.repeat(ids * blocks.block - np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes)
    return starts + np.arange(int(sizes.sum()))


def _runs(rows: np.ndarray) -> list[tuple[int, int, int]]:
    """``rows`` (sorted) as contiguous runs ``(position, start, stop)``: one read per run."""
    cuts = np.flatnonzero(np.diff(rows) != 1) + 1
    bounds = np.concatenate([[0], cuts, [len(rows)]])
    return [(int(a), int(rows[a]), int(rows[b - 1]) + 1) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


class _Stop(Exception):
    pass


class StreamBatches:
    """Batches streamed from a source; see the module's docstring.

    Parameters
    ----------
    source : sources.Source
    convert : callable
        ``convert(raw, row_ids) -> float32`` (the pixel rule and input checks), run in the worker.
    labels : ndarray (n_samples,) int64, optional
        One per row of the source (all rows, not only ``blocks``'), kept in memory.
    blocks : RowBlocks
        The rows this source of batches covers (e.g. the training part of a split).
    shuffle : bool
        False: the blocks in file order, unshuffled (validation, inference).
    rank, world_size : int
        This process's part of every global batch of ``batch_size`` (data-parallel training).
    """

    def __init__(
        self,
        source: object,
        convert: Convert,
        *,
        blocks: RowBlocks,
        batch_size: int,
        seed: int,
        device: torch.device,
        labels: np.ndarray | None = None,
        min_batch: int = 1,
        shuffle: bool = True,
        window: int = WINDOW_BLOCKS,
        depth: int = PREFETCH_DEPTH,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.source, self.convert, self.blocks, self.labels = source, convert, blocks, labels
        self.seed, self.device, self.shuffle, self.window, self.depth = seed, device, shuffle, window, depth
        self.rank, self.world_size = rank, world_size
        self.global_bounds = batch_bounds(blocks.n_rows, batch_size, min_batch * world_size)
        self.global_sizes = [b - a for a, b in self.global_bounds]  # every rank's samples in each step
        self.bounds = [shard(a, b, rank, world_size) for a, b in self.global_bounds]
        self.steps = len(self.bounds)
        self.n = sum(b - a for a, b in self.bounds)
        self.max_ready = 0  # the most batches the worker ever held ready (tests check the memory bound)

    def order(self, epoch: int) -> list[np.ndarray]:
        if self.shuffle:
            return epoch_order(self.seed, epoch, self.blocks, self.window)
        ids = self.blocks.ids
        return [_rows(self.blocks, ids[i : i + self.window]) for i in range(0, len(ids), self.window)]

    def _read(self, rows: np.ndarray) -> np.ndarray:
        """The stored rows ``rows`` (a window's), each contiguous run read as one slice."""
        order = np.argsort(rows, kind="stable")
        parts = [self.source.read(start, stop) for _, start, stop in _runs(rows[order])]  # type: ignore[attr-defined]
        raw = parts[0] if len(parts) == 1 else np.concatenate(parts)
        out = np.empty_like(raw)
        out[order] = raw  # back to the shuffled order
        return out

    def _produce(self, epoch: int, ready: queue.Queue[object], stop: threading.Event) -> None:
        """Worker: read window after window, cut this rank's batches, convert, hand over (blocking at ``depth``)."""
        try:
            carry_rows = np.empty(0, dtype=np.int64)
            carry_raw: np.ndarray | None = None
            base = 0  # the epoch position of carry_rows[0]
            i = 0  # the next global batch
            for window_rows in self.order(epoch):
                raw = self._read(window_rows)
                rows = np.concatenate([carry_rows, window_rows]) if len(carry_rows) else window_rows
                if carry_raw is not None and len(carry_raw):
                    raw = np.concatenate([carry_raw, raw])
                end = base + len(rows)
                while i < self.steps and self.global_bounds[i][1] <= end:
                    a, b = (p - base for p in self.bounds[i])
                    self._put(ready, stop, self._batch(raw[a:b], rows[a:b]))
                    i += 1
                cut = (self.global_bounds[i - 1][1] if i else 0) - base
                carry_rows, carry_raw, base = rows[cut:], raw[cut:], base + cut
            self._put(ready, stop, None)
        except _Stop:
            return
        except BaseException as exc:  # handed to the loop's thread, which raises it
            try:
                self._put(ready, stop, exc)
            except _Stop:
                return

    def _batch(self, raw: np.ndarray, rows: np.ndarray) -> Batch:
        x = torch.from_numpy(np.ascontiguousarray(self.convert(raw, rows)))
        if self.device.type == "cuda":
            x = x.pin_memory()
        if self.labels is None:
            return (x,)
        return (x, torch.from_numpy(self.labels[rows]))

    def _put(self, ready: queue.Queue[object], stop: threading.Event, item: object) -> None:
        while True:
            if stop.is_set():
                raise _Stop
            try:
                ready.put(item, timeout=0.1)
            except queue.Full:
                continue
            self.max_ready = max(self.max_ready, ready.qsize())
            return

    def epoch(self, epoch: int) -> Iterator[Batch]:
        ready: queue.Queue[object] = queue.Queue(maxsize=self.depth)
        stop = threading.Event()
        worker = threading.Thread(target=self._produce, args=(epoch, ready, stop), daemon=True, name="aekit-prefetch")
        worker.start()
        try:
            while True:
                item = ready.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield tuple(t.to(self.device, non_blocking=True) for t in item)  # type: ignore[attr-defined]
        finally:
            stop.set()
            worker.join()
