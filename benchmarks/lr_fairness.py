"""Is the learning-rate rule fair across sizes? Eval loss at ×0.5, ×1, ×2 the rule's rate.

  python benchmarks/lr_fairness.py [--config=configs/gpt.py] [--budget=3e11] [--json]

For the smallest and the largest size the planner picks at one budget, trains each at the
config's hparam rule's learning rate times each multiplier and prints a table. A fair rule puts
every size's best multiplier at ×1 (or its loss within noise of the best): no size is
systematically under- or over-tuned, so the IsoFLOP valley is not tilted by the rule.
"""

import argparse
import json
import sys
import tempfile


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="configs/gpt.py")
  parser.add_argument("--budget", type=float, default=3e11)
  parser.add_argument("--multipliers", default="0.5,1,2")
  parser.add_argument("--json", action="store_true")
  args = parser.parse_args()
  import importlib.util

  from absl import logging

  from flopsfit.engine import run as run_lib
  from flopsfit.sweep import planner
  from flopsfit.sweep.run_config import run_config

  logging.set_verbosity(logging.WARNING)
  path, _, arg = args.config.partition(":")
  spec = importlib.util.spec_from_file_location("config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(arg or None)
  config.workdir = tempfile.mkdtemp(prefix="lr-fairness-")
  config.sweep.budgets = (args.budget,)
  config.sweep.probe = False
  plan = planner.plan_sweep(config, probe=False)
  runs = sorted(plan["runs"], key=lambda r: r["params"]["non_embedding"])
  rows = []
  for run in (runs[0], runs[-1]):
    for m in (float(x) for x in args.multipliers.split(",")):
      lr_run = {
        **run,
        "learning_rate": run["learning_rate"] * m,
        "run_id": f"{run['run_id']}-lrx{m:g}",
      }
      result = run_lib.train_run(run_config(config, lr_run))
      rows.append(
        {
          "run": run["run_id"],
          "N": run["params"]["non_embedding"],
          "lr_multiplier": m,
          "learning_rate": lr_run["learning_rate"],
          "eval_loss": result["final_eval_loss"],
          "status": result["status"],
        }
      )
  if args.json:
    json.dump(rows, sys.stdout, indent=1)
    print()
    return
  print(f"{'run':<24} {'N':>8} {'lr x':>5} {'lr':>9} {'eval loss':>9}")
  for r in rows:
    loss = "diverged" if r["eval_loss"] is None else f"{r['eval_loss']:.4f}"
    print(
      f"{r['run']:<24} {r['N']:>8,} {r['lr_multiplier']:>5g} {r['learning_rate']:>9.3g} {loss:>9}"
    )


if __name__ == "__main__":
  main()
