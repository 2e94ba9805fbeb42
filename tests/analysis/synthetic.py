"""Runs drawn from known laws L = E + A/N^α + B/D^β on IsoFLOP grids like the planner's."""

import dataclasses
import os

import numpy as np

from flopsfit import workdir as workdir_lib
from flopsfit.analysis import results


@dataclasses.dataclass(frozen=True)
class Law:
  E: float
  A: float
  B: float
  alpha: float
  beta: float

  @property
  def a(self) -> float:
    return self.beta / (self.alpha + self.beta)

  @property
  def b(self) -> float:
    return self.alpha / (self.alpha + self.beta)

  def loss(self, N, D):
    return self.E + self.A / np.power(N, self.alpha) + self.B / np.power(D, self.beta)

  def n_opt(self, C):
    g = (self.alpha * self.A / (self.beta * self.B)) ** (1 / (self.alpha + self.beta))
    return g * (np.asarray(C) / 6) ** self.a


EQUAL = Law(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.34)  # α = β
UNEQUAL = Law(E=1.8, A=250.0, B=2000.0, alpha=0.30, beta=0.40)  # α ≠ β: a = 0.571
BUDGETS = (1e17, 3e17, 1e18, 3e18, 1e19)


def isoflop_runs(
  law: Law, budgets=BUDGETS, sizes: int = 9, span: float = 6.0, noise: float = 0.004, seed: int = 0
) -> dict[str, np.ndarray]:
  """Per budget, `sizes` models log-spaced over [N*/span, N*·span] around a planner's guess N*
  (the true optimum off by a factor up to 1.3), trained on D = C/(6N); loss with log-normal
  noise."""
  rng = np.random.default_rng(seed)
  rows = {"N": [], "D": [], "C": [], "budget": []}
  for c in budgets:
    guess = law.n_opt(c) * np.exp(rng.uniform(-0.25, 0.25))
    n = guess * np.logspace(-np.log10(span), np.log10(span), sizes)
    rows["N"].append(n)
    rows["D"].append(c / (6 * n))
    rows["C"].append(np.full(sizes, c))
    rows["budget"].append(np.full(sizes, c))
  out = {k: np.concatenate(v) for k, v in rows.items()}
  out["loss"] = law.loss(out["N"], out["D"]) * np.exp(noise * rng.standard_normal(out["N"].size))
  return out


def table(runs: dict[str, np.ndarray], options=None) -> results.RunTable:
  """The runs as a RunTable grouped by their budgets."""
  budgets, group = np.unique(runs["budget"], return_inverse=True)
  return results.RunTable(
    run_id=np.array([f"r{i}" for i in range(runs["N"].size)], dtype=object),
    N=runs["N"],
    D=runs["D"],
    C=runs["C"],
    loss=runs["loss"],
    group=group.reshape(-1),
    budgets=budgets,
    excluded=[],
    conventions={"flops": "6ND_total", "params": "total", "data": "tokens"},
    source={"kind": "test", "budgets_given": True, "budgets_from": "test"},
  )


def write_workdir(workdir: str, runs: dict[str, np.ndarray], embedding: int = 1000) -> list[str]:
  """Writes runs/<id>/result.json as the trainer does (N is the non-embedding count)."""
  ids = []
  for i in range(runs["N"].size):
    n, d, c = float(runs["N"][i]), float(runs["D"][i]), float(runs["budget"][i])
    run_id = f"c{c:.3g}-n{i}-s0"
    total = n + embedding
    result = {
      "run_id": run_id,
      "status": "completed",
      "error": None,
      "budget_flops": c,
      "steps": 100,
      "tokens": d,
      "seed": 0,
      "params": {"total": total, "non_embedding": n, "embedding": embedding, "matmul_active": n},
      "flops": {
        "xla": 6.3 * n * d,
        "6ND_total": 6 * total * d,
        "6ND_non_embedding": 6 * n * d,
        "attention_inclusive": 6.1 * n * d,
      },
      "final_eval_loss": float(runs["loss"][i]),
    }
    workdir_lib.write_json_atomic(
      os.path.join(workdir_lib.run_dir(workdir, run_id), "result.json"), result
    )
    ids.append(run_id)
  return ids
