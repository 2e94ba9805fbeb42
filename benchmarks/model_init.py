"""What a run pays to initialise its train state, per new model width, in a packed worker.

  python benchmarks/model_init.py [--baseline=17532c4] [--rounds=2]

Each variant runs in a fresh child process pinned to one core (as a packed sweep's worker, no
compilation cache), which initialises the default sweep's GPT (configs/gpt.py) at three widths
in turn with the engine's `placed_init` and times each: a new width is what a worker meets
at most of its runs. The baseline (extracted with `git archive`) initialised eagerly, one
optimising XLA compile per parameter shape; this checkout compiles the whole init once without
backend optimisation. The variants alternate, one per round each; the table gives the median
seconds per width. About a minute per round.
"""

import argparse
import json
import os
import statistics
import sys
import time

import baseline as baseline_lib  # benchmarks/baseline.py, beside this script

SHAPES = ((16, 1), (32, 2), (48, 3))


def child() -> dict:
  """Seconds to initialise the state at each of SHAPES, one after the other, in this process."""
  os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false"  # as a one-core worker
  import jax
  import numpy as np

  # configs/ from this checkout; flopsfit itself from PYTHONPATH (the variant being timed)
  sys.path.append(baseline_lib.REPO)
  from configs import gpt
  from flopsfit import plugins as plugins_lib
  from flopsfit.engine import mesh as mesh_lib
  from flopsfit.engine import optim as optim_lib
  from flopsfit.engine import sharding as sharding_lib
  from flopsfit.engine import step as step_lib

  config = gpt.get_config()
  plugins = plugins_lib.load(config)
  mesh = mesh_lib.data_mesh(jax.devices()[:1])
  seconds = {}
  for d_model, n_layers in SHAPES:
    shape = {"d_model": d_model, "n_layers": n_layers}
    init = step_lib.init_fn(
      lambda: plugins.model(shape, 0), optim_lib.adamw_direction(config.optim)
    )
    placed = step_lib.placed_init(init, sharding_lib.state_shardings(jax.eval_shape(init, 0), mesh))
    start = time.perf_counter()
    jax.block_until_ready(placed(np.int32(1000)))
    seconds[f"d{d_model}-L{n_layers}"] = time.perf_counter() - start
  return seconds


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--baseline", default="17532c4", help="git ref to compare with")
  parser.add_argument("--rounds", type=int, default=2)
  parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    print(json.dumps(child()))
    return
  with baseline_lib.extracted(args.baseline) as baseline:
    variants = {f"before ({args.baseline})": baseline, "now": baseline_lib.REPO}
    results = baseline_lib.alternate(
      variants, args.rounds, lambda path: baseline_lib.run_one_core_child(__file__, path)
    )
  widths = list(results["now"][0])
  print(f"one core, fresh process, no compilation cache; median of {args.rounds} rounds")
  print(f"{'variant':<20} | " + " | ".join(f"{w:>8}" for w in widths) + " | seconds per width")
  for name, rows in results.items():
    cells = [statistics.median(r[w] for r in rows) for w in widths]
    print(f"{name:<20} | " + " | ".join(f"{c:>7.2f}s" for c in cells))


if __name__ == "__main__":
  main()
