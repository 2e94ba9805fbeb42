"""Where a traced step's device time goes: the kernels of a Perfetto trace, largest first.

Run:  python benchmarks/trace_summary.py TRACE [--top=25] [--steps=3]

TRACE is a `perfetto_trace.json.gz` written by `jax.profiler.trace(..., create_perfetto_trace=
True)`, e.g. by `python benchmarks/step_throughput.py --profile=DIR` (three steps). Only device
tracks count (processes named like /device:GPU:0); with none (a CPU trace), every track does.
Prints each kernel's time per step and share of the busy time, and the busy time per step.
"""

import argparse
import collections
import gzip
import json


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("trace")
  parser.add_argument("--top", type=int, default=25, help="kernels to list")
  parser.add_argument("--steps", type=int, default=3, help="steps in the trace (per-step times)")
  args = parser.parse_args()
  with gzip.open(args.trace) as f:
    trace = json.load(f)
  events = trace["traceEvents"] if isinstance(trace, dict) else trace
  names = {
    e["pid"]: e.get("args", {}).get("name", "")
    for e in events
    if e.get("ph") == "M" and e.get("name") == "process_name"
  }
  device = {pid for pid, name in names.items() if "device:" in name.lower()}
  spans = [e for e in events if e.get("ph") == "X" and (not device or e["pid"] in device)]
  if not spans:
    raise SystemExit(f"{args.trace}: no timed events")
  by_name = collections.defaultdict(lambda: [0.0, 0])
  for e in spans:
    entry = by_name[e["name"]]
    entry[0] += float(e.get("dur", 0.0))
    entry[1] += 1
  busy = sum(v[0] for v in by_name.values())
  start = min(float(e["ts"]) for e in spans)
  end = max(float(e["ts"]) + float(e.get("dur", 0.0)) for e in spans)
  print(f"tracks: {', '.join(sorted(names[p] for p in device)) or 'all (no device track)'}")
  print(
    f"busy {busy / args.steps / 1e3:.2f} ms a step over {len(by_name)} kernels; "
    f"first to last event {(end - start) / args.steps / 1e3:.2f} ms a step"
  )
  print(f"{'ms/step':>9} {'share':>6} {'calls/step':>10}  kernel")
  for name, (dur, calls) in sorted(by_name.items(), key=lambda kv: -kv[1][0])[: args.top]:
    print(
      f"{dur / args.steps / 1e3:9.3f} {dur / busy:6.1%} {calls / args.steps:10.1f}  {name[:110]}"
    )


if __name__ == "__main__":
  main()
