"""`python -m flopsfit.train` as a user runs it: config arguments, overrides, errors."""

import json
import os
import subprocess
import sys

from conftest import xla_flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _train(*args, workdir):
  env = {**os.environ, "XLA_FLAGS": xla_flags(2)}
  return subprocess.run(
    [sys.executable, "-m", "flopsfit.train", "--single", *args, f"--config.workdir={workdir}"],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
  )


def test_config_string_and_overrides_reach_the_run(tmp_path):
  proc = _train(
    "--config=configs/gpt.py:size=tiny",
    "--config.train.budget_flops=1e9",
    "--config.seq_len=32",
    "--config.train.batch_size=8",
    "--config.eval.tokens=1024",
    "--config.eval.batch_size=16",
    "--config.optim.schedule=wsd",
    "--peak_flops=1e12",
    workdir=tmp_path,
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  run_dir = tmp_path / "runs" / "c1e+09-d16-L2-s0"
  result = json.loads((run_dir / "result.json").read_text())
  assert result["status"] == "completed"
  config = json.loads((run_dir / "config.json").read_text())["config"]
  assert config["optim"]["schedule"] == "wsd"
  # One override of seq_len reaches both the model's data and the dataset (a shared reference).
  assert config["dataset"]["kwargs"]["seq_len"] == 32 and result["tokens_per_step"] == 8 * 32
  assert "step" in proc.stderr and "MFU" in proc.stderr and "final eval loss" in proc.stderr
  # --peak_flops is per device; MFU is against the whole mesh's peak (2 devices here).
  assert result["peak_flops"] == 2e12 and "--peak_flops" in result["peak_flops_source"]
  assert result["mfu"] == result["flops"]["xla"] / result["wall_seconds"] / 2e12


def test_bad_input_is_one_line_and_nonzero(tmp_path):
  proc = _train(
    "--config=configs/gpt.py",
    "--config.model.factory=flopsfit.models.nothing:GPT",
    workdir=tmp_path,
  )
  assert proc.returncode == 2
  errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert errors == [errors[0]] and "config.model.factory: cannot import module" in errors[0]
  proc = _train("--config=configs/gpt.py", "--config.train.batch_size=3", workdir=tmp_path)
  assert proc.returncode == 2
  assert (
    "error: config.train.batch_size: 3 must be a positive multiple of the 2 devices" in proc.stderr
  )
  proc = _train("--config=configs/gpt.py:size=huge", workdir=tmp_path)
  assert proc.returncode != 0 and "size='huge'; expected one of" in proc.stderr
  assert not (tmp_path / "runs").exists()


def test_config_missing_a_section_or_with_a_wrong_type_names_the_field(tmp_path):
  """A hand-written config that lacks a field fails before anything runs, for train and plan."""
  path = tmp_path / "my_config.py"
  path.write_text(
    "from configs import gpt\n\n"
    "def get_config(arg=None):\n"
    "  config = gpt.get_config()\n"
    "  if arg == 'no_optim':\n"
    "    del config['optim']\n"
    "  if arg == 'string_batch':\n"
    "    del config.train['batch_size']\n"
    "    config.train.batch_size = '16'\n"
    "  return config\n"
  )
  workdir = tmp_path / "workdir"
  proc = _train(f"--config={path}:no_optim", workdir=workdir)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert "error: config.optim.learning_rate: missing; expected a number" in proc.stderr
  proc = _train(f"--config={path}:string_batch", workdir=workdir)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert "error: config.train.batch_size: expected an integer, got '16' (str)" in proc.stderr
  env = {**os.environ, "XLA_FLAGS": xla_flags(2)}
  plan = subprocess.run(
    [
      sys.executable,
      "-m",
      "flopsfit.plan",
      f"--config={path}:no_optim",
      f"--config.workdir={workdir}",
    ],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert plan.returncode == 2 and "error: config.optim.learning_rate: missing" in plan.stderr
  assert not workdir.exists()
