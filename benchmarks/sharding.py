"""One GPT's train step under data, FSDP, tensor and mixed meshes: step time and memory per device.

  python benchmarks/sharding.py                     # 8 forced CPU devices, d256-L2 (about 1 min)
  python benchmarks/sharding.py --devices=4 --d_model=512 --n_layers=8    # on GPUs: the first 4
  python benchmarks/sharding.py --json

On CPU the host is split into `--devices` forced devices (default 8); on GPUs the first
`--devices` devices are used (default: all). Per mesh it prints the median step time over
`--steps` timed steps (after one warm-up step), the state (parameters + AdamW moments) held by
the most loaded device (its addressable shards), XLA's memory analysis of the compiled step
per device (arguments + outputs + temporaries), and XLA's FLOPs per device. The model FLOPs
of the step (what a budget counts) are the same on every mesh.
"""

import argparse
import json
import os
import statistics
import sys
import time

MESHES = {  # name: (fsdp, tensor) with `data` taking the rest
  "data": lambda n: (1, 1),
  "fsdp": lambda n: (n, 1),
  "tensor": lambda n: (1, n),
  "mixed": lambda n: (max(1, n // 4), 2 if n >= 2 else 1),
}


def _args():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--devices", type=int, default=0, help="devices (CPU: forced; 0: 8/all)")
  parser.add_argument("--d_model", type=int, default=256)
  parser.add_argument("--n_layers", type=int, default=2)
  parser.add_argument("--head_dim", type=int, default=64)
  parser.add_argument("--seq_len", type=int, default=128)
  parser.add_argument("--batch", type=int, default=16, help="global batch (records)")
  parser.add_argument("--vocab", type=int, default=512)
  parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
  parser.add_argument("--steps", type=int, default=5, help="timed steps per mesh")
  parser.add_argument("--meshes", default=",".join(MESHES), help="comma-separated subset")
  parser.add_argument("--json", action="store_true", help="print the rows as a JSON list")
  return parser.parse_args()


def main():
  args = _args()
  # Splits the host into devices when JAX runs on CPU; ignored on GPUs.
  os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={args.devices or 8}"
  )
  import jax

  devices = jax.devices()[: args.devices or None]
  rows = [_measure(args, name, devices) for name in args.meshes.split(",")]
  if args.json:
    print(json.dumps(rows, indent=1))
    return
  kind = devices[0].device_kind
  print(
    f"GPT d{args.d_model}-L{args.n_layers} (head {args.head_dim}, vocab {args.vocab}), "
    f"batch {args.batch} × {args.seq_len} tokens, {args.dtype}, on {len(devices)} × {kind} "
    f"(jax {jax.__version__})"
  )
  header = (
    f"{'mesh':<7} {'data×fsdp×tensor':>16} {'step ms':>9} {'state MiB/dev':>14} "
    f"{'XLA MiB/dev':>12} {'GFLOP/dev':>10} {'model GFLOP':>12}"
  )
  print(header)
  print("-" * len(header))
  for r in rows:
    axes = "×".join(str(r["mesh"][a]) for a in ("data", "fsdp", "tensor"))
    xla = "n/a" if r["xla_bytes_per_device"] is None else f"{r['xla_bytes_per_device'] / 2**20:.2f}"
    print(
      f"{r['name']:<7} {axes:>16} {r['step_seconds'] * 1e3:>9.1f} "
      f"{r['state_bytes_per_device'] / 2**20:>14.2f} {xla:>12} "
      f"{r['flops_per_device'] / 1e9:>10.3f} {r['flops_per_step'] / 1e9:>12.3f}"
    )


def _measure(args, name: str, devices) -> dict:
  import jax
  import numpy as np
  from default_optim import default_optim
  from flax import nnx

  from flopsfit import losses
  from flopsfit.engine import mesh as mesh_lib
  from flopsfit.engine import sharding
  from flopsfit.engine import step as step_lib
  from flopsfit.models.gpt import GPT

  fsdp, tensor = MESHES[name](len(devices))
  mesh = mesh_lib.make_mesh(devices, fsdp=fsdp, tensor=tensor)

  def build():
    return GPT(
      vocab_size=args.vocab,
      d_model=args.d_model,
      n_layers=args.n_layers,
      head_dim=args.head_dim,
      dtype=args.dtype,
      rngs=nnx.Rngs(0),
    )

  rng = np.random.default_rng(0)
  tokens = rng.integers(0, args.vocab, (args.batch, args.seq_len), dtype=np.int32)
  compiled = step_lib.compile_step(
    build,
    losses.next_token_cross_entropy(),
    default_optim(1e-3),
    mesh,
    {"tokens": tokens},
    args.batch,
  )
  state = compiled.init(np.int32(1000))
  state_bytes = sharding.bytes_per_device(state)
  batch = jax.device_put({"tokens": tokens}, mesh_lib.batch_sharding(mesh))
  times = []
  for _ in range(args.steps + 1):
    start = time.perf_counter()
    state, metrics = compiled.single(state, batch)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - start)
  print(f"{name}: done", file=sys.stderr)
  return {
    "name": name,
    "mesh": mesh_lib.shape_of(mesh),
    "device_kind": devices[0].device_kind,
    "step_seconds": statistics.median(times[1:]),
    "state_bytes_per_device": state_bytes,
    "xla_bytes_per_device": compiled.memory_bytes,
    "flops_per_device": compiled.flops_per_step_per_device,
    "flops_per_step": compiled.flops_per_step,
    "compile_seconds": compiled.compile_seconds,
  }


if __name__ == "__main__":
  main()
