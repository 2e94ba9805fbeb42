"""Planning a validation: the law's optimum beyond the sweep, a size below and above it."""

import numpy as np
import pytest

from flopsfit import plugins
from flopsfit import workdir as workdir_lib
from flopsfit.sweep import planner
from flopsfit.sweep import validate as validate_lib


def _laws(workdir: str, n_at_1e9: float = 1500.0) -> None:
  """A scaling_laws.json whose Approach 3 frontier is N_opt = n_at_1e9 · (C / 1e9)^0.5."""
  grid = np.geomspace(1e9, 3e10, 9)
  n = n_at_1e9 * (grid / 1e9) ** 0.5
  band = {"value": n.tolist(), "lo": (0.8 * n).tolist(), "hi": (1.25 * n).tolist()}
  laws = {
    "budgets": [{"budget": 1e9}, {"budget": 3e9}],
    "approach3": {"status": "ok"},
    "conventions": {"flops": "xla"},
    "frontier": {"C": grid.tolist(), "approach3": {"N_opt": band}},
  }
  workdir_lib.write_json_atomic(workdir_lib.scaling_laws_path(workdir), laws)


def test_without_scaling_laws_validate_says_to_analyze_first(sweep_config):
  with pytest.raises(planner.PlanError, match=r"scaling_laws.json: cannot read.*analyze"):
    validate_lib.plan_validation(sweep_config)


def test_the_plan_trains_the_predicted_optimum_and_its_neighbours(sweep_config):
  _laws(sweep_config.workdir)
  plan = validate_lib.plan_validation(sweep_config, factor=2.0)
  assert plan["budget"] == pytest.approx(6e9) and plan["factor"] == pytest.approx(2.0)
  predicted = 1500.0 * 6**0.5
  assert plan["predicted_N_opt"]["value"] == pytest.approx(predicted, rel=1e-6)
  assert plan["approach"] == "approach3"
  runs = {r["role"]: r for r in plan["runs"]}
  rule = plugins.size_rule(sweep_config)
  assert runs["centre"]["shape"] == rule.shape_for(predicted)
  sizes = [runs[r]["params"]["non_embedding"] for r in ("below", "centre", "above")]
  assert sizes == sorted(set(sizes))
  for run in plan["runs"]:
    assert run["steps"] == int(6e9 // run["flops_per_step"]) and run["budget_flops"] == 6e9
  config = validate_lib.validation_config(sweep_config)
  assert config.workdir == workdir_lib.validation_dir(sweep_config.workdir)
