"""Small workdirs and analyses to plot: runs from a known law, with metrics.jsonl curves, an
unfinished run (a truncated last line), a diverged run and a budget Approach 2 must leave out."""

import json
import os

import numpy as np

from flopsfit import analysis
from flopsfit import workdir as workdir_lib
from tests.analysis import synthetic

LAW = synthetic.UNEQUAL
BUDGETS = (1e17, 3e17, 1e18, 3e18, 1e19)
SKEWED_BUDGET = 2e17  # every size is above the optimum: lowest loss at the edge, left out
LOG_STEPS = 12
LOSS_FLOOR = 1.75  # the data's entropy, as the synthetic language reports it


def runs(seed: int = 0) -> dict[str, np.ndarray]:
  """Seven sizes per budget around the optimum, plus the skewed budget's four."""
  base = synthetic.isoflop_runs(LAW, BUDGETS, sizes=7, seed=seed)
  n = LAW.n_opt(SKEWED_BUDGET) * np.geomspace(3.0, 20.0, 4)
  d = SKEWED_BUDGET / (6 * n)
  extra = {
    "N": n,
    "D": d,
    "C": np.full(4, SKEWED_BUDGET),
    "budget": np.full(4, SKEWED_BUDGET),
    "loss": LAW.loss(n, d),
  }
  return {k: np.concatenate([base[k], extra[k]]) for k in base}


def write_workdir(workdir: str, seed: int = 0) -> list[str]:
  """result.json and metrics.jsonl for every run, an unfinished and a diverged run."""
  r = runs(seed)
  ids = synthetic.write_workdir(workdir, r)
  for i, run_id in enumerate(ids):
    write_metrics(workdir, run_id, float(r["N"][i]), float(r["D"][i]))
    path = os.path.join(workdir_lib.run_dir(workdir, run_id), "result.json")
    workdir_lib.write_json_atomic(path, dict(workdir_lib.read_json(path), loss_floor=LOSS_FLOOR))
  # Unfinished: metrics only, the last line cut mid-write.
  write_metrics(workdir, "unfinished-s0", 5e7, 4e8, steps=LOG_STEPS // 2, truncate=True)
  # Diverged: a result with that status and a curve that blows up.
  diverged = dict(
    workdir_lib.read_json(os.path.join(workdir_lib.run_dir(workdir, ids[0]), "result.json")),
    run_id="diverged-s0",
    status="diverged",
    final_eval_loss=None,
  )
  workdir_lib.write_json_atomic(
    os.path.join(workdir_lib.run_dir(workdir, "diverged-s0"), "result.json"), diverged
  )
  write_metrics(workdir, "diverged-s0", 3e7, 5e8, diverge=True)
  return ids


def write_metrics(
  workdir: str,
  run_id: str,
  n: float,
  d: float,
  steps: int = LOG_STEPS,
  truncate: bool = False,
  diverge: bool = False,
) -> None:
  """metrics.jsonl like the trainer's: loss falling along L(N, tokens so far) plus a bump."""
  path = os.path.join(workdir_lib.run_dir(workdir, run_id), "metrics.jsonl")
  os.makedirs(os.path.dirname(path), exist_ok=True)
  lines = []
  for k in range(1, steps + 1):
    tokens = d * k / LOG_STEPS
    loss = float(LAW.loss(n, tokens) * (1 + 0.05 / k))
    if diverge and k > steps // 2:
      loss = float("nan")
    lines.append(
      json.dumps(
        {
          "step": 100 * k,
          "tokens": tokens,
          "flops": 6.3 * n * tokens,
          "loss": loss,
          "accuracy": 0.3,
          "learning_rate": 1e-3,
          "grad_norm": 0.5,
          "tokens_per_s": 1e5,
          "flops_per_s": 1e12,
          "mfu": 0.4,
          "elapsed_s": float(k),
        }
      )
    )
  text = "\n".join(lines) + "\n"
  if truncate:
    text += lines[-1][: len(lines[-1]) // 2]
  with open(path, "w") as f:
    f.write(text)


def analyze_workdir(workdir: str, samples: int = 16) -> dict:
  return analysis.analyze_workdir(workdir, analysis.AnalysisOptions(bootstrap_samples=samples))


def write_csv(path: str, seed: int = 1) -> str:
  """External results: N, D, loss of the same kind of sweep, without budgets or run ids."""
  r = synthetic.isoflop_runs(LAW, BUDGETS, sizes=7, seed=seed)
  with open(path, "w") as f:
    f.write("N,D,loss\n")
    for n, d, l in zip(r["N"], r["D"], r["loss"]):
      f.write(f"{float(n)!r},{float(d)!r},{float(l)!r}\n")
  return path


def analyze_csv(path: str, samples: int = 16) -> dict:
  return analysis.analyze_csv(path, analysis.AnalysisOptions(bootstrap_samples=samples))
