"""Train-step throughput of the built-in GPT at a few sizes: tokens/s, FLOP/s, MFU.

  python benchmarks/step_throughput.py [--json] [--cpu_devices=2] [--steps=20]

FLOPs per step are XLA's count of the compiled step (as in training); the peak is a large
matmul measured in the same process on CPU, or the device table on accelerators.
"""

import argparse
import json
import os
import sys
import time

SIZES = [  # d_model, n_layers, seq_len, batch
  (64, 2, 64, 32),
  (128, 4, 128, 16),
  (256, 4, 256, 16),
  (512, 8, 256, 8),
]
COLUMNS = [
  "d_model",
  "n_layers",
  "seq_len",
  "batch",
  "devices",
  "params",
  "tokens_per_s",
  "flops_per_s",
  "peak_flops",
  "mfu",
  "compile_s",
]


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--json", action="store_true", help="print the rows as a JSON list")
  parser.add_argument("--cpu_devices", type=int, default=1, help="split the CPU into N devices")
  parser.add_argument("--steps", type=int, default=20, help="timed steps per size")
  parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
  parser.add_argument(
    "--peak_flops",
    type=float,
    default=0.0,
    help="peak FLOP/s per device for MFU (default: measured on CPU, a table on GPUs)",
  )
  args = parser.parse_args()
  os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={args.cpu_devices}"
  )
  import jax
  import ml_collections
  import numpy as np
  from flax import nnx

  from flopsfit import losses
  from flopsfit.engine import mesh as mesh_lib
  from flopsfit.engine import params, throughput
  from flopsfit.engine import step as step_lib
  from flopsfit.models.gpt import GPT

  optim = ml_collections.ConfigDict(
    dict(
      learning_rate=1e-3,
      schedule="cosine",
      warmup_fraction=0.05,
      decay_fraction=0.2,
      final_lr_fraction=0.1,
      weight_decay=0.1,
      b1=0.9,
      b2=0.95,
      eps=1e-8,
      grad_clip=1.0,
    )
  )
  mesh = mesh_lib.data_mesh()
  peak, _ = throughput.peak_flops(mesh, args.dtype, args.peak_flops)
  rows = []
  for d_model, n_layers, seq_len, batch in SIZES:
    batch = max(batch, mesh.size)
    build = lambda: GPT(
      vocab_size=256, d_model=d_model, n_layers=n_layers, dtype=args.dtype, rngs=nnx.Rngs(0)
    )
    tokens = np.random.default_rng(0).integers(0, 256, (batch, seq_len), dtype=np.int32)
    compiled = step_lib.compile_step(
      build, losses.next_token_cross_entropy(), optim, mesh, {"tokens": tokens}, batch
    )
    state = compiled.init(1000)
    device_batch = jax.device_put({"tokens": tokens}, mesh_lib.batch_sharding(mesh))
    for _ in range(3):
      state, metrics = compiled.single(state, device_batch)
    jax.block_until_ready(metrics)
    start = time.perf_counter()
    for _ in range(args.steps):
      state, metrics = compiled.single(state, device_batch)
    jax.block_until_ready(metrics)
    seconds = (time.perf_counter() - start) / args.steps
    flops_per_s = compiled.flops_per_step / seconds
    rows.append(
      {
        "d_model": d_model,
        "n_layers": n_layers,
        "seq_len": seq_len,
        "batch": batch,
        "devices": mesh.size,
        "params": params.count_params(nnx.eval_shape(build))["total"],
        "tokens_per_s": batch * seq_len / seconds,
        "flops_per_s": flops_per_s,
        "peak_flops": peak,
        "mfu": flops_per_s / peak if peak else None,
        "compile_s": compiled.compile_seconds,
      }
    )
  if args.json:
    json.dump(rows, sys.stdout, indent=1)
    print()
    return
  print(" | ".join(f"{c:>12}" for c in COLUMNS))
  for row in rows:
    cells = []
    for c in COLUMNS:
      v = row[c]
      cells.append(f"{v:>12.3g}" if isinstance(v, float) else f"{str(v):>12}")
    print(" | ".join(cells))


if __name__ == "__main__":
  main()
