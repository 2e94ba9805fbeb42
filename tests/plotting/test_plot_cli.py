"""`python -m flopsfit.plot` end to end: a config's workdir, an analysis file, bad input."""

import json
import os
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _plot(*args):
  env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
  return subprocess.run(
    [sys.executable, "-m", "flopsfit.plot", *args],
    cwd=REPO,
    env=env,
    capture_output=True,
    text=True,
    timeout=120,
  )


def test_config_without_analysis_analyzes_first_then_plots(workdir, tmp_path):
  target = str(tmp_path / "w")
  shutil.copytree(workdir, target, ignore=shutil.ignore_patterns("scaling_laws.json", "plots"))
  config = tmp_path / "config.py"
  config.write_text(
    "import ml_collections\n\n\ndef get_config():\n"
    "  config = ml_collections.ConfigDict()\n"
    f"  config.workdir = {target!r}\n"
    "  config.model = ml_collections.ConfigDict(dict(factory='my.models:Net'))\n"
    "  config.analysis = ml_collections.ConfigDict(dict(bootstrap_samples=8))\n"
    "  return config\n"
  )
  proc = _plot(f"--config={config}", "--svg")
  assert proc.returncode == 0, proc.stderr
  assert "running the analysis first" in proc.stdout
  with open(os.path.join(target, "scaling_laws.json")) as f:
    assert json.load(f)["bootstrap"]["samples"] == 8
  plots = os.path.join(target, "plots")
  for name in ("isoflop", "frontier", "loss_compute", "parametric", "training_curves", "residuals"):
    assert os.path.exists(os.path.join(plots, f"{name}.png")), name
    assert os.path.exists(os.path.join(plots, f"{name}.svg")), name
  with open(os.path.join(plots, "report.md")) as f:
    report = f.read()
  assert "model `my.models:Net`" in report and "Full config" in report
  assert "plot: error" not in proc.stderr


def test_analysis_file_plots_next_to_it(external, tmp_path):
  out, _ = external
  path = tmp_path / "laws" / "scaling_laws.json"
  path.parent.mkdir()
  path.write_text(json.dumps(out))
  proc = _plot(f"--analysis={path}")
  assert proc.returncode == 0, proc.stderr
  assert os.path.exists(tmp_path / "laws" / "plots" / "frontier.png")
  assert "training_curves: not drawn" in proc.stdout


def test_bad_analysis_file_is_a_one_line_error(tmp_path):
  for path, words in (
    (tmp_path / "none.json", "no such file"),
    (tmp_path / "bad.json", "not valid JSON"),
  ):
    if "bad" in path.name:
      path.write_text("{")
    proc = _plot(f"--analysis={path}")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(path) in lines[0] and words in lines[0]


def test_plotting_does_not_import_jax():
  code = (
    "import sys, flopsfit.plotting, flopsfit.plot\n"
    "assert 'jax' not in sys.modules, 'jax imported'\n"
  )
  proc = subprocess.run(
    [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
  )
  assert proc.returncode == 0, proc.stderr
