"""The cooldown design's points, drawn from a known law, go through the workdir analysis path
(trunks left out, branches grouped by their IsoFLOP budgets) and give the law back."""

import dataclasses
import os

import numpy as np
import pytest

from flopsfit import workdir as workdir_lib
from flopsfit.analysis import bootstrap, pipeline, results
from flopsfit.analysis.options import AnalysisOptions
from tests.analysis import synthetic

LAW = synthetic.UNEQUAL
BUDGETS = synthetic.BUDGETS


def _write(workdir: str, run_id: str, n: float, d: float, budget: float, loss: float, role) -> None:
  result = {
    "run_id": run_id,
    "status": "completed",
    "budget_flops": budget,
    "tokens": d,
    "params": {"total": n + 1000, "non_embedding": n},
    "flops": {"xla": 6 * n * d},
    "final_eval_loss": loss,
    "cooldown": role,
  }
  workdir_lib.write_json_atomic(
    os.path.join(workdir_lib.run_dir(workdir, run_id), workdir_lib.RESULT), result
  )


def write_cooldown_workdir(
  workdir: str, noise: float = 0.004, seed: int = 0, trunk_noise: float = 0.0
) -> int:
  """One trunk per shape (N log-spaced over the budgets' optima), a branch at every budget where
  the shape trains on 1/6 to 6 times its compute-optimal D: the planner's design. Each trunk's
  branches share a log-normal offset of scale `trunk_noise` (the trunk's luck), on top of their
  own noise."""
  rng = np.random.default_rng(seed)
  optima = LAW.n_opt(np.asarray(BUDGETS))
  points = 0
  for n in np.geomspace(optima[0] / 6, optima[-1] * 6, 12):
    trunk = f"trunk-n{n:.0f}-s0"
    luck = np.exp(trunk_noise * rng.standard_normal())
    steps = []
    for budget, n_opt in zip(BUDGETS, optima):
      # The end shapes sit at exactly 1/6 and 6 times an optimum, up to geomspace's rounding
      # (numpy 2.4 puts the last one an ulp above 6).
      if not 1 / 6 * (1 - 1e-9) <= n / n_opt <= 6 * (1 + 1e-9):
        continue
      d = budget / (6 * n)
      loss = LAW.loss(n, d) * luck * np.exp(noise * rng.standard_normal())
      steps.append(len(steps) * 100 + 80)
      role = {"role": "branch", "trunk": trunk, "branch_step": steps[-1], "cooldown_steps": 20}
      _write(workdir, f"c{budget:.3g}-n{n:.0f}-s0", n, d, budget, loss, role)
      points += 1
    last_d = BUDGETS[-1] / (6 * n)
    trunk_role = {"role": "trunk", "branch_steps": steps}  # no cooldown: a higher loss
    _write(workdir, trunk, n, last_d, 0.8 * BUDGETS[-1], LAW.loss(n, last_d) + 0.3, trunk_role)
  return points


def test_cooldown_points_recover_the_law(tmp_path):
  workdir = str(tmp_path / "workdir")
  points = write_cooldown_workdir(workdir)
  out = pipeline.analyze_workdir(workdir, AnalysisOptions(bootstrap_samples=64), write=False)
  assert len(out["runs"]) == points, "every branch is a point"
  trunks = [e for e in out["excluded_runs"] if e["run_id"].startswith("trunk-")]
  assert len(trunks) == 12 and "trunk of the cooldown design" in trunks[0]["reason"]
  params = out["approach3"]["params"]
  assert params["E"]["value"] == pytest.approx(LAW.E, rel=0.02)
  assert params["alpha"]["value"] == pytest.approx(LAW.alpha, abs=0.05)
  assert params["beta"]["value"] == pytest.approx(LAW.beta, abs=0.05)
  assert params["E"]["lo"] <= LAW.E <= params["E"]["hi"]
  assert out["approach2"]["N_opt"]["exponent"]["value"] == pytest.approx(LAW.a, abs=0.05)
  assert all(b["num_runs"] >= 5 for b in out["budgets"]), "several shapes per budget"
  assert out["bootstrap"]["unit"] == "trunk with its branches"
  assert not any("bootstrap_by_budget" in w for w in out["warnings"])


def test_asking_to_resample_within_budgets_is_answered_with_a_warning(tmp_path):
  """A trunk's branches span budgets, so within-budget resampling cannot keep them together:
  the request is not silently dropped."""
  workdir = str(tmp_path / "workdir")
  write_cooldown_workdir(workdir)
  options = AnalysisOptions(bootstrap_samples=2, bootstrap_by_budget=True)
  out = pipeline.analyze_workdir(workdir, options, write=False)
  assert out["bootstrap"]["by_budget"] is False
  assert any("bootstrap_by_budget=True ignored" in w for w in out["warnings"])


def test_the_bootstrap_draws_a_trunk_with_all_its_branches(tmp_path):
  """Branches of one trunk share its noise: every resample weighs them alike, and it draws as
  many trunks as there are."""
  workdir = str(tmp_path / "workdir")
  write_cooldown_workdir(workdir)
  table = results.load_workdir(workdir, AnalysisOptions())
  counts = bootstrap.lineage_counts(table, samples=300, seed=0)
  lineage = table.lineages()
  assert lineage.max() + 1 == 12 and table.has_shared_lineages()
  first = np.array([np.flatnonzero(lineage == t)[0] for t in range(12)])
  for t in range(12):
    assert np.all(counts[:, lineage == t] == counts[:, [first[t]]])
  assert np.all(counts[:, first].sum(axis=1) == 12)
  assert np.mean(counts[:, first] == 0) == pytest.approx((11 / 12) ** 12, abs=0.03)


def test_a_trunks_shared_noise_widens_the_intervals(tmp_path):
  """With noise shared by a trunk's branches, drawing runs one by one would treat them as
  independent evidence; drawing trunks gives wider intervals on the same points."""
  workdir = str(tmp_path / "workdir")
  write_cooldown_workdir(workdir, noise=0.001, trunk_noise=0.02)
  options = AnalysisOptions(bootstrap_samples=64)
  by_trunk = pipeline.analyze_workdir(workdir, options, write=False)
  table = results.load_workdir(workdir, options)
  by_run = pipeline.analyze_table(dataclasses.replace(table, lineage=None), options)
  assert by_run["bootstrap"]["unit"] == "run"

  def width(out):
    e = out["approach3"]["params"]["E"]
    return e["hi"] - e["lo"]

  assert width(by_trunk) > 1.5 * width(by_run), (width(by_trunk), width(by_run))
