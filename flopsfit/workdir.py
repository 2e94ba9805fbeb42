"""Files of a workdir: their names (defined here only), paths, atomic JSON writes, tolerant
JSONL reads. WORKSPACE.md documents every file field by field."""

import json
import os
import tempfile
from collections.abc import Iterator
from typing import Any

FINAL_STATUSES = ("completed", "diverged")  # a run with one of these is not trained again

# <workdir>/
SWEEP = "sweep.json"  # the plan (plan)
RUNS = "runs"  # one directory per run
SCALING_LAWS = "scaling_laws.json"  # the fitted laws (analyze)
PLOTS = "plots"  # figures and REPORT (plot)
JAX_CACHE = "jax_cache"  # JAX's persistent compilation cache
ARCHIVE = "archive"  # earlier sweeps moved aside by `plan --force`
# <workdir>/runs/<run_id>/
CONFIG = "config.json"  # the run's config and the numbers derived from it
METRICS = "metrics.jsonl"  # one line per logged step
RESULT = "result.json"  # the run's outcome, written last
CHECKPOINTS = "checkpoints"  # Orbax checkpoints while the run trains
# <workdir>/plots/
REPORT = "report.md"  # the one-page report


def write_json_atomic(path: str, obj: Any) -> None:
  """Writes `obj` as JSON to `path` so that readers never see a partial file."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
  try:
    with os.fdopen(fd, "w") as f:
      json.dump(obj, f, indent=2, sort_keys=True, allow_nan=True)
      f.write("\n")
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def read_json(path: str) -> Any:
  with open(path) as f:
    return json.load(f)


def read_jsonl(path: str) -> Iterator[dict]:
  """Yields the complete JSON lines of `path`; a truncated last line is skipped."""
  with open(path) as f:
    for line in f:
      if not line.endswith("\n"):
        return  # A crash mid-write leaves a partial last line.
      line = line.strip()
      if line:
        yield json.loads(line)


def sweep_path(workdir: str) -> str:
  return os.path.join(workdir, SWEEP)


def scaling_laws_path(workdir: str) -> str:
  return os.path.join(workdir, SCALING_LAWS)


def plots_dir(workdir: str) -> str:
  return os.path.join(workdir, PLOTS)


def jax_cache_dir(workdir: str) -> str:
  return os.path.join(workdir, JAX_CACHE)


def archive_dir(workdir: str) -> str:
  return os.path.join(workdir, ARCHIVE)


def runs_dir(workdir: str) -> str:
  return os.path.join(workdir, RUNS)


def run_dir(workdir: str, run_id: str) -> str:
  return os.path.join(workdir, RUNS, run_id)


def result_path(workdir: str, run_id: str) -> str:
  return os.path.join(run_dir(workdir, run_id), RESULT)


def metrics_path(workdir: str, run_id: str) -> str:
  return os.path.join(run_dir(workdir, run_id), METRICS)


def config_path(workdir: str, run_id: str) -> str:
  return os.path.join(run_dir(workdir, run_id), CONFIG)
