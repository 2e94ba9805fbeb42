"""The train pipeline: shuffled, repeated batches of a source, split over processes."""

import grain
import numpy as np

from flopsfit.data import pipeline
from flopsfit.data.synthetic import ZipfMarkovLanguage


def test_batches_are_the_shuffled_records_in_order_whatever_the_processes():
  """Reading a batch's records in one call gives grain's record-by-record batches exactly."""
  source = ZipfMarkovLanguage(seq_len=16).source("train")
  by_record = grain.MapDataset.source(source).shuffle(seed=3).repeat()
  for processes in (1, 2):
    local = by_record.batch(8 // processes, drop_remainder=True)
    for p in range(processes):
      batches = pipeline.train_dataset(
        source, batch_size=8, seed=3, process_index=p, process_count=processes
      )
      for step in (0, 1, 7, 10**6):
        expected = local[step * processes + p]["tokens"]
        assert batches[step]["tokens"].dtype == np.int32
        np.testing.assert_array_equal(batches[step]["tokens"], expected)
  resumed = pipeline.train_iterator(source, batch_size=8, seed=3, start_step=5)
  np.testing.assert_array_equal(next(resumed)["tokens"], by_record.batch(8)[5]["tokens"])


def test_batches_read_in_groups_are_the_same_across_group_boundaries():
  """Records are read READ_RECORDS at a time (32 batches of 8 here) and kept: a stream that
  starts inside a group and crosses two boundaries, read ahead by threads where the process
  has several cores, gives grain's record-by-record batches in order."""
  source = ZipfMarkovLanguage(seq_len=16).source("train")
  by_record = grain.MapDataset.source(source).shuffle(seed=3).repeat().batch(8)
  group = pipeline.READ_RECORDS // 8
  stream = pipeline.train_iterator(source, batch_size=8, seed=3, start_step=group - 3)
  for step in range(group - 3, 3 * group + 2):
    np.testing.assert_array_equal(next(stream)["tokens"], by_record[step]["tokens"])


class _Numbers:
  """A 10-record source: record i is [i]."""

  def __len__(self):
    return 10

  def __getitem__(self, index):
    return {"x": np.array([index], np.int32)}

  def __repr__(self):
    return "Numbers(10)"


def test_every_epoch_is_a_new_permutation_of_the_records_as_grain_shuffles_it():
  source = _Numbers()
  by_record = grain.MapDataset.source(source).shuffle(seed=5).repeat().batch(4)
  batches = pipeline.train_dataset(source, batch_size=4, seed=5)
  stream = np.concatenate([batches[s]["x"][:, 0] for s in range(10)])  # 4 epochs of 10
  epochs = stream.reshape(4, 10)
  assert all(sorted(e) == list(range(10)) for e in epochs)
  assert len({tuple(e) for e in epochs}) == 4  # each epoch reshuffled
  for s in range(10):
    np.testing.assert_array_equal(batches[s]["x"], by_record[s]["x"])


def test_eval_batches_are_the_first_records_in_order_split_over_processes():
  source = _Numbers()
  whole = pipeline.eval_batches(source, num_records=8, batch_size=4)
  assert [b["x"][:, 0].tolist() for b in whole] == [[0, 1, 2, 3], [4, 5, 6, 7]]
  halves = [
    pipeline.eval_batches(source, num_records=8, batch_size=4, process_index=p, process_count=2)
    for p in (0, 1)
  ]
  assert [[b["x"][:, 0].tolist() for b in h] for h in halves] == [
    [[0, 1], [4, 5]],
    [[2, 3], [6, 7]],
  ]
