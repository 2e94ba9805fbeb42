"""A baseline commit's `flopsfit` beside this checkout's, for benchmarks that compare them in
alternating child processes."""

import contextlib
import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@contextlib.contextmanager
def extracted(ref: str):
  """A temporary directory holding `flopsfit/` as of git `ref` (`git archive`): put it on a
  child's PYTHONPATH to run that version."""
  with tempfile.TemporaryDirectory(prefix="flopsfit-baseline-") as path:
    archive = subprocess.run(
      ["git", "-C", REPO, "archive", ref, "flopsfit"], check=True, capture_output=True
    )
    subprocess.run(["tar", "-x", "-C", path], input=archive.stdout, check=True)
    yield path


def alternate(variants: dict, rounds: int, run) -> dict:
  """{name: [run(variant) per round]}: every variant once per round, in turn, so a busy moment
  on a shared machine hits all of them."""
  results = {name: [] for name in variants}
  for _ in range(rounds):
    for name, variant in variants.items():
      results[name].append(run(variant))
  return results


def run_one_core_child(script: str, path: str, args: list[str] = ()) -> dict:
  """`script --child *args` in a fresh process pinned to this process's first core, with the
  `flopsfit` of `path` (a baseline's or this checkout) and no inherited XLA flags or
  compilation cache; returns the JSON its last line prints."""
  env = {**os.environ, "PYTHONPATH": path, "JAX_PLATFORMS": "cpu"}
  env.pop("XLA_FLAGS", None)
  env.pop("JAX_COMPILATION_CACHE_DIR", None)
  core = str(sorted(os.sched_getaffinity(0))[0])
  command = ["taskset", "-c", core, sys.executable, os.path.abspath(script), "--child", *args]
  out = subprocess.run(command, env=env, check=True, capture_output=True, text=True, cwd=path)
  return json.loads(out.stdout.strip().splitlines()[-1])
