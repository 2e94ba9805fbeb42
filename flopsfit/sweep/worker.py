"""One worker of a packed sweep: `python -m flopsfit.sweep.worker <spec.pkl>` (started by
`workers.py`, not by hand).

It pins itself to its CPU cores (FLOPSFIT_WORKER_CORES) before JAX starts, so that XLA's thread
pool has one thread per core of its group; its environment already limits it to its devices
(XLA_FLAGS device count, or CUDA_VISIBLE_DEVICES). Then it trains the runs it can claim and
writes its summary rows and timings to the spec's output file. Exit status: 0, 2 for a config
error, 75 when preempted (SIGTERM, or its parent died).
"""

import json
import os
import pickle
import signal
import sys
import threading
import time


def _pin_cores() -> None:
  cores = os.environ.get("FLOPSFIT_WORKER_CORES")
  if cores:
    os.sched_setaffinity(0, {int(c) for c in cores.split(",")})


def _stop_when_parent_dies(parent: int) -> None:
  """SIGTERM to this worker once its parent is gone: checkpoint, release the claim, exit 75."""

  def watch():
    while os.getppid() == parent:
      time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)

  threading.Thread(target=watch, daemon=True).start()


def main(spec_path: str) -> int:
  _pin_cores()  # before JAX creates its thread pools
  from flopsfit import config_check
  from flopsfit import plugins as plugins_lib
  from flopsfit.engine import checkpoints, logs
  from flopsfit.sweep import runner

  logs.flopsfit_info_only()
  with open(spec_path, "rb") as f:
    spec = pickle.load(f)
  _stop_when_parent_dies(spec["parent_pid"])
  if spec.get("probe"):
    return _probe(spec)
  rows, timings, status = [], [], 0
  try:
    rows, timings = runner.train_claimed(
      spec["config"], spec["runs"], spec["owner"], spec["claim_timeout"], devices=0
    )
  except checkpoints.Preempted as e:
    print(f"worker {spec['owner']['worker']} preempted ({e})", file=sys.stderr)
    status = checkpoints.PREEMPTED_EXIT_CODE
  except (plugins_lib.PluginError, config_check.ConfigError, checkpoints.CheckpointMismatch) as e:
    print(f"error: {e}", file=sys.stderr)
    status = 2
  with open(spec["output"], "w") as f:
    json.dump({"rows": rows, "timings": timings}, f)
  return status


def _probe(spec: dict) -> int:
  """The plan probe's step times on this worker's devices."""
  from flopsfit import plugins as plugins_lib
  from flopsfit.engine import distributed
  from flopsfit.engine import mesh as mesh_lib
  from flopsfit.sweep import probe

  # The workdir's cache: the probed runs' executables are the ones their training compiles.
  distributed.enable_compilation_cache(spec["config"])
  plugins = plugins_lib.load(spec["config"])
  example = {k: v[None] for k, v in plugins.dataset.source("train")[0].items()}
  mesh = mesh_lib.data_mesh()
  points = probe.step_points(spec["config"], plugins, spec["runs"], example, mesh)
  with open(spec["output"], "w") as f:
    json.dump({"points": points}, f)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1]))
