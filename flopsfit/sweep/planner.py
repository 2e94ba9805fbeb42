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
from flopsfit.engine import mesh as mesh_lib
from flopsfit.engine import params as params_lib
from flopsfit.engine import step as step_lib
from flopsfit.sweep import cooldown as cooldown_lib
from flopsfit.sweep import probe as probe_lib
from flopsfit.sweep import window as window_lib
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


@dataclasses.dataclass
class _Compiled:
  flops_per_step: float
  params: dict
  memory_bytes: int | None  # per device, on `mesh`
  mesh: dict  # {"fsdp": f, "tensor": t}; `data` takes the rest of the run's devices


def device_memory(config) -> int | None:
  """Bytes of one device: sweep.device_memory_bytes, or (0) the device's own limit on GPUs,
  the host's RAM on CPU; None when unknown."""
  given = config.sweep.get("device_memory_bytes", 0) or 0
  if given < 0:
    raise PlanError(f"config.sweep.device_memory_bytes: expected >= 0 bytes, got {given}")
  return given or _device_memory_bytes()


def _device_memory_bytes() -> int | None:
  device = jax.local_devices()[0]
  stats = device.memory_stats() if device.platform != "cpu" else None
  if stats and stats.get("bytes_limit"):
    return int(stats["bytes_limit"])
  try:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  except (ValueError, OSError):
    return None


@dataclasses.dataclass
class _Context:
  """What planning every budget shares: plugins, rules, limits and the compile cache."""

  config: object
  plugins: object
  rule: object
  units: int
  epoch_units: float  # units of D in one pass over the train split
  available: float  # units of D the train split offers within sweep.max_epochs
  memory: int | None
  example: dict
  cache: dict = dataclasses.field(default_factory=dict)
  checked: bool = False  # the plugins' contract is traced once, on the first candidate
  params: dict = dataclasses.field(default_factory=dict)

  def hparams(self, shape: dict, budget: float) -> dict:
    """The hyperparameter rule's batch size and learning rate, checked (plugins.hparams_for)."""
    return plugins_lib.hparams_for(self.rule, self.config.hparams.factory, shape, budget)

  def counts(self, shape: dict) -> dict:
    key = _shape_key(shape)
    if key not in self.params:
      self.params[key] = params_lib.count_params(self.plugins.abstract_model(shape))
    return self.params[key]


def context(config) -> _Context:
  """Plugins, rules and limits for evaluating candidate runs of `config`."""
  plugins = plugins_lib.load(config)
  dataset = plugins.dataset
  units = dataset.units_per_record
  return _Context(
    config=config,
    plugins=plugins,
    rule=plugins_lib.hparam_rule(config),
    units=units,
    epoch_units=len(dataset.source("train")) * units,
    available=len(dataset.source("train")) * units * config.sweep.max_epochs,
    memory=device_memory(config),
    example={k: v[None] for k, v in dataset.source("train")[0].items()},
  )


def _shape_key(shape: dict) -> tuple:
  return tuple(sorted(shape.items()))


def plan_sweep(config, probe: bool = True, parallel: str = "1") -> dict:
  """Plans every (budget, shape, seed) run; returns the contents of sweep.json. The probe's
  estimate assumes `train --parallel=<parallel>`."""
  if "sweep" not in config:
    raise PlanError("config.sweep: missing; a sweep needs budgets and a shape rule")
  design = cooldown_lib.design_of(config)
  ctx = context(config)
  runs, dropped, centres, windows, kept_by_budget = [], [], {}, {}, []
  for budget in budgets_of(config.sweep):
    centre, centre_source = optimum_centre(config, budget)
    key = f"{budget:.6g}"
    centres[key] = {"N": centre, "source": centre_source}
    kept, rejected, window = window_lib.plan_budget(ctx, budget, centre, evaluate)
    windows[key] = window
    kept_by_budget.append(kept)
    for run in rejected:
      dropped += seeded(run, config.sweep.seeds)
  if design == "cooldown":  # every kept shape: one trunk, a branch at each feasible budget
    kept_by_budget = [cooldown_lib.plan(ctx, budgets_of(config.sweep), kept_by_budget, evaluate)]
  for kept in kept_by_budget:
    for run in kept:
      runs += seeded(run, config.sweep.seeds)
  if not runs:
    raise PlanError(
      "config.sweep: every candidate run was dropped: "
      + "; ".join(sorted({d["reason"].split(" (")[0] for d in dropped}))
    )
  plan = {
    "version": SWEEP_VERSION,
    "identity": identity_lib.identity(config),
    "centres": centres,
    "windows": windows,
    "warnings": window_lib.warnings_of(windows),
    "runs": runs,
    "dropped": dropped,
    "design": {"name": design, **cooldown_lib.totals(runs)},
  }
  if design == "cooldown":
    plan["design"]["cooldown_fraction"] = cooldown_lib.cooldown_fraction(config.sweep)
  if probe:
    plan["estimate"] = probe_lib.estimate_times(config, ctx.plugins, runs, ctx.example, parallel)
  return plan


def seeded(run: dict, seeds) -> list[dict]:
  """One copy of `run` per seed (the run id names the seed), seed fields in plan order."""
  out = []
  for seed in seeds:
    entry = {"run_id": run_ids.format_run_id(run["budget_flops"], run["shape"], seed)}
    entry.update({k: v for k, v in run.items() if k != "run_id"})
    entry["seed"] = int(seed)
    cooldown_lib.seed(entry, int(seed))
    out.append(entry)
  return out


def evaluate(ctx: _Context, budget: float, shape: dict) -> dict:
  """One candidate run at `budget` (seed 0 stands for every seed: FLOPs and memory do not
  depend on it), with its exact steps and tokens, and `reason` when it must be dropped."""
  hp = ctx.hparams(shape, budget)
  seed = int(ctx.config.sweep.seeds[0]) if len(ctx.config.sweep.seeds) else 0
  run = {
    "run_id": run_ids.format_run_id(budget, shape, seed),
    "budget_flops": budget,
    "shape": shape,
    "seed": seed,
    "batch_size": hp["batch_size"],
    "learning_rate": hp["learning_rate"],
  }
  key = (_shape_key(shape), hp["batch_size"], hp["learning_rate"])
  if not ctx.checked:
    plugins_lib.check_model_and_loss(ctx.plugins, shape, hp["batch_size"])  # one line
    ctx.checked = True
  if key not in ctx.cache:
    limit = int(ctx.config.sweep.memory_fraction * ctx.memory) if ctx.memory else None
    ctx.cache[key] = _compile_candidate(
      ctx.config, ctx.plugins, run, ctx.example, limit, ctx.counts(shape)
    )
  compiled = ctx.cache[key]
  steps = int(budget // compiled.flops_per_step)
  tokens = steps * hp["batch_size"] * ctx.units
  run.update(
    {
      "flops_per_step": compiled.flops_per_step,
      "steps": steps,
      "spent_flops": steps * compiled.flops_per_step,
      "tokens": tokens,
      "params": compiled.params,
      "tokens_per_param": tokens / compiled.params["non_embedding"],
      "epochs": tokens / ctx.epoch_units,
      "memory_bytes": compiled.memory_bytes,
      "mesh": compiled.mesh,
    }
  )
  found = window_lib.drop_reason(run, ctx.config.sweep, ctx.available, ctx.memory)
  if found:
    run["limit"], run["reason"] = found
  return run


def _compile_candidate(config, plugins, run, example, limit: int | None, counts: dict) -> _Compiled:
  cfg = run_config(config, run)
  shape = run["shape"]
  build = lambda: plugins.model(shape, run["seed"])
  try:
    flops, memory = step_lib.step_flops_and_memory(
      build, plugins.loss, cfg.optim, example, run["batch_size"], limit=limit
    )
  except Exception:
    plugins_lib.check_model_and_loss(plugins, shape, run["batch_size"])  # a shape's own error
    raise
  fsdp, tensor = _mesh_fields(config)
  mesh = {"fsdp": fsdp or 1, "tensor": tensor}
  for fsdp_size in _fsdp_choices(config, run, fsdp, tensor, memory, limit):
    mesh = {"fsdp": fsdp_size, "tensor": tensor}
    devices = jax.local_devices()[: fsdp_size * tensor]
    _, memory = step_lib.step_flops_and_memory(
      build,
      plugins.loss,
      cfg.optim,
      example,
      run["batch_size"],
      mesh_lib.make_mesh(devices, fsdp=fsdp_size, tensor=tensor),
      limit=limit,
    )
    if fsdp or memory is None or limit is None or memory <= limit:
      break
  return _Compiled(flops, counts, memory, mesh)


def _mesh_fields(config) -> tuple[int, int]:
  """(fsdp, tensor) of config.train.mesh; fsdp 0 is 'the planner chooses'."""
  spec = config.train.get("mesh") or {}
  return int(spec.get("fsdp", 0) or 0), int(spec.get("tensor", 1) or 1)


def _fsdp_choices(config, run, fsdp: int, tensor: int, memory, limit) -> list[int]:
  """The FSDP sizes to compile the step for, in order: the configured one, or (fsdp 0) none
  when the one-device step fits `limit`, else powers of two up to the local devices that
  divide the batch sizes (the first whose step fits is taken)."""
  if fsdp or tensor > 1:
    return [fsdp or 1] if (fsdp or 1) * tensor > 1 else []
  if memory is None or limit is None or memory <= limit:
    return []
  sizes, size = [], 2
  while size <= jax.local_device_count():
    if run["batch_size"] % size == 0 and config.eval.batch_size % size == 0:
      sizes.append(size)
    size *= 2
  return sizes


def format_plan(plan: dict) -> str:
  """The plan as a table: per run and per budget, with dropped candidates and their reasons."""
  seconds = plan.get("estimate", {}).get("seconds", {})
  header = (
    f"{'run':<28} {'budget':>8} {'N':>9} {'D':>10} {'D/N':>7} {'epochs':>7} {'steps':>7} "
    f"{'batch':>5} {'lr':>8} {'est':>7}"
  )
  lines = [header, "-" * len(header)]
  points = [r for r in plan["runs"] if not cooldown_lib.is_trunk(r)]
  for budget in sorted({r["budget_flops"] for r in points}):
    group = [r for r in points if r["budget_flops"] == budget]
    for r in group:
      est = seconds.get(r["run_id"])
      lines.append(
        f"{r['run_id']:<28} {budget:>8.2g} {r['params']['non_embedding']:>9,} "
        f"{r['tokens']:>10.3g} {r['tokens_per_param']:>7.0f} "
        f"{epochs_text(r.get('epochs')):>7} {r['steps']:>7} "
        f"{r['batch_size']:>5} {r['learning_rate']:>8.2g} "
        f"{'' if est is None else f'{est:.0f}s':>7}"
      )
    centre = plan["centres"][f"{budget:.6g}"]
    group_s = sum(seconds.get(r["run_id"], 0.0) for r in group)
    lines.append(
      f"  budget {budget:.3g}: {len(group)} runs, centre N≈{centre['N']:.3g} "
      f"({centre['source']})" + (f", about {group_s / 60:.1f} min" if seconds else "")
    )
    window = plan.get("windows", {}).get(f"{budget:.6g}")
    if window and window["searched"]:
      lines.append("    " + _window_line(window))
  lines += _design_lines(plan)
  total = plan.get("estimate", {}).get("total_seconds")
  workers = plan.get("estimate", {}).get("workers", 1)
  packed = f" ({workers} runs at a time)" if workers > 1 else ""
  lines.append(
    f"total: {len(plan['runs'])} runs"
    + (f", about {total / 60:.1f} min on this machine{packed}" if total else "")
  )
  for d in plan["dropped"]:
    lines.append(f"dropped {d['run_id']} (N={d['params']['non_embedding']:,}): {d['reason']}")
  lines += [f"WARNING: {w}" for w in plan.get("warnings", [])]
  return "\n".join(lines)


def _design_lines(plan: dict) -> list[str]:
  """The cooldown design's trunks and its FLOPs (nothing for an IsoFLOP plan)."""
  design = plan.get("design") or {}
  if design.get("name") != "cooldown":
    return []
  lines = [
    f"trunk {r['run_id']}: {r['steps']} steps at constant lr, branches at steps "
    f"{r['cooldown']['branch_steps']}"
    for r in plan["runs"]
    if cooldown_lib.is_trunk(r)
  ]
  lines.append(
    f"cooldown design: {design['trunks']} trunks, {design['points']} points (cooldown "
    f"{design['cooldown_fraction']:.0%} of each point's steps): spends "
    f"{design['total_flops']:.3g} FLOPs for points accounted {design['points_flops']:.3g}"
  )
  return lines


def _window_line(window: dict) -> str:
  """'feasible N 12,000-61,000 (below: data, above: min_steps); shapes re-centred on it'."""
  if window["N"] is None:
    return "no feasible size"
  limits = ", ".join(f"{side}: {limit}" for side, limit in window["limits"].items() if limit)
  return (
    f"feasible N {window['N'][0]:,}-{window['N'][1]:,}"
    + (f" (limited {limits})" if limits else "")
    + ("; shapes spread over it" if window["recentred"] else "")
  )


def epochs_text(epochs: float | None) -> str:
  """Passes over the train split for a table, or '' when effectively infinite or unknown."""
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
