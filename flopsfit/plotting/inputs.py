"""What the figures are drawn from: a scaling_laws.json dict, and a workdir's runs and curves."""

import dataclasses
import glob
import json
import math
import os
from typing import Any

from flopsfit import workdir as workdir_lib
from flopsfit.analysis import conventions


class PlotInputError(Exception):
  """An unusable input file; the message names it, in one line."""


class NothingToPlot(Exception):
  """A figure has no data at all; the message says what is missing."""


@dataclasses.dataclass
class Inputs:
  """Everything a figure may draw. Any part may be missing; `missing` says what and why."""

  analysis: dict[str, Any] | None = None
  # Runs with a final loss: run_id, N, D, C, loss, budget (from the analysis if there is one,
  # else from the workdir's result.json files).
  runs: list[dict[str, Any]] = dataclasses.field(default_factory=list)
  runs_from: str = ""  # "analysis" or workdir.RESULT
  results: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # run_id -> result
  curves: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)  # metrics rows
  workdir: str | None = None
  analysis_path: str | None = None
  config: dict[str, Any] | None = None  # the experiment config, as a plain dict
  missing: list[str] = dataclasses.field(default_factory=list)

  @property
  def budgets(self) -> list[float]:
    """Every IsoFLOP budget: the analysis's groups, else the runs' budget_flops."""
    if self.analysis and self.analysis.get("budgets"):
      return [b["budget"] for b in self.analysis["budgets"]]
    return sorted({r["budget"] for r in self.runs if r.get("budget")})

  @property
  def params_convention(self) -> str:
    options = (self.analysis or {}).get("options") or {}
    return options.get("params_convention") or conventions.DEFAULT_PARAMS

  def section(self, name: str) -> dict[str, Any] | None:
    """An analysis section whose status is ok, else None."""
    sec = (self.analysis or {}).get(name)
    return sec if isinstance(sec, dict) and sec.get("status", "ok") == "ok" else None

  def why_not(self, name: str) -> str:
    """Why the analysis has no `name` section to draw."""
    if self.analysis is None:
      return f"no {workdir_lib.SCALING_LAWS}"
    sec = self.analysis.get(name)
    if not isinstance(sec, dict):
      return f"{name}: not in the analysis"
    return f"{name} not fitted: {sec.get('message', sec.get('status'))}"


def read_analysis(path: str) -> dict[str, Any]:
  """A scaling_laws.json file, checked enough to plot; PlotInputError names the file."""
  if not os.path.exists(path):
    raise PlotInputError(f"{path}: no such file")
  try:
    with open(path) as f:
      analysis = json.load(f)
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise PlotInputError(f"{path}: not valid JSON ({e})") from None
  check_analysis(analysis, path)
  return analysis


def check_analysis(analysis: Any, name: str = "analysis") -> None:
  """Raises PlotInputError unless `analysis` looks like a version-1 scaling_laws.json dict."""
  if not isinstance(analysis, dict):
    raise PlotInputError(f"{name}: not a scaling_laws.json (a JSON object expected)")
  if analysis.get("version") != 1:
    raise PlotInputError(
      f"{name}: not a scaling_laws.json of version 1 (version = {analysis.get('version')!r})"
    )
  for key, kind in (("runs", list), ("budgets", list), ("conventions", dict)):
    if not isinstance(analysis.get(key), kind):
      raise PlotInputError(
        f"{name}: not a scaling_laws.json (field {key!r} missing or not a {kind.__name__})"
      )
  for key, numbers in (("runs", ("N", "D", "C", "loss", "budget")), ("budgets", ("budget",))):
    for i, row in enumerate(analysis[key]):
      if not isinstance(row, dict):
        raise PlotInputError(f"{name}: {key}[{i}] is not an object")
      for field in numbers:
        value = row.get(field)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
          raise PlotInputError(f"{name}: {key}[{i}].{field} is {value!r}; expected a number")
  for section in ("approach1", "approach2", "approach3", "holdout", "frontier"):
    if analysis.get(section) is not None and not isinstance(analysis[section], dict):
      raise PlotInputError(f"{name}: field {section!r} is not an object")


def from_analysis(analysis: dict[str, Any], path: str | None = None) -> Inputs:
  """Inputs of an analysis alone (e.g. of external results): no training curves."""
  check_analysis(analysis, path or "analysis")
  inputs = Inputs(analysis=analysis, analysis_path=path)
  inputs.runs, inputs.runs_from = _runs_of_analysis(analysis), "analysis"
  return inputs


def load_workdir(
  workdir: str, analysis: dict[str, Any] | None = None, config: dict[str, Any] | None = None
) -> Inputs:
  """A workdir's scaling_laws.json (unless `analysis` is given), result.json files and curves.

  A missing file is noted in `missing`; an unreadable scaling_laws.json is a PlotInputError.
  """
  inputs = Inputs(workdir=workdir, config=config)
  path = workdir_lib.scaling_laws_path(workdir)
  if analysis is None and os.path.exists(path):
    analysis = read_analysis(path)
    inputs.analysis_path = path
  elif analysis is not None:
    check_analysis(analysis, path)
    inputs.analysis_path = path
  inputs.analysis = analysis
  if analysis is None:
    inputs.missing.append(f"{path}: not found, so no fits (run `python -m flopsfit.analyze`)")

  run_dirs = sorted(glob.glob(os.path.join(workdir_lib.runs_dir(workdir), "*", "")))
  if not run_dirs:
    inputs.missing.append(f"{workdir_lib.runs_dir(workdir)}: no runs")
  _read_runs(inputs, run_dirs)
  _note_stale_analysis(inputs, run_dirs)
  if analysis is not None:
    inputs.runs, inputs.runs_from = _runs_of_analysis(analysis), "analysis"
  else:
    inputs.runs, inputs.runs_from = _runs_of_results(inputs.results), workdir_lib.RESULT
  return inputs


def _read_runs(inputs: Inputs, run_dirs: list[str]) -> None:
  """Each run's result.json and metrics.jsonl into `inputs`; what is missing into `missing`."""
  unfinished = []
  for run_dir in run_dirs:
    run_id = os.path.basename(os.path.normpath(run_dir))
    result_path = os.path.join(run_dir, workdir_lib.RESULT)
    metrics_path = os.path.join(run_dir, workdir_lib.METRICS)
    if os.path.exists(result_path):
      inputs.results[run_id] = _read_result(result_path)
    else:
      unfinished.append(run_id)
    if os.path.exists(metrics_path):
      rows = _read_metrics(metrics_path)
      if rows:
        inputs.curves[run_id] = rows
  if unfinished:
    inputs.missing.append(
      f"{len(unfinished)} run(s) without result.json (unfinished): "
      + ", ".join(unfinished[:5])
      + (" ..." if len(unfinished) > 5 else "")
    )
  if run_dirs and not inputs.curves:
    inputs.missing.append("no run has a metrics.jsonl with logged steps")


def _note_stale_analysis(inputs: Inputs, run_dirs: list[str]) -> None:
  """Notes result.json files written after the analysis: its fits leave those runs out."""
  if not (inputs.analysis_path and os.path.exists(inputs.analysis_path) and run_dirs):
    return
  written = os.path.getmtime(inputs.analysis_path)
  newer = [
    d
    for d in run_dirs
    if os.path.exists(os.path.join(d, workdir_lib.RESULT))
    and os.path.getmtime(os.path.join(d, workdir_lib.RESULT)) > written
  ]
  if newer:
    inputs.missing.append(
      f"{inputs.analysis_path} is older than {len(newer)} result.json "
      "file(s): the fits leave those runs out (re-run analyze)"
    )


_NUMBER_OR_NULL = (int, float, type(None))
_RESULT_NUMBERS = ("final_eval_loss", "tokens", "budget_flops")
_METRICS_NUMBERS = ("step", "tokens", "flops", "loss", "elapsed_s")


def _read_result(path: str) -> dict[str, Any]:
  """A result.json with the fields the figures use checked (WorkdirFileError otherwise)."""
  result = workdir_lib.read_json_object(path)
  workdir_lib.field(result, path, "status", str)
  for name in _RESULT_NUMBERS:
    if name in result:
      workdir_lib.field(result, path, name, _NUMBER_OR_NULL)
  for name in ("params", "flops"):
    for key in workdir_lib.field(result, path, name, dict) if name in result else ():
      workdir_lib.field(result, path, f"{name}.{key}", _NUMBER_OR_NULL)
  return result


def _read_metrics(path: str) -> list[dict[str, Any]]:
  """The rows of a metrics.jsonl, their numeric fields checked (WorkdirFileError otherwise)."""
  rows = list(workdir_lib.read_jsonl(path))
  for i, row in enumerate(rows):
    for name in _METRICS_NUMBERS:
      if name in row:
        workdir_lib.field(row, f"{path}: line {i + 1}", name, _NUMBER_OR_NULL)
  return rows


def _runs_of_analysis(analysis: dict[str, Any]) -> list[dict[str, Any]]:
  return [r for r in analysis.get("runs") or [] if _positive(r.get("N"), r.get("loss"))]


def _runs_of_results(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
  """The runs the analysis would fit, read as it reads them (in its default conventions)."""
  runs = []
  for run_id, result in sorted(results.items()):
    row = conventions.run_of_result(result)
    if isinstance(row, dict) and _positive(row["N"], row["loss"]):
      runs.append(dict(row, run_id=run_id))
  return runs


def _positive(*values: Any) -> bool:
  return all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in values)
