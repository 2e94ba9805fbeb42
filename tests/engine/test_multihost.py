"""Two JAX processes on one machine (4 CPU devices each) train like one process with 8."""

import os
import socket
import subprocess
import sys

import pytest
from conftest import write_config_file

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
    "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
  }
  env.pop("JAX_COMPILATION_CACHE_DIR", None)
  return env


def test_two_processes_match_one(gpt_config, tmp_path):
  gpt_config.train.budget_flops = 3e9
  gpt_config.train.devices = 0  # every device of every process
  path = write_config_file(tmp_path / "config.py", gpt_config)
  single = subprocess.run(
    _command(path, tmp_path / "single"),
    cwd=ROOT,
    env=_env(8),
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert single.returncode == 0, single.stderr[-3000:]
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  procs = [
    subprocess.Popen(
      _command(
        path,
        tmp_path / "multi",
        f"--coordinator_address=127.0.0.1:{port}",
        "--num_processes=2",
        f"--process_id={i}",
      ),
      cwd=ROOT,
      env=_env(4),
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )
    for i in range(2)
  ]
  outputs = [p.communicate(timeout=300) for p in procs]
  assert [p.returncode for p in procs] == [0, 0], outputs[0][1][-3000:] + outputs[1][1][-3000:]
  one = workdir_lib.read_json(os.path.join(tmp_path, "single", "runs", RUN, "result.json"))
  two = workdir_lib.read_json(os.path.join(tmp_path, "multi", "runs", RUN, "result.json"))
  assert two["provenance"]["process_count"] == 2 and two["provenance"]["device_count"] == 8
  assert two["steps"] == one["steps"] and two["flops"]["xla"] == one["flops"]["xla"]
  # Not bitwise: the cross-process reduction order differs.
  assert two["final_eval_loss"] == pytest.approx(one["final_eval_loss"], rel=1e-5)
  lines = list(
    workdir_lib.read_jsonl(os.path.join(tmp_path, "multi", "runs", RUN, "metrics.jsonl"))
  )
  assert [m["step"] for m in lines] == sorted({m["step"] for m in lines})  # written once
