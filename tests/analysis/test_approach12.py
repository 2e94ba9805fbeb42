"""Approaches 1 and 2 recover known exponents, and Approach 2 leaves out unbracketed budgets."""

import numpy as np
import pytest

from flopsfit.analysis import FitError, approach1, approach2

from . import synthetic


@pytest.mark.parametrize("law", [synthetic.EQUAL, synthetic.UNEQUAL], ids=["equal", "unequal"])
def test_approach2_recovers_exponents(law):
  """Parabola minima of 9-size IsoFLOP curves: a and b within 0.015 of β/(α+β), α/(α+β)."""
  for seed in range(3):
    fit = approach2.fit(synthetic.table(synthetic.isoflop_runs(law, seed=seed)))
    assert all(b["included"] for b in fit["budgets"])
    assert abs(fit["N_opt"]["exponent"] - law.a) < 0.015, (seed, fit["N_opt"])
    assert abs(fit["D_opt"]["exponent"] - law.b) < 0.015, (seed, fit["D_opt"])
    # N_opt·D_opt = C/6 on the 6ND grid, so the coefficients pair up.
    assert fit["N_opt"]["coefficient"] * fit["D_opt"]["coefficient"] == pytest.approx(
      1 / 6, rel=0.05
    )


@pytest.mark.parametrize("law", [synthetic.EQUAL, synthetic.UNEQUAL], ids=["equal", "unequal"])
def test_approach1_recovers_exponents(law):
  """Envelope over six decades of C, 17-size grids, 0.1% noise: a within 0.03 (its N values
  are grid points, so each is off the optimum by up to half a grid step)."""
  budgets = np.logspace(15, 21, 7)
  runs = synthetic.isoflop_runs(law, budgets=budgets, sizes=17, noise=0.001, seed=0)
  fit = approach1.fit(synthetic.table(runs))
  assert len(fit["envelope"]) == len(budgets)
  assert abs(fit["N_opt"]["exponent"] - law.a) < 0.03, fit["N_opt"]
  assert abs(fit["D_opt"]["exponent"] - law.b) < 0.03, fit["D_opt"]


def test_envelope_keeps_only_budgets_that_lower_the_loss():
  runs = synthetic.isoflop_runs(synthetic.EQUAL, noise=0.0)
  table = synthetic.table(runs)
  worse = table.loss.copy()
  worse[table.group == 2] += 1.0  # A whole budget worse than the one below it.
  envelope = approach1.envelope_batched(
    synthetic.dataclasses.replace(table, loss=worse), np.ones((1, table.size))
  )[0]
  assert envelope[2] == -1 and np.all(envelope[[0, 1, 3, 4]] >= 0)


def _shifted(shift_budget: int, factor: float, law=synthetic.EQUAL):
  """Runs whose grid at one budget is moved by `factor`, so its optimum is not bracketed."""
  runs = synthetic.isoflop_runs(law, noise=0.0)
  t = synthetic.table(runs)
  moved = t.group == shift_budget
  n = t.N.copy()
  n[moved] *= factor
  d = t.C / (6 * n)
  return synthetic.dataclasses.replace(t, N=n, D=d, loss=law.loss(n, d))


def test_budget_with_minimum_at_the_edge_is_left_out_with_reasons():
  fit = approach2.fit(_shifted(1, 20.0))  # All sizes far above the optimum.
  left = fit["budgets"][1]
  assert not left["included"]
  assert "N: lowest loss at the edge of the sampled range" in left["reasons"]
  assert all(b["included"] for i, b in enumerate(fit["budgets"]) if i != 1)
  assert abs(fit["N_opt"]["exponent"] - synthetic.EQUAL.a) < 0.01


def test_negative_curvature_is_left_out():
  t = synthetic.table(synthetic.isoflop_runs(synthetic.EQUAL, noise=0.0))
  loss = t.loss.copy()
  members = np.flatnonzero(t.group == 0)
  loss[members] = 3.0 + 0.1 * (np.log(t.N[members]) - np.log(t.N[members]).mean()) ** 2 * -1
  fit = approach2.fit(synthetic.dataclasses.replace(t, loss=loss))
  assert "N: curvature not positive" in fit["budgets"][0]["reasons"]
  assert not fit["budgets"][0]["included"]


def test_too_few_budgets_is_a_fit_error_with_the_curves():
  t = synthetic.table(synthetic.isoflop_runs(synthetic.EQUAL, budgets=(1e18,), noise=0.0))
  with pytest.raises(FitError, match="Approach 2 needs at least 2 budgets") as e:
    approach2.fit(t)
  assert len(e.value.details["budgets"]) == 1
  with pytest.raises(FitError, match="Approach 1 needs at least 2"):
    approach1.fit(t)


def test_stored_parabola_reproduces_its_minimum():
  fit = approach2.fit(synthetic.table(synthetic.isoflop_runs(synthetic.UNEQUAL)))
  for b in fit["budgets"]:
    c0, c1, c2 = b["fit_N"]["coefficients"]
    x = np.log(b["fit_N"]["N_opt"]) - b["fit_N"]["center"]
    assert c1 + 2 * c2 * x == pytest.approx(0, abs=1e-9)
    assert c0 + c1 * x + c2 * x * x == pytest.approx(b["fit_N"]["loss_at_opt"])
    assert b["fit_N"]["range"][0] < b["fit_N"]["N_opt"] < b["fit_N"]["range"][1]
