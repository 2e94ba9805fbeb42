"""A fitted law's prediction at any compute C, read from scaling_laws.json's frontier bands.

`analyze` stores, per approach, N_opt, D_opt (and Approach 3's loss) with their bootstrap
bands on a log-spaced grid of C reaching a decade beyond the largest run. Between grid points
the value and both ends of the band are interpolated linearly in log-log; beyond the grid they
are extended along the last two points (`extrapolated` says so). Used by the planner of a
validation (which size to train) and by its check (which interval to compare with).
"""

import math
from typing import Any

import numpy as np


class LawError(ValueError):
  """scaling_laws.json cannot give the prediction asked for; the message says why."""


def usable_approach(laws: dict, preferred=("approach3", "approach2", "approach1")) -> str:
  """The first approach of `preferred` that was fitted and has a frontier."""
  frontier = laws.get("frontier") or {}
  for name in preferred:
    if (laws.get(name) or {}).get("status") == "ok" and name in frontier:
      return name
  raise LawError(f"none of {', '.join(preferred)} was fitted (no frontier to read)")


def at(laws: dict, approach: str, quantity: str, C: float) -> dict[str, Any]:
  """{"value", "lo", "hi", "extrapolated"} of `quantity` (N_opt, D_opt, loss) at compute C."""
  frontier = laws.get("frontier") or {}
  band = (frontier.get(approach) or {}).get(quantity)
  if not band or not frontier.get("C"):
    raise LawError(f"frontier.{approach}.{quantity}: missing; re-run analyze")
  grid = np.log(np.asarray(frontier["C"], float))
  x = math.log(C)
  out: dict[str, Any] = {"extrapolated": bool(x < grid[0] - 1e-9 or x > grid[-1] + 1e-9)}
  for key in ("value", "lo", "hi"):
    ys = band.get(key)
    out[key] = None if ys is None else _loglog(x, grid, ys)
  return out


def _loglog(x: float, grid: np.ndarray, ys: list) -> float | None:
  keep = [i for i, y in enumerate(ys) if y is not None and y > 0]
  if not keep:
    return None
  xs, ls = grid[keep], np.log(np.asarray([ys[i] for i in keep], float))
  if xs.size == 1:
    return float(math.exp(ls[0]))
  if x < xs[0] or x > xs[-1]:
    a, b = (0, 1) if x < xs[0] else (-2, -1)
    slope = (ls[b] - ls[a]) / (xs[b] - xs[a])
    return float(math.exp(ls[a] + slope * (x - xs[a])))
  return float(math.exp(np.interp(x, xs, ls)))


def approach3_loss(laws: dict, N: float, D: float) -> float | None:
  """Approach 3's L(N, D) = E + A/N^α + B/D^β at one run's N and D (None if not fitted)."""
  a3 = laws.get("approach3") or {}
  theta = a3.get("theta") if a3.get("status") == "ok" else None
  if not theta:
    return None
  return float(
    math.exp(theta["e"])
    + math.exp(theta["a"]) / N ** theta["alpha"]
    + math.exp(theta["b"]) / D ** theta["beta"]
  )
