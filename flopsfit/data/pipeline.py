"""grain pipelines: shuffled, repeated, batched records; each batch a function of (seed, step)."""

import functools
import os

import grain
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
  local = batch_size // process_count
  ds = grain.MapDataset.source(_RecordIndices(source)).shuffle(seed=seed).repeat()
  batches = ds.batch(local, drop_remainder=True)[process_index::process_count]
  return batches.map(functools.partial(read_records, source))


class _RecordIndices:
  """A grain source whose record i is the index i of `source`: grain shuffles, repeats and
  batches indices, and each batch's records are then read in one call (`read_records`).
  Reading them one grain element at a time cost about 0.1 ms of grain's bookkeeping per
  record, more than a tiny model's step spends on it (docs/performance-sweep.md)."""

  def __init__(self, source: contracts.Source):
    self._source = source

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int) -> int:
    return index

  def __repr__(self) -> str:  # grain's checkpoints compare it: the source's own, deterministic
    return f"RecordIndices({self._source!r})"


def read_records(source: contracts.Source, indices) -> dict:
  """The records of `source` at `indices`, stacked into one batch dict."""
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
  ds = grain.MapDataset.source(source)[:num_records].batch(local, drop_remainder=True)
  return [{k: np.asarray(v) for k, v in b.items()} for b in ds[process_index::process_count]]
