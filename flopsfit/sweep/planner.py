"""Plans an IsoFLOP sweep: per budget, model shapes around the expected optimum, each with
the exact step count that spends the budget, from the FLOPs of its compiled train step.

`plan_sweep(config)` returns the plan that `python -m flopsfit.plan` writes to `sweep.json`.
"""

import dataclasses
import json
import math
import os
import time

import jax
import numpy as np
from absl import logging

from flopsfit import identity as identity_lib
from flopsfit import plugins as plugins_lib
from flopsfit import run_ids
from flopsfit import workdir as workdir_lib
from flopsfit.engine import params as params_lib
from flopsfit.engine import step as step_lib
from flopsfit.sweep import probe as probe_lib
from flopsfit.sweep.run_config import run_config

SWEEP_VERSION = 1


class PlanError(ValueError):
  """The sweep cannot be planned as configured; the message names the field or file."""


def budgets_of(sweep) -> list[float]:
  """`sweep.budgets`, or `sweep.budget_range` (low, high, count) log-spaced."""
  if sweep.get("budget_range") and sweep.budget_range.count:
    r = sweep.budget_range
    if not 0 < r.low < r.high or r.count < 2:
      raise PlanError(
        f"config.sweep.budget_range: expected 0 < low < high and count >= 2, got "
        f"({r.low}, {r.high}, {r.count})"
      )
    return [float(f"{b:.3g}") for b in np.geomspace(r.low, r.high, r.count)]
  budgets = [float(b) for b in sweep.budgets]
  if not budgets or any(b <= 0 for b in budgets):
    raise PlanError(
      f"config.sweep.budgets: expected positive FLOP budgets, got {list(sweep.budgets)}"
    )
  return sorted(budgets)


def optimum_centre(config, budget: float) -> tuple[float, str]:
  """Expected compute-optimal N (non-embedding) at `budget`, and where the guess comes from:
  an earlier analysis of this workdir when it has a frontier, else the tokens-per-parameter
  prior (C ≈ 6·N·D with D = prior·N)."""
  path = workdir_lib.scaling_laws_path(config.workdir)
  if os.path.exists(path):
    analysis = workdir_lib.read_json_object(path)
    for approach in ("approach3", "approach2"):
      if workdir_lib.field(analysis, path, approach, (dict, type(None))) is None:
        continue
      if analysis[approach].get("status") == "ok":
        coefficient = workdir_lib.field(analysis, path, f"{approach}.N_opt.coefficient.value")
        exponent = workdir_lib.field(analysis, path, f"{approach}.N_opt.exponent.value")
        centre = coefficient * budget**exponent
        if math.isfinite(centre) and centre > 0:
          return centre, f"scaling_laws.json {approach}"
  prior = config.sweep.tokens_per_param
  return math.sqrt(budget / (6.0 * prior)), f"prior tokens_per_param={prior:g}"


def candidate_shapes(config, centre: float) -> list[dict]:
  """`sweep.shapes_per_budget` distinct shapes spread evenly in log N over `sweep.decades`
  decades around `centre` (from the size rule), or the config's explicit `sweep.shapes`."""
  sweep = config.sweep
  if sweep.get("shapes"):
    return [dict(s) for s in sweep.shapes]
  rule, spec = plugins_lib.size_rule(config), config.model.size_rule.factory
  count, decades = sweep.shapes_per_budget, sweep.decades
  for widen in range(12):  # tiny N has few distinct shapes: widen the range until enough
    half = 0.5 * decades * (1.25**widen)
    targets = np.geomspace(centre / 10**half, centre * 10**half, 6 * count)
    shapes = []
    for t in targets:
      s = plugins_lib.shape_for(rule, spec, float(t))
      if s not in shapes:
        shapes.append(s)
    if len(shapes) >= count:
      picks = np.unique(np.round(np.linspace(0, len(shapes) - 1, count)).astype(int))
      return [shapes[i] for i in picks]
  return shapes


@dataclasses.dataclass
class _Compiled:
  flops_per_step: float
  params: dict
  memory_bytes: int | None


def _device_memory_bytes() -> int | None:
  device = jax.local_devices()[0]
  stats = device.memory_stats() if device.platform != "cpu" else None
  if stats and stats.get("bytes_limit"):
    return int(stats["bytes_limit"])
  try:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  except (ValueError, OSError):
    return None


def plan_sweep(config, probe: bool = True, parallel: str = "1") -> dict:
  """Plans every (budget, shape, seed) run; returns the contents of sweep.json. The probe's
  estimate assumes `train --parallel=<parallel>`."""
  if "sweep" not in config:
    raise PlanError("config.sweep: missing; a sweep needs budgets and a shape rule")
  plugins = plugins_lib.load(config)
  dataset = plugins.dataset
  sweep, units = config.sweep, dataset.units_per_record
  epoch_units = len(dataset.source("train")) * units
  available = epoch_units * sweep.max_epochs
  rule, rule_spec = plugins_lib.hparam_rule(config), config.hparams.factory
  memory = _device_memory_bytes()
  example = {k: v[None] for k, v in dataset.source("train")[0].items()}
  cache: dict = {}
  runs, dropped, centres = [], [], {}
  for budget in budgets_of(sweep):
    centre, centre_source = optimum_centre(config, budget)
    centres[f"{budget:.6g}"] = {"N": centre, "source": centre_source}
    for shape in candidate_shapes(config, centre):
      hp = plugins_lib.hparams_for(rule, rule_spec, shape, budget)
      for seed in sweep.seeds:
        run = {
          "run_id": run_ids.format_run_id(budget, shape, seed),
          "budget_flops": budget,
          "shape": shape,
          "seed": int(seed),
          "batch_size": hp["batch_size"],
          "learning_rate": hp["learning_rate"],
        }
        key = (tuple(sorted(shape.items())), hp["batch_size"], hp["learning_rate"])
        if key not in cache:
          cache[key] = _compile_candidate(config, plugins, run, example)
        compiled = cache[key]
        steps = int(budget // compiled.flops_per_step)
        spent = steps * compiled.flops_per_step
        tokens = steps * hp["batch_size"] * units
        run.update(
          {
            "flops_per_step": compiled.flops_per_step,
            "steps": steps,
            "spent_flops": spent,
            "tokens": tokens,
            "params": compiled.params,
            "tokens_per_param": tokens / compiled.params["non_embedding"],
            "epochs": tokens / epoch_units,
            "memory_bytes": compiled.memory_bytes,
          }
        )
        reason = _drop_reason(run, sweep, available, memory)
        if reason:
          dropped.append({**run, "reason": reason})
        else:
          runs.append(run)
  if not runs:
    raise PlanError(
      "config.sweep: every candidate run was dropped: "
      + "; ".join(sorted({d["reason"].split(" (")[0] for d in dropped}))
    )
  plan = {
    "version": SWEEP_VERSION,
    "identity": identity_lib.identity(config),
    "centres": centres,
    "runs": runs,
    "dropped": dropped,
  }
  if probe:
    plan["estimate"] = probe_lib.estimate_times(config, plugins, runs, example, parallel)
  return plan


def _compile_candidate(config, plugins, run, example) -> _Compiled:
  cfg = run_config(config, run)
  shape = run["shape"]
  plugins_lib.check_model_and_loss(plugins, shape, run["batch_size"])  # one line, not a traceback
  build = lambda: plugins.model(shape, run["seed"])
  flops, memory = step_lib.step_flops_and_memory(
    build, plugins.loss, cfg.optim, example, run["batch_size"]
  )
  return _Compiled(flops, params_lib.count_params(plugins.abstract_model(shape)), memory)


def _drop_reason(run, sweep, available_units, memory) -> str | None:
  if run["steps"] < sweep.min_steps:
    return (
      f"too few steps: {run['steps']} < sweep.min_steps={sweep.min_steps} (short runs "
      "measure optimisation, not model size)"
    )
  miss = 1 - run["spent_flops"] / run["budget_flops"]
  if miss > sweep.budget_tolerance:
    return f"misses the budget by {miss:.2%} > sweep.budget_tolerance={sweep.budget_tolerance:g}"
  if run["tokens"] > available_units:
    return (
      f"needs {run['tokens']:.3g} units of data, the train split offers "
      f"{available_units:.3g} (sweep.max_epochs={sweep.max_epochs:g})"
    )
  if memory and run["memory_bytes"] and run["memory_bytes"] > sweep.memory_fraction * memory:
    return (
      f"needs {run['memory_bytes'] / 2**30:.2f} GiB, more than sweep.memory_fraction="
      f"{sweep.memory_fraction:g} of {memory / 2**30:.1f} GiB"
    )
  return None


def format_plan(plan: dict) -> str:
  """The plan as a table: per run and per budget, with dropped candidates and their reasons."""
  seconds = plan.get("estimate", {}).get("seconds", {})
  header = (
    f"{'run':<28} {'budget':>8} {'N':>9} {'D':>10} {'D/N':>7} {'epochs':>7} {'steps':>7} "
    f"{'batch':>5} {'lr':>8} {'est':>7}"
  )
  lines = [header, "-" * len(header)]
  for budget in sorted({r["budget_flops"] for r in plan["runs"]}):
    group = [r for r in plan["runs"] if r["budget_flops"] == budget]
    for r in group:
      est = seconds.get(r["run_id"])
      lines.append(
        f"{r['run_id']:<28} {budget:>8.2g} {r['params']['non_embedding']:>9,} "
        f"{r['tokens']:>10.3g} {r['tokens_per_param']:>7.0f} {_epochs(r):>7} {r['steps']:>7} "
        f"{r['batch_size']:>5} {r['learning_rate']:>8.2g} "
        f"{'' if est is None else f'{est:.0f}s':>7}"
      )
    centre = plan["centres"][f"{budget:.6g}"]
    group_s = sum(seconds.get(r["run_id"], 0.0) for r in group)
    lines.append(
      f"  budget {budget:.3g}: {len(group)} runs, centre N≈{centre['N']:.3g} "
      f"({centre['source']})" + (f", about {group_s / 60:.1f} min" if seconds else "")
    )
  total = plan.get("estimate", {}).get("total_seconds")
  workers = plan.get("estimate", {}).get("workers", 1)
  packed = f" ({workers} runs at a time)" if workers > 1 else ""
  lines.append(
    f"total: {len(plan['runs'])} runs"
    + (f", about {total / 60:.1f} min on this machine{packed}" if total else "")
  )
  for d in plan["dropped"]:
    lines.append(f"dropped {d['run_id']} (N={d['params']['non_embedding']:,}): {d['reason']}")
  return "\n".join(lines)


def _epochs(run: dict) -> str:
  """Passes over the train split, or '' when it is effectively infinite (or unknown)."""
  epochs = run.get("epochs")
  return "" if epochs is None or epochs < 1e-3 else f"{epochs:.2g}"


def load_or_plan(config, force: bool = False, probe: bool = True, parallel: str = "1") -> dict:
  """Plans the config into `<workdir>/sweep.json`, refusing to mix with another sweep's results.

  A workdir holds one sweep. If its sweep.json came from a config with another identity and
  any run has results, planning refuses unless `force`, which moves the old sweep.json and
  runs/ into `<workdir>/archive/<time>/` (nothing is deleted).
  """
  path = workdir_lib.sweep_path(config.workdir)
  runs_dir = workdir_lib.runs_dir(config.workdir)
  if os.path.exists(path):
    try:
      old = workdir_lib.read_json_object(path)
    except workdir_lib.WorkdirFileError:
      if not force:
        raise PlanError(
          f"{path}: unreadable (truncated or corrupted); re-plan with --force (moves it and "
          "the runs to archive/) or restore it"
        ) from None
      old = {}
    if old.get("identity") != identity_lib.identity(config):
      has_results = os.path.isdir(runs_dir) and any(
        os.path.exists(os.path.join(runs_dir, r, workdir_lib.RESULT)) for r in os.listdir(runs_dir)
      )
      if has_results and not force:
        diff = identity_lib.differences(old.get("identity", {}), identity_lib.identity(config))
        raise PlanError(
          f"{path}: this workdir holds results of a different sweep (differs in "
          f"{', '.join(diff[:5]) or 'version'}); use a new config.workdir or --force "
          "(moves the old sweep to archive/)"
        )
      if has_results:
        _archive(config.workdir)
  plan = plan_sweep(config, probe=probe, parallel=parallel)
  estimate = plan.pop("estimate", None)
  plan = _normalise(plan)
  workdir_lib.write_json_atomic(path, plan)
  if estimate:
    plan["estimate"] = estimate
  return plan


_RUN_FIELDS = {  # the fields of a sweep.json run that training reads
  "run_id": str,
  "budget_flops": (int, float),
  "shape": dict,
  "seed": int,
  "batch_size": int,
  "learning_rate": (int, float),
  "params.non_embedding": int,
}


def read_plan(path: str) -> dict:
  """A sweep.json, checked: `runs` a non-empty list whose runs have the fields training reads
  with the right types; WorkdirFileError names the file and field otherwise."""
  plan = workdir_lib.read_json_object(path)
  workdir_lib.field(plan, path, "identity", dict)
  runs = workdir_lib.field(plan, path, "runs", list)
  if not runs:
    raise workdir_lib.WorkdirFileError(f"{path}: field 'runs' is empty; expected planned runs")
  for i, run in enumerate(runs):
    if not isinstance(run, dict):
      raise workdir_lib.WorkdirFileError(f"{path}: runs[{i}] is not an object")
    for name, kind in _RUN_FIELDS.items():
      workdir_lib.field(run, f"{path}: runs[{i}]", name, kind)
  return plan


def _normalise(obj):
  """JSON round trip: tuples become lists, so a returned plan equals the stored one."""
  return json.loads(json.dumps(obj))


def _archive(workdir: str) -> None:
  target = os.path.join(workdir_lib.archive_dir(workdir), time.strftime("%Y%m%d-%H%M%S"))
  os.makedirs(target, exist_ok=True)
  for name in (workdir_lib.SWEEP, workdir_lib.RUNS, workdir_lib.SCALING_LAWS, workdir_lib.PLOTS):
    source = os.path.join(workdir, name)
    if os.path.exists(source):
      os.replace(source, os.path.join(target, name))
  logging.warning("moved the previous sweep of %s to %s", workdir, target)
