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
  history = _History.empty(k_problems, m, p)

  for _ in range(max_iter):
    if active.size == 0:
      break
    xa, fa, ga = x[active], f[active], g[active]
    direction, slope = history.direction(active, ga)
    step, f_new, g_new, accepted = _line_search(
      fun, active, xa, fa, direction, slope, max_backtracks
    )
    moved = active[accepted]
    sa = step[accepted, None] * direction[accepted]
    ya = g_new[accepted] - ga[accepted]
    f_old = fa[accepted]
    x[moved] = xa[accepted] + sa
    f[moved], g[moved] = f_new[accepted], g_new[accepted]
    iterations[active] += 1
    history.add_pairs(moved, sa, ya)

    rel_decrease = (f_old - f[moved]) / np.maximum.reduce(
      [np.abs(f_old), np.abs(f[moved]), np.ones_like(f_old)]
    )
    stop_moved = (np.max(np.abs(g[moved]), axis=1) <= gtol) | (rel_decrease <= ftol)
    converged[moved[stop_moved]] = True
    converged[active[~accepted]] = True  # No decrease possible along a descent direction.
    active = active[~converged[active]]

  return Result(x=x, fun=f, grad=g, iterations=iterations, converged=converged)


@dataclasses.dataclass
class _History:
  """Each problem's L-BFGS memory: its last m curvature pairs (s, y) in a ring, and H0's scale."""

  s: np.ndarray  # [K, m, P]
  y: np.ndarray  # [K, m, P]
  rho: np.ndarray  # [K, m] 1 / s·y
  gamma: np.ndarray  # [K] s·y / y·y of the newest pair
  has_pair: np.ndarray  # [K] bool
  slot: np.ndarray  # [K] the next slot to write

  @classmethod
  def empty(cls, k_problems: int, m: int, p: int) -> "_History":
    return cls(
      s=np.zeros((k_problems, m, p)),
      y=np.zeros((k_problems, m, p)),
      rho=np.zeros((k_problems, m)),
      gamma=np.ones(k_problems),
      has_pair=np.zeros(k_problems, dtype=bool),
      slot=np.zeros(k_problems, dtype=np.int64),
    )

  def direction(self, active: np.ndarray, ga: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The search direction [A, P] of the active problems and its slope g·d [A]."""
    # Without a curvature pair, the first step has unit length (as in L-BFGS-B).
    h0 = np.where(
      self.has_pair[active],
      self.gamma[active],
      1.0 / np.maximum(np.linalg.norm(ga, axis=1), 1e-300),
    )
    direction = -_two_loop(
      ga, h0, self.s[active], self.y[active], self.rho[active], self.slot[active]
    )
    slope = np.einsum("kp,kp->k", ga, direction)
    uphill = slope >= 0  # Numerical trouble: restart from steepest descent.
    if np.any(uphill):
      direction[uphill] = -ga[uphill] / np.maximum(
        np.linalg.norm(ga[uphill], axis=1, keepdims=True), 1e-300
      )
      slope[uphill] = np.einsum("kp,kp->k", ga[uphill], direction[uphill])
      self.has_pair[active[uphill]] = False
      self.rho[active[uphill]] = 0.0
    return direction, slope

  def add_pairs(self, moved: np.ndarray, sa: np.ndarray, ya: np.ndarray) -> None:
    """Stores each moved problem's step s and gradient change y when s·y is clearly positive."""
    m = self.s.shape[1]
    sy = np.einsum("kp,kp->k", sa, ya)
    yy = np.einsum("kp,kp->k", ya, ya)
    good = (sy > 1e-12 * np.sqrt(yy * np.einsum("kp,kp->k", sa, sa))) & (yy > 0)
    upd = moved[good]
    self.s[upd, self.slot[upd]] = sa[good]
    self.y[upd, self.slot[upd]] = ya[good]
    self.rho[upd, self.slot[upd]] = 1.0 / sy[good]
    self.gamma[upd] = sy[good] / yy[good]
    self.has_pair[upd] = True
    self.slot[upd] = (self.slot[upd] + 1) % m


def _line_search(fun, active, xa, fa, direction, slope, max_backtracks: int):
  """Backtracking Armijo search from the unit step, per active problem; returns the step [A],
  f [A] and g [A, P] there, and whether a step was accepted [A]."""
  step = np.ones(active.size)
  f_new = np.empty(active.size)
  g_new = np.empty_like(xa)
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
  return step, f_new, g_new, accepted


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
