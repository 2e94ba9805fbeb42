"""The final eval: the loss's metrics on the held-out split, at the end of a run."""

import math

import jax
import numpy as np
from absl import logging

from flopsfit.data import pipeline
from flopsfit.engine import checkpoints as checkpoints_lib
from flopsfit.engine import failpoints
from flopsfit.engine.step import global_batch


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


def final_eval(run, state, stop) -> dict:
  """Evaluates `run` (an `engine.run.CompiledRun`) on `run.eval_records` records of "eval"."""
  config = run.config
  final_eval = evaluate(
    run.compiled,
    state,
    run.mesh,
    pipeline.eval_batches(
      run.dataset.source("eval"),
      num_records=run.eval_records,
      batch_size=config.eval.batch_size,
      process_index=jax.process_index(),
      process_count=jax.process_count(),
    ),
    stop,
  )
  logging.info(
    "%s: final eval loss %.4f over %d %s",
    run.run_id,
    final_eval.get("loss", float("nan")),
    run.eval_records * run.dataset.units_per_record,
    run.dataset.unit,
  )
  return final_eval
