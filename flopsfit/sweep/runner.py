"""Trains a planned sweep: every run of sweep.json not yet finished, or a selected part of it.

A process trains a run only while it holds the run's claim (`claims.py`), so packed workers,
`shard_index`/`num_shards` processes (run i goes to shard i mod num_shards) and restarts after
a crash share one workdir without a coordinator, and no run is trained twice.
"""

import dataclasses
import os
import time
import traceback
import uuid

import jax
from absl import logging

from flopsfit import config_check
from flopsfit import identity as identity_lib
from flopsfit import plugins as plugins_lib
from flopsfit import workdir as workdir_lib
from flopsfit.engine import checkpoints, throughput
from flopsfit.engine import mesh as mesh_lib
from flopsfit.engine import replicas as replicas_lib
from flopsfit.engine import run as run_lib
from flopsfit.sweep import claims, planner
from flopsfit.sweep import layout as layout_lib
from flopsfit.sweep import summary as summary_lib
from flopsfit.sweep import workers as workers_lib
from flopsfit.sweep.run_config import run_config


def select_runs(plan: dict, run_ids=None, shard_index: int = 0, num_shards: int = 1) -> list[dict]:
  runs = plan["runs"]
  if run_ids:
    known = {r["run_id"]: r for r in runs}
    unknown = [i for i in run_ids if i not in known]
    if unknown:
      raise planner.PlanError(
        f"--runs: {', '.join(unknown)} not in sweep.json (e.g. {runs[0]['run_id']})"
      )
    chosen = []  # in the order given; a branch needs its trunk, selected just before it
    for i in run_ids:
      for j in (_trunk_of(known[i]), i):
        if j and j not in chosen:
          chosen.append(j)
    runs = [known[i] for i in chosen]
  if not 0 <= shard_index < num_shards:
    raise planner.PlanError(
      f"--shard_index: expected 0 <= shard_index < num_shards={num_shards}, got {shard_index}"
    )
  units = {}  # a trunk and its branches go to one shard
  for r in runs:
    units.setdefault(_trunk_of(r) or r["run_id"], len(units))
  return [r for r in runs if units[_trunk_of(r) or r["run_id"]] % num_shards == shard_index]


def _trunk_of(run: dict) -> str:
  """The trunk a run belongs to in the cooldown design (a trunk's own id), else ''."""
  role = run.get("cooldown") or {}
  return run["run_id"] if role.get("role") == "trunk" else role.get("trunk", "")


def _trunk_problem(workdir: str, run: dict, sweep: str) -> str | None:
  """For a branch: "wait" while its trunk has no final result, the reason it cannot be
  trained when the trunk diverged or failed; None when it can be trained (or is no branch)."""
  role = run.get("cooldown") or {}
  if role.get("role") != "branch":
    return None
  trunk = finished_result(workdir, role["trunk"], sweep)
  if trunk is None:
    return "wait"
  if trunk["status"] != "completed":
    return f"its trunk {role['trunk']} {trunk['status']}: {trunk.get('error')}"
  return None


def finished_result(workdir: str, run_id: str, sweep: str = "") -> dict | None:
  """The run's result if it is final, or if it failed in sweep invocation `sweep` (a failed run
  is tried again by the next invocation, not by every worker of this one)."""
  path = workdir_lib.result_path(workdir, run_id)
  if not os.path.exists(path):
    return None
  result = workdir_lib.read_json_object(path)
  final = workdir_lib.field(result, path, "status", str) in workdir_lib.FINAL_STATUSES
  return result if final or (sweep and result.get("failed_in_sweep") == sweep) else None


def load_plan(config, force_plan: bool = False, parallel: str = "1") -> dict:
  """sweep.json of this config (planned now if there is none)."""
  path = workdir_lib.sweep_path(config.workdir)
  if os.path.exists(path) and not force_plan:
    plan = planner.read_plan(path)
    if plan.get("identity") != identity_lib.identity(config):
      raise planner.PlanError(
        f"{path}: planned from a different config; re-plan with "
        "`python -m flopsfit.plan --force` or use a new config.workdir"
      )
    return plan
  probe = bool(config.sweep.get("probe", True))  # as `plan` does: the probe costs time
  plan = planner.load_or_plan(config, force=force_plan, probe=probe, parallel=parallel)
  logging.info("planned %d runs into %s:\n%s", len(plan["runs"]), path, planner.format_plan(plan))
  return plan


def run_sweep(
  config,
  run_ids=None,
  shard_index: int = 0,
  num_shards: int = 1,
  force_plan: bool = False,
  claim_timeout: float = claims.DEFAULT_TIMEOUT,
) -> list[dict]:
  """Plans if there is no sweep.json, then trains the selected unfinished runs in order, in
  this process on all its devices. Returns one summary row per selected run."""
  outcome = train_sweep(config, run_ids, shard_index, num_shards, "1", claim_timeout, force_plan)
  return outcome.rows


@dataclasses.dataclass
class SweepOutcome:
  rows: list[dict]  # one per selected run
  summary: dict | None  # sweep_summary.json
  exit_reason: str = ""  # "" | "preempted" | "config error"


def train_sweep(
  config,
  run_ids=None,
  shard_index: int = 0,
  num_shards: int = 1,
  parallel: str = "auto",
  claim_timeout: float = claims.DEFAULT_TIMEOUT,
  force_plan: bool = False,
) -> SweepOutcome:
  """Plans if needed, trains the selected unfinished runs packed on the machine (`layout.py`),
  and writes `<workdir>/sweep_summary.json`. `parallel="1"`: in this process, in plan order."""
  start, workers = time.perf_counter(), layout_lib.parse_parallel(parallel)
  plan = load_plan(config, force_plan, parallel)
  runs = select_runs(plan, run_ids, shard_index, num_shards)
  owner = claims.identity(worker=0, sweep=uuid.uuid4().hex)
  machine = layout_lib.this_machine(jax.devices()[0].platform, jax.local_device_count())
  packed = []
  if jax.process_count() == 1:
    todo = [r for r in runs if finished_result(config.workdir, r["run_id"]) is None]
    packed = layout_lib.plan_workers(todo, machine, workers, config.eval.batch_size)
  peak, peak_source = throughput.peak_flops(
    mesh_lib.data_mesh(jax.local_devices()),
    str(config.model.kwargs.get("dtype", "float32")),
    config.train.get("peak_flops", 0.0),
  )
  plan_seconds = time.perf_counter() - start
  if not packed:
    rows, timings = train_claimed(config, runs, owner, claim_timeout)
    weighted, reason = [(1.0, t) for t in timings], ""
    shape = {"workers": 1, "groups": "all devices of this process"}
  else:
    rows, weighted, reason, shape = _train_packed(
      config, runs, owner, claim_timeout, machine, packed
    )
  wall = time.perf_counter() - start
  summary = summary_lib.sweep_summary(wall, plan_seconds, weighted, peak, peak_source, shape)
  if weighted:
    summary_lib.write(config.workdir, summary)
  return SweepOutcome(rows, summary, reason)


def _train_packed(config, runs, owner, claim_timeout, machine, workers):
  """(rows, weighted timings, exit reason, layout) of the packed workers."""
  by_id = {r["run_id"]: r for r in runs}
  worker_rows, weighted, reason = [], [], ""
  outcomes = workers_lib.run_workers(config, machine, workers, by_id, owner, claim_timeout)
  for o in outcomes:
    share = min(len(o.group) / len(machine.units), 1 / len(workers))
    worker_rows += o.rows
    weighted += [(share, t) for t in o.timings]
    if o.returncode == 2:
      reason = "config error"
    elif o.returncode == checkpoints.PREEMPTED_EXIT_CODE and not reason:
      reason = "preempted"
    elif o.returncode:
      logging.error("worker %d on %s exited with status %d", o.index, o.group, o.returncode)
  rows = []
  for run in runs:
    mine = [r for r in worker_rows if r["run_id"] == run["run_id"]]
    mine.sort(key=lambda r: r["action"] != "trained")
    if mine:
      rows.append(mine[0])
      continue
    done = finished_result(config.workdir, run["run_id"], owner["sweep"])
    result = done or {"status": "incomplete"}
    rows.append({**_summary_row(run, result), "action": "skipped" if done else ""})
  sizes = sorted({len(w.group) for w in workers}, reverse=True)
  shape = {
    "workers": len(workers),
    "groups": " + ".join(
      f"{sum(len(w.group) == n for w in workers)}×{n} {machine.platform}" for n in sizes
    ),
    "worker_runs": [{"group": list(w.group), "runs": list(w.run_ids)} for w in workers],
  }
  return rows, weighted, reason, shape


def train_claimed(
  config,
  runs: list[dict],
  owner: dict,
  claim_timeout: float,
  devices: int | None = None,
  poll_seconds: float = 1.0,
) -> tuple[list[dict], list[dict]]:
  """Trains each of `runs` not finished yet whose claim this process gets, in order.

  A run claimed by another live process of the same sweep invocation (`owner["sweep"]`) is
  left to it; one claimed by any other process is waited for, and taken over if that claim
  goes stale. One failed or diverged run does not stop the others; a failed run's
  result.json records the error. Returns (summary rows, timing of each run trained here).
  """
  rows, timings, pending = {}, [], list(runs)
  while pending:
    trained_one, waiting = False, []
    for run in pending:
      done = finished_result(config.workdir, run["run_id"], owner["sweep"])
      if done is not None:
        rows[run["run_id"]] = {**_summary_row(run, done), "action": "skipped"}
        continue
      problem = _trunk_problem(config.workdir, run, owner["sweep"])
      if problem == "wait":
        waiting.append(run)  # its trunk is trained first (by this or another process)
        continue
      claim, holder = claims.try_claim(config.workdir, run["run_id"], owner, claim_timeout)
      if claim is None:
        if holder.get("sweep") != owner["sweep"]:
          waiting.append(run)  # another sweep's process: wait for it, or take it over
        continue
      seeds = []  # (run, claim) of the same shape's other seeds, claimed to train together
      try:
        done = finished_result(config.workdir, run["run_id"], owner["sweep"])
        action = "skipped" if done else "trained"
        if done is None and problem:
          done = _failed_result(config, run, RuntimeError(problem), 0.0, owner["sweep"])
        elif done is None and config.train.get("vmap_seeds", False):
          seeds = _claim_seeds(config, run, pending, owner, claim_timeout)
        if done is None:
          group = [run] + [r for r, _ in seeds]
          results, group_timings = _train_runs(config, group, owner["sweep"], devices)
          timings += group_timings
          done = results[0]
          for r, result in zip(group[1:], results[1:]):
            rows[r["run_id"]] = {**_summary_row(r, result), "action": "trained"}
      finally:
        claim.release()
        for _, seed_claim in seeds:
          seed_claim.release()
      rows[run["run_id"]] = {**_summary_row(run, done), "action": action}
      trained_one = True
      break  # back to the top: the order of `runs` is the order of preference
    pending = [r for r in (pending if trained_one else waiting) if r["run_id"] not in rows]
    if pending and not trained_one:
      time.sleep(poll_seconds)
  return [rows[r["run_id"]] for r in runs if r["run_id"] in rows], timings


def _claim_seeds(config, run: dict, pending: list[dict], owner: dict, timeout: float) -> list:
  """(run, claim) of each unfinished other seed of `run`'s shape and budget in `pending` whose
  claim this process gets (train.vmap_seeds; single-process sweeps, no cooldown roles)."""
  if jax.process_count() > 1 or run.get("cooldown"):
    return []
  same = ("budget_flops", "shape", "batch_size", "learning_rate", "mesh")
  out = []
  for other in pending:
    if (
      other["run_id"] == run["run_id"]
      or other.get("cooldown")
      or any(other.get(k) != run.get(k) for k in same)
      or finished_result(config.workdir, other["run_id"], owner["sweep"]) is not None
    ):
      continue
    claim, _ = claims.try_claim(config.workdir, other["run_id"], owner, timeout)
    if claim is not None:
      out.append((other, claim))
  return out


def _train_runs(config, runs: list[dict], sweep: str, devices: int | None):
  """(results, timings) of one run trained in this process, or of the seeds of one shape
  trained together in one vmapped step (`engine/replicas.py`; the group's seconds are split
  evenly over its runs)."""
  start = time.perf_counter()
  configs = [run_config(config, r, devices) for r in runs]
  try:
    if len(runs) == 1:
      results = [run_lib.train_run(configs[0])]
    else:
      results = replicas_lib.train_replicas(configs)
  except (
    plugins_lib.PluginError,
    config_check.ConfigError,
    checkpoints.CheckpointMismatch,
    checkpoints.Preempted,
    workdir_lib.WorkdirFileError,
  ):
    raise  # the config or a workdir file is wrong, or the whole process must stop
  except Exception as e:  # these runs failed; record it and go on
    logging.error("%s failed:\n%s", ", ".join(r["run_id"] for r in runs), traceback.format_exc())
    seconds = time.perf_counter() - start
    results = [_failed_result(config, r, e, seconds, sweep) for r in runs]
  seconds = time.perf_counter() - start
  timings = []
  for run, result in zip(runs, results):
    resumed = result.get("resumed_from_steps") or [0]
    timing = {
      "seconds": seconds,
      "compile_seconds": result.get("compile_seconds", 0.0),
      "eval_seconds": result.get("eval_seconds", 0.0),
      "checkpoint_seconds": result.get("checkpoint_seconds", 0.0),
    }
    timings.append(
      {
        "run_id": run["run_id"],
        **{k: v / len(runs) for k, v in timing.items()},
        "flops": max(0, result.get("steps", 0) - resumed[-1]) * result.get("flops_per_step", 0.0),
      }
    )
  return results, timings


def _failed_result(config, run: dict, error: Exception, seconds: float, sweep: str) -> dict:
  result = {
    "run_id": run["run_id"],
    "status": "failed",
    "error": f"{type(error).__name__}: {error}",
    "seed": run["seed"],
    "budget_flops": run["budget_flops"],
    "shape": run["shape"],
    "params": run["params"],
    "tokens": 0,
    "steps": 0,
    "final_eval_loss": None,
    "flops": {"xla": 0.0},
    "wall_seconds": seconds,
    "failed_in_sweep": sweep,
  }
  workdir_lib.write_json_atomic(workdir_lib.result_path(config.workdir, run["run_id"]), result)
  return result


def _summary_row(run: dict, result: dict) -> dict:
  return {
    "run_id": run["run_id"],
    "N": run["params"]["non_embedding"],
    "D": result.get("tokens", 0),
    "epochs": result.get("epochs"),
    "budget": run["budget_flops"],
    "spent": result.get("flops", {}).get("xla", 0.0),
    "loss": result.get("final_eval_loss"),
    "status": result["status"],
    "seconds": result.get("wall_seconds", 0.0),
  }


def format_summary(rows: list[dict]) -> str:
  header = (
    f"{'run':<28} {'N':>9} {'D':>10} {'epochs':>7} {'budget':>8} {'spent':>10} {'eval loss':>9} "
    f"{'status':>9} {'wall':>7} {'this call':>9}"
  )
  lines = [header, "-" * len(header)]
  for r in rows:
    loss = "" if r["loss"] is None else f"{r['loss']:.4f}"
    epochs = planner.epochs_text(r.get("epochs"))
    lines.append(
      f"{r['run_id']:<28} {r['N']:>9,} {r['D']:>10.3g} {epochs:>7} {r['budget']:>8.2g} "
      f"{r['spent']:>10.4g} {loss:>9} {r['status']:>9} {r['seconds']:>6.0f}s "
      f"{r.get('action', ''):>9}"
    )
  return "\n".join(lines)
