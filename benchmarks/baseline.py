"""A baseline commit's `flopsfit` beside this checkout's, for benchmarks that compare them in
alternating child processes."""

import contextlib
import os
import subprocess
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
