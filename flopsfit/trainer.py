"""Trains one model to an exact FLOP budget and writes its run directory.

`train_run(config)` is what `python -m flopsfit.train` calls; a notebook can call it with a
ConfigDict. It writes `runs/<id>/config.json`, `metrics.jsonl` and, last and atomically,
`result.json` (documented field by field in WORKSPACE.md).
"""

import dataclasses
import json
import math
import os
import time
from typing import Any

import jax
import numpy as np
from absl import logging

from flopsfit import checkpoints as checkpoints_lib
from flopsfit import config_check
from flopsfit import failpoints
from flopsfit import flops as flops_lib
from flopsfit import identity as identity_lib
from flopsfit import mesh as mesh_lib
from flopsfit import params as params_lib
from flopsfit import plugins as plugins_lib
from flopsfit import provenance as provenance_lib
from flopsfit import run_ids
from flopsfit import throughput
from flopsfit import train_step
from flopsfit import workdir as workdir_lib
from flopsfit.config_check import ConfigError
from flopsfit.data import pipeline


FINAL_STATUSES = ("completed", "diverged")  # a failed run is tried again


def model_shape(config) -> dict:
  """The shape fields of the model kwargs that a run id records (e.g. d_model, n_layers)."""
  kwargs = config.model.kwargs
  return {k: int(kwargs[k]) for k in config.model.get("shape_fields", ()) if k in kwargs}


def run_id_of(config) -> str:
  return config.get("run", "") or run_ids.format_run_id(
      config.train.budget_flops, model_shape(config), config.seed)


def check_config(config, mesh) -> None:
  train, devices = config.train, mesh.size
  if not train.budget_flops or train.budget_flops <= 0:
    raise ConfigError(f"config.train.budget_flops: expected a positive FLOP budget, got {train.budget_flops}")
  for field, value in (("train.batch_size", train.batch_size), ("eval.batch_size", config.eval.batch_size)):
    if value <= 0 or value % devices:
      raise ConfigError(f"config.{field}: {value} must be a positive multiple of the {devices} devices")
  if train.steps_per_call < 1:
    raise ConfigError(f"config.train.steps_per_call: expected >= 1, got {train.steps_per_call}")
  if config.checkpoint.on_finish not in checkpoints_lib.ON_FINISH:
    raise ConfigError(f"config.checkpoint.on_finish: expected one of {checkpoints_lib.ON_FINISH}, "
                      f"got {config.checkpoint.on_finish!r}")
  if config.checkpoint.keep < 1:
    raise ConfigError(f"config.checkpoint.keep: expected >= 1, got {config.checkpoint.keep}")
  if config.eval.tokens <= 0:
    raise ConfigError(f"config.eval.tokens: expected a positive token count, got {config.eval.tokens}")


def global_batch(mesh, local: dict, leading: int) -> dict:
  sharding = mesh_lib.batch_sharding(mesh, leading)
  def put(x):
    shape = list(x.shape)
    shape[leading] *= jax.process_count()
    return jax.make_array_from_process_local_data(sharding, x, tuple(shape))
  return {k: put(np.asarray(v)) for k, v in local.items()}


def call_steps(compiled, state, batches, mesh, k: int):
  """k optimizer steps on the next k batches in one jitted call -> (state, metrics [k, ...])."""
  local = [next(batches) for _ in range(k)]
  if k > 1:
    stacked = {key: np.stack([b[key] for b in local]) for key in local[0]}
    return compiled.multi(state, global_batch(mesh, stacked, 1))
  state, metrics = compiled.single(state, global_batch(mesh, local[0], 0))
  return state, jax.tree.map(lambda x: x[None], metrics)


def evaluate(compiled, state, mesh, batches: list[dict], stop=None) -> dict:
  """Mean of the loss's metrics over the eval batches, weighted by `weight` when given.

  A stop request (SIGTERM/SIGINT) raises `Preempted` between batches.
  """
  totals, total_weight = {}, 0.0
  for batch in batches:
    failpoints.hit("eval_batch")
    if stop is not None and stop.requested:
      raise checkpoints_lib.Preempted(f"{stop.requested} during the final eval")
    metrics = jax.device_get(compiled.eval(state, global_batch(mesh, batch, 0)))
    weight = float(metrics.get("weight", 1.0))
    total_weight += weight
    for k, v in metrics.items():
      if k != "weight" and np.ndim(v) == 0:
        totals[k] = totals.get(k, 0.0) + float(v) * weight
  out = {k: v / total_weight for k, v in totals.items()} if total_weight else {}
  if "loss" in out:
    out["perplexity"] = math.exp(out["loss"]) if out["loss"] < 700 else float("inf")
  return out


def _refuse_other_config(run_dir: str, config) -> None:
  """A run directory made by a different config is not reused (fields that only say where
  and how a run executes may differ)."""
  path = os.path.join(run_dir, "config.json")
  if os.path.exists(path):
    existing = workdir_lib.read_json(path)
    diff = identity_lib.differences(identity_lib.identity(existing.get("config", {})),
                                    identity_lib.identity(config))
    if diff:
      raise ConfigError(f"{path}: this run id was trained with a different config (differs in "
                        f"{', '.join(diff[:5])}); use a new workdir or remove that run directory")


class MetricsWindow:
  """Per-step training metrics since the last metrics.jsonl line, kept on the host."""

  def __init__(self, values: dict | None = None):
    self.values = {k: [np.asarray(v, np.float32)] for k, v in (values or {}).items()}

  def add(self, host_metrics: dict) -> None:
    for key, value in host_metrics.items():
      self.values.setdefault(key, []).append(np.asarray(value, np.float32).reshape(-1))

  def arrays(self) -> dict:
    return {k: np.concatenate(v) for k, v in self.values.items()}

  def to_json(self) -> dict:
    return {k: [float(x) for x in v] for k, v in self.arrays().items()}


def _resume_metrics(path: str, step: int) -> list[str]:
  """The complete metrics.jsonl lines up to `step`: what an uninterrupted run had written."""
  if not os.path.exists(path):
    return []
  return [json.dumps(line) + "\n" for line in workdir_lib.read_jsonl(path) if line["step"] <= step]


def enable_compilation_cache(config) -> None:
  """JAX's persistent compilation cache, so a re-run or resumed run does not compile again.

  In `config.compilation_cache_dir`, or `<workdir>/jax_cache`; the first directory set in a
  process stays in force (JAX initialises its cache once).
  """
  if jax.config.jax_compilation_cache_dir:
    return
  path = config.get("compilation_cache_dir", "") or os.path.join(config.workdir, "jax_cache")
  jax.config.update("jax_compilation_cache_dir", os.path.abspath(path))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


@dataclasses.dataclass(frozen=True)
class CompiledRun:
  """One run once its step is compiled: what the loop, the eval and result.json need."""
  config: Any
  run_id: str
  shape: dict
  mesh: Any
  dataset: Any
  train_source: Any
  compiled: train_step.CompiledStep
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
  config_check.check_fields(config)
  enable_compilation_cache(config)
  plugins = plugins_lib.load(config)
  num_devices = config.train.get("devices", 0)
  if not 0 <= num_devices <= jax.local_device_count():
    raise ConfigError(f"config.train.devices: {num_devices} requested; expected 0 (all) to "
                      f"{jax.local_device_count()} local devices")
  mesh = mesh_lib.data_mesh(num_devices=num_devices)
  check_config(config, mesh)
  shape = model_shape(config)
  plugins_lib.check_model_and_loss(plugins, shape, config.train.batch_size)
  run_id = run_id_of(config)
  run_dir = workdir_lib.run_dir(config.workdir, run_id)
  result_path = os.path.join(run_dir, "result.json")
  if os.path.exists(result_path):
    previous = workdir_lib.read_json(result_path)
    if previous.get("status") in FINAL_STATUSES:
      logging.info("%s: result.json exists (%s), nothing to do", run_id, previous["status"])
      return previous
    logging.info("%s: the last attempt %s; training again", run_id, previous.get("status"))
  _refuse_other_config(run_dir, config)  # before compiling: nothing to do for another config
  run = compile_run(config, plugins, mesh, shape, run_id, run_dir)

  writer = jax.process_index() == 0
  ckpt = checkpoints_lib.RunCheckpoints(run_dir, identity_lib.fingerprint(config),
                                        config.checkpoint.keep)
  batches = pipeline.train_iterator(run.train_source, batch_size=config.train.batch_size,
                                    seed=config.seed, process_index=jax.process_index(),
                                    process_count=jax.process_count())
  state, progress = _restore_or_init(run, ckpt, batches)
  metrics_path = os.path.join(run_dir, "metrics.jsonl")
  kept_lines = _resume_metrics(metrics_path, progress["step"]) if writer else []
  with checkpoints_lib.StopSignals() as stop, \
       open(metrics_path if writer else os.devnull, "w") as metrics_file:
    metrics_file.writelines(kept_lines)
    metrics_file.flush()
    loop = TrainLoop(run, ckpt, batches, metrics_file, progress, start_time)
    state = loop.train(state, stop)
    final_eval = {}
    if loop.status == "completed":
      final_eval = _final_eval(run, state, stop)
      if not math.isfinite(final_eval.get("loss", float("nan"))):
        loop.status, loop.error = "diverged", "non-finite eval loss"
  ckpt.wait()

  result = _result(run, loop, final_eval)
  if writer:
    workdir_lib.write_json_atomic(result_path, result)
  ckpt.finish(config.checkpoint.on_finish)
  return result


def compile_run(config, plugins, mesh, shape: dict, run_id: str, run_dir: str) -> CompiledRun:
  """Compiles the step for this shape, fixes the step count, and writes config.json."""
  dataset, batch_size = plugins.dataset, config.train.batch_size
  abstract_model = plugins.abstract_model(shape)
  param_counts = params_lib.count_params(abstract_model)
  train_source = dataset.source("train")
  example = {k: v[None] for k, v in train_source[0].items()}
  compiled = train_step.compile_step(
      lambda: plugins.model(shape, config.seed), plugins.loss, config.optim, mesh, example,
      batch_size, config.train.steps_per_call, config.eval.batch_size)
  total_steps = int(config.train.budget_flops // compiled.flops_per_step)
  if total_steps < 1:
    raise ConfigError(f"config.train.budget_flops: {config.train.budget_flops:.3g} is less than one "
                      f"step ({compiled.flops_per_step:.3g} FLOPs)")
  units_per_step = batch_size * dataset.units_per_record
  eval_records = math.ceil(config.eval.tokens / dataset.units_per_record / config.eval.batch_size) \
      * config.eval.batch_size
  compute_dtype = str(config.model.kwargs.get("dtype", "float32"))
  peak, peak_source = throughput.peak_flops(mesh, compute_dtype, config.train.get("peak_flops", 0.0))
  attention = getattr(abstract_model, "attention_flops_per_token", None)
  run = CompiledRun(
      config=config, run_id=run_id, shape=shape, mesh=mesh, dataset=dataset,
      train_source=train_source, compiled=compiled, total_steps=total_steps,
      units_per_step=units_per_step, eval_records=eval_records, param_counts=param_counts,
      attention_per_token=attention(dataset.units_per_record) if callable(attention) else 0.0,
      peak=peak, peak_source=peak_source)
  if jax.process_index() == 0:
    workdir_lib.write_json_atomic(os.path.join(run_dir, "config.json"), {
        "config": config.to_dict(), "run_id": run_id, "shape": shape, "total_steps": total_steps,
        "flops_per_step": compiled.flops_per_step, "tokens_per_step": units_per_step,
        "eval_records": eval_records})
  logging.info("%s: N=%s (non-embedding %s), %d steps × %.4g FLOPs = %.4g of budget %.4g, "
               "D=%d %s, compile %.1fs, peak %s FLOP/s (%s)", run_id, param_counts["total"],
               param_counts["non_embedding"], total_steps, compiled.flops_per_step,
               total_steps * compiled.flops_per_step, config.train.budget_flops,
               total_steps * units_per_step, dataset.unit, compiled.compile_seconds,
               f"{peak:.3g}" if peak else "unknown", peak_source)
  return run


def _restore_or_init(run: CompiledRun, ckpt, batches) -> tuple[dict, dict]:
  """(state, progress) from the newest readable checkpoint (batches rewound to it), or fresh."""
  restored = None
  if ckpt.steps():
    replicated = mesh_lib.replicated(run.mesh)
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated),
                            run.compiled.state_shapes)
    restored = ckpt.restore_latest(abstract, batches)
  if restored is None:
    fresh = {"step": 0, "elapsed_seconds": 0.0, "window": {}, "resumed_from": []}
    return run.compiled.init(np.int32(run.total_steps)), fresh
  state, progress = restored
  logging.info("%s: resumed from the checkpoint at step %d", run.run_id, progress["step"])
  return state, {**progress, "resumed_from": progress["resumed_from"] + [progress["step"]]}


class TrainLoop:
  """Steps a run from its restored step to the end, writing metrics lines and checkpoints.

  Metrics stay on the device until a log line or a checkpoint needs them; a stop signal
  saves a checkpoint at the next call boundary and raises `Preempted`.
  """

  def __init__(self, run: CompiledRun, ckpt, batches, metrics_file, progress: dict,
               start_time: float):
    self.run, self.ckpt, self.batches, self.metrics_file = run, ckpt, batches, metrics_file
    self.step, self.resumed_from = progress["step"], progress["resumed_from"]
    self.elapsed_before, self.start_time = progress["elapsed_seconds"], start_time
    self.window, self.pending = MetricsWindow(progress["window"]), []
    self.status, self.error, self.last_train = "completed", None, {}
    self.window_start, self.window_steps = time.perf_counter(), 0
    self.last_save = (self.step, time.perf_counter())

  def elapsed(self) -> float:
    """Seconds spent on this run, over every attempt."""
    return self.elapsed_before + time.perf_counter() - self.start_time

  def train(self, state, stop):
    compiled, total = self.run.compiled, self.run.total_steps
    log_every = max(1, self.run.config.train.log_every)
    while self.step < total:
      k = compiled.steps_per_call if total - self.step >= compiled.steps_per_call else 1
      state = self._call(state, k)
      if (self.step - k) // log_every != self.step // log_every or self.step == total:
        if not self._log_window():
          self.status, self.error = "diverged", f"non-finite training loss by step {self.step}"
          break
      if self._checkpoint_due(stop):
        self._drain()
        self.ckpt.save(self.step, state, self.batches, self._progress())
        self.last_save = (self.step, time.perf_counter())
      if stop.requested or self.step == total:  # before the eval: never train again
        self.ckpt.wait()
      if stop.requested:
        raise checkpoints_lib.Preempted(f"{stop.requested} at step {self.step}/{total}")
    return state

  def _call(self, state, k: int):
    """k optimizer steps in one jitted call; their metrics are queued, not fetched."""
    state, metrics = call_steps(self.run.compiled, state, self.batches, self.run.mesh, k)
    failpoints.hit("train_call")
    self.pending.append(metrics)
    self.step += k
    self.window_steps += k
    return state

  def _drain(self) -> None:
    for m in jax.device_get(self.pending):
      self.window.add(m)
    self.pending = []

  def _log_window(self) -> bool:
    """Writes one metrics.jsonl line for the steps since the last; False if a loss is not finite."""
    run = self.run
    flops_per_step, units_per_step = run.compiled.flops_per_step, run.units_per_step
    self._drain()
    arrays = self.window.arrays()
    seconds = time.perf_counter() - self.window_start
    flops_per_s = self.window_steps * flops_per_step / seconds
    self.last_train = {key: float(v.mean()) for key, v in arrays.items() if key != "weight"}
    line = {"step": self.step, "tokens": self.step * units_per_step,
            "flops": self.step * flops_per_step, **self.last_train,
            "last_loss": float(arrays["loss"][-1]),
            "tokens_per_s": self.window_steps * units_per_step / seconds,
            "flops_per_s": flops_per_s, "mfu": flops_per_s / run.peak if run.peak else None,
            "elapsed_s": self.elapsed()}
    self.metrics_file.write(json.dumps(line) + "\n")
    self.metrics_file.flush()
    logging.info("%s step %d/%d loss %.4f | %.3g tok/s %.3g FLOP/s MFU %s | %.0fs left",
                 run.run_id, self.step, run.total_steps, self.last_train["loss"],
                 line["tokens_per_s"], flops_per_s, f"{line['mfu']:.1%}" if run.peak else "n/a",
                 (run.total_steps - self.step) * seconds / self.window_steps)
    if not np.all(np.isfinite(arrays["loss"])):
      return False
    self.window, self.window_start, self.window_steps = MetricsWindow(), time.perf_counter(), 0
    return True

  def _checkpoint_due(self, stop) -> bool:
    every_steps = self.run.config.checkpoint.every_steps
    every_seconds = self.run.config.checkpoint.every_seconds
    return bool(stop.requested or self.step == self.run.total_steps
                or (every_steps and self.step // every_steps > self.last_save[0] // every_steps)
                or (every_seconds and time.perf_counter() - self.last_save[1] >= every_seconds))

  def _progress(self) -> dict:
    """What a checkpoint records beside the state and the data position."""
    return {"step": self.step, "flops_spent": self.step * self.run.compiled.flops_per_step,
            "elapsed_seconds": self.elapsed(), "window": self.window.to_json(),
            "resumed_from": self.resumed_from}


def _final_eval(run: CompiledRun, state, stop) -> dict:
  config = run.config
  final_eval = evaluate(run.compiled, state, run.mesh, pipeline.eval_batches(
      run.dataset.source("eval"), num_records=run.eval_records,
      batch_size=config.eval.batch_size, process_index=jax.process_index(),
      process_count=jax.process_count()), stop)
  logging.info("%s: final eval loss %.4f over %d %s", run.run_id,
               final_eval.get("loss", float("nan")),
               run.eval_records * run.dataset.units_per_record, run.dataset.unit)
  return final_eval


def _result(run: CompiledRun, loop: TrainLoop, final_eval: dict) -> dict:
  """result.json (WORKSPACE.md documents every field)."""
  config, compiled, step = run.config, run.compiled, loop.step
  tokens, wall = step * run.units_per_step, loop.elapsed()
  return {
      "run_id": run.run_id, "status": loop.status, "error": loop.error, "seed": config.seed,
      "budget_flops": float(config.train.budget_flops), "shape": run.shape,
      "steps": step, "planned_steps": run.total_steps, "batch_size": config.train.batch_size,
      "learning_rate": float(config.optim.learning_rate),
      "tokens": tokens, "unit": run.dataset.unit, "tokens_per_step": run.units_per_step,
      "params": run.param_counts,
      "flops_per_step": compiled.flops_per_step,
      "flops_per_step_per_device": compiled.flops_per_step_per_device,
      "flops": {"xla": step * compiled.flops_per_step,
                **flops_lib.analytic_flops(run.param_counts, tokens, run.attention_per_token)},
      "final_eval_loss": final_eval.get("loss"), "final_eval_metrics": final_eval,
      "eval_tokens": run.eval_records * run.dataset.units_per_record,
      "final_train_loss": loop.last_train.get("loss"),
      "loss_floor": getattr(run.dataset, "loss_floor", None),
      "wall_seconds": wall, "compile_seconds": compiled.compile_seconds,
      "resumed_from_steps": loop.resumed_from,
      "tokens_per_second": tokens / wall, "peak_flops": run.peak,
      "peak_flops_source": run.peak_source,
      "mfu": (step * compiled.flops_per_step / wall / run.peak) if run.peak else None,
      "plugins": {f: {"factory": config[f].factory, "kwargs": plugins_lib.kwargs_of(config[f])}
                  for f in ("model", "dataset", "loss")},
      "provenance": provenance_lib.provenance(run.mesh),
  }
