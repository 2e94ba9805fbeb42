"""The four binaries in a row, as a user runs them, on a sweep small enough for a test."""

import glob
import importlib.util
import json
import os
import subprocess
import sys

import pytest
from conftest import write_config_file, xla_flags

from flopsfit.sweep import planner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(module, *args):
  env = {**os.environ, "XLA_FLAGS": xla_flags(2)}
  proc = subprocess.run(
    [sys.executable, "-m", module, *args],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert proc.returncode == 0, f"{module} failed:\n{proc.stderr[-3000:]}"
  return proc.stdout


def test_plan_train_analyze_plot(sweep_config, tmp_path):
  config = sweep_config
  config.analysis.bootstrap_samples = 50
  path = write_config_file(tmp_path / "config.py", config)
  plan_table = _run("flopsfit.plan", f"--config={path}")
  assert "total:" in plan_table and "c3e+09-" in plan_table
  summary = _run("flopsfit.train", f"--config={path}")
  plan = json.load(open(os.path.join(config.workdir, "sweep.json")))
  assert len(plan["runs"]) >= 5
  for run in plan["runs"]:
    assert run["run_id"] in summary
    result = json.load(open(os.path.join(config.workdir, "runs", run["run_id"], "result.json")))
    assert result["status"] == "completed"
    assert result["flops"]["xla"] == pytest.approx(run["spent_flops"])
    assert (result["learning_rate"], result["batch_size"]) == (
      run["learning_rate"],
      run["batch_size"],
    )
  _run("flopsfit.analyze", f"--config={path}")
  laws = json.load(open(os.path.join(config.workdir, "scaling_laws.json")))
  assert len(laws["runs"]) == len(plan["runs"])
  # One size below, at and above the law's optimum at twice the largest budget, trained into
  # validation/ (not runs/: a second analysis fits the same runs); a re-run resumes, training
  # nothing.
  validated = _run("flopsfit.validate", f"--config={path}", "--factor=2")
  check = json.load(open(os.path.join(config.workdir, "validation.json")))
  assert check["budget"] == pytest.approx(6e9) and len(check["runs"]) == 3
  assert f"verdict: {check['verdict']}" in validated and check["approach"] in validated
  assert " trained" not in _run("flopsfit.validate", f"--config={path}", "--factor=2")
  _run("flopsfit.analyze", f"--config={path}")
  assert json.load(open(os.path.join(config.workdir, "scaling_laws.json")))["runs"] == laws["runs"]
  _run("flopsfit.plot", f"--config={path}")
  pngs = {os.path.basename(p) for p in glob.glob(os.path.join(config.workdir, "plots", "*.png"))}
  assert {"isoflop.png", "training_curves.png"} <= pngs
  report = open(os.path.join(config.workdir, "plots", "report.md")).read()
  # The report states the hyperparameters the runs used (set per run by the sweep's rule).
  lrs = sorted({r["learning_rate"] for r in plan["runs"]})
  lr_text = f"{lrs[0]:.3g}" if len(lrs) == 1 else f"{lrs[0]:.3g} to {lrs[-1]:.3g} across runs"
  assert f"lr `{lr_text}`" in report and f"per-run rule `{config.hparams.factory}`" in report
  assert "## Validation beyond the sweep" in report and f"**{check['verdict']}**" in report


@pytest.mark.parametrize("config_file", sorted(glob.glob(os.path.join(ROOT, "configs", "*.py"))))
def test_every_config_has_a_quick_sweep(config_file):
  spec = importlib.util.spec_from_file_location("config", config_file)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config("quick")
  assert len(planner.budgets_of(config.sweep)) >= 2
  assert config.sweep.shapes_per_budget >= 4
  assert "python -m flopsfit" in module.__doc__ and "quick" in module.__doc__
