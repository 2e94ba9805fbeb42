"""How a sweep fills the machine: worker processes on disjoint device groups, and their runs.

A device group is a set of CPU cores or of GPUs. `--parallel=auto` packs runs one device per
worker: the sweep's small models are bound by per-operation overhead, so several runs side by
side get more done than one run spread over every device. Only a run that alone would take
more than twice the sweep's ideal time (total work / devices) gets the smallest power-of-two
group that brings it under that, so it does not hold up the end of the sweep. Every worker
takes the runs it may train largest first (greedy longest-processing-time scheduling); a wider
worker takes the runs of its size first, then smaller ones.
"""

import dataclasses
import os

from flopsfit.config_check import ConfigError


@dataclasses.dataclass(frozen=True)
class Machine:
  """The device units a sweep may use: CPU core ids, or GPU ids as CUDA_VISIBLE_DEVICES names."""

  platform: str  # "cpu" or "gpu"
  units: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Worker:
  """A worker process on `group` (device units) that takes `run_ids`, in this order."""

  group: tuple[str, ...]
  run_ids: tuple[str, ...]


def this_machine(platform: str, local_devices: int) -> Machine:
  """The cores this process may run on (its affinity), or its visible GPUs."""
  if platform == "cpu":
    return Machine("cpu", tuple(str(c) for c in sorted(os.sched_getaffinity(0))))
  visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
  ids = [v for v in visible.split(",") if v] if visible else [str(i) for i in range(local_devices)]
  return Machine(platform, tuple(ids[:local_devices]))


def parse_parallel(value: str) -> int:
  """`--parallel`: 0 for auto, else the worker count."""
  if value == "auto":
    return 0
  try:
    workers = int(value)
  except ValueError:
    workers = -1
  if workers < 1:
    raise ConfigError(f"--parallel: expected 'auto' or a worker count >= 1, got {value!r}")
  return workers


def plan_workers(runs: list[dict], machine: Machine, workers: int, eval_batch: int) -> list[Worker]:
  """The workers of a packed sweep (empty: train in this process, in plan order)."""
  units = len(machine.units)
  if workers == 1 or not runs:
    return []
  order = tuple(r["run_id"] for r in _largest_first(runs))
  if workers:  # --parallel=N: N equal groups (CPU cores may be shared when N > cores)
    if workers > units and machine.platform != "cpu":
      raise ConfigError(f"--parallel: {workers} workers, but only {units} {machine.platform}s")
    per = max(1, units // workers)
    return [
      Worker(tuple(machine.units[(i * per + j) % units] for j in range(per)), order)
      for i in range(workers)
    ]
  if units == 1:
    return []
  sizes = {r["run_id"]: group_size(r, runs, units, eval_batch) for r in runs}
  out, free = [], list(machine.units)
  for size in sorted(set(sizes.values()), reverse=True):
    count = min(len(free) // size, sum(s == size for s in sizes.values()))
    takes = tuple(i for i in order if sizes[i] == size) + tuple(i for i in order if sizes[i] < size)
    for _ in range(count):  # a wider worker takes its own runs first, then smaller ones
      out.append(Worker(tuple(free[:size]), takes))
      free = free[size:]
  if len(out) == 1:
    return []  # one worker: better on every device, here
  return out


def group_size(run: dict, runs: list[dict], units: int, eval_batch: int) -> int:
  """Devices for `run`: 1, or the smallest power of two that brings its work per device under
  twice the fair share (total / units); it must divide the batch sizes. Never fewer than its
  planned mesh needs (fsdp × tensor, sweep.json `mesh`)."""
  fair_share = sum(train_flops(r) for r in runs) / units
  needed = mesh_devices(run)
  if needed > units:
    raise ConfigError(
      f"run {run['run_id']}: its mesh {run['mesh']} needs {needed} devices, this machine "
      f"offers {units}; re-plan on it (plan --force) or set config.train.mesh"
    )
  size = 1
  while size < units and train_flops(run) / size > 2 * fair_share:
    size *= 2
  size = min(size, units)
  while size > 1 and (run["batch_size"] % size or eval_batch % size):
    size //= 2
  return max(size, needed)


def mesh_devices(run: dict) -> int:
  """The fewest devices a run's planned mesh needs: fsdp × tensor (1 without a mesh)."""
  mesh = run.get("mesh") or {}
  return int(mesh.get("fsdp", 1) or 1) * int(mesh.get("tensor", 1) or 1)


def train_flops(run: dict) -> float:
  """The FLOPs a run trains itself: a cooldown branch its cooldown (`train_flops`, it starts
  from its trunk's checkpoint), any other run what it spends."""
  return float(run.get("train_flops") or run.get("spent_flops") or run["budget_flops"])


def _largest_first(runs: list[dict]) -> list[dict]:
  return sorted(runs, key=train_flops, reverse=True)
