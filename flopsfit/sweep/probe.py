"""The plan's time estimate: a short probe of the real training loop (data included), packed
the way `train` packs the sweep."""

import math
import time

import jax
import numpy as np

from flopsfit.data import pipeline
from flopsfit.engine import mesh as mesh_lib
from flopsfit.engine import step as step_lib
from flopsfit.sweep import layout as layout_lib
from flopsfit.sweep import workers as workers_lib
from flopsfit.sweep.run_config import run_config


def estimate_times(config, plugins, runs: list[dict], example, parallel: str = "1") -> dict:
  """Seconds per run on this machine from a short probe of the real loop (data included), and
  the sweep's total: their sum when runs go one at a time (`parallel="1"`), else the makespan
  of the packed schedule (`layout.py`), with step times probed in a worker on one device group.

  The smallest and largest runs are timed; step time between them follows a power of the
  FLOPs per step (small shapes use the machine less well, so time grows slower than FLOPs),
  and each run adds the probe's compile time.
  """
  machine = layout_lib.this_machine(jax.devices()[0].platform, jax.local_device_count())
  phases = []
  if jax.process_count() == 1:
    workers = layout_lib.parse_parallel(parallel)
    phases = layout_lib.plan_phases(runs, machine, workers, config.eval.batch_size)
  if not phases:
    mesh = mesh_lib.data_mesh(num_devices=config.train.get("devices", 0))
    seconds = _per_run(step_points(config, plugins, runs, example, mesh), runs)
    return {**seconds, "total_seconds": sum(seconds["seconds"].values()), "workers": 1}
  by_id = {r["run_id"]: r for r in runs}
  estimate = {"seconds": {}, "step_seconds": {}, "total_seconds": 0.0, "phases": []}
  for phase in phases:
    mine = [by_id[i] for i in phase.run_ids]
    points = workers_lib.probe_in_worker(config, machine, phase.groups[0], mine)
    part = _per_run(points, mine)
    makespan = _greedy_makespan([part["seconds"][i] for i in phase.run_ids], len(phase.groups))
    estimate["seconds"].update(part["seconds"])
    estimate["step_seconds"].update(part["step_seconds"])
    estimate["step_seconds_exponent"] = part["step_seconds_exponent"]
    estimate["compile_seconds"] = part["compile_seconds"]
    estimate["total_seconds"] += makespan
    estimate["phases"].append({"workers": len(phase.groups), "seconds": makespan})
  estimate["workers"] = max(len(p.groups) for p in phases)
  return estimate


def _greedy_makespan(seconds: list[float], workers: int) -> float:
  """When the last of `seconds` (taken in order, each by the first free worker) finishes."""
  free = [0.0] * workers
  for s in seconds:
    free[free.index(min(free))] += s
  return max(free)


def _per_run(points: list[tuple[float, float, float]], runs: list[dict]) -> dict:
  (flops_0, seconds_0, _), (flops_1, seconds_1, _) = points[0], points[-1]
  exponent = 1.0
  if flops_1 > flops_0 and seconds_1 > seconds_0:
    exponent = math.log(seconds_1 / seconds_0) / math.log(flops_1 / flops_0)
  compile_s = max(p[2] for p in points)
  seconds = {
    r["run_id"]: r["steps"] * seconds_0 * (r["flops_per_step"] / flops_0) ** exponent + compile_s
    for r in runs
  }
  return {
    "seconds": seconds,
    "step_seconds": {f"{flops_0:.6g}": seconds_0, f"{flops_1:.6g}": seconds_1},
    "step_seconds_exponent": exponent,
    "compile_seconds": compile_s,
  }


def step_points(config, plugins, runs: list[dict], example, mesh) -> list[tuple]:
  """(FLOPs per step, seconds per step, compile seconds) of the smallest and largest run."""
  smallest = min(runs, key=lambda r: r["flops_per_step"])
  largest = max(runs, key=lambda r: r["flops_per_step"])
  points = []
  for run in [smallest, largest] if largest is not smallest else [smallest]:
    cfg = run_config(config, run)
    compiled = step_lib.compile_step(
      lambda: plugins.model(run["shape"], run["seed"]),
      plugins.loss,
      cfg.optim,
      mesh,
      example,
      run["batch_size"],
      cfg.train.steps_per_call,
      cfg.eval.batch_size,
    )
    k = compiled.steps_per_call
    batches = pipeline.train_iterator(
      plugins.dataset.source("train"),
      batch_size=run["batch_size"],
      seed=run["seed"],
      process_index=jax.process_index(),
      process_count=jax.process_count(),
    )
    state = compiled.init(np.int32(run["steps"]))
    for _ in range(2):  # warm up: first call, and the data threads' read-ahead
      state, metrics = step_lib.call_steps(compiled, state, batches, mesh, k)
    jax.block_until_ready(metrics)
    blocks = []  # the fastest of three blocks of two calls: robust to a busy moment
    for _ in range(3):
      start = time.perf_counter()
      for _ in range(2):
        state, metrics = step_lib.call_steps(compiled, state, batches, mesh, k)
      jax.block_until_ready(metrics)
      blocks.append((time.perf_counter() - start) / (2 * k))
    points.append((run["flops_per_step"], min(blocks), compiled.compile_seconds))
  return points
