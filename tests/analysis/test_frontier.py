"""The compute-optimal frontier: closed form for 6ND, numerical otherwise, and they agree."""

import dataclasses

import numpy as np
import pytest

from flopsfit.analysis import frontier

from . import synthetic


def _theta(law):
  return np.array([[np.log(law.A), np.log(law.B), np.log(law.E), law.alpha, law.beta]])


@pytest.mark.parametrize("law", [synthetic.EQUAL, synthetic.UNEQUAL], ids=["equal", "unequal"])
def test_closed_form_is_the_minimum_along_the_isoflop(law):
  table = synthetic.table(synthetic.isoflop_runs(law))
  model = frontier.FlopModel.fit(table)
  assert model.exact
  C = np.array([1e18, 1e21])
  opt = frontier.optimum(_theta(law), C, model)
  np.testing.assert_allclose(opt["N_opt"][0], law.n_opt(C), rtol=1e-10)
  np.testing.assert_allclose(opt["N_opt"][0] * opt["D_opt"][0] * 6, C, rtol=1e-10)
  for c, n in zip(C, opt["N_opt"][0]):  # Nudging N either way along C = 6ND raises the loss.
    for f in (0.99, 1.01):
      assert law.loss(n * f, c / (6 * n * f)) > law.loss(n, c / (6 * n))
  assert opt["loss"][0] == pytest.approx(law.loss(opt["N_opt"][0], opt["D_opt"][0]))


def test_numerical_frontier_matches_closed_form_for_6nd():
  law = synthetic.UNEQUAL
  table = synthetic.table(synthetic.isoflop_runs(law))
  exact = frontier.FlopModel.fit(table)
  numeric = dataclasses.replace(exact, exact=False)
  C = np.logspace(17, 22, 6)
  a, b = frontier.optimum(_theta(law), C, exact), frontier.optimum(_theta(law), C, numeric)
  np.testing.assert_allclose(b["N_opt"], a["N_opt"], rtol=1e-8)
  np.testing.assert_allclose(b["D_opt"], a["D_opt"], rtol=1e-8)


def test_other_conventions_fit_a_flop_model():
  """C = 8·N^1.02·D (a cost growing faster than N): the power-law form is fitted back, and the
  frontier honours it."""
  law = synthetic.EQUAL
  table = synthetic.table(synthetic.isoflop_runs(law))
  table = dataclasses.replace(table, C=8 * table.N**1.02 * table.D)
  model = frontier.FlopModel.fit(table)
  assert not model.exact and len(model.coefficients) == 1
  assert model.coefficients[0] == pytest.approx(8, rel=1e-6)
  assert model.powers[0] == pytest.approx(1.02)
  C = np.array([1e19])
  opt = frontier.optimum(_theta(law), C, model)
  n, d = opt["N_opt"][0, 0], opt["D_opt"][0, 0]
  assert 8 * n**1.02 * d == pytest.approx(1e19, rel=1e-9)
  for f in (0.99, 1.01):
    assert law.loss(n * f, 1e19 / (8 * (n * f) ** 1.02)) > law.loss(n, d)


def test_a_transformer_cost_is_fitted_exactly_where_a_power_law_misses():
  """XLA-measured FLOPs of small transformers: φ(N) = 6.5·N + 60·N^(2/3) + 800·N^(1/3) (attention,
  embedding and head shrink relative to the matmuls as N grows). The fitted model reproduces
  every run's C, the frontier lies on C = φ(N)·D at a minimum of the loss along it, and the
  power-law form alone would miss some run by more than 5%."""
  law = synthetic.UNEQUAL
  table = synthetic.table(synthetic.isoflop_runs(law, budgets=(1e11, 3e11, 1e12), span=10.0))
  phi = lambda n: 6.5 * n + 60 * n ** (2 / 3) + 800 * n ** (1 / 3)
  table = dataclasses.replace(table, C=phi(table.N) * table.D)
  model = frontier.FlopModel.fit(table)
  assert not model.exact and model.max_rel_error < 1e-9
  np.testing.assert_allclose(model.coefficients, (6.5, 60, 800), rtol=1e-6)
  power_c, power_q = frontier._fit_power_law(np.log(table.N), table.C / table.D)
  power_error = np.max(np.abs(power_c[0] * table.N ** power_q[0] * table.D / table.C - 1))
  assert power_error > 0.05
  C = np.array([1e11, 1e13])
  opt = frontier.optimum(_theta(law), C, model)
  for c, n, d in zip(C, opt["N_opt"][0], opt["D_opt"][0]):
    assert phi(n) * d == pytest.approx(c, rel=1e-9)
    for f in (0.99, 1.01):
      assert law.loss(n * f, c / phi(n * f)) > law.loss(n, d)
