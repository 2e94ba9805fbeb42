"""Files of a workdir: their names (defined here only), paths, atomic JSON writes, checked
JSON and JSONL reads. WORKSPACE.md documents every file field by field."""

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
VALIDATION = "validation"  # runs one decade up, outside the sweep's runs/ (validate)
VALIDATION_RESULT = "validation.json"  # whether they fall inside the predictions (validate)
# <workdir>/runs/<run_id>/
CONFIG = "config.json"  # the run's config and the numbers derived from it
METRICS = "metrics.jsonl"  # one line per logged step
RESULT = "result.json"  # the run's outcome, written last
CHECKPOINTS = "checkpoints"  # Orbax checkpoints while the run trains
# <workdir>/plots/
REPORT = "report.md"  # the one-page report


class WorkdirFileError(ValueError):
  """A workdir file (or the workdir itself) that cannot be used: missing, unreadable, not
  valid JSON, or a field of the wrong type. The message names the file and what was expected."""


def check_workdir(path: str, field: str = "config.workdir") -> None:
  """Raises WorkdirFileError when `path` exists but is not a directory."""
  if os.path.exists(path) and not os.path.isdir(path):
    raise WorkdirFileError(f"{field}: {path} is a file; expected a directory (a workdir)")


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
  """The JSON value in `path`; WorkdirFileError when it cannot be read or is not JSON."""
  try:
    with open(path) as f:
      return json.load(f)
  except OSError as e:
    raise WorkdirFileError(f"{path}: cannot read ({e.strerror or e})") from None
  except (UnicodeDecodeError, json.JSONDecodeError) as e:
    raise WorkdirFileError(f"{path}: not valid JSON ({e}); truncated or corrupted?") from None


def read_json_object(path: str) -> dict:
  """`read_json` of a file that must hold a JSON object."""
  obj = read_json(path)
  if not isinstance(obj, dict):
    raise WorkdirFileError(f"{path}: expected a JSON object, found {type(obj).__name__}")
  return obj


_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", int: "an integer"}


def _describe(kinds: tuple) -> str:
  """("a number or null") for (int, float, NoneType), and so on."""
  names = ["a number"] if int in kinds and float in kinds else []
  for kind in kinds:
    if kind is type(None):
      names.append("null")
    elif not (names[:1] == ["a number"] and kind in (int, float)):
      names.append(_TYPE_NAMES.get(kind, kind.__name__))
  return " or ".join(names)


def field(obj: dict, path: str, name: str, kind: type | tuple = (int, float)) -> Any:
  """`obj[a][b]...` for `name` = "a.b...", checked to be of `kind` (numbers are int or float,
  never bool); WorkdirFileError names the file and the field."""
  value: Any = obj
  for part in name.split("."):
    if not isinstance(value, dict) or part not in value:
      raise WorkdirFileError(f"{path}: field {name!r} missing")
    value = value[part]
  if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
    expected = _describe(_kinds(kind))
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    raise WorkdirFileError(f"{path}: field {name!r} is {shown}; expected {expected}")
  return value


def _kinds(kind: type | tuple) -> tuple:
  return kind if isinstance(kind, tuple) else (kind,)


def read_jsonl(path: str) -> Iterator[dict]:
  """Yields the complete JSON lines of `path`, each an object; a truncated last line (a crash
  mid-write) is skipped; any other line that is not a JSON object is a WorkdirFileError."""
  try:
    with open(path) as f:
      for number, line in enumerate(f, 1):
        if not line.endswith("\n"):
          return  # A crash mid-write leaves a partial last line.
        line = line.strip()
        if not line:
          continue
        try:
          obj = json.loads(line)
        except json.JSONDecodeError as e:
          raise WorkdirFileError(f"{path}:{number}: not a JSON line ({e})") from None
        if not isinstance(obj, dict):
          raise WorkdirFileError(f"{path}:{number}: expected a JSON object per line")
        yield obj
  except OSError as e:
    raise WorkdirFileError(f"{path}: cannot read ({e.strerror or e})") from None
  except UnicodeDecodeError as e:
    raise WorkdirFileError(f"{path}: not text ({e})") from None


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


def validation_dir(workdir: str) -> str:
  """`<workdir>/validation/`: laid out like a workdir (its sweep.json and runs/), so analyze,
  which reads `<workdir>/runs/` only, never mixes its runs into the sweep's fit."""
  return os.path.join(workdir, VALIDATION)


def validation_result_path(workdir: str) -> str:
  return os.path.join(workdir, VALIDATION_RESULT)


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
