"""Trains a planned sweep: every run of sweep.json not yet finished, or a selected part of it.

Independent processes split one sweep with `shard_index`/`num_shards` (run i goes to shard
i mod num_shards): a SLURM job array or one process per GPU need nothing but the workdir.
"""

import os
import time
import traceback

from absl import logging

from flopsfit import config_check
from flopsfit import identity as identity_lib
from flopsfit import plugins as plugins_lib
from flopsfit import workdir as workdir_lib
from flopsfit.engine import checkpoints
from flopsfit.engine import run as run_lib
from flopsfit.sweep import planner
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
    runs = [known[i] for i in run_ids]
  if not 0 <= shard_index < num_shards:
    raise planner.PlanError(
      f"--shard_index: expected 0 <= shard_index < num_shards={num_shards}, got {shard_index}"
    )
  return [r for i, r in enumerate(runs) if i % num_shards == shard_index]


def finished_result(workdir: str, run_id: str) -> dict | None:
  path = workdir_lib.result_path(workdir, run_id)
  if not os.path.exists(path):
    return None
  result = workdir_lib.read_json_object(path)
  status = workdir_lib.field(result, path, "status", str)
  return result if status in workdir_lib.FINAL_STATUSES else None


def run_sweep(
  config, run_ids=None, shard_index: int = 0, num_shards: int = 1, force_plan: bool = False
) -> list[dict]:
  """Plans if there is no sweep.json, then trains the selected unfinished runs in order.

  One failed or diverged run does not stop the others; a failed run's result.json records
  the error. Returns one summary row per selected run.
  """
  path = workdir_lib.sweep_path(config.workdir)
  if os.path.exists(path) and not force_plan:
    plan = planner.read_plan(path)
    if plan.get("identity") != identity_lib.identity(config):
      raise planner.PlanError(
        f"{path}: planned from a different config; re-plan with "
        "`python -m flopsfit.plan --force` or use a new config.workdir"
      )
  else:
    plan = planner.load_or_plan(config, force=force_plan)
    logging.info("planned %d runs into %s:\n%s", len(plan["runs"]), path, planner.format_plan(plan))
  rows = []
  for run in select_runs(plan, run_ids, shard_index, num_shards):
    done = finished_result(config.workdir, run["run_id"])
    action = "skipped" if done else "trained"
    if done is None:
      start = time.perf_counter()
      try:
        done = run_lib.train_run(run_config(config, run))
      except (
        plugins_lib.PluginError,
        config_check.ConfigError,
        checkpoints.CheckpointMismatch,
        checkpoints.Preempted,
        workdir_lib.WorkdirFileError,
      ):
        raise  # the config or a workdir file is wrong, or the whole process must stop
      except Exception as e:  # this run failed; record it and go on
        logging.error("%s failed:\n%s", run["run_id"], traceback.format_exc())
        done = _failed_result(config, run, e, time.perf_counter() - start)
    rows.append({**_summary_row(run, done), "action": action})
  return rows


def _failed_result(config, run: dict, error: Exception, seconds: float) -> dict:
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
  }
  workdir_lib.write_json_atomic(workdir_lib.result_path(config.workdir, run["run_id"]), result)
  return result


def _summary_row(run: dict, result: dict) -> dict:
  return {
    "run_id": run["run_id"],
    "N": run["params"]["non_embedding"],
    "D": result.get("tokens", 0),
    "budget": run["budget_flops"],
    "spent": result.get("flops", {}).get("xla", 0.0),
    "loss": result.get("final_eval_loss"),
    "status": result["status"],
    "seconds": result.get("wall_seconds", 0.0),
  }


def format_summary(rows: list[dict]) -> str:
  header = (
    f"{'run':<28} {'N':>9} {'D':>10} {'budget':>8} {'spent':>10} {'eval loss':>9} "
    f"{'status':>9} {'wall':>7} {'this call':>9}"
  )
  lines = [header, "-" * len(header)]
  for r in rows:
    loss = "" if r["loss"] is None else f"{r['loss']:.4f}"
    lines.append(
      f"{r['run_id']:<28} {r['N']:>9,} {r['D']:>10.3g} {r['budget']:>8.2g} "
      f"{r['spent']:>10.4g} {loss:>9} {r['status']:>9} {r['seconds']:>6.0f}s "
      f"{r.get('action', ''):>9}"
    )
  return "\n".join(lines)
