"""How a sweep fills the machine: worker processes on disjoint device groups, and their runs.

A device group is a set of CPU cores or of GPUs. `--parallel=auto` gives each run the smallest
power-of-two group whose share of the sweep's work fits one group's fair share (so one large
run does not hold up the end of the sweep) and packs the rest one device per worker: the
sweep's small models are bound by per-operation overhead, so several runs side by side get
more done than one run spread over every device. Runs of one group size form a phase; phases
go from the largest groups to the smallest, and each phase orders its runs largest first
(greedy longest-processing-time scheduling).
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
class Phase:
  """Workers that each hold `len(groups[i])` units and train `run_ids` (in this order)."""

  groups: tuple[tuple[str, ...], ...]
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


def plan_phases(runs: list[dict], machine: Machine, workers: int, eval_batch: int) -> list[Phase]:
  """The phases of a packed sweep (empty: train in this process, in plan order)."""
  units = len(machine.units)
  if workers == 1 or not runs:
    return []
  if workers:  # --parallel=N: N equal groups (CPU cores may be shared when N > cores)
    if workers > units and machine.platform != "cpu":
      raise ConfigError(f"--parallel: {workers} workers, but only {units} {machine.platform}s")
    per = max(1, units // workers)
    groups = tuple(
      tuple(machine.units[(i * per + j) % units] for j in range(per)) for i in range(workers)
    )
    return [Phase(groups, tuple(r["run_id"] for r in _largest_first(runs)))]
  if units == 1:
    return []
  sizes = {r["run_id"]: group_size(r, runs, units, eval_batch) for r in runs}
  phases = []
  for size in sorted(set(sizes.values()), reverse=True):
    mine = [r for r in _largest_first(runs) if sizes[r["run_id"]] == size]
    count = min(units // size, len(mine))
    groups = tuple(tuple(machine.units[i * size : (i + 1) * size]) for i in range(count))
    phases.append(Phase(groups, tuple(r["run_id"] for r in mine)))
  if len(phases) == 1 and len(phases[0].groups) == 1 and len(phases[0].groups[0]) == units:
    return []  # one worker on everything: the same as training here
  return phases


def group_size(run: dict, runs: list[dict], units: int, eval_batch: int) -> int:
  """Devices for `run`: the smallest power of two whose share of the work fits a fair share,
  and that divides its batch sizes."""
  fair_share = sum(_cost(r) for r in runs) / units
  size = 1
  while size < units and _cost(run) / size > fair_share:
    size *= 2
  size = min(size, units)
  while size > 1 and (run["batch_size"] % size or eval_batch % size):
    size //= 2
  return size


def _cost(run: dict) -> float:
  return float(run.get("spent_flops") or run["budget_flops"])


def _largest_first(runs: list[dict]) -> list[dict]:
  return sorted(runs, key=_cost, reverse=True)
