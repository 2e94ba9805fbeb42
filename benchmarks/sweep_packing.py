"""A sweep one run at a time (`--parallel=1`) against the packed default (`--parallel=auto`).

Run:  python benchmarks/sweep_packing.py                      (configs/gpt.py:quick, ~3 min on
                                                               2 CPU cores)
      python benchmarks/sweep_packing.py --config=configs/gpt.py     (the default sweep, longer)
      python benchmarks/sweep_packing.py --extra=--config.sweep.budgets='(3e10,)'   (smaller)
      python benchmarks/sweep_packing.py --config=configs/gpt.py --estimate   (also prints the
                                               plan's time estimate of the packed sweep)

Both sweeps train the same planned runs (planned once, copied into two fresh temporary
workdirs), alternately in the order given by --order, as separate `python -m flopsfit.train`
processes, each with its own compilation cache (so both pay compile time as a fresh clone
would). The table comes from each workdir's sweep_summary.json: wall time, its split into
plan / compile / train / eval / checkpoint / idle (seconds of the whole machine), spent FLOPs,
sweep efficiency (spent FLOPs / (wall × measured peak of all devices)), and the speed-up; where
the two train processes measured peaks more than 5% apart (one right after the other's load
can measure a lower one), both efficiencies again against the higher peak.
On a shared machine, run it when it is quiet: other processes slow pinned workers most.
"""

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARTS = ("plan", "compile", "train", "eval", "checkpoint", "idle")


def _run(module: str, config: str, workdir: str, extra: list[str], *flags: str) -> tuple:
  """(seconds, stdout) of `python -m module` with these flags."""
  start = time.perf_counter()
  proc = subprocess.run(
    [sys.executable, "-m", module, f"--config={config}", f"--config.workdir={workdir}"]
    + extra
    + list(flags),
    cwd=ROOT,
    capture_output=True,
    text=True,
  )
  if proc.returncode:
    sys.exit(f"{module} {' '.join(flags)} failed:\n{proc.stderr[-3000:]}")
  return time.perf_counter() - start, proc.stdout


def _cpu() -> str:
  try:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
  except OSError:
    return platform.processor()
  model = next((l.split(":", 1)[1].strip() for l in out.splitlines() if "Model name" in l), "?")
  flags = next((l for l in out.splitlines() if l.startswith("Flags")), "")
  simd = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
  return f"{model}, {len(os.sched_getaffinity(0))} cores usable, {simd}"


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="configs/gpt.py:quick")
  parser.add_argument("--order", default="1,auto", help="--parallel values, in run order")
  parser.add_argument("--extra", action="append", default=[], help="more flags for both")
  parser.add_argument("--keep", action="store_true", help="keep the workdirs (path printed)")
  parser.add_argument(
    "--estimate", action="store_true", help="plan with the timing probe; print its estimate"
  )
  args = parser.parse_args()
  base = tempfile.mkdtemp(prefix="flopsfit-sweep-packing-")
  planned = os.path.join(base, "planned")
  probe = ("--config.sweep.probe=True", "--parallel=auto") if args.estimate else ("--probe=false",)
  _, plan_output = _run("flopsfit.plan", args.config, planned, args.extra, *probe)
  estimate = re.search(r"^total: .*about ([\d.]+) min", plan_output, re.MULTILINE)
  plan = json.load(open(os.path.join(planned, "sweep.json")))
  print(f"machine: {_cpu()}")
  print(f"sweep: {args.config} {' '.join(args.extra)}: {len(plan['runs'])} runs\n")
  summaries = {}
  for parallel in args.order.split(","):
    workdir = os.path.join(base, f"parallel-{parallel}")
    os.makedirs(workdir)
    shutil.copy(os.path.join(planned, "sweep.json"), workdir)
    seconds, _ = _run("flopsfit.train", args.config, workdir, args.extra, f"--parallel={parallel}")
    summary = json.load(open(os.path.join(workdir, "sweep_summary.json")))
    summaries[parallel] = {**summary, "process_seconds": seconds}
  _print_table(summaries)
  if args.estimate and not estimate:
    print("\nthe plan printed no time estimate")
  elif estimate and "auto" in summaries:
    print(
      f"\nthe plan's estimate for --parallel=auto (probed in workers, plan --parallel=auto): "
      f"{float(estimate.group(1)) * 60:.0f} s; measured: {summaries['auto']['wall_seconds']:.0f} s"
    )
  if args.keep:
    print(f"\nworkdirs kept under {base}")
  else:
    shutil.rmtree(base, ignore_errors=True)


def _print_table(summaries: dict) -> None:
  header = (
    f"{'--parallel':<10} {'workers':>7} {'wall':>7} "
    + " ".join(f"{p:>10}" for p in PARTS)
    + f" {'FLOPs':>9} {'peak':>9} {'effic.':>6} {'speed-up':>8}"
  )
  print(header)
  print("-" * len(header))
  sequential = summaries.get("1", next(iter(summaries.values())))["wall_seconds"]
  for parallel, s in summaries.items():
    wall = s["wall_seconds"]
    split = " ".join(f"{s['seconds'][p]:>5.0f} {s['seconds'][p] / wall:>3.0%}" for p in PARTS)
    print(
      f"{parallel:<10} {s['workers']:>7} {wall:>6.0f}s {split} {s['flops_spent']:>9.3g} "
      f"{s['peak_flops']:>9.3g} {s['efficiency']:>6.3f} {sequential / wall:>7.2f}x"
    )
  print(
    "\nwall: the train command's sweep time (plan read, peak measured, all runs); split in "
    "seconds of the whole machine (a run on k of n cores counts k/n of its seconds)."
  )
  peaks = [s["peak_flops"] for s in summaries.values() if s.get("peak_flops")]
  if len(peaks) > 1 and max(peaks) > 1.05 * min(peaks):
    # Each train process measures its own peak, and one right after a loaded stretch can
    # measure it lower: the same peak for both makes their efficiencies comparable.
    common = max(peaks)
    both = ", ".join(
      f"--parallel={p} {s['flops_spent'] / (s['wall_seconds'] * common):.3f}"
      for p, s in summaries.items()
    )
    print(f"efficiency against one peak for both (the higher, {common:.3g} FLOP/s): {both}")


if __name__ == "__main__":
  main()
