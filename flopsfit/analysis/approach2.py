"""Chinchilla Approach 2: per IsoFLOP budget a parabola of loss in log N (and in log D), its
minimum, then power laws N_opt = k·C^a and D_opt = k'·C^b over the budgets.

Each budget's curve is loss = c0 + c1·x + c2·x², x = ln(N) - center (center: the mean ln N of the
budget's runs), fitted by least squares; likewise in ln D. A budget is left out of the power laws,
with its reasons, when for N or for D: it has fewer than 3 distinct sizes; the curvature c2 is
not positive; the fitted minimum lies beyond the sampled range; or the lowest observed loss is at
the smallest or largest size (the minimum is at the edge, not bracketed). The power laws regress
ln N_opt and ln D_opt on ln of the budget's mean C (in the chosen FLOP convention).
"""

from typing import Any

import numpy as np

from flopsfit.analysis import power_law
from flopsfit.analysis.errors import FitError
from flopsfit.analysis.results import RunTable

MIN_BUDGETS = 2
MIN_SIZES = 3

REASONS = (
  "fewer than 3 distinct sizes",
  "curvature not positive",
  "fitted minimum beyond the sampled range",
  "lowest loss at the edge of the sampled range",
)


def parabola(coefficients: np.ndarray, center: float, log_size) -> np.ndarray:
  """loss = c0 + c1·x + c2·x², x = ln(size) - center: one budget's curve (`fit_N`, `fit_D`)."""
  c0, c1, c2 = coefficients
  x = np.asarray(log_size, float) - center
  return c0 + c1 * x + c2 * x * x


def _curves(
  log_size: np.ndarray, loss: np.ndarray, counts_BxR: np.ndarray
) -> dict[str, np.ndarray]:
  """Weighted parabola fits for one budget's runs, one per resample, and their checks."""
  num_resamples = counts_BxR.shape[0]
  center = float(log_size.mean())
  x = log_size - center
  design = np.stack([np.ones_like(x), x, x * x], axis=1)  # [R, 3]
  w = counts_BxR.astype(np.float64)
  xtwx = np.einsum("br,ri,rj->bij", w, design, design)
  xtwy = np.einsum("br,ri,r->bi", w, design, loss)
  sizes, size_of_run = np.unique(log_size, return_inverse=True)
  present_BxS = (w @ np.eye(sizes.size)[size_of_run]) > 0
  enough = present_BxS.sum(axis=1) >= MIN_SIZES
  safe = np.where(enough[:, None, None], xtwx, np.eye(3)[None])
  coef = np.linalg.solve(safe, np.where(enough[:, None], xtwy, 0.0)[..., None])[..., 0]
  coef[~enough] = np.nan
  with np.errstate(invalid="ignore", divide="ignore"):
    x_min = -coef[:, 1] / (2.0 * coef[:, 2])
  lo = np.where(present_BxS, sizes[None] - center, np.inf).min(axis=1)
  hi = np.where(present_BxS, sizes[None] - center, -np.inf).max(axis=1)
  masked = np.where(w > 0, loss[None], np.inf)
  best_x = x[np.argmin(masked, axis=1)]
  failures = np.stack(
    [
      ~enough,
      enough & ~(coef[:, 2] > 0),
      enough & (coef[:, 2] > 0) & ((x_min < lo) | (x_min > hi)),
      enough & ((best_x == lo) | (best_x == hi)),
    ],
    axis=1,
  )
  return {
    "coef": coef,
    "center": np.full(num_resamples, center),
    "x_min": x_min,
    "log_opt": x_min + center,
    "failures": failures,
    "lo": lo + center,
    "hi": hi + center,
  }


def optima_batched(table: RunTable, counts_BxR: np.ndarray) -> dict[str, np.ndarray]:
  """Per resample and budget [B, G]: ln N_opt, ln D_opt, included, and failure flags."""
  num_resamples = counts_BxR.shape[0]
  shape = (num_resamples, table.num_groups)
  out = {
    "log_N_opt": np.full(shape, np.nan),
    "log_D_opt": np.full(shape, np.nan),
    "included": np.zeros(shape, dtype=bool),
    "failures": np.zeros(shape + (2, len(REASONS)), dtype=bool),
  }
  for g in range(table.num_groups):
    members = np.flatnonzero(table.group == g)
    ok = np.ones(num_resamples, dtype=bool)
    for axis, (name, values) in enumerate((("N", table.N), ("D", table.D))):
      curve = _curves(np.log(values[members]), table.loss[members], counts_BxR[:, members])
      out[f"log_{name}_opt"][:, g] = curve["log_opt"]
      out["failures"][:, g, axis] = curve["failures"]
      ok &= ~curve["failures"].any(axis=1)
    out["included"][:, g] = ok
  return out


def laws_batched(table: RunTable, optima: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """Per resample: log k and exponent of N_opt(C), D_opt(C) over the included budgets."""
  log_c = np.broadcast_to(np.log(table.group_mean_C())[None], optima["included"].shape)
  out = {}
  for name in ("N", "D"):
    log_k, exponent = power_law.fit_batched(
      log_c, optima[f"log_{name}_opt"], optima["included"].astype(float)
    )
    out[f"{name}_log_k"], out[f"{name}_exponent"] = log_k, exponent
  return out


def fit(table: RunTable) -> dict[str, Any]:
  """Per-budget curves (with inclusion and reasons) and the power laws; FitError if too few."""
  ones = np.ones((1, table.size))
  optima = optima_batched(table, ones)
  mean_c = table.group_mean_C()
  budgets = []
  for g in range(table.num_groups):
    members = np.flatnonzero(table.group == g)
    entry = {
      "budget": float(table.budgets[g]),
      "C_mean": float(mean_c[g]),
      "num_runs": int(members.size),
      "included": bool(optima["included"][0, g]),
    }
    reasons = []
    for name in ("N", "D"):
      values = table.N if name == "N" else table.D
      curve = _curves(np.log(values[members]), table.loss[members], ones[:, members])
      c0, c1, c2 = (float(v) for v in curve["coef"][0])
      fitted = bool(np.all(np.isfinite(curve["coef"][0])))
      entry[f"fit_{name}"] = {
        "center": float(curve["center"][0]),
        "coefficients": [c0, c1, c2] if fitted else None,
        f"{name}_opt": float(np.exp(curve["log_opt"][0])) if fitted else None,
        "loss_at_opt": float(c0 - c1 * c1 / (4 * c2)) if fitted and c2 != 0 else None,
        "range": [float(values[members].min()), float(values[members].max())],
      }
      reasons += [f"{name}: {REASONS[k]}" for k in np.flatnonzero(curve["failures"][0])]
    entry["reasons"] = reasons
    entry["points"] = [table.point(i) for i in members]
    budgets.append(entry)
  included = int(optima["included"][0].sum())
  if included < MIN_BUDGETS:
    raise FitError(
      f"Approach 2 needs at least {MIN_BUDGETS} budgets with an interior minimum; "
      f"found {included} of {table.num_groups}",
      {"budgets": budgets},
    )
  laws = laws_batched(table, optima)
  return {
    "budgets": budgets,
    "N_opt": {
      "coefficient": float(np.exp(laws["N_log_k"][0])),
      "exponent": float(laws["N_exponent"][0]),
    },
    "D_opt": {
      "coefficient": float(np.exp(laws["D_log_k"][0])),
      "exponent": float(laws["D_exponent"][0]),
    },
  }
