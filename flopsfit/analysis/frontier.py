"""The compute-optimal frontier of a fitted L(N, D): N_opt(C), D_opt(C) and the loss there.

C is the compute in the fitted FLOP convention, C = φ(N)·D with φ the FLOPs per unit of D.
- When every run has C = 6·N·D exactly (the 6ND conventions with the matching N), the frontier
  is closed-form: with G = (αA / (βB))^(1/(α+β)), N_opt = G·(C/6)^a and D_opt = (C/6)^b / G,
  a = β/(α+β), b = α/(α+β).
- Otherwise (XLA-measured or attention-inclusive FLOPs, or 6ND with the other N) φ is fitted to
  the runs as a power law, ln φ = ln κ + p·ln N, by least squares, and N_opt minimises
  L(N, C/φ(N)) numerically: a golden-section search in ln N on [ln N_min - 14, ln N_max + 14]
  (a factor 1e6 either side of the sampled sizes), vectorised over budgets and bootstrap fits,
  finished by three Newton steps on the analytic derivative (golden section alone resolves ln N
  only to about 1e-8).
"""

import dataclasses
from typing import Any

import numpy as np

from flopsfit.analysis.results import RunTable

_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0
_SEARCH_ITERATIONS = 90
_SEARCH_MARGIN = 14.0  # ln(1e6)


@dataclasses.dataclass(frozen=True)
class FlopModel:
  """C = κ·N^p·D. `exact` when C = 6·N·D holds for every run (κ = 6, p = 1, closed form)."""
  kappa: float
  exponent: float
  exact: bool
  max_rel_error: float  # Largest |κ N^p D / C - 1| over the runs.
  log_N_range: tuple[float, float]  # Search bracket for the numerical optimum.

  @classmethod
  def fit(cls, table: RunTable) -> "FlopModel":
    log_n = np.log(table.N)
    bracket = (float(log_n.min() - _SEARCH_MARGIN), float(log_n.max() + _SEARCH_MARGIN))
    if table.is_six_nd():
      return cls(6.0, 1.0, True, float(np.max(np.abs(6 * table.N * table.D / table.C - 1))),
                 bracket)
    log_phi = np.log(table.C / table.D)
    if np.ptp(log_n) > 0:
      p, log_kappa = np.polyfit(log_n, log_phi, 1)
    else:
      p, log_kappa = 1.0, float(np.mean(log_phi - log_n))
    model = np.exp(log_kappa + p * log_n) * table.D
    return cls(float(np.exp(log_kappa)), float(p), False,
               float(np.max(np.abs(model / table.C - 1))), bracket)

  def to_json(self) -> dict[str, Any]:
    return {"form": "C = kappa * N^exponent * D", "kappa": self.kappa,
            "exponent": self.exponent, "exact_6ND": self.exact,
            "frontier_method": "closed_form" if self.exact else "numerical",
            "max_rel_error": self.max_rel_error}


def optimum(theta_Bx5: np.ndarray, C_M: np.ndarray, flops: FlopModel
            ) -> dict[str, np.ndarray]:
  """N_opt, D_opt and L at the optimum, [B, M], for B parameter sets θ and M budgets."""
  theta = np.asarray(theta_Bx5, float)
  a, b, e, alpha, beta = (theta[:, i:i + 1] for i in range(5))
  C = np.asarray(C_M, float)[None, :]
  with np.errstate(all="ignore"):
    if flops.exact:
      # ln G = (ln(α) + a - ln(β) - b) / (α+β).
      log_g = (np.log(alpha) + a - np.log(beta) - b) / (alpha + beta)
      log_c6 = np.log(C / 6.0)
      log_n = log_g + beta / (alpha + beta) * log_c6
      log_d = -log_g + alpha / (alpha + beta) * log_c6
    else:
      log_n = _golden_section(a, b, alpha, beta, np.log(C), flops)
      log_d = np.log(C) - np.log(flops.kappa) - flops.exponent * log_n
    loss = np.exp(e) + np.exp(a - alpha * log_n) + np.exp(b - beta * log_d)
  return {"N_opt": np.exp(log_n), "D_opt": np.exp(log_d), "loss": loss}


def _golden_section(a, b, alpha, beta, log_c, flops: FlopModel) -> np.ndarray:
  """ln N minimising A/N^α + B/D^β along C = κ N^p D (E is constant there), elementwise."""
  shape = np.broadcast_shapes(a.shape, log_c.shape)
  log_kappa, p = np.log(flops.kappa), flops.exponent

  def f(u):
    return np.exp(a - alpha * u) + np.exp(b - beta * (log_c - log_kappa - p * u))

  lo = np.full(shape, flops.log_N_range[0])
  hi = np.full(shape, flops.log_N_range[1])
  x1, x2 = hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo)
  f1, f2 = f(x1), f(x2)
  for _ in range(_SEARCH_ITERATIONS):
    left = f1 <= f2  # The minimum is in [lo, x2]; else in [x1, hi].
    hi = np.where(left, x2, hi)
    lo = np.where(left, lo, x1)
    new_x1 = hi - _GOLDEN * (hi - lo)
    new_x2 = lo + _GOLDEN * (hi - lo)
    x1, x2 = np.where(left, new_x1, x2), np.where(left, x1, new_x2)
    f_new = f(np.where(left, x1, x2))
    f1, f2 = np.where(left, f_new, f2), np.where(left, f1, f_new)
  u = 0.5 * (lo + hi)
  for _ in range(3):  # f is a sum of two exponentials in u: convex, so Newton is safe here.
    left_term = np.exp(a - alpha * u)
    right_term = np.exp(b - beta * (log_c - log_kappa - p * u))
    slope = -alpha * left_term + p * beta * right_term
    curvature = alpha * alpha * left_term + (p * beta) ** 2 * right_term
    step = np.where(curvature > 0, slope / np.where(curvature > 0, curvature, 1.0), 0.0)
    u = np.clip(u - step, flops.log_N_range[0], flops.log_N_range[1])
  return u
