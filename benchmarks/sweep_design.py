"""The IsoFLOP design against the cooldown design at equal total FLOPs, on the synthetic language.

Run:  python benchmarks/sweep_design.py                          (tiny GPTs, seq 32, budgets
                                                                   3e9 to 1e11: about 5 minutes
                                                                   on 2 quiet CPU cores)
      python benchmarks/sweep_design.py --budgets=3e9,1e10,3e10 --workdir=/tmp/designs  (faster)
      python benchmarks/sweep_design.py --seeds=0,1   (every shape twice: noise, ~11 minutes)

Both designs are planned from the same config (configs/gpt.py with tiny sizes). The cooldown
design's budgets are then scaled by one factor so that it spends the IsoFLOP design's total
FLOPs (trunks once plus every cooldown, sweep.json `design.total_flops`), re-planned, trained
(`--parallel` workers) and analyzed like the IsoFLOP sweep. The table: points fitted, FLOPs
spent, wall time of training (sweep_summary.json), Approach 3's E, alpha, beta and N_opt
exponent a, Approach 2's N_opt exponent, each with the width of its bootstrap interval
(docs/sweep-design.md has a measured table).
"""

import argparse
import importlib.util
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from flopsfit.analysis import pipeline  # noqa: E402
from flopsfit.analysis.options import AnalysisOptions  # noqa: E402
from flopsfit.sweep import planner, runner  # noqa: E402


def tiny_config(workdir: str, budgets: tuple, design: str, seeds: tuple = (0,)):
  spec = importlib.util.spec_from_file_location("gpt", os.path.join(ROOT, "configs", "gpt.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config("size=tiny")
  config.workdir = workdir
  config.seq_len = 32
  config.eval.tokens = 2**13
  config.eval.batch_size = 64
  config.train.log_every = 50
  config.sweep.budgets = budgets
  config.sweep.shapes_per_budget = 4
  config.sweep.decades = 1.0
  config.sweep.tokens_per_param = 100.0
  config.sweep.min_steps = 50
  config.sweep.probe = False
  config.sweep.design = design
  config.sweep.seeds = seeds
  config.sweep.cooldown_fraction = 0.2
  config.hparams.kwargs.batch_size = 16
  config.checkpoint.every_seconds = 0.0
  return config


def run_design(config, parallel: str, samples: int) -> dict:
  """Plans, trains and analyzes one design; its row of the table."""
  plan = planner.load_or_plan(config, probe=False)
  outcome = runner.train_sweep(config, parallel=parallel)
  laws = pipeline.analyze_workdir(config.workdir, AnalysisOptions(bootstrap_samples=samples))
  return {
    "design": plan["design"]["name"],
    "budgets": ",".join(f"{b:.3g}" for b in config.sweep.budgets),
    "points": len(laws["runs"]),
    "flops": plan["design"]["total_flops"],
    "seconds": (outcome.summary or {}).get("wall_seconds", 0.0),  # the train call
    "laws": laws,
  }


def _estimate(section: dict | None, *path: str) -> str:
  """'value [width]' of a fitted quantity and its bootstrap interval."""
  node = section
  for p in path:
    node = (node or {}).get(p)
  if not node or node.get("value") is None:
    return "failed"
  width = "" if node.get("lo") is None else f" ±{(node['hi'] - node['lo']) / 2:.3g}"
  return f"{node['value']:.3g}{width}"


def table(rows: list[dict]) -> str:
  head = (
    f"{'design':<9} {'budgets':<18} {'points':>6} {'FLOPs':>9} {'time':>6}  {'E':<14} "
    f"{'alpha':<14} {'beta':<14} {'a (A3)':<14} {'a (A2)':<14}"
  )
  lines = [head, "-" * len(head)]
  for r in rows:
    laws = r["laws"]
    a3 = laws.get("approach3") if laws.get("approach3", {}).get("status") == "ok" else None
    a2 = laws.get("approach2") if laws.get("approach2", {}).get("status") == "ok" else None
    lines.append(
      f"{r['design']:<9} {r['budgets']:<18} {r['points']:>6} {r['flops']:>9.3g} "
      f"{r['seconds']:>5.0f}s  {_estimate(a3, 'params', 'E'):<14} "
      f"{_estimate(a3, 'params', 'alpha'):<14} {_estimate(a3, 'params', 'beta'):<14} "
      f"{_estimate(a3, 'N_opt', 'exponent'):<14} {_estimate(a2, 'N_opt', 'exponent'):<14}"
    )
  lines.append("(value ±half the width of the 95% bootstrap interval; a: N_opt ∝ C^a)")
  return "\n".join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--budgets", default="3e9,1e10,3e10,1e11")
  parser.add_argument("--workdir", default="")
  parser.add_argument("--parallel", default="auto")
  parser.add_argument("--bootstrap_samples", type=int, default=200)
  parser.add_argument("--seeds", default="0", help="sweep.seeds of both designs, e.g. 0,1")
  args = parser.parse_args()
  budgets = tuple(float(b) for b in args.budgets.split(","))
  seeds = tuple(int(s) for s in args.seeds.split(","))
  if args.workdir and os.path.exists(args.workdir) and os.listdir(args.workdir):
    sys.exit(f"--workdir: {args.workdir} is not empty; the designs must be planned afresh")
  root = args.workdir or tempfile.mkdtemp(prefix="sweep-design-")
  iso = tiny_config(os.path.join(root, "isoflop"), budgets, "isoflop", seeds)
  rows = [run_design(iso, args.parallel, args.bootstrap_samples)]
  probe = tiny_config(os.path.join(root, "cooldown-probe"), budgets, "cooldown", seeds)
  scale = rows[0]["flops"] / planner.plan_sweep(probe, probe=False)["design"]["total_flops"]
  scaled = tuple(float(f"{b * scale:.3g}") for b in budgets)
  cool = tiny_config(os.path.join(root, "cooldown"), scaled, "cooldown", seeds)
  rows.append(run_design(cool, args.parallel, args.bootstrap_samples))
  print(table(rows))
  for r in rows:
    noise, boot = r["laws"].get("noise"), r["laws"]["bootstrap"]
    if noise:
      print(
        f"{r['design']}: run-to-run noise std {noise['pooled_std']:.3g} nats "
        f"({noise['dof']} dof); bootstrap unit: {boot['unit']}"
      )
  print(f"workdirs under {root}; cooldown budgets scaled by {scale:.3g} to equal total FLOPs")


if __name__ == "__main__":
  main()
