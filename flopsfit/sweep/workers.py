"""Starts the worker processes of a packed sweep, one per device group, and waits for them.

Each worker is `python -m flopsfit.sweep.worker` (a fresh interpreter: JAX is never forked)
whose environment gives it its devices before JAX starts: on CPU its cores (pinned by the
worker) and as many forced host devices, XLA's Eigen thread pool sized by the pinning and
single-threaded for a one-core worker, and the CPU tuning flags for this CPU that this XLA
accepts; on GPUs a CUDA_VISIBLE_DEVICES subset. Workers share the parent's process group; a
SIGTERM to the parent is passed on to them (each saves a checkpoint and exits 75).
"""

import dataclasses
import functools
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from absl import logging

import flopsfit
from flopsfit.engine.checkpoints import PREEMPTED_EXIT_CODE
from flopsfit.sweep.layout import Machine, Worker

_DEVICE_FLAGS = re.compile(
  r"--xla_force_host_platform_device_count=\S+|--xla_cpu_multi_thread_eigen=\S+"
)
# XLA CPU flags that make a sweep's small steps faster on CPUs without AVX-512. Without
# YNNPACK fusions XLA runs the small dots and reductions with its own emitters: one-core steps
# of d24-L1, d40-L2 and d64-L4 were 1.12-1.14x faster on an AMD EPYC with AVX2 only, but
# 0.82-0.95x as fast on an Intel Xeon with AVX-512 (benchmarks/tiny_step.py --flags_only;
# docs/performance-step.md). The flag is experimental and an XLA that does not know a flag
# aborts at start-up, so each is used only once a throwaway interpreter accepted it.
CPU_TUNING_FLAGS = ("--xla_cpu_experimental_ynn_fusion_type=",)


def cpu_tuning_flags(cpu_features: frozenset[str] | None = None) -> tuple[str, ...]:
  """`CPU_TUNING_FLAGS` for an x86 CPU without AVX-512 (`cpu_features`: /proc/cpuinfo's flags
  by default), else none: XLA's defaults where the flags were slower or never measured."""
  features = _cpu_features() if cpu_features is None else cpu_features
  return CPU_TUNING_FLAGS if "avx2" in features and "avx512f" not in features else ()


@functools.cache
def _cpu_features() -> frozenset[str]:
  """The first CPU's flags in /proc/cpuinfo (empty where there is none, e.g. not Linux)."""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("flags"):
          return frozenset(line.split(":", 1)[1].split())
  except OSError:
    pass
  return frozenset()


@dataclasses.dataclass
class WorkerOutcome:
  index: int
  group: tuple[str, ...]
  returncode: int
  seconds: float
  rows: list[dict]
  timings: list[dict]


def worker_env(machine: Machine, group: tuple[str, ...]) -> dict:
  """The environment of a worker on `group`: its devices, fixed before JAX starts."""
  env = dict(os.environ)
  package_root = os.path.dirname(os.path.dirname(os.path.abspath(flopsfit.__file__)))
  env["PYTHONPATH"] = os.pathsep.join(
    p for p in (package_root, os.getcwd(), env.get("PYTHONPATH", "")) if p
  )
  if os.environ.get("FLOPSFIT_PARENT_NO_PREALLOCATE"):
    env.pop("XLA_PYTHON_CLIENT_PREALLOCATE", None)  # set only so the parent holds no GPU memory
  env.pop("FLOPSFIT_PARENT_NO_PREALLOCATE", None)
  if machine.platform == "cpu":
    flags = _DEVICE_FLAGS.sub("", env.get("XLA_FLAGS", "")).split()
    flags.append(f"--xla_force_host_platform_device_count={len(group)}")
    if len(group) == 1:
      flags.append("--xla_cpu_multi_thread_eigen=false")
    given = {flag.split("=")[0] for flag in flags}  # the user's own values win
    flags += [f for f in accepted_cpu_flags(cpu_tuning_flags()) if f.split("=")[0] not in given]
    env["XLA_FLAGS"] = " ".join(flags)
    env["FLOPSFIT_WORKER_CORES"] = ",".join(group)
  else:
    env["CUDA_VISIBLE_DEVICES"] = ",".join(group)
  return env


@functools.cache
def accepted_cpu_flags(flags: tuple[str, ...]) -> tuple[str, ...]:
  """Those of `flags` this JAX's XLA accepts: each tried once (per process) in a fresh
  interpreter on the CPU backend, ~1.5 s; a flag it rejects is left out with a warning."""
  accepted = []
  for flag in flags:
    env = {**os.environ, "XLA_FLAGS": flag, "JAX_PLATFORMS": "cpu"}
    try:
      code = subprocess.run(
        [sys.executable, "-c", "import jax; jax.devices()"],
        env=env,
        capture_output=True,
        timeout=120,
      ).returncode
    except subprocess.TimeoutExpired:
      code = None
    if code == 0:
      accepted.append(flag)
    else:
      logging.warning("XLA does not accept %s (exit %s): workers run without it", flag, code)
  return tuple(accepted)


def probe_in_workers(config, machine: Machine, probes: list[tuple[tuple[str, ...], list]]) -> list:
  """The plan probe's step points (`probe.step_points`): each (group, runs) of `probes` timed
  in its own worker on its group, all at once (disjoint groups, as the sweep's workers train
  side by side). Returns every worker's points."""
  with tempfile.TemporaryDirectory(prefix="flopsfit-probe-") as scratch:  # removed on errors too
    started = []
    for index, (group, runs) in enumerate(probes):
      output = os.path.join(scratch, f"probe-{index}.json")
      spec = {"probe": True, "config": config.copy_and_resolve_references(), "runs": runs}
      spec_path = _write_spec(scratch, f"probe-{index}", spec, output)
      proc = subprocess.Popen(
        [sys.executable, "-m", "flopsfit.sweep.worker", spec_path],
        env=worker_env(machine, group),
        stdout=sys.stderr.fileno(),
      )
      started.append((group, output, proc))
    codes = [(group, proc.wait()) for group, _, proc in started]
    for group, code in codes:
      if code:
        raise RuntimeError(f"the plan probe's worker on {group} exited with status {code}")
    points = []
    for _, output, _ in started:
      with open(output) as f:
        points += [tuple(p) for p in json.load(f)["points"]]
  return points


def _write_spec(scratch: str, name: str, spec: dict, output: str) -> str:
  path = os.path.join(scratch, f"{name}.pkl")
  with open(path, "wb") as f:
    pickle.dump({**spec, "output": output, "parent_pid": os.getpid()}, f)
  return path


def run_workers(
  config, machine: Machine, workers: list[Worker], runs: dict, owner: dict, claim_timeout: float
) -> list[WorkerOutcome]:
  """Trains the sweep's runs on one process per worker; returns when every one has exited."""
  scratch = tempfile.mkdtemp(prefix="flopsfit-workers-")
  procs = []
  for index, worker in enumerate(workers):
    output = os.path.join(scratch, f"worker-{index}.json")
    spec = {
      "config": config.copy_and_resolve_references(),
      "runs": [runs[i] for i in worker.run_ids],
      "owner": {**owner, "worker": index, "devices": list(worker.group)},
      "claim_timeout": claim_timeout,
    }
    spec_path = _write_spec(scratch, f"worker-{index}", spec, output)
    proc = subprocess.Popen(
      [sys.executable, "-m", "flopsfit.sweep.worker", spec_path],
      env=worker_env(machine, worker.group),
      stdout=sys.stderr.fileno(),
    )
    procs.append((index, worker.group, proc, time.perf_counter(), output))
  logging.info(
    "%d workers on %s device groups %s",
    len(procs),
    machine.platform,
    " ".join(",".join(w.group) for w in workers),
  )
  outcomes = _wait(procs)
  shutil.rmtree(scratch, ignore_errors=True)
  return outcomes


def _wait(procs) -> list[WorkerOutcome]:
  """Waits for every worker; a worker stopped by a SIGTERM passed on to it counts as
  preempted (exit 75) even when the signal came before it could save a checkpoint."""
  forwarded = []

  def forward(signum, frame):
    forwarded.append(signum)
    for _, _, proc, _, _ in procs:
      if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)

  previous = signal.signal(signal.SIGTERM, forward)
  try:
    outcomes = []
    for index, group, proc, start, output in procs:
      while True:
        try:
          code = proc.wait()
          break
        except InterruptedError:
          continue
      if forwarded and code == -signal.SIGTERM:
        code = PREEMPTED_EXIT_CODE
      outcome = {"rows": [], "timings": []}
      if os.path.exists(output):
        with open(output) as f:
          outcome = json.load(f)
      outcomes.append(
        WorkerOutcome(
          index,
          group,
          code,
          time.perf_counter() - start,
          outcome["rows"],
          outcome["timings"],
        )
      )
    return outcomes
  finally:
    signal.signal(signal.SIGTERM, previous)
