"""What a sweep's input pipeline costs per step, beside the step it feeds.

  python benchmarks/input_pipeline.py [--batches=1000] [--batch_size=16]

On one core (as a packed sweep's worker), times the batches of the default sweep's data (the
synthetic language, seq 64) in three ways: grain reading one element per record (the shuffled,
repeated source batched by grain: the engine's pipeline before it read a batch's records in one
call), the engine's pipeline (`flopsfit.data.pipeline.train_iterator`), and the bare records
(the dataset's own cost, no pipeline). Both pipelines give the same batches
(tests/test_pipeline.py). Compare with the d16-L1 step of `benchmarks/tiny_step.py` (about
2-2.5 ms on this machine).
"""

import argparse
import os
import time


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batches", type=int, default=1000)
  parser.add_argument("--batch_size", type=int, default=16)
  args = parser.parse_args()
  os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as a packed worker
  import grain

  from flopsfit.data import pipeline
  from flopsfit.data.synthetic import ZipfMarkovLanguage

  source = ZipfMarkovLanguage(seq_len=64).source("train")
  by_record = grain.MapDataset.source(source).shuffle(seed=0).repeat()
  by_record = by_record.batch(args.batch_size, drop_remainder=True)
  variants = {
    "grain, one element per record, 2 read-ahead threads": iter(
      by_record.to_iter_dataset(grain.ReadOptions(num_threads=2, prefetch_buffer_size=8))
    ),
    "grain, one element per record, no threads": iter(
      by_record.to_iter_dataset(grain.ReadOptions(num_threads=0, prefetch_buffer_size=0))
    ),
    "flopsfit's pipeline (records read per batch; no threads on one core)": (
      pipeline.train_iterator(source, batch_size=args.batch_size, seed=0)
    ),
  }
  print(f"one core, batch {args.batch_size} × 64 tokens, {args.batches} batches each")
  print(f"{'pipeline':<72} {'ms/batch':>9}")
  for name, batches in variants.items():
    next(batches)
    start = time.perf_counter()
    for _ in range(args.batches):
      next(batches)
    print(f"{name:<72} {1e3 * (time.perf_counter() - start) / args.batches:>9.3f}")
  start = time.perf_counter()
  for i in range(args.batches * args.batch_size):
    source[i]
  records = 1e3 * (time.perf_counter() - start) / args.batches
  print(f"{'the records alone (the dataset, no pipeline)':<72} {records:>9.3f}")


if __name__ == "__main__":
  main()
