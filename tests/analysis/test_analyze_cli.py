"""`python -m flopsfit.analyze` end to end: a CSV of runs, a config's workdir, bad input."""

import json
import os
import subprocess
import sys

import numpy as np

from . import synthetic

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _analyze(*args, cwd=REPO):
  return subprocess.run(
    [sys.executable, "-m", "flopsfit.analyze", *args],
    cwd=cwd,
    capture_output=True,
    text=True,
    timeout=120,
  )


def _csv(tmp_path):
  runs = synthetic.isoflop_runs(synthetic.UNEQUAL)
  path = tmp_path / "runs.csv"
  with open(path, "w") as f:
    f.write("params,tokens,final loss\n")
    for n, d, l in zip(runs["N"], runs["D"], runs["loss"]):
      f.write(f"{float(n)!r},{float(d)!r},{float(l)!r}\n")
  return str(path)


def test_csv_end_to_end_writes_scaling_laws_json(tmp_path):
  out = tmp_path / "out" / "laws.json"
  proc = _analyze(
    f"--results={_csv(tmp_path)}",
    "--n_column=params",
    "--d_column=tokens",
    "--loss_column=final loss",
    f"--out={out}",
    "--bootstrap_samples=30",
    "--predict=1e20,1e21",
  )
  assert proc.returncode == 0, proc.stderr
  result = json.loads(out.read_text())
  assert result["version"] == 1
  assert result["conventions"]["params"] == "csv column 'params'"
  assert [row["C"] for row in result["predictions"]] == [1e20, 1e21]
  assert abs(result["approach3"]["params"]["a"]["value"] - synthetic.UNEQUAL.a) < 0.02
  assert "Approach 3" in proc.stdout and f"wrote {out}" in proc.stdout


def test_bad_column_is_a_one_line_error(tmp_path):
  proc = _analyze(
    f"--results={_csv(tmp_path)}",
    "--n_column=N",
    "--d_column=tokens",
    f"--out={tmp_path / 'x.json'}",
  )
  assert proc.returncode != 0
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1, proc.stderr
  assert "no column 'N' (--n_column)" in lines[0] and "runs.csv" in lines[0]
  assert not (tmp_path / "x.json").exists()


def test_bad_predict_flag_is_a_one_line_error(tmp_path):
  proc = _analyze(
    f"--results={_csv(tmp_path)}",
    "--n_column=params",
    "--d_column=tokens",
    "--loss_column=final loss",
    "--predict=1e20,lots",
  )
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines() == [
    "error: --predict: expected numbers like 1e20,1e21, found '1e20,lots'"
  ]


def test_config_workdir_and_analysis_section(tmp_path):
  workdir = tmp_path / "wd"
  synthetic.write_workdir(str(workdir), synthetic.isoflop_runs(synthetic.EQUAL))
  config = tmp_path / "config.py"
  config.write_text(
    "import ml_collections\n\n\n"
    "def get_config():\n"
    "  config = ml_collections.ConfigDict()\n"
    f"  config.workdir = {str(workdir)!r}\n"
    "  config.analysis = ml_collections.ConfigDict(dict(\n"
    "      flops_convention='6ND_non_embedding', bootstrap_samples=20, seed=3))\n"
    "  return config\n"
  )
  proc = _analyze(f"--config={config}")
  assert proc.returncode == 0, proc.stderr
  result = json.loads((workdir / "scaling_laws.json").read_text())
  assert result["conventions"]["flops"] == "6ND_non_embedding"
  assert result["options"]["seed"] == 3 and result["bootstrap"]["samples"] == 20
  assert result["approach3"]["frontier_method"] == "closed_form"
  assert np.isclose(result["approach3"]["params"]["alpha"]["value"], 0.34, atol=0.03)
