"""Held-out check: fit without the largest budget, then predict that budget's runs.

Approach 3 predicts the loss of each held-out run from its N and D; Approaches 1, 2 and 3 predict
N_opt and D_opt at the held-out budget's mean C, compared with the minimum of that budget's own
Approach 2 parabola when that curve has an interior minimum. Relative error = predicted / observed
- 1. No bootstrap here.
"""

from typing import Any

import numpy as np

from flopsfit.analysis import approach1, approach2, approach3, frontier
from flopsfit.analysis.errors import FitError
from flopsfit.analysis.results import RunTable


def check(table: RunTable, full_approach2: dict[str, Any] | None, delta: float) -> dict[str, Any]:
  """The held-out report; FitError if there are fewer than 2 budgets."""
  if table.num_groups < 2:
    raise FitError(f"the held-out check needs at least 2 budgets; found {table.num_groups}")
  last = table.num_groups - 1
  held = table.group == last
  train = table.subset(~held)
  c_held = float(table.group_mean_C()[last])
  out: dict[str, Any] = {
    "budget": float(table.budgets[last]),
    "C_mean": c_held,
    "num_runs": int(held.sum()),
    "fitted_on_runs": int(train.size),
  }

  observed = {}
  if full_approach2 is not None:
    entry = full_approach2["budgets"][last]
    if entry["included"]:
      observed = {"N_opt": entry["fit_N"]["N_opt"], "D_opt": entry["fit_D"]["D_opt"]}
  out["observed_optimum"] = observed or None

  for name, module in (("approach1", approach1), ("approach2", approach2)):
    try:
      fit = module.fit(train)
      predicted = {
        k: fit[k]["coefficient"] * c_held ** fit[k]["exponent"] for k in ("N_opt", "D_opt")
      }
      out[name] = _compare(predicted, observed)
    except FitError as e:
      out[name] = {"error": str(e)}
  try:
    out["approach3"] = _approach3(table, held, train, c_held, delta, observed)
  except FitError as e:
    out["approach3"] = {"error": str(e)}
  return out


def _compare(predicted: dict[str, float], observed: dict[str, float]) -> dict[str, Any]:
  """`<k>_predicted` and `<k>_rel_error` (None without an observed value) for each k."""
  row = {f"{k}_predicted": float(v) for k, v in predicted.items()}
  for k, v in predicted.items():
    row[f"{k}_rel_error"] = float(v / observed[k] - 1) if k in observed else None
  return row


def _approach3(table, held, train, c_held: float, delta: float, observed) -> dict[str, Any]:
  """Approach 3 fitted on `train`: each held-out run's loss, and N_opt, D_opt at c_held."""
  approach3.check_enough(train.N, train.D)
  fit = approach3.fit_grid(approach3.Data.from_arrays(train.N, train.D, train.loss), delta)
  predicted = approach3.predict_loss(fit.theta, table.N[held], table.D[held])
  rel = predicted / table.loss[held] - 1
  opt = frontier.optimum(fit.theta[None], np.array([c_held]), frontier.FlopModel.fit(table))
  return {
    **_compare({"N_opt": opt["N_opt"][0, 0], "D_opt": opt["D_opt"][0, 0]}, observed),
    "params": approach3.named(fit.theta),
    "runs": [
      {
        "run_id": str(r),
        "N": float(n),
        "D": float(d),
        "loss": float(l),
        "predicted": float(p),
        "rel_error": float(e),
      }
      for r, n, d, l, p, e in zip(
        table.run_id[held], table.N[held], table.D[held], table.loss[held], predicted, rel
      )
    ],
    "mean_abs_rel_error": float(np.mean(np.abs(rel))),
    "max_abs_rel_error": float(np.max(np.abs(rel))),
    "best_loss_predicted": float(opt["loss"][0, 0]),
    "best_loss_observed": float(table.loss[held].min()),
  }
