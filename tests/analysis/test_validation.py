"""The check one decade up: runs drawn from the true law pass it; a wrong law is flagged."""

import json
import os

import numpy as np
import pytest

from flopsfit import analysis, law_lookup
from flopsfit import workdir as workdir_lib
from flopsfit.analysis import validation
from tests.analysis import synthetic

LAW = synthetic.UNEQUAL
BUDGETS = (1e17, 3e17, 1e18, 3e18, 1e19)
SPREAD = 2.0  # as validate plans by default


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
  """A workdir of IsoFLOP runs from LAW (0.4% noise) and its analysis, 64 resamples."""
  workdir = str(tmp_path_factory.mktemp("validation"))
  synthetic.write_workdir(workdir, synthetic.isoflop_runs(LAW, BUDGETS, sizes=7, seed=3))
  analysis.analyze_workdir(workdir, analysis.AnalysisOptions(bootstrap_samples=64))
  return workdir


def _write_validation(workdir: str, laws: dict, budget: float) -> list[str]:
  """What `validate` trains, trained by the true law: the laws' predicted optimum at `budget`
  and sizes SPREAD times smaller and larger, each on D = budget / (6N) (result.json's xla FLOPs
  are 6.3·N·D, as in the sweep)."""
  n_pred = law_lookup.at(laws, "approach3", "N_opt", 1.05 * budget)["value"]
  runs = {"N": n_pred * SPREAD ** np.array([-1.0, 0.0, 1.0])}
  runs["D"] = budget / (6 * runs["N"])
  runs.update(C=np.full(3, budget), budget=np.full(3, budget), loss=LAW.loss(runs["N"], runs["D"]))
  vdir = workdir_lib.validation_dir(workdir)
  ids = synthetic.write_workdir(vdir, runs)
  plan = {"budget": budget, "factor": budget / max(BUDGETS), "runs": []}
  plan["runs"] = [{"run_id": i, "role": r} for i, r in zip(ids, ("below", "centre", "above"))]
  workdir_lib.write_json_atomic(workdir_lib.sweep_path(vdir), plan)
  return ids


def test_runs_from_the_true_law_fall_inside_the_predictions(swept):
  laws = json.load(open(workdir_lib.scaling_laws_path(swept)))
  ids = _write_validation(swept, laws, 1e20)
  out = validation.validate_workdir(swept)
  assert out == json.load(open(os.path.join(swept, "validation.json")))
  assert out["verdict"] == "passed", out["problems"]
  assert [r["run_id"] for r in out["runs"]] == ids and out["factor"] == pytest.approx(10.0)
  assert out["checks"]["loss"]["inside"] and out["checks"]["N_opt_approach3"]["inside"]
  assert out["approach"] == "approach3"  # the verdict rests on it; the others are information
  assert [n for n, c in out["checks"].items() if c["decides"]] == ["loss", "N_opt_approach3"]
  assert out["observed"]["edge"] is None
  assert all(abs(r["rel_error"]) < 0.02 for r in out["runs"])
  # The validation runs stay out of the sweep's analysis.
  again = analysis.analyze_workdir(swept, analysis.AnalysisOptions(bootstrap_samples=0), False)
  assert len(again["runs"]) == len(laws["runs"])


def test_a_wrong_law_is_flagged(swept, tmp_path):
  """scaling_laws.json edited to predict 5 times larger optimal models at 0.05 nats lower loss:
  `validate` trains around that size, the valley's minimum lies below its smallest run, and the
  centre run's loss is above the predicted interval."""
  laws = json.load(open(workdir_lib.scaling_laws_path(swept)))
  for approach in ("approach2", "approach3"):
    band = laws["frontier"][approach]["N_opt"]
    for key in ("value", "lo", "hi"):
      band[key] = [5 * v for v in band[key]]
  loss = laws["frontier"]["approach3"]["loss"]
  for key in ("value", "lo", "hi"):
    loss[key] = [v - 0.05 for v in loss[key]]
  wrong = str(tmp_path / "wrong")
  os.makedirs(wrong)
  workdir_lib.write_json_atomic(workdir_lib.scaling_laws_path(wrong), laws)
  _write_validation(wrong, laws, 1e20)
  out = validation.validate_workdir(wrong)
  assert out["verdict"] == "failed"
  assert out["observed"]["edge"] == "smallest" and out["observed"]["N_opt"] is None
  assert out["checks"]["loss"]["inside"] is False
  assert any("loss of the predicted optimum" in p for p in out["problems"])
  assert any("no interior minimum" in p for p in out["problems"])
  assert "verdict: failed" in validation.format_validation(out)


def test_a_missing_run_makes_it_inconclusive(swept, tmp_path):
  laws = json.load(open(workdir_lib.scaling_laws_path(swept)))
  partial = str(tmp_path / "partial")
  os.makedirs(partial)
  workdir_lib.write_json_atomic(workdir_lib.scaling_laws_path(partial), laws)
  ids = _write_validation(partial, laws, 1e20)
  os.remove(workdir_lib.result_path(workdir_lib.validation_dir(partial), ids[2]))
  out = validation.validate_workdir(partial)
  assert out["missing_runs"] == [ids[2]] and out["verdict"] != "passed"
  assert f"run {ids[2]} did not complete" in out["problems"]
