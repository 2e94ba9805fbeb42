"""Plotting draws the analysis's own numbers: its L(N, D), its φ(N), its interval level."""

import copy

import numpy as np

from flopsfit import analysis as analysis_lib
from flopsfit.analysis import approach3, frontier
from flopsfit.analysis import report as summary_lib
from flopsfit.plotting import inputs as inputs_lib
from flopsfit.plotting import parametric, report


def test_loss_surface_and_flop_model_are_the_analysis_functions(workdir, analysis):
  a3 = analysis["approach3"]
  theta = np.array([a3["theta"][name] for name in approach3.PARAM_NAMES])
  N, D = np.meshgrid(np.geomspace(1e6, 1e10, 7), np.geomspace(1e8, 1e12, 5))
  np.testing.assert_allclose(
    parametric.loss(a3["params"], N, D), approach3.predict_loss(theta, N, D), rtol=1e-12
  )
  # φ(N) of the stored flop_model is the one the analysis fits to the runs...
  model = frontier.FlopModel.fit(analysis_lib.load_workdir(workdir, analysis_lib.AnalysisOptions()))
  n = np.geomspace(1e5, 1e11, 9)
  np.testing.assert_allclose(
    parametric.flops_per_unit(analysis["flop_model"], n),
    frontier.flops_per_unit(model.coefficients, model.powers, n),
    rtol=1e-12,
  )
  # ...and closes the analysis's own frontier: C = φ(N_opt)·D_opt, L there = the stored loss.
  front = analysis["frontier"]["approach3"]
  n_opt, d_opt = np.array(front["N_opt"]["value"]), np.array(front["D_opt"]["value"])
  np.testing.assert_allclose(
    parametric.flops_per_unit(analysis["flop_model"], n_opt) * d_opt,
    analysis["frontier"]["C"],
    rtol=1e-9,
  )
  np.testing.assert_allclose(
    parametric.loss(a3["params"], n_opt, d_opt), front["loss"]["value"], rtol=1e-9
  )


def test_report_interval_follows_the_analysis(analysis):
  changed = copy.deepcopy(analysis)
  changed["bootstrap"]["interval"] = 0.9
  text = report.render(inputs_lib.from_analysis(changed), {}, [])
  assert "central 90% of" in text and "90% interval in brackets" in text
  assert "95%" not in text
  assert "intervals: 90% bootstrap" in summary_lib.summary(changed)
  changed["bootstrap"]["samples"] = 0
  assert "no intervals: no bootstrap" in report.render(inputs_lib.from_analysis(changed), {}, [])
