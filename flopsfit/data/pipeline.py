"""grain pipelines: shuffled, repeated, batched records; each batch a function of (seed, step)."""

import os
import sys
import threading

import grain
import grain.experimental
import numpy as np

from flopsfit import contracts

# Records read per call to the source: batches of a small batch size are read several at a
# time (the synthetic language draws 256 windows ~3.5x faster per window than 16:
# docs/performance-sweep.md#the-input-pipeline).
READ_RECORDS = 256


def train_dataset(
  source: contracts.Source,
  *,
  batch_size: int,
  seed: int,
  process_index: int = 0,
  process_count: int = 1,
) -> grain.MapDataset:
  """Random-access batches of this process: element `s` is its slice of global batch `s`.

  Global batch s holds records s·B .. (s+1)·B - 1 of the shuffled, repeated stream (each
  epoch reshuffled); process p holds rows p·B/P .. (p+1)·B/P - 1 of it.
  """
  if batch_size % process_count:
    raise ValueError(
      f"train batch_size: {batch_size} is not divisible by {process_count} processes"
    )
  indices = _BatchIndices(source, batch_size, seed, process_index, process_count)
  return grain.MapDataset.source(_Batches(source, indices))


class _BatchIndices:
  """The record indices of this process's slices of global batches: the same records, in the
  same order, as grain's `shuffle(seed).repeat()` batched (each epoch permuted by
  `index_shuffle` with seed + epoch), computed a batch at a time. grain's own per-element
  path (its layers' statistics and metrics for every record) took 38% of the pipeline's time
  in a profile (docs/performance-sweep.md#the-input-pipeline)."""

  def __init__(
    self,
    source: contracts.Source,
    batch_size: int,
    seed: int,
    process_index: int,
    process_count: int,
  ):
    self._records = len(source)
    self._batch, self.local = batch_size, batch_size // process_count
    self._first = process_index * self.local
    self._seed = seed
    self._repr = f"BatchIndices({source!r}, {batch_size}, {seed}, {process_index}, {process_count})"

  def __len__(self) -> int:
    return sys.maxsize // self._batch

  def steps(self, first: int, count: int) -> np.ndarray:
    """int64[count, local batch]: the record indices of batches first .. first + count - 1."""
    out = np.empty((count, self.local), np.int64)
    for step in range(first, first + count):
      start = step * self._batch + self._first
      for row, position in enumerate(range(start, start + self.local)):
        epoch, index = divmod(position, self._records)
        out[step - first, row] = grain.experimental.index_shuffle(
          index, max_index=self._records - 1, seed=(self._seed + epoch) % 2**32, rounds=4
        )
    return out

  def __repr__(self) -> str:
    return self._repr


class _Batches:
  """A grain source whose element s is this process's slice of global batch s. The records of
  several consecutive batches (`READ_RECORDS` in all) are read in one call to the source and
  kept until the batches after them are read; threads reading ahead share them."""

  def __init__(self, source: contracts.Source, indices: _BatchIndices):
    self._source, self._indices = source, indices
    self._group = max(1, READ_RECORDS // indices.local)
    self._read: dict[int, list[dict]] = {}  # first step of a group -> its batches
    self._lock = threading.Lock()

  def __len__(self) -> int:
    return len(self._indices)

  def __getitem__(self, step: int) -> dict:
    first = step - step % self._group
    with self._lock:
      if first not in self._read:
        batches = read_batches(self._source, self._indices.steps(first, self._group))
        self._read = {f: b for f, b in self._read.items() if f == first - self._group}
        self._read[first] = batches
      return self._read[first][step - first]

  def __repr__(self) -> str:  # grain's checkpoints compare it: the source's own, deterministic
    return repr(self._indices)


def read_records(source: contracts.Source, indices) -> dict:
  """The records of `source` at `indices`, stacked into one batch dict (in one call to the
  source's `__getitems__` where it has one, grain's batch-read protocol)."""
  if hasattr(source, "__getitems__"):
    records = source.__getitems__([int(i) for i in indices])
  else:
    records = [source[int(i)] for i in indices]
  return {key: np.stack([r[key] for r in records]) for key in records[0]}


def read_batches(source: contracts.Source, indices) -> list[dict]:
  """Batches of records, `indices` int[batches, batch size], read in one call to the source."""
  indices = np.asarray(indices)
  records = read_records(source, indices.reshape(-1))
  rows = indices.shape[1]
  return [
    {k: v[i * rows : (i + 1) * rows] for k, v in records.items()} for i in range(len(indices))
  ]


def train_iterator(
  source: contracts.Source,
  *,
  batch_size: int,
  seed: int,
  start_step: int = 0,
  process_index: int = 0,
  process_count: int = 1,
  prefetch: int = 4,
):
  """A grain iterator over this process's batches from `start_step` on (read ahead in two
  threads when the process has more than one core)."""
  ds = train_dataset(
    source,
    batch_size=batch_size,
    seed=seed,
    process_index=process_index,
    process_count=process_count,
  )
  # One core (a packed sweep's worker): batches are read when asked for; read-ahead threads
  # would only take turns with the step on that core.
  cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  threads = 2 if (cores or 1) > 1 else 0
  read_ahead = 2 * prefetch if threads else 0
  options = grain.ReadOptions(num_threads=threads, prefetch_buffer_size=read_ahead)
  return iter(ds[start_step:].to_iter_dataset(options))


def eval_batches(
  source: contracts.Source,
  *,
  num_records: int,
  batch_size: int,
  process_index: int = 0,
  process_count: int = 1,
) -> list[dict]:
  """The first `num_records` eval records in order, as this process's slices of global batches."""
  if num_records > len(source):
    raise ValueError(
      f"eval tokens: need {num_records} eval records, the eval split has {len(source)}"
    )
  local = batch_size // process_count
  starts = range(process_index * local, num_records - local + 1, batch_size)
  indices = np.array([range(first, first + local) for first in starts], np.int64).reshape(-1, local)
  group = max(1, READ_RECORDS // local)
  return [
    b for g in range(0, len(indices), group) for b in read_batches(source, indices[g : g + group])
  ]
