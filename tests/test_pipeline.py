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
