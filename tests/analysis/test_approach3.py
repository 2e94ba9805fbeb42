"""Approach 3 recovers known laws, sums (not averages) its Huber terms, and searches the grid."""

import numpy as np
import pytest
from scipy import optimize

from flopsfit.analysis import FitError, approach3

from . import synthetic


def _fit(law, seed=0, noise=0.004):
  runs = synthetic.isoflop_runs(law, seed=seed, noise=noise)
  data = approach3.Data.from_arrays(runs["N"], runs["D"], runs["loss"])
  return data, approach3.fit_grid(data, 1e-3)


@pytest.mark.parametrize("law", [synthetic.EQUAL, synthetic.UNEQUAL], ids=["equal", "unequal"])
def test_recovers_generating_exponents(law):
  """0.4% noise, 45 runs on 5 budgets: α and β within 0.03, a within 0.015, E within 5%."""
  _, fit = _fit(law)
  p = approach3.named(fit.theta)
  assert abs(p["alpha"] - law.alpha) < 0.03, p
  assert abs(p["beta"] - law.beta) < 0.03, p
  assert abs(p["a"] - law.a) < 0.015, p
  assert abs(p["E"] / law.E - 1) < 0.05, p


def test_objective_is_the_sum_of_huber_terms():
  """Pins the Hoffmann objective: Σ_runs Huber_δ(LSE(...) - log L), not its mean."""
  data, fit = _fit(synthetic.UNEQUAL)
  delta = 1e-3
  a, b, e, alpha, beta = fit.theta
  log_model = np.logaddexp.reduce(
    [a - alpha * data.log_N, b - beta * data.log_D, np.full_like(data.log_N, e)], axis=0
  )
  r = log_model - data.log_loss
  huber = np.where(np.abs(r) <= delta, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta))
  assert fit.objective == pytest.approx(huber.sum(), rel=1e-9)
  f, _ = approach3.objective(fit.theta[None], data, delta)
  assert f[0] == pytest.approx(huber.sum(), rel=1e-12)


def test_averaging_would_stop_early_and_the_fitter_does_not():
  """L-BFGS-B on the mean (gradient shrunk by the number of runs) stops early at a worse point;
  the fitter reaches the summed objective's minimum. If the fitter averaged, these fail."""
  data, fit = _fit(synthetic.UNEQUAL)
  n = data.log_N.size

  def mean_objective(x):
    f, g = approach3.objective(x[None], data, 1e-3)
    return f[0] / n, g[0] / n

  averaged = min(
    (
      optimize.minimize(mean_objective, s, jac=True, method="L-BFGS-B")
      for s in approach3.grid()[::9]
    ),
    key=lambda o: o.fun,
  )
  averaged_sum = averaged.fun * n
  assert averaged_sum > 1.5 * fit.objective  # Averaging really does stop early here ...
  assert abs(approach3.named(averaged.x)["a"] - synthetic.UNEQUAL.a) > 0.05
  assert fit.grad_max < 1e-7  # ... and the fit is at a stationary point of the sum.
  assert abs(approach3.named(fit.theta)["a"] - synthetic.UNEQUAL.a) < 0.015


def test_grid_search_finds_what_scipy_finds_from_every_start():
  """On a slice of the grid, scipy L-BFGS-B from each start one by one finds no lower point."""
  data, _ = _fit(synthetic.EQUAL, seed=3)
  starts = approach3.grid()[::10]
  ours = approach3.fit_grid(data, 1e-3, starts=starts)
  fun = lambda x: tuple(v[0] for v in approach3.objective(x[None], data, 1e-3))
  best = min(optimize.minimize(fun, s, jac=True, method="L-BFGS-B").fun for s in starts)
  assert ours.objective <= best * (1 + 1e-9)


def test_reports_winning_start_and_grid():
  _, fit = _fit(synthetic.EQUAL)
  assert approach3.grid().shape == (4500, 5)
  assert fit.starts_reaching_optimum >= 1
  assert any(np.all(fit.winning_start == s) for s in approach3.grid())
  assert fit.basin_starts.shape[1] == 5
  np.testing.assert_array_equal(fit.basin_starts[0], fit.theta)


@pytest.mark.parametrize("seed", [0, 2])
def test_a_flat_valley_is_not_reported_as_reached_only_from_the_boundary(seed):
  """Few budgets and a steep data term (like the default CPU sweep) leave a long, flat valley where
  the loose grid phase stops short of the optimum; the interior starts that polishing takes
  there count as reaching it, so no spurious boundary warning is raised."""
  law = synthetic.Law(E=1.9, A=12.7, B=8.5e4, alpha=0.34, beta=0.91)
  runs = synthetic.isoflop_runs(
    law, budgets=(1e11, 3e11, 1e12), sizes=6, span=5.0, noise=0.01, seed=seed
  )
  fit = approach3.fit_grid(approach3.Data.from_arrays(runs["N"], runs["D"], runs["loss"]), 1e-3)
  assert fit.starts_reaching_optimum >= approach3.POLISH_STARTS // 2
  assert not fit.winning_start_on_boundary, fit.winning_start


def test_too_few_runs_is_a_fit_error():
  with pytest.raises(FitError, match="Approach 3 needs at least 8 runs"):
    approach3.check_enough(np.array([1e6, 2e6, 4e6]), np.array([1e9, 2e9, 4e9]))
  with pytest.raises(FitError, match="distinct N"):
    approach3.check_enough(np.full(10, 1e6), np.logspace(9, 10, 10))


def test_weighted_fits_match_refits_of_the_resampled_runs():
  """A bootstrap resample as integer weights gives the fit of the resampled run list."""
  runs = synthetic.isoflop_runs(synthetic.UNEQUAL, seed=1)
  data = approach3.Data.from_arrays(runs["N"], runs["D"], runs["loss"])
  fit = approach3.fit_grid(data, 1e-3)
  counts = np.random.default_rng(0).multinomial(
    data.log_N.size, np.full(data.log_N.size, 1 / data.log_N.size)
  )
  theta, objective = approach3.fit_weighted(data, 1e-3, counts[None], fit.basin_starts)
  picked = np.repeat(np.arange(counts.size), counts)
  resampled = approach3.Data(data.log_N[picked], data.log_D[picked], data.log_loss[picked])
  direct = approach3.fit_grid(resampled, 1e-3)
  assert objective[0] == pytest.approx(direct.objective, rel=1e-6)
  np.testing.assert_allclose(theta[0][3:], direct.theta[3:], atol=1e-3)
