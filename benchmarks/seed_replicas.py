"""Does training a shape's seeds together in one vmapped step pay on this machine?

  python benchmarks/seed_replicas.py [--replicas=1,2,4] [--shapes=16x1,32x2,48x3,64x4]
  python benchmarks/seed_replicas.py --settings=all     # a GPU: no one-core setting

For each default-sweep shape (GPT, seq 64, batch 16, vocab 64, head_dim 8; `DxL` = d_model x
n_layers) and each replica count R, a child process stacks R independently initialised train
states and times K = 20 optimizer steps per call of the executable `train.vmap_seeds` trains
with (`engine/step.py` compile_step with `replicas=R`: `jax.vmap` of the engine's step in a
run's loop; R = 1 is a run's own executable, without vmap).
It runs once on all cores and once pinned to one core (as a packed sweep's one-core worker,
with Eigen single-threaded). The table gives ms per call, replica-steps per second, and the
gain over R = 1 in the same setting: a gain of 1.6 at R = 2 means two seeds trained together
finish in 2 / 1.6 = 1.25 times one seed's time instead of twice. Every (shape, setting) runs
its replica counts in turn in one process, so a busy moment hits them alike; the fastest of
--rounds timings counts.
"""

import argparse
import json
import os
import subprocess
import sys
import time

SEQ, BATCH, VOCAB, HEAD_DIM, STEPS_PER_CALL = 64, 16, 64, 8, 20


def child(d_model: int, n_layers: int, replicas: list[int], rounds: int, one_core: bool) -> list:
  if one_core:
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false"  # as a one-core worker
  import jax
  import numpy as np
  from default_optim import default_optim
  from flax import nnx

  from flopsfit import losses
  from flopsfit.engine import mesh as mesh_lib
  from flopsfit.engine import optim as optim_lib
  from flopsfit.engine import step as step_lib
  from flopsfit.models.gpt import GPT

  optim = default_optim(learning_rate=3e-3)
  loss_fn = losses.next_token_cross_entropy()
  mesh = mesh_lib.data_mesh(jax.local_devices()[:1])

  def build(seed):
    return lambda: GPT(
      vocab_size=VOCAB, d_model=d_model, n_layers=n_layers, head_dim=HEAD_DIM, rngs=nnx.Rngs(seed)
    )

  tx = optim_lib.adamw_direction(optim)
  example = {"tokens": np.zeros((1, SEQ), np.int32)}
  rng = np.random.default_rng(0)
  rows, programs = [], {}
  for r in replicas:  # the executables `train.vmap_seeds` trains with (R = 1: a run's own)
    start = time.perf_counter()
    compiled = step_lib.compile_step(
      build(0), loss_fn, optim, mesh, example, BATCH, STEPS_PER_CALL, replicas=r
    )
    compile_s = time.perf_counter() - start
    states = [
      step_lib.placed_init(step_lib.init_fn(build(s), tx), compiled.state_sharding)(10_000)
      for s in range(r)
    ]
    if r == 1:
      state, shape = states[0], (STEPS_PER_CALL, BATCH, SEQ)
    else:
      state = step_lib.stack_states(states, compiled.state_sharding)
      shape = (STEPS_PER_CALL, r, BATCH, SEQ)
    tokens = rng.integers(0, VOCAB, shape, dtype=np.int32)
    programs[r] = (compiled.multi, state, tokens, compile_s)
  best = {r: float("inf") for r in replicas}
  for _ in range(rounds):
    for r in replicas:  # in turn: a busy moment hits every R alike
      compiled, state, tokens, compile_s = programs[r]
      state, metrics = compiled(state, {"tokens": tokens}, np.int32(STEPS_PER_CALL))
      jax.block_until_ready(metrics)
      start = time.perf_counter()
      state, metrics = compiled(state, {"tokens": tokens}, np.int32(STEPS_PER_CALL))
      jax.block_until_ready(metrics)
      best[r] = min(best[r], time.perf_counter() - start)
      assert np.all(np.isfinite(np.asarray(metrics["loss"])))
      programs[r] = (compiled, state, tokens, compile_s)
  for r in replicas:
    rows.append(
      {
        "shape": f"d{d_model}-L{n_layers}",
        "device": jax.local_devices()[0].device_kind,
        "cores": 1 if one_core else len(os.sched_getaffinity(0)),
        "replicas": r,
        "ms_per_call": 1e3 * best[r],
        "replica_steps_per_s": r * STEPS_PER_CALL / best[r],
        "compile_s": programs[r][3],
      }
    )
  return rows


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--replicas", default="1,2,4")
  parser.add_argument("--shapes", default="16x1,32x2,48x3,64x4")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument(
    "--settings",
    default="all,one_core",
    help="all: every device of the machine; one_core: pinned as a one-core worker (CPU)",
  )
  parser.add_argument("--child", default="", help=argparse.SUPPRESS)
  args = parser.parse_args()
  replicas = [int(r) for r in args.replicas.split(",")]
  if not set(args.settings.split(",")) <= {"all", "one_core"}:
    sys.exit(f"--settings: expected 'all' and/or 'one_core', got {args.settings!r}")
  if args.child:
    d, layers, one_core = args.child.split(",")
    rows = child(int(d), int(layers), replicas, args.rounds, one_core == "1")
    print(json.dumps(rows))
    return
  here = os.path.dirname(os.path.abspath(__file__))
  rows = []
  for shape in args.shapes.split(","):
    d, layers = shape.split("x")
    for one_core in ["1" if s == "one_core" else "0" for s in args.settings.split(",")]:
      proc = subprocess.run(
        [sys.executable, __file__, f"--child={d},{layers},{one_core}"]
        + [f"--replicas={args.replicas}", f"--rounds={args.rounds}"],
        cwd=here,
        capture_output=True,
        text=True,
      )
      if proc.returncode:
        sys.exit(f"child {shape} one_core={one_core} failed:\n{proc.stderr[-3000:]}")
      rows += json.loads(proc.stdout.strip().splitlines()[-1])
  print(f"device: {rows[0]['device']}")
  print(
    f"{'shape':>8} {'cores':>5} {'R':>3} {'ms/call':>9} {'replica-steps/s':>16} "
    f"{'gain vs R=1':>11} {'compile s':>9}"
  )
  for row in rows:
    base = next(
      b for b in rows if (b["shape"], b["cores"], b["replicas"]) == (row["shape"], row["cores"], 1)
    )
    gain = row["replica_steps_per_s"] / base["replica_steps_per_s"]
    print(
      f"{row['shape']:>8} {row['cores']:>5} {row['replicas']:>3} {row['ms_per_call']:>9.1f} "
      f"{row['replica_steps_per_s']:>16.0f} {gain:>10.2f}x {row['compile_s']:>9.1f}"
    )
  print(f"\n{STEPS_PER_CALL} steps per call; R = 1 is the engine's step without vmap.")


if __name__ == "__main__":
  main()
