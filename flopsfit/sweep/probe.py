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
  of the packed schedule (`layout.py`), with step times probed in workers of that layout (the
  smallest and largest run side by side on two device groups where it has two).

  The smallest and largest runs are timed; step time between them follows a power of the
  FLOPs per step (small shapes use the machine less well, so time grows slower than FLOPs),
  and each run adds the probe's compile time. A run is priced at the steps it trains itself (a
  cooldown branch: its cooldown; its trunk trains the rest).
  """
  machine = layout_lib.this_machine(jax.devices()[0].platform, jax.local_device_count())
  packed = []
  if jax.process_count() == 1:
    workers = layout_lib.parse_parallel(parallel)
    packed = layout_lib.plan_workers(runs, machine, workers, config.eval.batch_size)
  if not packed:
    mesh = mesh_lib.data_mesh(num_devices=config.train.get("devices", 0))
    seconds = _per_run(step_points(config, plugins, runs, example, mesh), runs)
    return {**seconds, "total_seconds": sum(seconds["seconds"].values()), "workers": 1}
  times, estimate = {}, None  # times: group size -> {run_id: seconds on such a worker}
  smallest, largest = _extremes(runs)
  for size in sorted({len(w.group) for w in packed}):
    groups = [w.group for w in packed if len(w.group) == size]
    probes = [(groups[0], [smallest, largest])]
    if len(groups) > 1 and largest is not smallest:  # the two, side by side as they would train
      probes = [(groups[0], [smallest]), (groups[1], [largest])]
    points = sorted(workers_lib.probe_in_workers(config, machine, probes))
    part = _per_run(points, runs)
    times[size], estimate = part["seconds"], estimate or part  # shown: the narrowest workers
  total = _greedy_makespan([w.run_ids for w in packed], [times[len(w.group)] for w in packed])
  return {**estimate, "total_seconds": total, "workers": len(packed)}


def _greedy_makespan(takes: list[tuple[str, ...]], seconds: list[dict]) -> float:
  """When the last run ends if each worker, whenever free, takes the first run of its list
  that no worker has taken (`seconds[w][run]`: that run's time on worker w)."""
  free, taken, end = [0.0] * len(takes), set(), 0.0
  active = set(range(len(takes)))
  while active:
    w = min(active, key=lambda i: free[i])
    run = next((r for r in takes[w] if r not in taken), None)
    if run is None:
      active.remove(w)
      continue
    taken.add(run)
    free[w] += seconds[w][run]
    end = max(end, free[w])
  return end


def _per_run(points: list[tuple[float, float, float]], runs: list[dict]) -> dict:
  (flops_0, seconds_0, _), (flops_1, seconds_1, _) = points[0], points[-1]
  exponent = 1.0
  if flops_1 > flops_0 and seconds_1 > seconds_0:
    exponent = math.log(seconds_1 / seconds_0) / math.log(flops_1 / flops_0)
  compile_s = max(p[2] for p in points)
  seconds = {
    r["run_id"]: _trained_steps(r) * seconds_0 * (r["flops_per_step"] / flops_0) ** exponent
    + compile_s
    for r in runs
  }
  return {
    "seconds": seconds,
    "step_seconds": {f"{flops_0:.6g}": seconds_0, f"{flops_1:.6g}": seconds_1},
    "step_seconds_exponent": exponent,
    "compile_seconds": compile_s,
  }


def _trained_steps(run: dict) -> float:
  """The steps `run` trains itself (`layout.train_flops`, the FLOPs packing orders runs by)."""
  return layout_lib.train_flops(run) / run["flops_per_step"]


def _extremes(runs: list[dict]) -> tuple[dict, dict]:
  """The runs with the fewest and the most FLOPs per step."""
  smallest = min(runs, key=lambda r: r["flops_per_step"])
  return smallest, max(runs, key=lambda r: r["flops_per_step"])


def step_points(config, plugins, runs: list[dict], example, mesh) -> list[tuple]:
  """(FLOPs per step, seconds per step, compile seconds) of the smallest and largest run."""
  smallest, largest = _extremes(runs)
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
