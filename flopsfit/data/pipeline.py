"""grain pipelines: shuffled, repeated, batched records; each batch a function of (seed, step)."""

import functools
import os
import sys

import grain
import grain.experimental
import numpy as np

from flopsfit import contracts


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
  return grain.MapDataset.source(indices).map(functools.partial(read_records, source))


class _BatchIndices:
  """A grain source whose element s is the record indices of this process's slice of global
  batch s: the same records, in the same order, as grain's `shuffle(seed).repeat()` batched
  (each epoch permuted by `index_shuffle` with seed + epoch), computed a batch at a time.
  grain's own per-element path (its layers' statistics and metrics for every record) took 38%
  of the pipeline's time in a profile (docs/performance-sweep.md#the-input-pipeline)."""

  def __init__(
    self,
    source: contracts.Source,
    batch_size: int,
    seed: int,
    process_index: int,
    process_count: int,
  ):
    self._records = len(source)
    self._batch, self._local = batch_size, batch_size // process_count
    self._first = process_index * self._local
    self._seed = seed
    self._repr = f"BatchIndices({source!r}, {batch_size}, {seed}, {process_index}, {process_count})"

  def __len__(self) -> int:
    return sys.maxsize // self._batch

  def __getitem__(self, step: int) -> np.ndarray:
    start = step * self._batch + self._first
    out = np.empty(self._local, np.int64)
    for row, position in enumerate(range(start, start + self._local)):
      epoch, index = divmod(position, self._records)
      out[row] = grain.experimental.index_shuffle(
        index, max_index=self._records - 1, seed=(self._seed + epoch) % 2**32, rounds=4
      )
    return out

  def __repr__(self) -> str:  # grain's checkpoints compare it: the source's own, deterministic
    return self._repr


def read_records(source: contracts.Source, indices) -> dict:
  """The records of `source` at `indices`, stacked into one batch dict (in one call to the
  source's `__getitems__` where it has one, grain's batch-read protocol)."""
  if hasattr(source, "__getitems__"):
    records = source.__getitems__([int(i) for i in indices])
  else:
    records = [source[int(i)] for i in indices]
  return {key: np.stack([r[key] for r in records]) for key in records[0]}


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
  return [read_records(source, range(first, first + local)) for first in starts]
