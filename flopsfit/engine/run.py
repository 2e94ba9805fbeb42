"""Trains one model to an exact FLOP budget and writes its run directory.

`train_run(config)` is what `python -m flopsfit.train` calls; a notebook can call it with a
ConfigDict. It writes `runs/<id>/config.json`, `metrics.jsonl` and, last and atomically,
`result.json` (documented field by field in WORKSPACE.md).
"""

import dataclasses
import math
import os
import time
from typing import Any

import jax
import numpy as np
from absl import logging

from flopsfit import config_check, contracts, run_ids
from flopsfit import identity as identity_lib
from flopsfit import plugins as plugins_lib
from flopsfit import workdir as workdir_lib
from flopsfit.config_check import ConfigError
from flopsfit.data import pipeline
from flopsfit.engine import branch as branch_lib
from flopsfit.engine import checkpoints as checkpoints_lib
from flopsfit.engine import distributed, throughput
from flopsfit.engine import flops as flops_lib
from flopsfit.engine import mesh as mesh_lib
from flopsfit.engine import params as params_lib
from flopsfit.engine import provenance as provenance_lib
from flopsfit.engine import sharding as sharding_lib
from flopsfit.engine import step as step_lib
from flopsfit.engine.evaluate import final_eval as run_final_eval
from flopsfit.engine.loop import TrainLoop, resume_metrics


def model_shape(config) -> dict:
  """The shape fields of the model kwargs that a run id records (e.g. d_model, n_layers)."""
  kwargs = config.model.kwargs
  return {k: int(kwargs[k]) for k in config.model.get("shape_fields", ()) if k in kwargs}


def run_id_of(config) -> str:
  return config.get("run", "") or run_ids.format_run_id(
    config.train.budget_flops, model_shape(config), config.seed
  )


def check_config(config, mesh) -> None:
  train, devices = config.train, mesh_lib.batch_devices(mesh)
  if not train.budget_flops or train.budget_flops <= 0:
    raise ConfigError(
      f"config.train.budget_flops: expected a positive FLOP budget, got {train.budget_flops}"
    )
  for field, value in (
    ("train.batch_size", train.batch_size),
    ("eval.batch_size", config.eval.batch_size),
  ):
    if value <= 0 or value % devices:
      raise ConfigError(
        f"config.{field}: {value} must be a positive multiple of the {devices} devices "
        f"the batch is split over (mesh {mesh_lib.shape_of(mesh)}: data × fsdp)"
      )
  if train.steps_per_call < 1:
    raise ConfigError(f"config.train.steps_per_call: expected >= 1, got {train.steps_per_call}")
  if config.checkpoint.on_finish not in checkpoints_lib.ON_FINISH:
    raise ConfigError(
      f"config.checkpoint.on_finish: expected one of {checkpoints_lib.ON_FINISH}, "
      f"got {config.checkpoint.on_finish!r}"
    )
  if config.checkpoint.keep < 1:
    raise ConfigError(f"config.checkpoint.keep: expected >= 1, got {config.checkpoint.keep}")
  branch_lib.check_trunk(config)  # a malformed train.cooldown or no trunk: before compiling
  if config.eval.tokens <= 0:
    raise ConfigError(
      f"config.eval.tokens: expected a positive token count, got {config.eval.tokens}"
    )


def refuse_other_config(run_dir: str, config) -> None:
  """A run directory made by a different config is not reused (fields that only say where
  and how a run executes may differ)."""
  path = os.path.join(run_dir, workdir_lib.CONFIG)
  if os.path.exists(path):
    existing = workdir_lib.field(workdir_lib.read_json_object(path), path, "config", dict)
    diff = identity_lib.differences(identity_lib.identity(existing), identity_lib.identity(config))
    if diff:
      raise ConfigError(
        f"{path}: this run id was trained with a different config (differs in "
        f"{', '.join(diff[:5])}); use a new workdir or remove that run directory"
      )


@dataclasses.dataclass(frozen=True)
class CompiledRun:
  """One run once its step is compiled: what the loop, the eval and result.json need."""

  config: Any
  run_id: str
  shape: dict
  mesh: Any
  dataset: contracts.Dataset
  train_source: contracts.Source
  compiled: step_lib.CompiledStep
  total_steps: int
  units_per_step: int
  eval_records: int
  param_counts: dict
  attention_per_token: float
  peak: float | None
  peak_source: str


def train_run(config) -> dict:
  """Trains the config's model for floor(budget / FLOPs per step) steps; returns the result."""
  start_time = time.perf_counter()
  plugins, mesh, shape = prepare(config)
  run_id = run_id_of(config)
  run_dir = workdir_lib.run_dir(config.workdir, run_id)
  previous = final_result(run_dir, run_id)
  if previous:
    return previous
  refuse_other_config(run_dir, config)  # before compiling: nothing to do for another config
  run = compile_run(config, plugins, mesh, shape, run_id, run_dir)
  attempt = Attempt.start(run, run_dir)
  with checkpoints_lib.StopSignals() as stop, attempt.metrics_file() as metrics_file:
    loop = TrainLoop(run, attempt.ckpt, attempt.batches, metrics_file, attempt.progress, start_time)
    state = loop.train(attempt.state, stop)
    final_eval, eval_seconds = evaluate_if_completed(run, loop, state, stop)
  return attempt.finish(loop, final_eval, eval_seconds)


def prepare(config) -> tuple:
  """(plugins, mesh, shape) of a run's config, every field and plugin checked."""
  config_check.check_fields(config)
  distributed.enable_compilation_cache(config)
  plugins = plugins_lib.load(config)
  num_devices = config.train.get("devices", 0)
  if not 0 <= num_devices <= jax.local_device_count():
    raise ConfigError(
      f"config.train.devices: {num_devices} requested; expected 0 (all) to "
      f"{jax.local_device_count()} local devices"
    )
  mesh = mesh_lib.mesh_of_config(config, num_devices=num_devices)
  check_config(config, mesh)
  shape = model_shape(config)
  key = _plugins_key(config)
  if key not in _CHECKED_PLUGINS:
    plugins_lib.check_model_and_loss(plugins, shape, config.train.batch_size)
    _CHECKED_PLUGINS.add(key)
  return plugins, mesh, shape


# The plugin configs whose model and loss this process has checked. The check traces them
# three times (~0.5 s a run on one core), so as the planner does for its candidates, a later
# run of other shapes is checked only if its step fails to compile (`compile_run`).
_CHECKED_PLUGINS: set[str] = set()


def _plugins_key(config) -> str:
  """The model, loss and dataset configs and the batch size, the model's shape fields left out."""
  model = config.model.to_dict()
  shape_fields = set(model.get("shape_fields", ()))
  model["kwargs"] = {k: v for k, v in model.get("kwargs", {}).items() if k not in shape_fields}
  return repr([model, config.loss.to_dict(), config.dataset.to_dict(), config.train.batch_size])


def final_result(run_dir: str, run_id: str) -> dict | None:
  """The run's result.json when it is final (nothing left to do), else None."""
  result_path = os.path.join(run_dir, workdir_lib.RESULT)
  if not os.path.exists(result_path):
    return None
  previous = workdir_lib.read_json_object(result_path)
  if workdir_lib.field(previous, result_path, "status", str) in workdir_lib.FINAL_STATUSES:
    logging.info("%s: result.json exists (%s), nothing to do", run_id, previous["status"])
    return previous
  logging.info("%s: the last attempt %s; training again", run_id, previous.get("status"))
  return None


@dataclasses.dataclass
class Attempt:
  """One attempt at training a compiled run: its checkpoints, data position and start state."""

  run: CompiledRun
  run_dir: str
  ckpt: checkpoints_lib.RunCheckpoints
  batches: Any
  state: Any
  progress: dict

  @classmethod
  def start(cls, run: CompiledRun, run_dir: str) -> "Attempt":
    """Restores the newest checkpoint (its data position too), or starts fresh."""
    config = run.config
    ckpt = checkpoints_lib.RunCheckpoints(
      run_dir,
      identity_lib.fingerprint(config),
      config.checkpoint.keep,
      kept_steps=branch_lib.kept_steps(config),
    )
    batches = pipeline.train_iterator(
      run.train_source,
      batch_size=config.train.batch_size,
      seed=config.seed,
      process_index=jax.process_index(),
      process_count=jax.process_count(),
    )
    state, progress = restore_or_init(run, ckpt, batches)
    return cls(run, run_dir, ckpt, batches, state, progress)

  def metrics_file(self):
    """metrics.jsonl, open for writing, holding the lines up to the restored step (process 0;
    the others write nowhere)."""
    if jax.process_index() != 0:
      return open(os.devnull, "w")
    path = os.path.join(self.run_dir, workdir_lib.METRICS)
    kept_lines = resume_metrics(path, self.progress["step"])
    f = open(path, "w")
    f.writelines(kept_lines)
    f.flush()
    return f

  def finish(self, loop: TrainLoop, final_eval: dict, eval_seconds: float, **fields) -> dict:
    """Waits for the checkpoints, writes result.json (with `fields`), applies on_finish."""
    wait_start = time.perf_counter()
    self.ckpt.wait()
    loop.checkpoint_seconds += time.perf_counter() - wait_start
    result = {**_result(self.run, loop, final_eval), "eval_seconds": eval_seconds, **fields}
    if jax.process_index() == 0:
      workdir_lib.write_json_atomic(os.path.join(self.run_dir, workdir_lib.RESULT), result)
    self.ckpt.finish(self.run.config.checkpoint.on_finish)
    return result


def evaluate_if_completed(run: CompiledRun, loop: TrainLoop, state, stop) -> tuple[dict, float]:
  """(final eval, its seconds) of a run that completed its steps; a non-finite eval loss marks
  the run diverged."""
  final_eval, eval_start = {}, time.perf_counter()
  if loop.status == "completed":
    final_eval = run_final_eval(run, state, stop)
    if not math.isfinite(final_eval.get("loss", float("nan"))):
      loop.status, loop.error = "diverged", "non-finite eval loss"
  return final_eval, time.perf_counter() - eval_start


def eval_records(config, dataset) -> int:
  """The records of a run's final eval: `eval.tokens`, rounded up to whole eval batches."""
  batch = config.eval.batch_size
  return math.ceil(config.eval.tokens / dataset.units_per_record / batch) * batch


def compile_run(
  config, plugins, mesh, shape: dict, run_id: str, run_dir: str, replicas: int = 1
) -> CompiledRun:
  """Compiles the step for this shape, fixes the step count, and writes config.json.
  `replicas` > 1: the step trains that many seeds at once (`engine/replicas.py`)."""
  dataset, batch_size = plugins.dataset, config.train.batch_size
  abstract_model = plugins.abstract_model(shape)
  param_counts = params_lib.count_params(abstract_model)
  train_source = dataset.source("train")
  example = {k: v[None] for k, v in train_source[0].items()}
  try:
    compiled = step_lib.compile_step(
      lambda: plugins.model(shape, config.seed),
      plugins.loss,
      config.optim,
      mesh,
      example,
      batch_size,
      config.train.steps_per_call,
      config.eval.batch_size,
      replicas,
    )
  except Exception:
    plugins_lib.check_model_and_loss(plugins, shape, batch_size)  # this shape's own error
    raise
  total_steps = int(config.train.budget_flops // compiled.flops_per_step)
  if total_steps < 1:
    raise ConfigError(
      f"config.train.budget_flops: {config.train.budget_flops:.3g} is less than one "
      f"step ({compiled.flops_per_step:.3g} FLOPs)"
    )
  units_per_step = batch_size * dataset.units_per_record
  compute_dtype = str(config.model.kwargs.get("dtype", "float32"))
  peak, peak_source = throughput.peak_flops(
    mesh, compute_dtype, config.train.get("peak_flops", 0.0)
  )
  attention = getattr(abstract_model, "attention_flops_per_token", None)
  run = CompiledRun(
    config=config,
    run_id=run_id,
    shape=shape,
    mesh=mesh,
    dataset=dataset,
    train_source=train_source,
    compiled=compiled,
    total_steps=total_steps,
    units_per_step=units_per_step,
    eval_records=eval_records(config, dataset),
    param_counts=param_counts,
    attention_per_token=attention(dataset.units_per_record) if callable(attention) else 0.0,
    peak=peak,
    peak_source=peak_source,
  )
  write_run_config(run, run_dir)
  logging.info(
    "%s: N=%s (non-embedding %s), %d steps × %.4g FLOPs = %.4g of budget %.4g, "
    "D=%d %s, compile %.1fs, peak %s FLOP/s (%s)",
    run_id,
    param_counts["total"],
    param_counts["non_embedding"],
    total_steps,
    compiled.flops_per_step,
    total_steps * compiled.flops_per_step,
    config.train.budget_flops,
    total_steps * units_per_step,
    dataset.unit,
    compiled.compile_seconds,
    f"{peak:.3g}" if peak else "unknown",
    peak_source,
  )
  return run


def write_run_config(run: CompiledRun, run_dir: str) -> None:
  """runs/<id>/config.json (process 0)."""
  if jax.process_index() == 0:
    workdir_lib.write_json_atomic(
      os.path.join(run_dir, workdir_lib.CONFIG),
      {
        "config": run.config.to_dict(),
        "run_id": run.run_id,
        "shape": run.shape,
        "total_steps": run.total_steps,
        "flops_per_step": run.compiled.flops_per_step,
        "tokens_per_step": run.units_per_step,
        "eval_records": run.eval_records,
      },
    )


def restore_or_init(run: CompiledRun, ckpt, batches) -> tuple[dict, dict]:
  """(state, progress) from the newest readable checkpoint (batches rewound to it), or fresh."""
  restored = None
  if ckpt.steps():  # restored onto this run's mesh, whatever mesh wrote the checkpoint
    abstract = sharding_lib.with_shardings(run.compiled.state_shapes, run.compiled.state_sharding)
    restored = ckpt.restore_latest(abstract, batches)
  role = branch_lib.role_of(run.config)
  if restored is None and role and role["role"] == "branch":
    return branch_lib.restore_trunk(run, batches)  # a branch starts at its trunk's checkpoint
  if restored is None:
    fresh = {"step": 0, "elapsed_seconds": 0.0, "window": {}, "resumed_from": []}
    return run.compiled.init(np.int32(run.total_steps)), fresh
  state, progress = restored
  logging.info("%s: resumed from the checkpoint at step %d", run.run_id, progress["step"])
  return state, {**progress, "resumed_from": progress["resumed_from"] + [progress["step"]]}


def _result(run: CompiledRun, loop: TrainLoop, final_eval: dict) -> dict:
  """result.json (WORKSPACE.md documents every field)."""
  config, compiled, step = run.config, run.compiled, loop.step
  tokens, wall = step * run.units_per_step, loop.elapsed()
  return {
    "run_id": run.run_id,
    "status": loop.status,
    "error": loop.error,
    "seed": config.seed,
    "budget_flops": float(config.train.budget_flops),
    "shape": run.shape,
    "steps": step,
    "planned_steps": run.total_steps,
    "batch_size": config.train.batch_size,
    "learning_rate": float(config.optim.learning_rate),
    "tokens": tokens,
    "unit": run.dataset.unit,
    "tokens_per_step": run.units_per_step,
    "epochs": tokens / (len(run.train_source) * run.dataset.units_per_record),
    "params": run.param_counts,
    "flops_per_step": compiled.flops_per_step,
    "flops_per_step_per_device": compiled.flops_per_step_per_device,
    "memory_bytes_per_device": compiled.memory_bytes,
    "flops": {
      "xla": step * compiled.flops_per_step,
      **flops_lib.analytic_flops(run.param_counts, tokens, run.attention_per_token),
    },
    "final_eval_loss": final_eval.get("loss"),
    "final_eval_metrics": final_eval,
    "eval_tokens": run.eval_records * run.dataset.units_per_record,
    "final_train_loss": loop.last_train.get("loss"),
    "loss_floor": getattr(run.dataset, "loss_floor", None),
    "wall_seconds": wall,
    "compile_seconds": compiled.compile_seconds,
    "checkpoint_seconds": loop.checkpoint_seconds,
    "resumed_from_steps": loop.resumed_from,
    "trained_with": [],
    "cooldown": branch_lib.result_fields(config, run.total_steps),
    "tokens_per_second": tokens / wall,
    "peak_flops": run.peak,
    "peak_flops_source": run.peak_source,
    "mfu": (step * compiled.flops_per_step / wall / run.peak) if run.peak else None,
    "plugins": {
      f: {"factory": config[f].factory, "kwargs": plugins_lib.kwargs_of(config[f])}
      for f in ("model", "dataset", "loss")
    },
    "provenance": provenance_lib.provenance(run.mesh),
  }
