"""Chinchilla Approach 3: L(N, D) = E + A/N^α + B/D^β, fitted as in Hoffmann et al. (2022).

Parameters θ = (a, b, e, α, β) with A = exp(a), B = exp(b), E = exp(e). The model's log loss is
LSE(a - α·ln N, b - β·ln D, e); the objective is the SUM over runs of Huber_δ(model log loss -
ln loss) (not the mean: averaging shrinks the gradient by the number of runs, so L-BFGS-B with its
default tolerances stops early; on the Chinchilla runs it stops near a = 0.45 instead of 0.51).
Gradients are analytic.

How the 4,500-point grid (α, β in 0..2 step 0.5; e in -1..1 step 0.5; a, b in 0..25 step 5) is
searched: every start is run, none is pruned. All starts are minimised together by a batched numpy
L-BFGS (`batched_lbfgs`: one array evaluation per iteration for all still-running starts) with
L-BFGS-B's default stopping rules (max |g| <= 1e-5, relative decrease <= 2.2e-9) and at most 200
iterations each; then the 32 lowest endpoints are continued with tight tolerances (max |g| <=
1e-10, or no further decrease possible), and the lowest of those is the fit. This reaches the same
minimum as running scipy's L-BFGS-B from each of the 4,500 starts one by one (checked in
benchmarks/analysis_speed.py --check_scipy), or a slightly lower value of it, in about a tenth of
the time.
"""

import dataclasses
import itertools

import numpy as np

from flopsfit.analysis import batched_lbfgs
from flopsfit.analysis.errors import FitError

PARAM_NAMES = ("a", "b", "e", "alpha", "beta")  # The order of θ.
GRID_AXES = (
  np.arange(0.0, 25.0 + 1e-9, 5.0),  # a
  np.arange(0.0, 25.0 + 1e-9, 5.0),  # b
  np.arange(-1.0, 1.0 + 1e-9, 0.5),  # e
  np.arange(0.0, 2.0 + 1e-9, 0.5),  # alpha
  np.arange(0.0, 2.0 + 1e-9, 0.5),  # beta
)
MIN_RUNS = 8
MIN_DISTINCT = 3  # Distinct N and distinct D needed to identify α and β.
POLISH_STARTS = 32
# Stopping rules: L-BFGS-B's defaults for the grid, then tight for polishing.
_GRID_TOL = dict(gtol=1e-5, ftol=2.2e-9, max_iter=200)
_POLISH_TOL = dict(gtol=1e-10, ftol=0.0, max_iter=2000)
_WARM_TOL = dict(gtol=1e-8, ftol=0.0, max_iter=500)
_EXP_MAX = 700.0  # exp() argument cap, so a wild trial step cannot overflow.


def grid() -> np.ndarray:
  """[4500, 5] the starting points θ."""
  return np.array(list(itertools.product(*GRID_AXES)), dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class Data:
  """Natural logs of the runs' N, D and loss."""

  log_N: np.ndarray  # [R]
  log_D: np.ndarray  # [R]
  log_loss: np.ndarray  # [R]

  @classmethod
  def from_arrays(cls, N, D, loss) -> "Data":
    return cls(
      np.log(np.asarray(N, float)), np.log(np.asarray(D, float)), np.log(np.asarray(loss, float))
    )


def objective(
  theta_KxP: np.ndarray, data: Data, delta: float, weight_KxR: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
  """Σ_runs w·Huber_δ(LSE(a - α ln N, b - β ln D, e) - ln L) and its gradient, per θ row."""
  a, b, e, alpha, beta = (theta_KxP[:, i : i + 1] for i in range(5))
  w_n = np.exp(np.minimum(a - alpha * data.log_N, _EXP_MAX))  # A / N^α
  w_d = np.exp(np.minimum(b - beta * data.log_D, _EXP_MAX))  # B / D^β
  w_e = np.exp(np.minimum(e, _EXP_MAX))  # E, [K, 1]
  total = w_n + w_d
  total += w_e
  np.maximum(total, 1e-300, out=total)
  residual = np.log(total)
  residual -= data.log_loss
  clipped = np.clip(residual, -delta, delta)  # Huber'(r).
  huber = residual - 0.5 * clipped
  huber *= clipped  # Equals r²/2 inside ±δ and δ(|r| - δ/2) outside.
  if weight_KxR is not None:
    huber *= weight_KxR
    clipped = clipped * weight_KxR
  q = clipped / total
  g_n = q * w_n
  g_d = q * w_d
  grad = np.stack(
    [
      g_n.sum(axis=1),
      g_d.sum(axis=1),
      q.sum(axis=1) * w_e[:, 0],
      -(g_n @ data.log_N),
      -(g_d @ data.log_D),
    ],
    axis=1,
  )
  return huber.sum(axis=1), grad


def predict_loss(theta: np.ndarray, N, D) -> np.ndarray:
  """E + A/N^α + B/D^β for θ [..., 5] (broadcast against N and D)."""
  theta = np.asarray(theta, float)
  a, b, e, alpha, beta = (theta[..., i] for i in range(5))
  return np.exp(e) + np.exp(a - alpha * np.log(N)) + np.exp(b - beta * np.log(D))


def theta_of(params: dict[str, float]) -> np.ndarray:
  """θ [5] of E, A, B, alpha, beta values (the inverse of `named`)."""
  return np.array(
    [np.log(params["A"]), np.log(params["B"]), np.log(params["E"]), params["alpha"], params["beta"]]
  )


def check_enough(N: np.ndarray, D: np.ndarray) -> None:
  """FitError unless there are enough runs and distinct sizes to identify the five parameters."""
  n_distinct, d_distinct = np.unique(N).size, np.unique(np.round(np.log(D), 9)).size
  if N.size < MIN_RUNS or n_distinct < MIN_DISTINCT or d_distinct < MIN_DISTINCT:
    raise FitError(
      f"Approach 3 needs at least {MIN_RUNS} runs with {MIN_DISTINCT} distinct N and "
      f"{MIN_DISTINCT} distinct D; found {N.size} runs, {n_distinct} distinct N, "
      f"{d_distinct} distinct D"
    )


@dataclasses.dataclass(frozen=True)
class GridFit:
  theta: np.ndarray  # [5] the fit
  objective: float
  grad_max: float  # max |gradient| at the fit
  winning_start: np.ndarray  # [5] the most interior grid start that reached the optimum
  winning_start_on_boundary: bool
  starts_reaching_optimum: int
  basin_starts: np.ndarray  # [S, 5]: the optimum, then endpoints of the next-best basins
  endpoints_objective: np.ndarray  # [4500] after the grid phase


def fit_grid(data: Data, delta: float, starts: np.ndarray | None = None) -> GridFit:
  """The fit from every grid start (see the module docstring for how)."""
  starts = grid() if starts is None else starts
  fun = lambda x, idx: objective(x, data, delta)
  first = batched_lbfgs.minimize(fun, starts, **_GRID_TOL)
  order = np.argsort(first.fun)[:POLISH_STARTS]
  polished = batched_lbfgs.minimize(fun, first.x[order], **_POLISH_TOL)
  best = int(np.argmin(polished.fun))
  theta, f_opt = polished.x[best], float(polished.fun[best])

  # Starts that reach the optimum: those whose grid-phase endpoint is already there (up to the
  # grid phase's tolerances), and those among the polished whose polished endpoint is. In a flat
  # valley the loose grid phase stops short of the optimum, so the polished ones matter.
  def at_optimum(x, f):
    return (f <= f_opt * (1 + 1e-6) + 1e-12) & (np.max(np.abs(x - theta), axis=1) <= 1e-2)

  reached = np.union1d(
    np.flatnonzero(at_optimum(first.x, first.fun)), order[at_optimum(polished.x, polished.fun)]
  )
  lo = np.array([ax[0] for ax in GRID_AXES])
  hi = np.array([ax[-1] for ax in GRID_AXES])
  on_edge = np.sum((starts[reached] == lo) | (starts[reached] == hi), axis=1)
  winner = reached[np.lexsort((first.fun[reached], on_edge))[0]]
  return GridFit(
    theta=theta,
    objective=f_opt,
    grad_max=float(np.max(np.abs(polished.grad[best]))),
    winning_start=starts[winner],
    winning_start_on_boundary=bool(on_edge.min() > 0),
    starts_reaching_optimum=int(reached.size),
    basin_starts=_basin_starts(first, theta),
    endpoints_objective=first.fun,
  )


def _basin_starts(first: batched_lbfgs.Result, theta: np.ndarray, count: int = 4) -> np.ndarray:
  """The optimum, then the endpoints of the next-lowest distinct basins of the grid search."""
  endpoints = [theta]
  for i in np.argsort(first.fun):
    if len(endpoints) == count:
      break
    if all(np.max(np.abs(first.x[i] - p)) > 0.05 for p in endpoints):
      endpoints.append(first.x[i])
  return np.array(endpoints)


def fit_weighted(
  data: Data, delta: float, weight_BxR: np.ndarray, starts_SxP: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
  """Fits of B reweighted data sets (bootstrap counts), each from the same S starts, all in one
  batched L-BFGS run to max |g| <= 1e-8 (or no further decrease); returns the best θ [B, 5] and
  objective [B] of each."""
  num_sets, num_starts = weight_BxR.shape[0], starts_SxP.shape[0]
  x0 = np.tile(starts_SxP, (num_sets, 1))
  owner = np.repeat(np.arange(num_sets), num_starts)
  weight = weight_BxR.astype(np.float64)
  fun = lambda x, idx: objective(x, data, delta, weight[owner[idx]])
  result = batched_lbfgs.minimize(fun, x0, **_WARM_TOL)
  f = result.fun.reshape(num_sets, num_starts)
  best = np.argmin(np.where(np.isfinite(f), f, np.inf), axis=1)
  theta = result.x.reshape(num_sets, num_starts, 5)[np.arange(num_sets), best]
  return theta, f[np.arange(num_sets), best]


def named(theta: np.ndarray) -> dict[str, float]:
  """E, A, B, alpha, beta and the frontier exponents a = β/(α+β), b = α/(α+β) of one θ."""
  a, b, e, alpha, beta = (float(v) for v in theta)
  return {
    "E": float(np.exp(e)),
    "A": float(np.exp(a)),
    "B": float(np.exp(b)),
    "alpha": alpha,
    "beta": beta,
    "a": beta / (alpha + beta),
    "b": alpha / (alpha + beta),
  }
