"""Packed sweeps with real worker processes: the same results as one run at a time, every run
trained once beside a shard process, and a sweep killed whole (SIGKILL to every process) at
random moments finishes on re-runs exactly as if never killed."""

import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import tiny_gpt_config, write_config_file, xla_flags

from flopsfit import workdir as workdir_lib
from flopsfit.sweep import planner

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _command(setup, workdir, *flags):
  return [
    sys.executable,
    "-m",
    "flopsfit.train",
    f"--config={setup['config']}",
    f"--config.workdir={workdir}",
    *flags,
  ]


def _env():
  env = {k: v for k, v in os.environ.items() if k != "FLOPSFIT_FAILPOINT"}
  env["XLA_FLAGS"] = xla_flags(2)
  return env


def _train(setup, name, *flags):
  workdir = _fresh_workdir(setup, name)
  proc = subprocess.run(
    _command(setup, workdir, *flags),
    cwd=ROOT,
    env=_env(),
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  return workdir, proc


def _fresh_workdir(setup, name) -> str:
  """A workdir holding the planned sweep.json (planned once for the module)."""
  workdir = str(setup["base"] / name)
  os.makedirs(workdir)
  shutil.copy(os.path.join(setup["planned"], "sweep.json"), workdir)
  return workdir


def _trained(stdout: str) -> list[str]:
  return [line.split()[0] for line in stdout.splitlines() if line.endswith(" trained")]


def _results(workdir, run_ids) -> dict:
  return {
    r: workdir_lib.read_json(os.path.join(workdir, "runs", r, "result.json")) for r in run_ids
  }


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
  """A planned tiny sweep, and its uninterrupted packed run (2 workers of one core each)."""
  base = tmp_path_factory.mktemp("packing")
  config = tiny_gpt_config(str(base / "planned"))
  config.sweep.budgets = (1e9, 3e9)
  config.sweep.shapes_per_budget = 3
  config.sweep.decades = 1.0
  config.sweep.tokens_per_param = 100.0
  config.sweep.min_steps = 20
  config.sweep.probe = False
  config.hparams.kwargs.batch_size = 16
  config.checkpoint.every_steps = 20
  config.checkpoint.every_seconds = 0.0
  plan = planner.load_or_plan(config, probe=False)
  setup = {
    "base": base,
    "config": write_config_file(base / "config.py", config),
    "planned": config.workdir,
    "run_ids": [r["run_id"] for r in plan["runs"]],
  }
  setup["packed"], proc = _train(setup, "packed", "--parallel=2")
  assert sorted(_trained(proc.stdout)) == sorted(setup["run_ids"])
  assert "sweep efficiency" in proc.stdout
  return setup


def test_packed_sweep_equals_sequential_sweep(setup):
  sequential, _ = _train(setup, "sequential", "--parallel=1")
  packed = _results(setup["packed"], setup["run_ids"])
  for run_id, seq in _results(sequential, setup["run_ids"]).items():
    got = packed[run_id]
    assert got["status"] == seq["status"] == "completed"
    assert (got["steps"], got["flops"]["xla"]) == (seq["steps"], seq["flops"]["xla"])
    # Sequential runs use 2 devices, packed ones 1: the f32 reduction order differs.
    assert (got["provenance"]["device_count"], seq["provenance"]["device_count"]) == (1, 2)
    assert got["final_eval_loss"] == pytest.approx(seq["final_eval_loss"], rel=5e-3)
  summary = workdir_lib.read_json(os.path.join(setup["packed"], "sweep_summary.json"))
  assert summary["workers"] == 2 and summary["runs_trained"] == len(setup["run_ids"])
  assert sum(summary["seconds"].values()) == pytest.approx(summary["wall_seconds"])
  assert 0 < summary["efficiency"] < 1


def test_shard_process_and_packed_workers_train_each_run_once(setup):
  workdir = _fresh_workdir(setup, "mixed")
  procs = [
    subprocess.Popen(
      _command(setup, workdir, *flags),
      cwd=ROOT,
      env=_env(),
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )
    for flags in (["--parallel=2"], ["--parallel=1", "--shard_index=0", "--num_shards=2"])
  ]
  outputs = [p.communicate(timeout=600) for p in procs]
  assert [p.returncode for p in procs] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
  packed, shard = (set(_trained(out)) for out, _ in outputs)
  assert not packed & shard and packed | shard == set(setup["run_ids"])
  reference = _results(setup["packed"], setup["run_ids"])
  for run_id, result in _results(workdir, setup["run_ids"]).items():
    assert result["steps"] == reference[run_id]["steps"]
    if run_id in packed:  # the same devices and threads as the reference: bitwise
      assert result["final_eval_loss"] == reference[run_id]["final_eval_loss"]
  left = [f for r in setup["run_ids"] for f in os.listdir(os.path.join(workdir, "runs", r))]
  assert not [f for f in left if f.startswith("claim")]  # released once result.json is written


def _progress(workdir, run_ids, total_steps) -> float:
  """Share of the sweep's steps logged in metrics.jsonl (a resumed run rewinds its file)."""
  done = 0
  for run_id in run_ids:
    path = os.path.join(workdir, "runs", run_id, "metrics.jsonl")
    if os.path.exists(path):
      done += max([m["step"] for m in workdir_lib.read_jsonl(path)], default=0)
  return done / total_steps


def _start_and_wait(setup, workdir, progress: float, log):
  """Starts the packed sweep in its own process group; returns it once `progress` of the
  sweep's steps are logged (or it has exited)."""
  proc = subprocess.Popen(
    _command(setup, workdir, "--parallel=2"),
    cwd=ROOT,
    env=_env(),
    stdout=subprocess.DEVNULL,
    stderr=log,
    start_new_session=True,  # its own process group: the parent and its workers
  )
  total = sum(r["steps"] for r in _results(setup["packed"], setup["run_ids"]).values())
  deadline = time.time() + 600
  while _progress(workdir, setup["run_ids"], total) < progress and proc.poll() is None:
    assert time.time() < deadline
    time.sleep(0.1)
  return proc


def test_sweep_preempted_then_killed_whole_at_random_moments_finishes_like_uninterrupted(setup):
  workdir = _fresh_workdir(setup, "killed")
  rng = random.Random(11)
  moments = sorted(rng.uniform(0.1, 0.9) for _ in range(4))
  log = open(setup["base"] / "killed.log", "w+")
  proc = _start_and_wait(setup, workdir, moments[0], log)
  proc.send_signal(signal.SIGTERM)  # to the parent only: it passes it on to its workers
  proc.wait(timeout=300)
  log.seek(0)
  assert proc.returncode == 75, log.read()[-3000:]  # preempted: re-run to resume
  for moment in moments[1:]:
    proc = _start_and_wait(setup, workdir, moment, log)
    time.sleep(rng.uniform(0.0, 1.0))
    if proc.poll() is None:
      os.killpg(proc.pid, signal.SIGKILL)  # the parent and every worker, like a machine crash
    proc.wait()
  proc = subprocess.run(
    _command(setup, workdir, "--parallel=2", "--claim_timeout=600"),
    cwd=ROOT,
    env=_env(),
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  reference = _results(setup["packed"], setup["run_ids"])
  for run_id, result in _results(workdir, setup["run_ids"]).items():
    assert result["status"] == "completed"
    assert result["steps"] == reference[run_id]["steps"]
    assert result["final_eval_loss"] == reference[run_id]["final_eval_loss"]
    assert result["final_eval_metrics"] == reference[run_id]["final_eval_metrics"]
    metrics = workdir_lib.read_jsonl(os.path.join(workdir, "runs", run_id, "metrics.jsonl"))
    steps = [m["step"] for m in metrics]
    assert steps == sorted(set(steps)) and steps[-1] == result["steps"]
  assert any(r["resumed_from_steps"] for r in _results(workdir, setup["run_ids"]).values())
