"""The plugin guide's example (examples/: a package of a model with dropout, a dataset, a loss
and a size rule, and the config that uses it) runs out of tree exactly as docs/plugins.md says:
copied elsewhere, on PYTHONPATH, through train (which plans) and analyze."""

import json
import os
import shutil
import subprocess
import sys

from conftest import xla_flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(cwd, module, *args):
  env = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([cwd, ROOT]),  # the user's package, and flopsfit
    "XLA_FLAGS": xla_flags(1),
  }
  proc = subprocess.run(
    [sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True
  )
  assert proc.returncode == 0, f"{module} failed:\n{proc.stderr[-3000:]}"
  return proc.stdout


def test_guide_example_plans_trains_and_analyzes_out_of_tree(tmp_path):
  example = str(tmp_path / "examples")
  shutil.copytree(os.path.join(ROOT, "examples"), example)
  summary = _run(example, "flopsfit.train", "--config=my_config.py:quick", "--parallel=1")
  workdir = os.path.join(example, "workdirs", "my-plugins-quick")
  plan = json.load(open(os.path.join(workdir, "sweep.json")))
  assert {r["budget_flops"] for r in plan["runs"]} == {3e9, 1e10} and len(plan["runs"]) >= 5
  for run in plan["runs"]:
    assert run["run_id"] in summary
    result = json.load(open(os.path.join(workdir, "runs", run["run_id"], "result.json")))
    assert result["status"] == "completed"
    assert result["plugins"]["model"]["factory"] == "my_plugins.model:ContextMixer"
    assert set(result["final_eval_metrics"]) >= {"loss", "xent", "accuracy"}
    assert result["final_eval_loss"] < 2.0  # chance is ln 32 = 3.47: the progressions are learned
  _run(example, "flopsfit.analyze", "--config=my_config.py:quick")
  laws = json.load(open(os.path.join(workdir, "scaling_laws.json")))
  assert len(laws["runs"]) == len(plan["runs"]) and laws["approach2"]["status"] == "ok"


def test_guide_example_size_rule_tracks_its_target():
  sys.path.insert(0, os.path.join(ROOT, "examples"))
  try:
    from my_plugins.model import WidthRule
  finally:
    sys.path.remove(os.path.join(ROOT, "examples"))
  rule = WidthRule(vocab_size=32, context=4)
  widths = [rule.shape_for(t)["width"] for t in (1e3, 1e4, 1e5)]
  assert widths == sorted(widths) and len(set(widths)) == 3
  for target, width in zip((1e3, 1e4, 1e5), widths):
    assert 0.5 < (20 * width**2 + 32 * width) / target < 2.0
