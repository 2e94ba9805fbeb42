"""The batched L-BFGS agrees with scipy on problems with known minima."""

import numpy as np
from scipy import optimize

from flopsfit.analysis import batched_lbfgs


def _rosenbrock(x, idx):
  a, b = x[:, 0], x[:, 1]
  f = (1 - a) ** 2 + 100 * (b - a * a) ** 2
  g = np.stack([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)], axis=1)
  return f, g


def test_minimizes_many_rosenbrocks_at_once():
  starts = np.random.default_rng(0).uniform(-2, 2, size=(50, 2))
  result = batched_lbfgs.minimize(_rosenbrock, starts, gtol=1e-10, ftol=0.0, max_iter=1000)
  np.testing.assert_allclose(result.x, np.ones_like(starts), atol=1e-6)
  assert result.converged.all()


def test_problems_are_independent():
  """Each problem's path does not depend on which others are in the batch."""
  scales = np.array([1.0, 10.0, 100.0])

  def quadratic(x, idx):
    return 0.5 * (scales[idx, None] * x * x).sum(1), scales[idx, None] * x

  together = batched_lbfgs.minimize(quadratic, np.ones((3, 4)))
  alone = batched_lbfgs.minimize(lambda x, idx: quadratic(x, idx + 2), np.ones((1, 4)))
  np.testing.assert_array_equal(together.x[2], alone.x[0])
  assert together.iterations[2] == alone.iterations[0]


def test_matches_scipy_on_a_shifted_quartic():
  target = np.array([0.3, -1.2, 2.0])

  def fun(x, idx):
    d = x - target
    return (d**4).sum(1) + (d**2).sum(1), 4 * d**3 + 2 * d

  ours = batched_lbfgs.minimize(fun, np.zeros((1, 3)), gtol=1e-12, ftol=0.0)
  ref = optimize.minimize(
    lambda x: tuple(v[0] for v in fun(x[None], None)),
    np.zeros(3),
    jac=True,
    method="L-BFGS-B",
    options={"gtol": 1e-12, "ftol": 0},
  )
  np.testing.assert_allclose(ours.x[0], ref.x, atol=1e-7)
  np.testing.assert_allclose(ours.x[0], target, atol=1e-7)
