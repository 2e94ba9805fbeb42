"""grain pipelines: shuffled, repeated, batched records; each batch a function of (seed, step)."""

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
  ds = grain.MapDataset.source(source).shuffle(seed=seed).repeat()
  return ds.batch(local, drop_remainder=True)[process_index::process_count]


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
  """A grain iterator over this process's batches from `start_step` on, read ahead in threads."""
  ds = train_dataset(
    source,
    batch_size=batch_size,
    seed=seed,
    process_index=process_index,
    process_count=process_count,
  )
  options = grain.ReadOptions(num_threads=2, prefetch_buffer_size=prefetch * 2)
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
