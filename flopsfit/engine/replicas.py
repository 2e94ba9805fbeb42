"""Trains the seeds of one shape together: one compiled step, `jax.vmap` over their states.

`train_replicas(configs)` takes run configs that differ only in their seed (and run id) and
trains them as one stacked state, each replica with its own initialisation, its own data order
and its own run directory: config.json, metrics.jsonl, checkpoints and result.json are those
`engine/run.py` writes for the run alone, so a run started here may be resumed alone and the
other way round. FLOPs per step are one replica's (counted on the plain step). A replica whose
loss diverges stops being recorded; the others go on. Where the step pays for this (on CPU it
does not): docs/performance-sweep.md#seeds-in-one-vmapped-step.
"""

import contextlib
import dataclasses
import functools
import time

import jax
import numpy as np
from absl import logging

from flopsfit import identity as identity_lib
from flopsfit import workdir as workdir_lib
from flopsfit.config_check import ConfigError
from flopsfit.engine import checkpoints as checkpoints_lib
from flopsfit.engine import optim as optim_lib
from flopsfit.engine import run as run_lib
from flopsfit.engine import step as step_lib
from flopsfit.engine.loop import TrainLoop


def check_replicas(configs: list) -> None:
  """Refuses configs that are not seeds of one run (fields other than seed and run differ),
  or that this path does not train together (cooldown roles, several processes)."""
  first = identity_lib.identity(configs[0])
  for config in configs[1:]:
    diff = identity_lib.differences(first, identity_lib.identity(config))
    diff = [field for field in diff if field != "seed"]
    if diff:
      raise ConfigError(
        f"train.vmap_seeds: runs {configs[0].get('run', '')} and {config.get('run', '')} "
        f"are not seeds of one shape (they differ in {', '.join(diff[:5])})"
      )
  if configs[0].train.get("cooldown"):
    raise ConfigError("train.vmap_seeds: cooldown trunks and branches are trained one at a time")
  if jax.process_count() > 1:
    raise ConfigError("train.vmap_seeds: seeds are trained together in one process only")


def train_replicas(configs: list) -> list[dict]:
  """Trains the runs of `configs` (seeds of one run) in one vmapped step; their results, in
  order. Runs already finished are skipped; fewer than two left are trained one at a time, as
  are replicas whose checkpoints stopped at different steps."""
  start_time = time.perf_counter()
  check_replicas(configs)
  plugins, mesh, shape = run_lib.prepare(configs[0])
  results, todo = {}, []
  for i, config in enumerate(configs):
    run_id = run_lib.run_id_of(config)
    run_dir = workdir_lib.run_dir(config.workdir, run_id)
    results[i] = run_lib.final_result(run_dir, run_id)
    if results[i] is None:
      run_lib.refuse_other_config(run_dir, config)
      todo.append((i, config, run_id, run_dir))
  if len(todo) < 2:
    return [results[i] or run_lib.train_run(c) for i, c in enumerate(configs)]

  first = todo[0]
  compiled_run = run_lib.compile_run(
    first[1], plugins, mesh, shape, first[2], first[3], replicas=len(todo)
  )
  tx = optim_lib.adamw_direction(first[1].optim)
  attempts = []
  for _, config, run_id, run_dir in todo:
    init = step_lib.init_fn(lambda seed=config.seed: plugins.model(shape, seed), tx)
    compiled = dataclasses.replace(
      compiled_run.compiled, init=step_lib.placed_init(init, compiled_run.compiled.state_sharding)
    )
    run = dataclasses.replace(compiled_run, config=config, run_id=run_id, compiled=compiled)
    run_lib.write_run_config(run, run_dir)
    attempts.append(run_lib.Attempt.start(run, run_dir))
  steps = {a.progress["step"] for a in attempts}
  if len(steps) > 1:
    logging.warning(
      "replicas %s resume at different steps %s: trained one at a time",
      [t[2] for t in todo],
      sorted(steps),
    )
    for a in attempts:
      a.ckpt.finish("keep_all")  # closes the manager; the run's own attempt restores it
    for i, config, _, _ in todo:
      results[i] = run_lib.train_run(config)
    return [results[i] for i in range(len(configs))]

  trained = _train_together(attempts, start_time)
  for (i, *_), result in zip(todo, trained):
    results[i] = result
  return [results[i] for i in range(len(configs))]


def _train_together(attempts: list, start_time: float) -> list[dict]:
  compiled, mesh = attempts[0].run.compiled, attempts[0].run.mesh
  total, sharding = attempts[0].run.total_steps, compiled.state_sharding
  state = step_lib.stack_states([a.state for a in attempts], sharding)
  for a in attempts:
    a.state = None  # stacked: the separate copies are not kept
  run_ids = [a.run.run_id for a in attempts]
  logging.info("training %d seeds together in one vmapped step: %s", len(attempts), run_ids)
  with contextlib.ExitStack() as files, checkpoints_lib.StopSignals() as stop:
    loops = []
    for a in attempts:
      metrics_file = files.enter_context(a.metrics_file())
      loops.append(TrainLoop(a.run, a.ckpt, a.batches, metrics_file, a.progress, start_time))
    live = list(range(len(loops)))
    filler = _filler_batches(attempts[0])
    step = loops[0].step
    while live and step < total:
      k = loops[live[0]].next_call()
      iterators = [loops[i].batches if i in live else filler for i in range(len(loops))]
      state, metrics = step_lib.call_replica_steps(compiled, state, iterators, mesh, k)
      for i in list(live):
        replica_metrics = jax.tree.map(lambda m, i=i: m[:, i], metrics)
        current = functools.partial(step_lib.replica_state, state, i, sharding)
        if not loops[i].after_call(replica_metrics, k, stop, current):
          live.remove(i)  # diverged: its result says so; the others go on
      step += k
      if stop.requested:
        raise checkpoints_lib.Preempted(f"{stop.requested} at step {step}/{total}")
    evals = [
      run_lib.evaluate_if_completed(a.run, loop, step_lib.replica_state(state, i, sharding), stop)
      for i, (a, loop) in enumerate(zip(attempts, loops))
    ]
  return [
    a.finish(loop, final_eval, seconds, trained_with=run_ids)
    for a, loop, (final_eval, seconds) in zip(attempts, loops, evals)
  ]


def _filler_batches(attempt):
  """Zero batches for a replica that stopped (its slot of the stacked step still runs)."""
  example = attempt.run.train_source[0]
  batch_size = attempt.run.config.train.batch_size // jax.process_count()
  zeros = {k: np.zeros((batch_size, *np.shape(v)), np.asarray(v).dtype) for k, v in example.items()}
  while True:
    yield zeros
