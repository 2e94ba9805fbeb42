"""The cooldown sweep design: its plan's FLOP accounting, its training, its config errors."""

import pytest

from flopsfit import workdir as workdir_lib
from flopsfit.analysis import results
from flopsfit.analysis.options import AnalysisOptions
from flopsfit.config_check import ConfigError
from flopsfit.sweep import cooldown, planner, runner


def _cooldown_plan(config) -> dict:
  config.sweep.design = "cooldown"
  config.sweep.cooldown_fraction = 0.2
  return planner.plan_sweep(config, probe=False)


def test_cooldown_plan_accounts_every_point_within_one_step(sweep_config):
  plan = _cooldown_plan(sweep_config)
  trunks = {r["run_id"]: r for r in plan["runs"] if cooldown.is_trunk(r)}
  branches = [r for r in plan["runs"] if not cooldown.is_trunk(r)]
  assert trunks and len(branches) > len(trunks), "a trunk gives several points"
  for b in branches:
    fps, role = b["flops_per_step"], b["cooldown"]
    assert 0 <= b["budget_flops"] - b["spent_flops"] < fps, "within one step of the budget"
    assert b["spent_flops"] == (role["branch_step"] + role["cooldown_steps"]) * fps
    assert role["cooldown_steps"] == round(0.2 * b["steps"])
    trunk = trunks[role["trunk"]]
    assert trunk["shape"] == b["shape"] and role["branch_step"] in trunk["cooldown"]["branch_steps"]
  for t in trunks.values():
    assert t["steps"] == max(t["cooldown"]["branch_steps"])
  design = plan["design"]
  spent = sum(t["steps"] * t["flops_per_step"] for t in trunks.values()) + sum(
    b["cooldown"]["cooldown_steps"] * b["flops_per_step"] for b in branches
  )
  assert design["name"] == "cooldown" and design["total_flops"] == pytest.approx(spent)
  assert design["points_flops"] == pytest.approx(sum(b["spent_flops"] for b in branches))
  assert design["total_flops"] < design["points_flops"], "trunks are shared, not re-trained"
  assert "cooldown design:" in planner.format_plan(plan)


def test_a_branch_trains_after_its_trunk_and_analysis_skips_the_trunk(sweep_config):
  sweep_config.train.steps_per_call = 1  # one compiled step, not also a scan of several
  plan = planner.load_or_plan(_cooldown_plan_config(sweep_config), probe=False)
  branch = min((r for r in plan["runs"] if not cooldown.is_trunk(r)), key=lambda r: r["steps"])
  rows = runner.run_sweep(sweep_config, run_ids=[branch["run_id"]])  # selects its trunk too
  assert [r["run_id"] for r in rows] == [branch["cooldown"]["trunk"], branch["run_id"]]
  result = workdir_lib.read_json_object(
    workdir_lib.result_path(sweep_config.workdir, branch["run_id"])
  )
  assert result["status"] == "completed"
  fps = result["flops_per_step"]
  assert 0 <= branch["budget_flops"] - result["flops"]["xla"] < fps
  assert result["cooldown"]["branch_step"] == branch["cooldown"]["branch_step"]
  table = results.load_workdir(sweep_config.workdir, AnalysisOptions(bootstrap_samples=0))
  assert list(table.run_id) == [branch["run_id"]]
  assert "trunk" in table.excluded[0]["reason"]


def _cooldown_plan_config(config):
  config.sweep.design = "cooldown"
  return config


@pytest.mark.parametrize(
  "field, value, message",
  [
    ("design", "grid", r"config\.sweep\.design: expected one of \('isoflop', 'cooldown'\)"),
    ("cooldown_fraction", 1.5, r"config\.sweep\.cooldown_fraction: expected a fraction"),
    ("cooldown_fraction", 0.96, r"config\.sweep\.cooldown_fraction: 0\.96 plus .*warmup"),
  ],
)
def test_bad_design_settings_are_one_line_errors(sweep_config, field, value, message):
  sweep_config.sweep.design = "cooldown"
  sweep_config.sweep[field] = value
  with pytest.raises(ConfigError, match=message) as e:
    planner.plan_sweep(sweep_config, probe=False)
  assert "\n" not in str(e.value)


def test_isoflop_design_is_the_default(sweep_config):
  assert cooldown.design_of(sweep_config) == "isoflop"
  plan = planner.plan_sweep(sweep_config, probe=False)
  assert plan["design"]["name"] == "isoflop" and plan["design"]["trunks"] == 0
  assert plan["design"]["total_flops"] == plan["design"]["points_flops"]
  assert not any("cooldown" in r for r in plan["runs"])


def _runs() -> list[dict]:
  trunk = {"run_id": "trunk-d8-L1-s0", "cooldown": {"role": "trunk", "branch_steps": [8, 24]}}
  branches = [
    {"run_id": f"c{c}-d8-L1-s0", "cooldown": {"role": "branch", "trunk": trunk["run_id"]}}
    for c in ("1e+09", "3e+09")
  ]
  return [trunk, *branches, {"run_id": "c1e+09-d16-L1-s0"}]


def test_selecting_a_branch_selects_its_trunk_and_shards_keep_them_together():
  plan = {"runs": _runs()}
  chosen = runner.select_runs(plan, ["c3e+09-d8-L1-s0"])
  assert [r["run_id"] for r in chosen] == ["trunk-d8-L1-s0", "c3e+09-d8-L1-s0"]
  shard0 = [r["run_id"] for r in runner.select_runs(plan, None, 0, 2)]
  shard1 = [r["run_id"] for r in runner.select_runs(plan, None, 1, 2)]
  assert shard0 == ["trunk-d8-L1-s0", "c1e+09-d8-L1-s0", "c3e+09-d8-L1-s0"]
  assert shard1 == ["c1e+09-d16-L1-s0"]


def test_a_branch_waits_for_its_trunk_and_fails_with_a_failed_trunk(tmp_path):
  workdir, branch = str(tmp_path), _runs()[1]
  assert runner._trunk_problem(workdir, branch, "sweep-1") == "wait"
  path = workdir_lib.result_path(workdir, "trunk-d8-L1-s0")
  workdir_lib.write_json_atomic(path, {"status": "diverged", "error": "non-finite loss"})
  assert runner._trunk_problem(workdir, branch, "sweep-1") == (
    "its trunk trunk-d8-L1-s0 diverged: non-finite loss"
  )
  workdir_lib.write_json_atomic(path, {"status": "completed"})
  assert runner._trunk_problem(workdir, branch, "sweep-1") is None
  assert runner._trunk_problem(workdir, _runs()[3], "sweep-1") is None  # not a branch


def test_the_time_estimate_prices_a_branch_at_its_cooldown_steps():
  from flopsfit.sweep import probe

  runs = [  # as the planner writes them (sweep/cooldown.py): train_flops is what a run trains
    {"run_id": "trunk", "steps": 100, "flops_per_step": 1e6, "train_flops": 1e8, "batch_size": 8},
    {
      "run_id": "branch",
      "batch_size": 8,
      "steps": 100,
      "flops_per_step": 1e6,
      "train_flops": 2e7,
      "cooldown": {"role": "branch", "cooldown_steps": 20},
    },
    {"run_id": "isoflop", "shape": {"d": 2}, "steps": 100, "flops_per_step": 1e6, "batch_size": 8},
  ]
  runs[2]["spent_flops"] = 1e8
  seconds = probe._per_run([(1e6, 0.01, 2.0)], runs)["seconds"]  # 10 ms a step, 2 s compile
  assert seconds == pytest.approx({"trunk": 3.0, "branch": 2.2, "isoflop": 3.0})
