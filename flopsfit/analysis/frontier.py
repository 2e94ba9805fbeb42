"""The compute-optimal frontier of a fitted L(N, D): N_opt(C), D_opt(C) and the loss there.

C is the compute in the fitted FLOP convention, C = φ(N)·D with φ the FLOPs per unit of D.
- When every run has C = 6·N·D exactly (the 6ND conventions with the matching N), the frontier
  is closed-form: with G = (αA / (βB))^(1/(α+β)), N_opt = G·(C/6)^a and D_opt = (C/6)^b / G,
  a = β/(α+β), b = α/(α+β).
- Otherwise (XLA-measured or attention-inclusive FLOPs, or 6ND with the other N) φ is fitted to
  the runs as a sum of powers of N, φ(N) = Σ c_k·N^q_k, and N_opt minimises L(N, C/φ(N))
  numerically. Two forms are fitted and the one with the smaller largest relative error over
  the runs is used:
  - a transformer's cost, c₁·N + c₂·N^(2/3) + c₃·N^(1/3) with c ≥ 0 (non-negative least
    squares in relative error): matmuls grow with N, while attention (∝ layers × width) and the
    embedding and head (∝ width) grow like N^(2/3) and N^(1/3) along a fixed-aspect size ladder,
    so φ(N)/N falls towards a constant as N grows;
  - a power law κ·N^p (least squares in ln φ), for costs that grow faster than N.
  The search is a golden section in ln N on [ln N_min - 14, ln N_max + 14] (a factor 1e6 either
  side of the sampled sizes), vectorised over budgets and bootstrap fits, finished by three
  Newton steps on analytic derivatives (golden section alone resolves ln N only to about 1e-8).
  Along C = φ(N)·D the loss is convex in ln N (ln φ is a log-sum-exp of linear functions of
  ln N), so the search finds the one minimum.
"""

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import optimize

from flopsfit.analysis.results import RunTable

_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0
_SEARCH_ITERATIONS = 90
_SEARCH_MARGIN = 14.0  # ln(1e6)
_TRANSFORMER_POWERS = (1.0, 2.0 / 3.0, 1.0 / 3.0)


@dataclasses.dataclass(frozen=True)
class FlopModel:
  """C = φ(N)·D with φ(N) = Σ c_k·N^q_k. `exact` when C = 6·N·D holds for every run."""

  coefficients: tuple[float, ...]  # c_k > 0
  powers: tuple[float, ...]  # q_k
  exact: bool
  max_rel_error: float  # Largest |φ(N)·D / C - 1| over the runs.
  log_N_range: tuple[float, float]  # Search bracket for the numerical optimum.

  @classmethod
  def fit(cls, table: RunTable) -> "FlopModel":
    log_n = np.log(table.N)
    bracket = (float(log_n.min() - _SEARCH_MARGIN), float(log_n.max() + _SEARCH_MARGIN))
    if table.is_six_nd():
      error = float(np.max(np.abs(6 * table.N * table.D / table.C - 1)))
      return cls(SIX_ND.coefficients, SIX_ND.powers, True, error, bracket)
    phi = table.C / table.D
    candidates = [_fit_power_law(log_n, phi), _fit_transformer(table.N, phi)]
    errors = [float(np.max(np.abs(flops_per_unit(c, q, table.N) / phi - 1))) for c, q in candidates]
    best = int(np.argmin(errors))
    return cls(*candidates[best], False, errors[best], bracket)

  def formula(self) -> str:
    """φ(N)·D as text, e.g. 'C = (6.43·N + 48.7·N^0.667)·D'."""
    terms = [
      f"{c:.4g}·N" + ("" if abs(q - 1) < 1e-12 else f"^{q:.3g}")
      for c, q in zip(self.coefficients, self.powers)
    ]
    return f"C = ({' + '.join(terms)})·D" if len(terms) > 1 else f"C = {terms[0]}·D"

  def to_json(self) -> dict[str, Any]:
    return {
      "form": "C = D * sum_k coefficients[k] * N^powers[k]",
      "formula": self.formula(),
      "coefficients": list(self.coefficients),
      "powers": list(self.powers),
      "exact_6ND": self.exact,
      "frontier_method": "closed_form" if self.exact else "numerical",
      "max_rel_error": self.max_rel_error,
    }


SIX_ND = FlopModel((6.0,), (1.0,), True, 0.0, (-np.inf, np.inf))  # C = 6·N·D


def flops_per_unit(coefficients: Sequence[float], powers: Sequence[float], N) -> np.ndarray:
  """φ(N) = Σ c_k·N^q_k, the FLOPs per unit of D (C = φ(N)·D); the arguments may be a
  scaling_laws.json `flop_model`'s `coefficients` and `powers`."""
  return sum(c * np.power(N, q) for c, q in zip(coefficients, powers))


def _fit_power_law(log_n: np.ndarray, phi: np.ndarray) -> tuple[tuple, tuple]:
  if np.ptp(log_n) > 0:
    p, log_kappa = np.polyfit(log_n, np.log(phi), 1)
  else:
    p, log_kappa = 1.0, float(np.mean(np.log(phi) - log_n))
  return (float(np.exp(log_kappa)),), (float(p),)


def _fit_transformer(N: np.ndarray, phi: np.ndarray) -> tuple[tuple, tuple]:
  """Non-negative c in φ = Σ c_k N^q_k minimising Σ (model/φ - 1)²; zero terms dropped."""
  columns = np.stack([np.power(N, q) for q in _TRANSFORMER_POWERS], axis=1)
  scale = columns.max(axis=0)  # Columns of similar size, for a well-conditioned solve.
  solution, _ = optimize.nnls(columns / scale / phi[:, None], np.ones_like(phi))
  coefficients = solution / scale
  keep = [k for k, c in enumerate(coefficients) if c > 0]
  return (tuple(float(coefficients[k]) for k in keep), tuple(_TRANSFORMER_POWERS[k] for k in keep))


def optimum(theta_Bx5: np.ndarray, C_M: np.ndarray, flops: FlopModel) -> dict[str, np.ndarray]:
  """N_opt, D_opt and L at the optimum, [B, M], for B parameter sets θ and M budgets."""
  theta = np.asarray(theta_Bx5, float)
  a, b, e, alpha, beta = (theta[:, i : i + 1] for i in range(5))
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
      log_d = np.log(C) - _log_phi(log_n, flops)[0]
    loss = np.exp(e) + np.exp(a - alpha * log_n) + np.exp(b - beta * log_d)
  return {"N_opt": np.exp(log_n), "D_opt": np.exp(log_d), "loss": loss}


def _log_phi(u, flops: FlopModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """ln φ at ln N = u, and its first and second derivatives in u (elementwise)."""
  log_terms = np.stack([np.log(c) + q * u for c, q in zip(flops.coefficients, flops.powers)])
  top = log_terms.max(axis=0)
  weights = np.exp(log_terms - top)
  total = weights.sum(axis=0)
  weights /= total
  q = np.asarray(flops.powers).reshape((-1,) + (1,) * np.ndim(u))
  first = (weights * q).sum(axis=0)
  return top + np.log(total), first, (weights * q * q).sum(axis=0) - first * first


def _golden_section(a, b, alpha, beta, log_c, flops: FlopModel) -> np.ndarray:
  """ln N minimising A/N^α + B/D^β along C = φ(N)·D (E is constant there), elementwise."""
  shape = np.broadcast_shapes(a.shape, log_c.shape)

  def f(u):
    return np.exp(a - alpha * u) + np.exp(b - beta * (log_c - _log_phi(u, flops)[0]))

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
  for _ in range(3):  # Newton on f' (f is convex in u, see the module docstring).
    log_phi, d_log_phi, d2_log_phi = _log_phi(u, flops)
    left_term = np.exp(a - alpha * u)
    right_term = np.exp(b - beta * (log_c - log_phi))
    slope = -alpha * left_term + beta * d_log_phi * right_term
    curvature = alpha * alpha * left_term + beta * right_term * (beta * d_log_phi**2 + d2_log_phi)
    step = np.where(curvature > 0, slope / np.where(curvature > 0, curvature, 1.0), 0.0)
    u = np.clip(u - step, flops.log_N_range[0], flops.log_N_range[1])
  return u
