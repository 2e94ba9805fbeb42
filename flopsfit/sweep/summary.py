"""How well a sweep used its machine: the wall time split by activity, and the sweep efficiency.

The split is in seconds of the whole machine: a run on a worker holding k of the machine's n
device units counts k/n of its seconds, so plan + compile + train + eval + checkpoint + idle
is the wall time. Sweep efficiency = FLOPs spent in this call / (wall time × peak FLOP/s of
all devices). `<workdir>/sweep_summary.json` records one call (WORKSPACE.md lists the fields).
"""

import os
import time

from flopsfit import workdir as workdir_lib

PARTS = ("plan", "compile", "train", "eval", "checkpoint", "idle")


def sweep_summary(
  wall: float,
  plan_seconds: float,
  weighted_timings: list[tuple[float, dict]],
  peak: float | None,
  peak_source: str,
  layout: dict,
) -> dict:
  """The summary of one call; `weighted_timings` are (share of the machine, run timing)."""
  split = dict.fromkeys(PARTS, 0.0)
  split["plan"] = plan_seconds
  flops = 0.0
  for share, t in weighted_timings:
    other = t["compile_seconds"] + t["eval_seconds"] + t["checkpoint_seconds"]
    split["compile"] += share * t["compile_seconds"]
    split["eval"] += share * t["eval_seconds"]
    split["checkpoint"] += share * t["checkpoint_seconds"]
    split["train"] += share * max(0.0, t["seconds"] - other)
    flops += t["flops"]
  split["idle"] = max(0.0, wall - sum(split.values()))
  return {
    "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    "wall_seconds": wall,
    "seconds": split,
    "runs_trained": len(weighted_timings),
    "flops_spent": flops,
    "peak_flops": peak,
    "peak_flops_source": peak_source,
    "efficiency": flops / (wall * peak) if peak and wall > 0 else None,
    **layout,
  }


def write(workdir: str, summary: dict) -> str:
  path = os.path.join(workdir, "sweep_summary.json")
  workdir_lib.write_json_atomic(path, summary)
  return path


def format_summary(summary: dict) -> str:
  """Two lines: the time split and the efficiency."""
  wall, split = summary["wall_seconds"], summary["seconds"]
  parts = ", ".join(f"{k} {split[k]:.0f}s ({split[k] / wall:.0%})" for k in PARTS if wall > 0)
  efficiency = summary["efficiency"]
  return (
    f"sweep: {summary['runs_trained']} runs trained in {wall:.0f}s on {summary['workers']} "
    f"worker(s) [{summary['groups']}]: {parts}\n"
    f"sweep efficiency {'n/a' if efficiency is None else f'{efficiency:.3f}'}: "
    f"{summary['flops_spent']:.3g} FLOPs / ({wall:.0f}s × peak "
    f"{summary['peak_flops'] or 0:.3g} FLOP/s, {summary['peak_flops_source']})"
  )
