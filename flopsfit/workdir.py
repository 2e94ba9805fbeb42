"""Files of a workdir: paths, atomic JSON writes, tolerant JSONL reads."""

import json
import os
import tempfile
from collections.abc import Iterator
from typing import Any

FINAL_STATUSES = ("completed", "diverged")  # a run with one of these is not trained again


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


def runs_dir(workdir: str) -> str:
  return os.path.join(workdir, "runs")


def run_dir(workdir: str, run_id: str) -> str:
  return os.path.join(workdir, "runs", run_id)
