"""What a sweep's input pipeline costs per step, beside the step it feeds.

  python benchmarks/input_pipeline.py [--baseline=17532c4] [--rounds=3] [--batches=1000]

On one core (as a packed sweep's worker), times batches of the default sweep's data (the
synthetic language, seq 64, batch 16; the best of 5 blocks) through
`flopsfit.data.pipeline.train_iterator` of a baseline commit and of this checkout, in
alternating child processes (the baseline extracted with `git archive`), and the records alone
(the windows drawn by the dataset, no pipeline, as many per call as the pipeline reads: one
batch before `READ_RECORDS`, 256 windows since) in each. Both give the same batches
(tests/test_pipeline.py and the pinned windows of tests/test_synthetic.py). 17532c4: grain
batched record indices one element at a time and each window walked its chain alone. Compare
with the d16-L1 step of `benchmarks/tiny_step.py` (about 2-2.5 ms on this machine).
"""

import argparse
import json
import statistics
import time

import baseline as baseline_lib  # benchmarks/baseline.py, beside this script

BATCH = 16


def child(batches: int) -> dict:
  """ms per batch of the pipeline and of the records alone, in this process (one core): the
  best of 5 alternating blocks of each."""
  from flopsfit.data import pipeline
  from flopsfit.data.synthetic import ZipfMarkovLanguage

  source = ZipfMarkovLanguage(seq_len=64).source("train")
  stream = pipeline.train_iterator(source, batch_size=BATCH, seed=0)
  next(stream)
  read = getattr(source, "__getitems__", None) or (lambda ids: [source[i] for i in ids])
  group = getattr(pipeline, "READ_RECORDS", BATCH) // BATCH  # batches read in one call
  block = max(group, batches // 5 // group * group)
  best = {"pipeline": float("inf"), "records": float("inf")}
  for b in range(5):
    start = time.perf_counter()
    for _ in range(block):
      next(stream)
    best["pipeline"] = min(best["pipeline"], (time.perf_counter() - start) / block)
    start = time.perf_counter()
    for i in range(0, block, group):
      first = 10**12 + (b * block + i) * BATCH  # record indices as large as a shuffle gives
      read(range(first, first + group * BATCH))
    best["records"] = min(best["records"], (time.perf_counter() - start) / block)
  return {name: 1e3 * seconds for name, seconds in best.items()}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--baseline", default="17532c4", help="git ref to compare with")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--batches", type=int, default=1000)
  parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    print(json.dumps(child(args.batches)))
    return
  with baseline_lib.extracted(args.baseline) as baseline:
    variants = {f"before ({args.baseline})": baseline, "now": baseline_lib.REPO}
    results = baseline_lib.alternate(
      variants,
      args.rounds,
      lambda path: baseline_lib.run_one_core_child(
        __file__, path, ["--batches", str(args.batches)]
      ),
    )
  print(
    f"one core, batch {BATCH} × 64 tokens, {args.batches} batches; median of {args.rounds} "
    "rounds (alternating processes)"
  )
  print(f"{'variant':<20} | {'pipeline ms/batch':>17} | {'records alone ms/batch':>22}")
  for name, rows in results.items():
    pipe = statistics.median(r["pipeline"] for r in rows)
    records = statistics.median(r["records"] for r in rows)
    print(f"{name:<20} | {pipe:>17.3f} | {records:>22.3f}")


if __name__ == "__main__":
  main()
