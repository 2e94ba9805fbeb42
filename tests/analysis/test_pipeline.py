"""The whole analysis: bootstrap coverage, too-few-points messages, predictions, held-out, JSON."""

import json
import os

import pytest

from flopsfit.analysis import AnalysisOptions, analyze_table, analyze_workdir

from . import synthetic


def _covers(estimate, truth):
  return estimate["lo"] <= truth <= estimate["hi"]


def test_bootstrap_intervals_cover_the_truth():
  """Over 4 data sets (α = β and α ≠ β, 0.4% noise) and 5 quantities, 200 resamples each, the
  95% intervals cover the generating values at least 17 times in 20, and are not uselessly wide."""
  checks, widths = [], []
  for law in (synthetic.EQUAL, synthetic.UNEQUAL):
    for seed in (0, 1):
      out = analyze_table(
        synthetic.table(synthetic.isoflop_runs(law, seed=seed)),
        AnalysisOptions(bootstrap_samples=200, seed=seed),
      )
      p = out["approach3"]["params"]
      checks += [
        _covers(p["alpha"], law.alpha),
        _covers(p["beta"], law.beta),
        _covers(p["a"], law.a),
        _covers(p["E"], law.E),
        _covers(out["approach2"]["N_opt"]["exponent"], law.a),
      ]
      widths += [
        p["alpha"]["hi"] - p["alpha"]["lo"],
        p["a"]["hi"] - p["a"]["lo"],
        out["approach2"]["N_opt"]["exponent"]["hi"] - out["approach2"]["N_opt"]["exponent"]["lo"],
      ]
      assert out["bootstrap"]["failed"] == {"approach1": 0, "approach2": 0, "approach3": 0}
  assert sum(checks) >= 17, checks
  assert max(widths) < 0.12, widths


def test_each_approach_fails_alone_with_a_message():
  """One budget: Approaches 1 and 2 and the held-out check say why; Approach 3 still fits."""
  one_budget = synthetic.table(synthetic.isoflop_runs(synthetic.EQUAL, budgets=(1e18,), sizes=9))
  out = analyze_table(one_budget, AnalysisOptions(bootstrap_samples=20))
  assert out["approach1"]["status"] == "failed"
  assert "Approach 1 needs at least 2 budgets" in out["approach1"]["message"]
  assert out["approach2"]["status"] == "failed"
  assert len(out["approach2"]["budgets"]) == 1  # The curve is still there to plot.
  assert out["holdout"]["status"] == "failed"
  assert out["approach3"]["status"] == "ok"
  assert any(w.startswith("approach2: Approach 2 needs") for w in out["warnings"])
  # Six runs: too few for Approach 3, while Approaches 1 and 2 fit.
  small = synthetic.table(
    synthetic.isoflop_runs(synthetic.EQUAL, budgets=(1e17, 1e19), sizes=3, noise=0.0)
  )
  out = analyze_table(small, AnalysisOptions(bootstrap_samples=20))
  assert out["approach3"]["status"] == "failed"
  assert "Approach 3 needs at least 8 runs" in out["approach3"]["message"]
  assert out["approach1"]["status"] == out["approach2"]["status"] == "ok"
  assert "loss" not in out["predictions"][0]["approach2"]


@pytest.fixture(scope="module")
def unequal_out():
  return analyze_table(
    synthetic.table(synthetic.isoflop_runs(synthetic.UNEQUAL)),
    AnalysisOptions(bootstrap_samples=100, predict=(1e18, 1e21)),
  )


def test_predictions_table_and_frontier_bands(unequal_out):
  out = unequal_out
  rows = out["predictions"]
  assert [r["C"] for r in rows] == [1e18, 1e21]
  assert [r["extrapolation"] for r in rows] == [False, True]
  law = synthetic.UNEQUAL
  for row in rows:
    a3 = row["approach3"]
    assert a3["N_opt"]["lo"] <= a3["N_opt"]["value"] <= a3["N_opt"]["hi"]
    assert a3["D_per_N"]["value"] == pytest.approx(a3["D_opt"]["value"] / a3["N_opt"]["value"])
    assert a3["N_opt"]["value"] == pytest.approx(law.n_opt(row["C"]), rel=0.25)
    assert a3["loss"]["value"] == pytest.approx(
      law.loss(law.n_opt(row["C"]), row["C"] / 6 / law.n_opt(row["C"])), rel=0.03
    )
  band = out["frontier"]
  assert len(band["C"]) == 41 and band["C"][-1] == pytest.approx(10 * 1e19)
  for name in ("approach1", "approach2", "approach3"):
    n = band[name]["N_opt"]
    assert all(lo <= v <= hi for lo, v, hi in zip(n["lo"], n["value"], n["hi"]))


def test_held_out_budget_is_predicted(unequal_out):
  hold = unequal_out["holdout"]
  assert hold["status"] == "ok" and hold["budget"] == 1e19 and hold["num_runs"] == 9
  assert hold["approach3"]["mean_abs_rel_error"] < 0.01
  assert len(hold["approach3"]["runs"]) == 9
  assert abs(hold["approach2"]["N_opt_rel_error"]) < 0.2


def test_output_is_strict_json_with_every_section(unequal_out):
  text = json.dumps(unequal_out, allow_nan=False)
  out = json.loads(text)
  assert out["version"] == 1
  for key in (
    "source",
    "conventions",
    "options",
    "runs",
    "excluded_runs",
    "budgets",
    "flop_model",
    "approach1",
    "approach2",
    "approach3",
    "bootstrap",
    "frontier",
    "predictions",
    "holdout",
    "warnings",
  ):
    assert key in out, key
  a3 = out["approach3"]
  assert a3["frontier_method"] == "closed_form"
  assert len(a3["residuals"]) == len(out["runs"])
  assert a3["objective_form"].startswith("sum")
  assert set(a3["winning_start"]) == {"a", "b", "e", "alpha", "beta"}


def test_workdir_analysis_writes_json_and_warns_about_excluded_runs(tmp_path):
  workdir = str(tmp_path / "wd")
  synthetic.write_workdir(workdir, synthetic.isoflop_runs(synthetic.EQUAL))
  diverged = {
    "run_id": "c1e+18-bad-s0",
    "status": "diverged",
    "error": "non-finite loss",
    "final_eval_loss": None,
  }
  from flopsfit import workdir as workdir_lib

  workdir_lib.write_json_atomic(
    os.path.join(workdir, "runs", "c1e+18-bad-s0", "result.json"), diverged
  )
  out = analyze_workdir(workdir, AnalysisOptions(bootstrap_samples=20))
  with open(os.path.join(workdir, "scaling_laws.json")) as f:
    written = json.load(f)
  assert written["version"] == 1 and len(written["runs"]) == 45
  assert written["conventions"] == {"flops": "xla", "params": "non_embedding", "data": "tokens"}
  assert written["excluded_runs"] == [
    {"run_id": "c1e+18-bad-s0", "reason": "status 'diverged': non-finite loss"}
  ]
  assert any("c1e+18-bad-s0" in w and "excluded" in w for w in written["warnings"])
  assert out["approach3"]["frontier_method"] == "numerical"  # C = 6.3·N·D here.
  flop = out["flop_model"]
  phi = sum(c * 1e6**q for c, q in zip(flop["coefficients"], flop["powers"]))
  assert phi == pytest.approx(6.3e6) and flop["max_rel_error"] < 1e-9


def test_all_runs_excluded_still_writes_a_report(tmp_path):
  from flopsfit import workdir as workdir_lib
  from flopsfit.analysis import report

  workdir = str(tmp_path / "wd")
  for i in range(3):
    workdir_lib.write_json_atomic(
      os.path.join(workdir, "runs", f"r{i}", "result.json"),
      {"run_id": f"r{i}", "status": "failed", "error": "OOM"},
    )
  out = analyze_workdir(workdir, AnalysisOptions(bootstrap_samples=10))
  assert out["approach3"] == {"status": "failed", "message": "no usable runs"}
  assert len(out["excluded_runs"]) == 3
  assert "no usable runs" in report.summary(out)
  assert os.path.exists(os.path.join(workdir, "scaling_laws.json"))
