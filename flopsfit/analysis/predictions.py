"""Compute-optimal N, D, D/N and loss at chosen budgets, per approach, with bootstrap intervals:
the predictions table and the frontier bands (the same numbers on a dense grid of C)."""

from collections.abc import Sequence
from typing import Any

import numpy as np

from flopsfit.analysis import bootstrap, frontier
from flopsfit.analysis.results import RunTable

Curves = dict[str, tuple[np.ndarray, np.ndarray | None]]  # name -> (value [M], samples [B, M])


def curves(
  approach: str,
  fit: Any,
  boot: dict[str, np.ndarray] | None,
  C_M: np.ndarray,
  flops: frontier.FlopModel,
) -> Curves:
  """N_opt, D_opt, D_per_N (and loss, for Approach 3) of one approach at budgets C_M."""
  log_c = np.log(C_M)
  out: Curves = {}
  if approach == "approach3":
    point = frontier.optimum(fit.theta[None], C_M, flops)
    samples = frontier.optimum(boot["theta"], C_M, flops) if boot else None
    for name in ("N_opt", "D_opt", "loss"):
      out[name] = (point[name][0], None if samples is None else samples[name])
  else:
    for name in ("N", "D"):
      law = fit[f"{name}_opt"]
      value = law["coefficient"] * np.exp(law["exponent"] * log_c)
      samples = None
      if boot:
        samples = np.exp(boot[f"{name}_log_k"][:, None] + boot[f"{name}_exponent"][:, None] * log_c)
      out[f"{name}_opt"] = (value, samples)
  n, d = out["N_opt"], out["D_opt"]
  out["D_per_N"] = (d[0] / n[0], None if n[1] is None else d[1] / n[1])
  return out


def default_budgets(table: RunTable, max_swept: int = 12) -> np.ndarray:
  """The swept budgets (each group's mean C; the powers of ten in the swept range instead when
  there are more than `max_swept` groups) and one decade beyond the largest."""
  swept = table.group_mean_C()
  if swept.size > max_swept:
    lo, hi = np.ceil(np.log10(swept.min())), np.floor(np.log10(swept.max()))
    swept = 10.0 ** np.arange(lo, hi + 1) if hi >= lo else swept[[0, -1]]
  return np.append(swept, swept.max() * 10.0)


def table_rows(
  budgets: Sequence[float], all_curves: dict[str, Curves], table: RunTable, level: float
) -> list[dict[str, Any]]:
  """Predictions table: one row per budget; `extrapolation` when outside the runs' C range."""
  c_min, c_max = float(table.C.min()), float(table.C.max())
  rows = []
  for m, c in enumerate(budgets):
    row = {"C": float(c), "extrapolation": bool(c > c_max * (1 + 1e-9) or c < c_min * (1 - 1e-9))}
    for approach, curve in all_curves.items():
      row[approach] = {
        name: bootstrap.interval(None if samples is None else samples[:, m], value[m], level)
        for name, (value, samples) in curve.items()
      }
    rows.append(row)
  return rows


def frontier_bands(C_M: np.ndarray, all_curves: dict[str, Curves], level: float) -> dict[str, Any]:
  """{"C": [...], approach: {quantity: {"value", "lo", "hi"} lists}} for plotting."""
  out: dict[str, Any] = {"C": [float(c) for c in C_M]}
  for approach, curve in all_curves.items():
    out[approach] = {
      name: bootstrap.bands(samples, value, level) for name, (value, samples) in curve.items()
    }
  return out


def grid_of_C(table: RunTable, points: int) -> np.ndarray:
  """Log-spaced C from the smallest run's C to a decade beyond the largest."""
  return np.logspace(np.log10(table.C.min()), np.log10(table.C.max()) + 1.0, points)
