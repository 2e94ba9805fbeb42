"""The plan's time estimate: a short probe of the real training loop (data included), packed
the way `train` packs the sweep."""

import json
import time

import jax
import numpy as np

from flopsfit.data import pipeline
from flopsfit.engine import mesh as mesh_lib
from flopsfit.engine import run as run_lib
from flopsfit.engine import step as step_lib
from flopsfit.sweep import layout as layout_lib
from flopsfit.sweep import workers as workers_lib
from flopsfit.sweep.run_config import run_config


def estimate_times(config, plugins, runs: list[dict], example, parallel: str = "1") -> dict:
  """Seconds per run on this machine from a short probe of the real loop (data included), and
  the sweep's total: their sum when runs go one at a time (`parallel="1"`), else the makespan
  of the packed schedule (`layout.py`), with step times probed in workers of that layout (the
  smallest and largest run side by side on two device groups where it has two).

  The smallest and largest runs are timed; a step between them costs a fixed overhead plus
  time in proportion to its FLOPs (`_per_run`), and the first run of each compiled shape adds
  the probe's start (compile and state initialisation). A run is priced at the steps it trains
  itself (a cooldown branch: its cooldown; its trunk trains the rest).
  """
  machine = layout_lib.this_machine(jax.devices()[0].platform, jax.local_device_count())
  eval_records = run_lib.eval_records(config, plugins.dataset)
  packed = []
  if jax.process_count() == 1:
    workers = layout_lib.parse_parallel(parallel)
    packed = layout_lib.plan_workers(runs, machine, workers, config.eval.batch_size)
  if not packed:
    mesh = mesh_lib.data_mesh(num_devices=config.train.get("devices", 0))
    points = step_points(config, plugins, runs, example, mesh)
    seconds = _per_run(points, runs, eval_records)
    return {**seconds, "total_seconds": sum(seconds["seconds"].values()), "workers": 1}
  times, estimate = {}, None  # times: group size -> {run_id: seconds on such a worker}
  smallest, largest = _extremes(runs)
  for size in sorted({len(w.group) for w in packed}):
    groups = [w.group for w in packed if len(w.group) == size]
    probes = [(groups[0], [smallest, largest])]
    if len(groups) > 1 and largest is not smallest:  # the two, side by side as they would train
      probes = [(groups[0], [smallest]), (groups[1], [largest])]
    points = sorted(workers_lib.probe_in_workers(config, machine, probes))
    part = _per_run(points, runs, eval_records)
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


def _per_run(
  points: list[tuple[float, float, float]], runs: list[dict], eval_records: int = 0
) -> dict:
  """Each run's seconds from the probed (FLOPs per step, seconds per step, start seconds).

  A step costs `overhead + flops / rate`, the line through the smallest and largest probed
  shapes: a fixed part (dispatch, small kernels, the input pipeline) that dominates the small
  shapes and arithmetic that dominates the large ones (a power law through the same two points
  priced the default sweep's middle shapes up to 59% high: docs/performance.md). A shape
  probed alone, or a larger one that was not slower, is priced in proportion to its FLOPs.
  The final eval of `eval_records` records costs a third of a train step's FLOPs per record
  (a forward pass), at the same rate.

  The probe's start (compiling the step, initialising the state) is paid by the first run of
  each compiled step (`_executable_key`), in the order packed workers take runs (most FLOPs
  first); later ones load the executables from the compilation cache, counted as free.
  """
  (flops_0, seconds_0, _), (flops_1, seconds_1, _) = points[0], points[-1]
  overhead, per_flop = 0.0, seconds_0 / flops_0
  if flops_1 > flops_0 and seconds_1 > seconds_0:
    per_flop = (seconds_1 - seconds_0) / (flops_1 - flops_0)
    overhead = seconds_0 - per_flop * flops_0
    if overhead < 0:  # larger shapes slower per FLOP than a fixed cost explains
      overhead, per_flop = 0.0, seconds_1 / flops_1
  start_s = max(p[2] for p in points)
  seconds, compiled = {}, set()
  for r in sorted(runs, key=layout_lib.train_flops, reverse=True):
    key = _executable_key(r)
    train = _trained_steps(r) * (overhead + per_flop * r["flops_per_step"])
    final_eval = per_flop * r["flops_per_step"] * eval_records / r["batch_size"] / 3
    seconds[r["run_id"]] = train + final_eval + (0.0 if key in compiled else start_s)
    compiled.add(key)
  return {
    "seconds": {r["run_id"]: seconds[r["run_id"]] for r in runs},
    "step_seconds": {f"{flops_0:.6g}": seconds_0, f"{flops_1:.6g}": seconds_1},
    "step_overhead_seconds": overhead,
    "start_seconds": start_s,
  }


def _executable_key(run: dict) -> str:
  """What a run's compiled step depends on within one sweep: its shape, batch size and the
  optimizer constants the planner sets per run (the step count is an argument of the step)."""
  role = (run.get("cooldown") or {}).get("role")
  fields = ("shape", "batch_size", "learning_rate", "warmup_steps", "decay_fraction")
  return json.dumps([run.get(f) for f in fields] + [role], sort_keys=True)


def _trained_steps(run: dict) -> float:
  """The steps `run` trains itself (`layout.train_flops`, the FLOPs packing orders runs by)."""
  return layout_lib.train_flops(run) / run["flops_per_step"]


def _extremes(runs: list[dict]) -> tuple[dict, dict]:
  """The runs with the fewest and the most FLOPs per step."""
  smallest = min(runs, key=lambda r: r["flops_per_step"])
  return smallest, max(runs, key=lambda r: r["flops_per_step"])


def step_points(config, plugins, runs: list[dict], example, mesh) -> list[tuple]:
  """(FLOPs per step, seconds per step, start seconds: compile and state initialisation) of
  the smallest and largest run."""
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
    started = time.perf_counter()
    state = jax.block_until_ready(compiled.init(np.int32(run["steps"])))
    start_seconds = compiled.compile_seconds + time.perf_counter() - started
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
    points.append((run["flops_per_step"], min(blocks), start_seconds))
  return points
