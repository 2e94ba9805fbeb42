"""Train-step throughput of the built-in GPT at a few sizes: tokens/s, FLOP/s, MFU.

  python benchmarks/step_throughput.py [--json] [--cpu_devices=2] [--steps=5]
  python benchmarks/step_throughput.py --reference --torch     # the reference shape only,
                                                               # and PyTorch eager beside it
  python benchmarks/step_throughput.py --large --dtype=bfloat16 --attention=cudnn  # a GPU
  python benchmarks/step_throughput.py --gpt124m --dtype=bfloat16  # the GPU MFU target shape

FLOPs per step are flopsfit's count (the lowered step, as in training); the peak is a large
matmul measured in the same process on CPU (so on CPU "mfu" is the step's FLOP/s as a
fraction of that matmul's), or the device table on accelerators. The reference shape (the
issue 11 target: mfu >= 0.65 on one CPU device, tokens/s >= 1.5x PyTorch eager) is d256,
4 layers, 4 heads of 64, SwiGLU hidden 688, untied head, vocab 512, seq 256, batch 16, f32.
`--torch` runs benchmarks/torch_reference.py in a child process first (skipped with a
message when PyTorch is not installed) and prints the ratio.
"""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import time

SIZES = [  # d_model, n_layers, seq_len, batch, vocab, head_dim, tied head
  (64, 2, 64, 32, 256, 16, True),
  (128, 4, 128, 16, 256, 16, True),
  (256, 4, 256, 16, 256, 16, True),
  (512, 8, 256, 8, 256, 16, True),
]
REFERENCE = (256, 4, 256, 16, 512, 64, False)  # the PyTorch comparison's shape
# The GPU MFU target (issue 11: >= 45% bf16 MFU on an H100): a GPT-2-small-sized model, d768,
# 12 layers of 12 heads, seq 1024, tied embeddings over a 50,304-token vocabulary: 123.6M
# parameters.
GPT124M = (768, 12, 1024, 16, 50304, 64, True)
LARGE = [  # accelerator-sized shapes (--large)
  (1024, 8, 1024, 16, 32768, 64, False),
  (2048, 8, 2048, 8, 32768, 128, False),
]
COLUMNS = [
  "shape",
  "d_model",
  "n_layers",
  "seq_len",
  "batch",
  "devices",
  "params",
  "flops_per_step",
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
  parser.add_argument("--steps", type=int, default=5, help="timed steps per size (the best counts)")
  parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
  parser.add_argument(
    "--peak_flops",
    type=float,
    default=0.0,
    help="peak FLOP/s per device for MFU (default: measured on CPU, a table on GPUs)",
  )
  parser.add_argument("--reference", action="store_true", help="only the reference shape")
  parser.add_argument("--large", action="store_true", help="accelerator-sized shapes instead")
  parser.add_argument("--gpt124m", action="store_true", help="only the ~124M GPU target shape")
  parser.add_argument("--batch", type=int, default=0, help="batch size (default: each shape's own)")
  parser.add_argument(
    "--attention",
    default="xla",
    choices=["xla", "cudnn"],
    help="the GPT's attention kernel (cudnn: NVIDIA GPUs, bfloat16)",
  )
  parser.add_argument("--torch", action="store_true", help="PyTorch eager at the reference shape")
  parser.add_argument(
    "--pipelined",
    action="store_true",
    help="time --steps steps dispatched back to back with one wait at the end (the mean; as "
    "training runs them) instead of the best of --steps steps each waited for",
  )
  parser.add_argument(
    "--profile",
    default="",
    help="trace 3 more steps of each shape into this folder (perfetto_trace.json.gz; "
    "benchmarks/trace_summary.py reads it)",
  )
  args = parser.parse_args()
  torch_row = _torch_reference(args.steps) if args.torch else None
  os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={args.cpu_devices}"
  )
  import jax
  import numpy as np
  from default_optim import default_optim
  from flax import nnx

  from flopsfit import losses
  from flopsfit.engine import mesh as mesh_lib
  from flopsfit.engine import params, throughput
  from flopsfit.engine import step as step_lib
  from flopsfit.models.gpt import GPT

  optim = default_optim(learning_rate=1e-3)
  mesh = mesh_lib.data_mesh()
  peak, _ = throughput.peak_flops(mesh, args.dtype, args.peak_flops)
  rows = []
  for d_model, n_layers, seq_len, batch, vocab, head_dim, tied in (
    [REFERENCE]
    if args.reference
    else [GPT124M]
    if args.gpt124m
    else LARGE
    if args.large
    else SIZES + [REFERENCE]
  ):
    batch = max(args.batch or batch, mesh.size)
    build = lambda: GPT(
      vocab_size=vocab,
      d_model=d_model,
      n_layers=n_layers,
      head_dim=head_dim,
      tied_embeddings=tied,
      dtype=args.dtype,
      attention=args.attention,
      rngs=nnx.Rngs(0),
    )
    tokens = np.random.default_rng(0).integers(0, vocab, (batch, seq_len), dtype=np.int32)
    compiled = step_lib.compile_step(
      build, losses.next_token_cross_entropy(), optim, mesh, {"tokens": tokens}, batch
    )
    state = compiled.init(1000)
    device_batch = jax.device_put({"tokens": tokens}, mesh_lib.batch_sharding(mesh))
    for _ in range(2):
      state, metrics = compiled.single(state, device_batch)
    jax.block_until_ready(metrics)
    if args.pipelined:  # as training runs: the host dispatches ahead, one wait at the end
      start = time.perf_counter()
      for _ in range(args.steps):
        state, metrics = compiled.single(state, device_batch)
      jax.block_until_ready(metrics)
      seconds = (time.perf_counter() - start) / args.steps
    else:
      seconds = float("inf")  # the best step: robust to a busy moment on a shared machine
      for _ in range(args.steps):
        start = time.perf_counter()
        state, metrics = compiled.single(state, device_batch)
        jax.block_until_ready(metrics)
        seconds = min(seconds, time.perf_counter() - start)
    flops_per_s = compiled.flops_per_step / seconds
    if args.profile:
      shape = (d_model, n_layers, seq_len, batch, vocab)
      folder = os.path.join(args.profile, f"{_name(shape) or 'shape'}-b{batch}")
      _trace(compiled, state, device_batch, folder)
    rows.append(
      {
        "shape": _name((d_model, n_layers, seq_len, batch, vocab)),
        "d_model": d_model,
        "n_layers": n_layers,
        "seq_len": seq_len,
        "batch": batch,
        "devices": mesh.size,
        "params": params.count_params(nnx.eval_shape(build))["total"],
        "flops_per_step": compiled.flops_per_step,
        "tokens_per_s": batch * seq_len / seconds,
        "flops_per_s": flops_per_s,
        "peak_flops": peak,
        "mfu": flops_per_s / peak if peak else None,
        "compile_s": compiled.compile_seconds,
      }
    )
  if args.json:
    json.dump({"flopsfit": rows, "torch": torch_row}, sys.stdout, indent=1)
    print()
    return
  print(f"{jax.devices()[0].device_kind}, {args.dtype}, attention {args.attention}")
  print(" | ".join(f"{c:>12}" for c in COLUMNS))
  for row in rows:
    cells = []
    for c in COLUMNS:
      v = row[c]
      cells.append(f"{v:>12.3g}" if isinstance(v, float) else f"{str(v):>12}")
    print(" | ".join(cells))
  if args.torch:
    reference = rows[-1]
    if torch_row is None:
      print("PyTorch eager: not installed, no comparison (pip install torch)")
    else:
      print(
        f"reference shape: flopsfit {reference['tokens_per_s']:.0f} tokens/s, PyTorch "
        f"{torch_row['torch']} eager ({torch_row['threads']} threads) "
        f"{torch_row['tokens_per_s']:.0f} tokens/s: "
        f"{reference['tokens_per_s'] / torch_row['tokens_per_s']:.2f}x"
      )


def _trace(compiled, state, device_batch, folder: str) -> None:
  """Three steps under JAX's profiler; the Perfetto trace copied to `folder` itself."""
  import jax  # imported late, as in main: XLA_FLAGS are set first

  with jax.profiler.trace(folder, create_perfetto_trace=True):
    for _ in range(3):
      state, metrics = compiled.single(state, device_batch)
    jax.block_until_ready(metrics)
  traces = sorted(
    glob.glob(os.path.join(folder, "plugins", "profile", "*", "perfetto_trace.json.gz"))
  )
  shutil.copy(traces[-1], os.path.join(folder, "perfetto_trace.json.gz"))
  print(f"trace: {os.path.join(folder, 'perfetto_trace.json.gz')}")


def _name(shape: tuple) -> str:
  """A named shape's name, whatever its batch; else empty."""
  d_model, n_layers, seq_len, _, vocab = shape
  named = {(s[0], s[1], s[2], s[4]): n for s, n in ((REFERENCE, "reference"), (GPT124M, "gpt124m"))}
  return named.get((d_model, n_layers, seq_len, vocab), "")


def _torch_reference(steps: int) -> dict | None:
  """benchmarks/torch_reference.py in a child process (its threads never meet XLA's)."""
  script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_reference.py")
  out = subprocess.run(
    [sys.executable, script, "--json", f"--steps={min(steps, 5)}"],
    check=True,
    capture_output=True,
    text=True,
  )
  return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
  main()
