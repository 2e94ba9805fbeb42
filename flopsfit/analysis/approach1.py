"""Chinchilla Approach 1: the lower envelope of final loss over compute, and power laws for the
N and D of the runs on it.

Only final losses exist (a run's intermediate losses belong to an unfinished schedule), so the
envelope is taken over budgets: the lowest-loss run of each budget, kept if its loss is below that
of every smaller budget's best run. N_opt = k·C^a and D_opt = k'·C^b are fitted by least squares
in log space to those runs' (C, N) and (C, D).
"""

from typing import Any

import numpy as np

from flopsfit.analysis import power_law
from flopsfit.analysis.errors import FitError
from flopsfit.analysis.results import RunTable

MIN_POINTS = 2


def envelope_batched(table: RunTable, counts_BxR: np.ndarray) -> np.ndarray:
  """[B, G] index of the run on the envelope at each budget (-1: none), per resample."""
  present = counts_BxR > 0
  masked_loss = np.where(present, table.loss[None, :], np.inf)
  num_resamples = counts_BxR.shape[0]
  best = np.full((num_resamples, table.num_groups), -1, dtype=np.int64)
  best_loss = np.full((num_resamples, table.num_groups), np.inf)
  for g in range(table.num_groups):
    members = np.flatnonzero(table.group == g)
    pick = np.argmin(masked_loss[:, members], axis=1)
    best_loss[:, g] = masked_loss[np.arange(num_resamples), members[pick]]
    best[:, g] = np.where(np.isfinite(best_loss[:, g]), members[pick], -1)
  # Best loss among all smaller budgets; a budget is on the envelope only if it beats it.
  previous = np.minimum.accumulate(
    np.concatenate([np.full((num_resamples, 1), np.inf), best_loss[:, :-1]], axis=1), axis=1
  )
  return np.where(best_loss < previous, best, -1)


def laws_batched(table: RunTable, envelope_BxG: np.ndarray) -> dict[str, np.ndarray]:
  """Per resample: log k and exponent of N_opt(C) and D_opt(C) fitted to the envelope."""
  on = envelope_BxG >= 0
  idx = np.where(on, envelope_BxG, 0)
  log_c = np.log(table.C)[idx]
  out = {}
  for name, values in (("N", table.N), ("D", table.D)):
    log_k, exponent = power_law.fit_batched(log_c, np.log(values)[idx], on.astype(float))
    out[f"{name}_log_k"], out[f"{name}_exponent"] = log_k, exponent
  return out


def fit(table: RunTable) -> dict[str, Any]:
  """Envelope points and the two power laws; FitError if fewer than MIN_POINTS are on it."""
  envelope = envelope_batched(table, np.ones((1, table.size)))[0]
  runs = envelope[envelope >= 0]
  if runs.size < MIN_POINTS:
    raise FitError(
      f"Approach 1 needs at least {MIN_POINTS} budgets on the loss envelope; found "
      f"{runs.size} (from {table.num_groups} budgets)"
    )
  laws = laws_batched(table, envelope[None])
  return {
    "envelope": [table.point(i) for i in runs],
    "N_opt": {
      "coefficient": float(np.exp(laws["N_log_k"][0])),
      "exponent": float(laws["N_exponent"][0]),
    },
    "D_opt": {
      "coefficient": float(np.exp(laws["D_log_k"][0])),
      "exponent": float(laws["D_exponent"][0]),
    },
  }
