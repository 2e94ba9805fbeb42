"""L-BFGS for many independent small problems at once, in numpy.

`minimize(fun, x0_KxP)` minimises K unrelated objectives of P parameters in lockstep: `fun` maps
a `[K, P]` array of points to their values `[K]` and gradients `[K, P]`, so one call evaluates
every problem with array operations instead of K Python-level optimiser loops. Each problem keeps
its own history (memory `m`), step, and convergence test; converged problems are dropped from the
active set, so later iterations only pay for the problems still moving. The line search is a
backtracking Armijo search with safeguarded quadratic interpolation, started at the unit step; a
curvature pair with s·y <= 0 is not stored (its problem keeps its previous history).

Stopping rules per problem, as in scipy's L-BFGS-B: max |g| <= gtol, or the relative decrease
(f_old - f) / max(|f_old|, |f|, 1) <= ftol, or the line search cannot decrease f, or max_iter.
"""

import dataclasses
from collections.abc import Callable

import numpy as np

Objective = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class Result:
  x: np.ndarray  # [K, P]
  fun: np.ndarray  # [K]
  grad: np.ndarray  # [K, P]
  iterations: np.ndarray  # [K]
  converged: np.ndarray  # [K] bool: stopped by gtol or ftol, not by max_iter.


def minimize(
  fun: Objective,
  x0_KxP: np.ndarray,
  *,
  m: int = 10,
  max_iter: int = 500,
  gtol: float = 1e-9,
  ftol: float = 1e-12,
  max_backtracks: int = 40,
) -> Result:
  """Minimises K problems from `x0_KxP`; `fun(x_AxP, idx_A)` evaluates the problems `idx_A`."""
  x = np.array(x0_KxP, dtype=np.float64, copy=True)
  k_problems, p = x.shape
  f, g = fun(x, np.arange(k_problems))
  f = np.asarray(f, dtype=np.float64).copy()
  g = np.asarray(g, dtype=np.float64).copy()
  iterations = np.zeros(k_problems, dtype=np.int64)
  converged = np.max(np.abs(g), axis=1) <= gtol
  active = np.flatnonzero(~converged)

  s_hist = np.zeros((k_problems, m, p))
  y_hist = np.zeros((k_problems, m, p))
  rho_hist = np.zeros((k_problems, m))
  gamma = np.ones(k_problems)
  has_pair = np.zeros(k_problems, dtype=bool)
  slot = np.zeros(k_problems, dtype=np.int64)  # Next history slot to write, per problem.

  for _ in range(max_iter):
    if active.size == 0:
      break
    xa, fa, ga = x[active], f[active], g[active]
    # Without a curvature pair, the first step has unit length (as in L-BFGS-B).
    h0 = np.where(
      has_pair[active], gamma[active], 1.0 / np.maximum(np.linalg.norm(ga, axis=1), 1e-300)
    )
    direction = -_two_loop(ga, h0, s_hist[active], y_hist[active], rho_hist[active], slot[active])
    slope = np.einsum("kp,kp->k", ga, direction)
    uphill = slope >= 0  # Numerical trouble: restart from steepest descent.
    if np.any(uphill):
      direction[uphill] = -ga[uphill] / np.maximum(
        np.linalg.norm(ga[uphill], axis=1, keepdims=True), 1e-300
      )
      slope[uphill] = np.einsum("kp,kp->k", ga[uphill], direction[uphill])
      has_pair[active[uphill]] = False
      rho_hist[active[uphill]] = 0.0

    step = np.ones(active.size)
    f_new = np.empty(active.size)
    g_new = np.empty_like(ga)
    pending = np.arange(active.size)
    accepted = np.zeros(active.size, dtype=bool)
    for _ in range(max_backtracks):
      trial_x = xa[pending] + step[pending, None] * direction[pending]
      ft, gt = fun(trial_x, active[pending])
      ok = np.isfinite(ft) & (ft <= fa[pending] + 1e-4 * step[pending] * slope[pending])
      done = pending[ok]
      f_new[done], g_new[done], accepted[done] = ft[ok], gt[ok], True
      rest = pending[~ok]
      if rest.size == 0:
        break
      # Safeguarded minimiser of the quadratic through f(0), f'(0) and f(step).
      t, f0, d0 = step[rest], fa[rest], slope[rest]
      ft_rest = ft[~ok]
      denom = 2.0 * (ft_rest - f0 - d0 * t)
      with np.errstate(divide="ignore", invalid="ignore"):
        t_quad = np.where(np.isfinite(ft_rest) & (denom > 0), -d0 * t * t / denom, 0.5 * t)
      step[rest] = np.clip(t_quad, 0.1 * t, 0.5 * t)
      pending = rest

    failed = ~accepted
    moved = active[accepted]
    sa = step[accepted, None] * direction[accepted]
    ya = g_new[accepted] - ga[accepted]
    f_old = fa[accepted]
    x[moved] = xa[accepted] + sa
    f[moved], g[moved] = f_new[accepted], g_new[accepted]
    iterations[active] += 1

    sy = np.einsum("kp,kp->k", sa, ya)
    yy = np.einsum("kp,kp->k", ya, ya)
    good = (sy > 1e-12 * np.sqrt(yy * np.einsum("kp,kp->k", sa, sa))) & (yy > 0)
    upd = moved[good]
    s_hist[upd, slot[upd]] = sa[good]
    y_hist[upd, slot[upd]] = ya[good]
    rho_hist[upd, slot[upd]] = 1.0 / sy[good]
    gamma[upd] = sy[good] / yy[good]
    has_pair[upd] = True
    slot[upd] = (slot[upd] + 1) % m

    rel_decrease = (f_old - f[moved]) / np.maximum.reduce(
      [np.abs(f_old), np.abs(f[moved]), np.ones_like(f_old)]
    )
    stop_moved = (np.max(np.abs(g[moved]), axis=1) <= gtol) | (rel_decrease <= ftol)
    converged[moved[stop_moved]] = True
    converged[active[failed]] = True  # No decrease possible along a descent direction.
    active = active[~converged[active]]

  return Result(x=x, fun=f, grad=g, iterations=iterations, converged=converged)


def _two_loop(g_AxP, h0_A, s_AxMxP, y_AxMxP, rho_AxM, slot_A):
  """Returns H·g for each problem by the L-BFGS two-loop recursion, with H0 = h0·I."""
  m = s_AxMxP.shape[1]
  rows = np.arange(g_AxP.shape[0])
  q = g_AxP.copy()
  alphas = np.zeros((g_AxP.shape[0], m))
  for back in range(1, m + 1):  # Newest pair first.
    j = (slot_A - back) % m
    s, y, rho = s_AxMxP[rows, j], y_AxMxP[rows, j], rho_AxM[rows, j]
    alpha = rho * np.einsum("kp,kp->k", s, q)
    q -= alpha[:, None] * y
    alphas[:, back - 1] = alpha
  r = h0_A[:, None] * q
  for back in range(m, 0, -1):  # Oldest pair first.
    j = (slot_A - back) % m
    s, y, rho = s_AxMxP[rows, j], y_AxMxP[rows, j], rho_AxM[rows, j]
    beta = rho * np.einsum("kp,kp->k", y, r)
    r += (alphas[:, back - 1] - beta)[:, None] * s
  return r
