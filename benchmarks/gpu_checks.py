"""Issue 11's GPU checks in one run, for a session lent a GPU for a few minutes.

  python benchmarks/gpu_checks.py [--out=DIR] [--budget_s=480]
  python benchmarks/gpu_checks.py --smoke     # on CPU, toy sizes: checks this script (~2 min)

Each check runs in a child process (so none holds the GPU for the next) with its own time
limit, most important first:

1. MFU of the ~124M GPT at seq 1024 in bfloat16 with cuDNN's fused attention at batch 64, its
   steps dispatched back to back as in training (`step_throughput.py --gpt124m --pipelined`;
   target: at least 45% on an H100); then the same with XLA's Triton GEMMs off (whether any
   matmul still runs as a Triton fusion).
2. The same model with XLA's attention (the model's default) at batch 16.
3. The quick sweep on the GPU (`sweep_packing.py --order=auto`): its wall time split and its
   sweep efficiency.
4. The reference shape (d256-L4, seq 256) in float32 and bfloat16.
5. Seeds trained together in one vmapped step (`seed_replicas.py --settings=all`): whether
   `train.vmap_seeds` pays on the GPU.

Each check's output is printed when it ends, and `gpu_checks.json` (the device, versions, and
each check's command, exit status, seconds and output) is written to --out (default: $OUT,
else the current directory). A check that fails or runs out of time is recorded as such and the
next one runs; the budget is shared, so a slow first check shortens the later ones' limits.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# This checkout's flopsfit, installed or not (a lent machine gets a copy of the working tree).
ENV = {
  **os.environ,
  "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])),
}

GPT124M = ["step_throughput.py", "--gpt124m", "--dtype=bfloat16", "--steps=10"]
CUDNN_B64 = GPT124M + ["--attention=cudnn", "--batch=64", "--pipelined"]
NO_TRITON_GEMM = {"XLA_FLAGS": "--xla_gpu_enable_triton_gemm=false"}
CHECKS = [  # name, arguments (a script beside this one), its own time limit (s), extra env
  ("gpt124m_bf16_cudnn_b64", CUDNN_B64, 120, {}),
  ("gpt124m_bf16_cudnn_b64_no_triton_gemm", CUDNN_B64, 100, NO_TRITON_GEMM),
  ("gpt124m_bf16_xla_b16", GPT124M, 150, {}),
  ("quick_sweep", ["sweep_packing.py", "--config=configs/gpt.py:quick", "--order=auto"], 300, {}),
  ("reference_f32", ["step_throughput.py", "--reference", "--steps=10"], 90, {}),
  (
    "reference_bf16",
    ["step_throughput.py", "--reference", "--steps=10", "--dtype=bfloat16"],
    90,
    {},
  ),
  (
    "vmap_seeds",
    ["seed_replicas.py", "--settings=all", "--shapes=16x1,64x4", "--rounds=2"],
    180,
    {},
  ),
]
SMOKE = [  # the same scripts at toy sizes, on CPU
  ("reference_f32", ["step_throughput.py", "--reference", "--steps=1"], 300, {}),
  (
    "reference_pipelined",
    ["step_throughput.py", "--reference", "--steps=2", "--pipelined"],
    300,
    NO_TRITON_GEMM,
  ),
  ("quick_sweep", ["sweep_packing.py", "--config=configs/gpt.py:quick", "--order=auto"], 400, {}),
  ("vmap_seeds", ["seed_replicas.py", "--settings=all", "--shapes=16x1", "--rounds=1"], 300, {}),
]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=os.environ.get("OUT", "."), help="where the JSON goes")
  parser.add_argument("--budget_s", type=float, default=480.0, help="seconds for all checks")
  parser.add_argument("--smoke", action="store_true", help="toy sizes on CPU (checks the script)")
  args = parser.parse_args()
  machine = _machine()
  print(json.dumps(machine), flush=True)
  if machine["backend"] != "gpu" and not args.smoke:
    sys.exit(
      f"gpu_checks: JAX's backend is {machine['backend']!r}, not a GPU; --smoke runs toy "
      "sizes on CPU"
    )
  deadline = time.monotonic() + args.budget_s
  results = []
  for name, argv, limit, env in SMOKE if args.smoke else CHECKS:
    timeout = min(limit, deadline - time.monotonic())
    if timeout < 30:
      results.append({"check": name, "status": "skipped: budget spent"})
      continue
    results.append(_run(name, argv, timeout, env))
    _write(args.out, machine, results)
  print("\n" + "\n".join(f"{r['check']:>20}: {r['status']}" for r in results))
  print(f"written: {os.path.join(args.out, 'gpu_checks.json')}")


def _machine() -> dict:
  probe = (
    "import jax, jaxlib, flax; d = jax.devices()[0]; print(jax.default_backend(), '|', "
    "d.device_kind, '|', len(jax.devices()), '|', jax.__version__, jaxlib.__version__, "
    "flax.__version__)"
  )
  out = subprocess.run(
    [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env=ENV
  )
  if out.returncode:
    sys.exit(f"gpu_checks: JAX did not start:\n{out.stderr[-2000:]}")
  backend, kind, count, versions = (f.strip() for f in out.stdout.strip().split("|"))
  return {"backend": backend, "device": kind, "devices": int(count), "versions": versions}


def _run(name: str, argv: list[str], timeout: float, env: dict) -> dict:
  command = [sys.executable, os.path.join(HERE, argv[0]), *argv[1:]]
  shown = " ".join([*(f"{k}={v}" for k, v in env.items()), *argv])
  print(f"\n== {name}: {shown} (limit {timeout:.0f} s)", flush=True)
  start = time.monotonic()
  # Its own process group: a timed-out check is killed with the processes it started (a
  # script's child processes would otherwise keep the GPU from the next check).
  proc = subprocess.Popen(
    command,
    cwd=ROOT,
    env={**ENV, **env},
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
    start_new_session=True,
  )
  try:
    stdout, stderr = proc.communicate(timeout=timeout)
    status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
    output = stdout + (stderr[-3000:] if proc.returncode else "")
  except subprocess.TimeoutExpired:
    os.killpg(proc.pid, signal.SIGKILL)
    stdout, stderr = proc.communicate()
    status, output = f"timed out after {timeout:.0f} s", stdout + stderr[-3000:]
  seconds = time.monotonic() - start
  print(output.rstrip() + f"\n-- {name}: {status} in {seconds:.0f} s", flush=True)
  return {
    "check": name,
    "command": argv,
    "env": env,
    "status": status,
    "seconds": seconds,
    "output": output,
  }


def _write(out: str, machine: dict, results: list[dict]) -> None:
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, "gpu_checks.json"), "w") as f:
    json.dump({"machine": machine, "checks": results}, f, indent=1)


if __name__ == "__main__":
  main()
