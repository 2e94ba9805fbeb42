"""The training loop of one run: jitted calls, metrics.jsonl lines, checkpoints, stop signals."""

import json
import os
import time

import jax
import numpy as np
from absl import logging

from flopsfit import workdir as workdir_lib
from flopsfit.engine import checkpoints as checkpoints_lib
from flopsfit.engine import failpoints
from flopsfit.engine.step import call_steps


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


def resume_metrics(path: str, step: int) -> list[str]:
  """The complete metrics.jsonl lines up to `step`: what an uninterrupted run had written."""
  if not os.path.exists(path):
    return []
  lines = list(workdir_lib.read_jsonl(path))
  for i, line in enumerate(lines):
    workdir_lib.field(line, f"{path}: line {i + 1}", "step", int)
  return [json.dumps(line) + "\n" for line in lines if line["step"] <= step]


class TrainLoop:
  """Steps a run from its restored step to the end, writing metrics lines and checkpoints.

  Metrics stay on the device until a log line or a checkpoint needs them; a stop signal
  saves a checkpoint at the next call boundary and raises `Preempted`.
  """

  def __init__(self, run, ckpt, batches, metrics_file, progress: dict, start_time: float):
    self.run, self.ckpt, self.batches, self.metrics_file = run, ckpt, batches, metrics_file
    self.step, self.resumed_from = progress["step"], progress["resumed_from"]
    self.elapsed_before, self.start_time = progress["elapsed_seconds"], start_time
    self.window, self.pending = MetricsWindow(progress["window"]), []
    self.status, self.error, self.last_train = "completed", None, {}
    self.window_start, self.window_steps = time.perf_counter(), 0
    self.last_save = (self.step, time.perf_counter())
    self.checkpoint_seconds = 0.0  # this attempt: saving checkpoints and waiting for writes

  def elapsed(self) -> float:
    """Seconds spent on this run, over every attempt."""
    return self.elapsed_before + time.perf_counter() - self.start_time

  def train(self, state, stop):
    total = self.run.total_steps
    while self.step < total:
      k = self.next_call()
      state, metrics = call_steps(self.run.compiled, state, self.batches, self.run.mesh, k)
      if not self.after_call(metrics, k, stop, lambda: state):
        break
      if stop.requested:
        raise checkpoints_lib.Preempted(f"{stop.requested} at step {self.step}/{total}")
    return state

  def next_call(self) -> int:
    """The optimizer steps of the next jitted call.

    Calls end at multiples of steps_per_call (one executable runs any k <= it), so a run
    resumed at any step, or a cooldown branch, calls, logs and saves at the steps an
    uninterrupted run does.
    """
    per_call = self.run.compiled.steps_per_call
    return min(per_call - self.step % per_call, self._next_stop() - self.step)

  def after_call(self, metrics, k: int, stop, current_state) -> bool:
    """Queues a call's metrics (not fetched), writes the metrics line and the checkpoint
    (`current_state()`) that are due; False when the loss diverged (the run stops)."""
    failpoints.hit("train_call")
    self.pending.append((metrics, k))
    self.step += k
    self.window_steps += k
    total, log_every = self.run.total_steps, max(1, self.run.config.train.log_every)
    if (self.step - k) // log_every != self.step // log_every or self.step == total:
      if not self._log_window():
        self.status, self.error = "diverged", f"non-finite training loss by step {self.step}"
        return False
    if self._checkpoint_due(stop):
      self._drain()
      started = time.perf_counter()
      self.ckpt.save(self.step, current_state(), self.batches, self._progress())
      self.last_save = (self.step, time.perf_counter())
      self.checkpoint_seconds += self.last_save[1] - started
    if stop.requested or self.step == total:  # before the eval: never train again
      started = time.perf_counter()
      self.ckpt.wait()
      self.checkpoint_seconds += time.perf_counter() - started
    return True

  def _drain(self) -> None:
    for metrics, k in jax.device_get(self.pending):
      self.window.add({key: value[:k] for key, value in metrics.items()})
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
    line = {
      "step": self.step,
      "tokens": self.step * units_per_step,
      "flops": self.step * flops_per_step,
      **self.last_train,
      "last_loss": float(arrays["loss"][-1]),
      "tokens_per_s": self.window_steps * units_per_step / seconds,
      "flops_per_s": flops_per_s,
      "mfu": flops_per_s / run.peak if run.peak else None,
      "elapsed_s": self.elapsed(),
    }
    self.metrics_file.write(json.dumps(line) + "\n")
    self.metrics_file.flush()
    logging.info(
      "%s step %d/%d loss %.4f | %.3g tok/s %.3g FLOP/s MFU %s | %.0fs left",
      run.run_id,
      self.step,
      run.total_steps,
      self.last_train["loss"],
      line["tokens_per_s"],
      flops_per_s,
      f"{line['mfu']:.1%}" if run.peak else "n/a",
      (run.total_steps - self.step) * seconds / self.window_steps,
    )
    if not np.all(np.isfinite(arrays["loss"])):
      return False
    self.window, self.window_start, self.window_steps = MetricsWindow(), time.perf_counter(), 0
    return True

  def _next_stop(self) -> int:
    """The next step a checkpoint must be saved at: the end, or a kept step (a cooldown
    trunk's branch points); a jitted call of several steps never crosses it."""
    later = [s for s in self.ckpt.kept_steps if s > self.step]
    return min([self.run.total_steps, *later])

  def _checkpoint_due(self, stop) -> bool:
    every_steps = self.run.config.checkpoint.every_steps
    every_seconds = self.run.config.checkpoint.every_seconds
    return bool(
      stop.requested
      or self.step == self.run.total_steps
      or self.step in self.ckpt.kept_steps
      or (every_steps and self.step // every_steps > self.last_save[0] // every_steps)
      or (every_seconds and time.perf_counter() - self.last_save[1] >= every_seconds)
    )

  def _progress(self) -> dict:
    """What a checkpoint records beside the state and the data position."""
    return {
      "step": self.step,
      "flops_spent": self.step * self.run.compiled.flops_per_step,
      "elapsed_seconds": self.elapsed(),
      "window": self.window.to_json(),
      "resumed_from": self.resumed_from,
    }
