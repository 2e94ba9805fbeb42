"""Two JAX processes on one machine (4 CPU devices each) train like one process with 8."""

import os
import socket
import subprocess
import sys

import pytest
from conftest import write_config_file, xla_flags

from flopsfit import workdir as workdir_lib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = "c3e+09-d16-L2-s0"


def _command(config_path, workdir, *flags):
  return [
    sys.executable,
    "-m",
    "flopsfit.train",
    f"--config={config_path}",
    "--single",
    f"--config.workdir={workdir}",
    *flags,
  ]


def _env(devices):
  env = {
    **os.environ,
    "JAX_PLATFORMS": "cpu",
    "XLA_FLAGS": xla_flags(devices),
  }
  env.pop("JAX_COMPILATION_CACHE_DIR", None)
  return env


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _start_job(path, workdir, failpoints=("", ""), *flags):
  port = _free_port()
  procs = []
  for i in range(2):
    env = _env(4)
    if failpoints[i]:
      env["FLOPSFIT_FAILPOINT"] = failpoints[i]
    command = _command(
      path,
      workdir,
      f"--coordinator_address=127.0.0.1:{port}",
      "--num_processes=2",
      f"--process_id={i}",
      "--peer_timeout=3",
      "--join_timeout=20",
      *flags,
    )
    procs.append(
      subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
      )
    )
  return procs


def test_a_dead_peer_stops_the_job_and_the_relaunched_job_matches_one_process(gpt_config, tmp_path):
  """Two processes with 4 CPU devices each train one run. Process 1 is killed mid-run
  (SIGKILL); process 0 stops within the peer timeout with one line naming it and status 75,
  not an abort after ~100 s; the same command resumes, and the run ends as one process with
  all 8 devices trains it."""
  import time

  gpt_config.train.budget_flops = 3e9
  gpt_config.train.devices = 0
  gpt_config.checkpoint.every_steps = 10
  path = write_config_file(tmp_path / "config.py", gpt_config)
  workdir = tmp_path / "job"
  procs = _start_job(path, workdir, ("", "train_call:8"))
  _, err1 = procs[1].communicate(timeout=300)
  killed_at = time.monotonic()
  assert procs[1].returncode == 128 + 9, err1[-3000:]  # its supervisor reports the SIGKILL
  _, err0 = procs[0].communicate(timeout=120)
  stopped_after = time.monotonic() - killed_at
  assert procs[0].returncode == 75, err0[-3000:]
  errors = [line for line in err0.splitlines() if line.startswith("error:")]
  assert errors == [
    "error: process 0 of 2: process 1 stopped answering for 3 s (died or hung); stopped "
    "(checkpoints are kept); re-run the same command on every host to resume"
  ], err0[-3000:]
  assert "Check failure stack trace" not in err0 and "    @ " not in err0
  assert stopped_after < 30
  # A fresh compilation cache: with process 0's cache warm, process 1 would compile alone for
  # longer than gloo's 30 s rendezvous on this loaded 2-core machine.
  procs = _start_job(path, workdir, ("", ""), f"--config.compilation_cache_dir={tmp_path}/cache")
  outputs = [p.communicate(timeout=300) for p in procs]
  assert [p.returncode for p in procs] == [0, 0], outputs[0][1][-3000:]
  two = workdir_lib.read_json(os.path.join(workdir, "runs", RUN, "result.json"))
  assert two["status"] == "completed" and two["resumed_from_steps"]
  assert two["steps"] == two["planned_steps"]
  assert two["provenance"]["process_count"] == 2 and two["provenance"]["device_count"] == 8
  lines = list(workdir_lib.read_jsonl(os.path.join(workdir, "runs", RUN, "metrics.jsonl")))
  assert [m["step"] for m in lines] == sorted({m["step"] for m in lines})  # written once

  single = subprocess.run(
    _command(path, tmp_path / "single"),
    cwd=ROOT,
    env=_env(8),
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert single.returncode == 0, single.stderr[-3000:]
  one = workdir_lib.read_json(os.path.join(tmp_path, "single", "runs", RUN, "result.json"))
  assert two["steps"] == one["steps"] and two["flops"]["xla"] == one["flops"]["xla"]
  # Not bitwise: the cross-process reduction order differs.
  assert two["final_eval_loss"] == pytest.approx(one["final_eval_loss"], rel=1e-5)


def test_a_peer_that_never_starts_stops_the_other_after_the_join_timeout(gpt_config, tmp_path):
  path = write_config_file(tmp_path / "config.py", gpt_config)
  command = _command(
    path,
    tmp_path / "job",
    f"--coordinator_address=127.0.0.1:{_free_port()}",
    "--num_processes=2",
    "--process_id=0",
    "--join_timeout=3",
  )
  alone = subprocess.run(
    command, cwd=ROOT, env=_env(4), capture_output=True, text=True, timeout=120
  )
  assert alone.returncode == 75, alone.stderr[-3000:]
  assert [line for line in alone.stderr.splitlines() if line.startswith("error:")] == [
    "error: process 0 of 2: not every process joined the job within 3 s; stopped (checkpoints "
    "are kept); re-run the same command on every host to resume"
  ], alone.stderr[-3000:]
