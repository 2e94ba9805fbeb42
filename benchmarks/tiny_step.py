"""The smallest default-sweep step (GPT d16/L1, seq 64, batch 16, vocab 64, 20 steps per
scanned call): the code before this change vs this checkout, side by side, in alternating
processes.

  python benchmarks/tiny_step.py [--rounds=3] [--baseline=68a5798]
  python benchmarks/tiny_step.py --baseline=2a48315 --shape=64x4 --packed  # another sweep shape,
                                                      # both versions as one-core packed workers
  python benchmarks/tiny_step.py --shape=64x4 --flags_only  # a one-core worker without and with
                                                      # cpu_flags (step and compile time)

The baseline is extracted from git (`git archive`) into a temporary directory and run with
its own defaults; "now" runs this checkout as flopsfit trains (on both cores, and on one core
as a packed sweep's worker: pinned, Eigen single-threaded), and with the experimental flags of
`cpu_flags.configure()` on top. `--shape=DxL` times another default-sweep shape (d_model x
layers); `--packed` compares only the baseline and this checkout, each as a one-core packed
worker (how a sweep on 2 cores trains). Every variant runs once per round, in turn, so a busy
moment on a shared machine hits all of them; the table gives each variant's median ms per step
and its speedup over the baseline. About a minute per round.
"""

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time

import baseline as baseline_lib  # benchmarks/baseline.py, beside this script

REPO = baseline_lib.REPO
SEQ, BATCH, VOCAB, STEPS_PER_CALL = 64, 16, 64, 20


def child(configure: bool, one_core: bool, d_model: int, n_layers: int) -> dict:
  """Times the scanned step in this process; returns ms/step and the step's fusion count."""
  if one_core:
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
  if configure:
    import cpu_flags  # benchmarks/cpu_flags.py, beside this script

    cpu_flags.configure()
  elif one_core:  # what a packed sweep's one-core worker sets (flopsfit/sweep/workers.py)
    os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false"
  import jax
  import numpy as np
  from default_optim import default_optim
  from flax import nnx

  from flopsfit import losses
  from flopsfit.engine import mesh as mesh_lib
  from flopsfit.engine import step as step_lib
  from flopsfit.models.gpt import GPT

  optim = default_optim(learning_rate=1e-3)
  build = lambda: GPT(
    vocab_size=VOCAB, d_model=d_model, n_layers=n_layers, head_dim=8, rngs=nnx.Rngs(0)
  )
  tokens = np.random.default_rng(0).integers(0, VOCAB, (STEPS_PER_CALL, BATCH, SEQ), np.int32)
  mesh = mesh_lib.data_mesh(jax.devices()[:1])
  start = time.perf_counter()
  compiled = step_lib.compile_step(
    build,
    losses.next_token_cross_entropy(),
    optim,
    mesh,
    {"tokens": tokens[0]},
    BATCH,
    STEPS_PER_CALL,
  )
  compile_s = time.perf_counter() - start  # tracing, lowering and XLA's compiles, no cache
  state = compiled.init(100_000)
  batches = jax.device_put({"tokens": tokens}, mesh_lib.batch_sharding(mesh, 1))
  # The landed code's call takes the K batches; today's also the number of steps to take.
  count = (np.int32(STEPS_PER_CALL),) if hasattr(compiled, "lowered_single") else ()
  for _ in range(3):
    state, metrics = compiled.multi(state, batches, *count)
  jax.block_until_ready(metrics)
  best = float("inf")
  calls = max(1, 5 * 16 // d_model)  # about as long a block at every shape
  for _ in range(5):
    start = time.perf_counter()
    for _ in range(calls):
      state, metrics = compiled.multi(state, batches, *count)
    jax.block_until_ready(metrics)
    best = min(best, (time.perf_counter() - start) / (calls * STEPS_PER_CALL))
  return {
    "ms": 1e3 * best,
    "compile_s": compile_s,
    "fusions": compiled.multi.as_text().count(" fusion("),
    "xla_flags": os.environ.get("XLA_FLAGS", ""),
  }


def run_variant(path: str, configure: bool, one_core: bool, shape: str) -> dict:
  env = {**os.environ, "PYTHONPATH": path, "JAX_PLATFORMS": "cpu"}
  env.pop("XLA_FLAGS", None)
  env.pop("JAX_COMPILATION_CACHE_DIR", None)  # compile times without a cache
  args = [sys.executable, os.path.abspath(__file__), "--child", "--path", path, "--shape", shape]
  args += ["--configure"] * configure + ["--one_core"] * one_core
  out = subprocess.run(args, env=env, check=True, capture_output=True, text=True, cwd=path)
  return json.loads(out.stdout.strip().splitlines()[-1])


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument(
    "--baseline",
    default="68a5798",
    help="git ref to compare with (68a5798: the landed step moved into engine/)",
  )
  parser.add_argument("--shape", default="16x1", help="d_model x n_layers, e.g. 64x4")
  parser.add_argument(
    "--packed", action="store_true", help="only baseline and now, each as a one-core worker"
  )
  parser.add_argument(
    "--flags_only",
    action="store_true",
    help="only this checkout as a one-core worker, without and with cpu_flags",
  )
  parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--path", default=REPO, help=argparse.SUPPRESS)
  parser.add_argument("--configure", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--one_core", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args()
  try:
    d_model, n_layers = (int(part) for part in args.shape.split("x"))
  except ValueError:
    parser.error(f"--shape: expected d_model x n_layers such as 64x4, got {args.shape!r}")
  if args.child:
    print(json.dumps(child(args.configure, args.one_core, d_model, n_layers)))
    return
  extracted = contextlib.nullcontext() if args.flags_only else baseline_lib.extracted(args.baseline)
  with extracted as baseline:  # --flags_only times this checkout only
    if args.flags_only:
      variants = {
        "now, 1 core, as a packed worker": (REPO, False, True),
        "now + cpu_flags, 1 core": (REPO, True, True),
      }
    elif args.packed:
      variants = {
        f"before ({args.baseline}), 1 core": (baseline, False, True),
        "now, 1 core, as a packed worker": (REPO, False, True),
      }
    else:
      variants = {
        f"before ({args.baseline}), 2 cores": (baseline, False, False),
        "now, 2 cores, as flopsfit trains": (REPO, False, False),
        "now, 1 core, as a packed worker": (REPO, False, True),
        "now + cpu_flags, 2 cores": (REPO, True, False),
        "now + cpu_flags, 1 core": (REPO, True, True),
      }
    results = baseline_lib.alternate(
      variants, args.rounds, lambda variant: run_variant(*variant, args.shape)
    )
  base = statistics.median(r["ms"] for r in results[next(iter(variants))])
  print(
    f"GPT d{d_model}/L{n_layers}, seq {SEQ}, batch {BATCH}, vocab {VOCAB}, {STEPS_PER_CALL} "
    f"steps per call; median of {args.rounds} rounds (each the best of 5 blocks)"
  )
  print(
    f"{'variant':<34} | {'ms/step':>8} | {'tokens/s':>9} | {'speedup':>7} | compile s | "
    "fusions | XLA_FLAGS"
  )
  for name, runs in results.items():
    ms = statistics.median(r["ms"] for r in runs)
    print(
      f"{name:<34} | {ms:8.3f} | {BATCH * SEQ / ms * 1e3:9.0f} | {base / ms:6.2f}x | "
      f"{statistics.median(r['compile_s'] for r in runs):9.1f} | {runs[0]['fusions']:7d} | "
      f"{runs[0]['xla_flags']}"
    )


if __name__ == "__main__":
  main()
