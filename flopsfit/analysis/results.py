"""Runs to fit, as one table: loaded from a workdir's result.json files or from a CSV."""

import csv
import dataclasses
import math
import os
from typing import Any

import numpy as np

from flopsfit import workdir as workdir_lib
from flopsfit.analysis import conventions as conventions_lib
from flopsfit.analysis.errors import InputError
from flopsfit.analysis.options import AnalysisOptions

# Relative tolerance within which C = 6·N·D counts as exact (closed-form frontier).
_SIX_ND_RTOL = 1e-6


@dataclasses.dataclass(frozen=True)
class RunTable:
  """Usable runs (one row each), grouped into IsoFLOP budgets, plus what was left out."""

  run_id: np.ndarray  # [R] str
  N: np.ndarray  # [R] parameters, in the chosen convention
  D: np.ndarray  # [R] data trained on, in the dataset's unit (tokens, images, ...)
  C: np.ndarray  # [R] compute spent, in the chosen convention
  loss: np.ndarray  # [R] final loss
  group: np.ndarray  # [R] int index into `budgets`
  budgets: np.ndarray  # [G] nominal budget of each group, ascending
  excluded: list[dict[str, str]]  # {"run_id", "reason"} for every run left out
  conventions: dict[str, str]  # "flops", "params", "data": what C, N, D are
  source: dict[str, Any]  # "kind" (workdir | csv), "path", counts
  # [R] str: the training run each point comes from (a cooldown branch: its trunk), or None
  # when every point is a run of its own
  lineage: np.ndarray | None = None

  @property
  def size(self) -> int:
    return int(self.loss.size)

  @property
  def num_groups(self) -> int:
    return int(self.budgets.size)

  def point(self, i: int) -> dict[str, Any]:
    """Run `i` as scaling_laws.json lists it: run_id, N, D, C, loss."""
    return {
      "run_id": str(self.run_id[i]),
      "N": float(self.N[i]),
      "D": float(self.D[i]),
      "C": float(self.C[i]),
      "loss": float(self.loss[i]),
    }

  def group_mean_C(self) -> np.ndarray:
    """[G] mean C of each group's runs: the C that per-budget optima are regressed on."""
    sums = np.bincount(self.group, weights=self.C, minlength=self.num_groups)
    counts = np.bincount(self.group, minlength=self.num_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
      return sums / counts

  def is_six_nd(self) -> bool:
    """True when every run has C = 6·N·D exactly, so the frontier has a closed form."""
    return bool(self.size) and bool(
      np.all(np.abs(self.C / (6.0 * self.N * self.D) - 1.0) <= _SIX_ND_RTOL)
    )

  def lineages(self) -> np.ndarray:
    """[R] int index of each point's training run: points branched from one trunk share one."""
    keys = self.run_id if self.lineage is None else self.lineage
    return np.unique(np.asarray(keys, dtype=str), return_inverse=True)[1].reshape(-1)

  def has_shared_lineages(self) -> bool:
    """True when some training run gave several points (the cooldown design)."""
    return self.size > 0 and np.bincount(self.lineages()).max() > 1

  def subset(self, mask: np.ndarray) -> "RunTable":
    """The runs where `mask`; groups renumbered, empty groups dropped."""
    kept_groups, group = np.unique(self.group[mask], return_inverse=True)
    return dataclasses.replace(
      self,
      run_id=self.run_id[mask],
      N=self.N[mask],
      D=self.D[mask],
      C=self.C[mask],
      loss=self.loss[mask],
      group=group.astype(np.int64),
      budgets=self.budgets[kept_groups],
      lineage=None if self.lineage is None else self.lineage[mask],
    )


def _build(
  rows: list[dict[str, Any]],
  budgets_given: bool,
  options: AnalysisOptions,
  excluded: list[dict[str, str]],
  conventions: dict[str, str],
  source: dict[str, Any],
) -> RunTable:
  """Applies the max_loss filter, groups rows into budgets, and returns the table."""
  kept = []
  for row in rows:
    if options.max_loss is not None and row["loss"] >= options.max_loss:
      excluded.append(
        {
          "run_id": row["run_id"],
          "reason": f"loss {row['loss']:.6g} >= max_loss {options.max_loss:g}",
        }
      )
    else:
      kept.append(row)
  rows = kept
  if budgets_given:
    keys = np.array([r["budget"] for r in rows], dtype=np.float64)
  else:
    keys = _cluster_budgets(np.array([r["C"] for r in rows], dtype=np.float64), options.budget_rtol)
  budgets, group = np.unique(keys, return_inverse=True)
  source = dict(
    source,
    runs_used=len(rows),
    runs_excluded=len(excluded),
    budgets_given=budgets_given,
    budgets_from=source.pop("budgets_from")
    if budgets_given
    else f"C clustered within a factor 1 + {options.budget_rtol:g}",
  )
  return RunTable(
    run_id=np.array([r["run_id"] for r in rows], dtype=object),
    N=np.array([r["N"] for r in rows], dtype=np.float64),
    D=np.array([r["D"] for r in rows], dtype=np.float64),
    C=np.array([r["C"] for r in rows], dtype=np.float64),
    loss=np.array([r["loss"] for r in rows], dtype=np.float64),
    group=group.astype(np.int64).reshape(-1),
    budgets=budgets,
    excluded=excluded,
    conventions=conventions,
    source=source,
    lineage=np.array([r.get("lineage") or r["run_id"] for r in rows], dtype=object),
  )


def _cluster_budgets(C: np.ndarray, rtol: float) -> np.ndarray:
  """Budget of each run when none is given: runs sorted by C join a group while their C is
  within a factor (1 + rtol) of the group's smallest C; a group's budget is its mean C."""
  budgets = np.empty_like(C)
  order = np.argsort(C)
  start = 0
  while start < order.size:
    stop = start
    while stop < order.size and C[order[stop]] <= C[order[start]] * (1.0 + rtol):
      stop += 1
    members = order[start:stop]
    budgets[members] = C[members].mean()
    start = stop
  return budgets


def load_workdir(workdir: str, options: AnalysisOptions) -> RunTable:
  """Reads every `runs/*/result.json` of `workdir`; unusable runs are listed in `excluded`."""
  runs_path = workdir_lib.runs_dir(workdir)
  if not os.path.isdir(runs_path):
    raise InputError(
      f"{runs_path}: no runs directory (is config.workdir right, and has train run?)"
    )
  run_ids = sorted(d for d in os.listdir(runs_path) if os.path.isdir(os.path.join(runs_path, d)))
  if not run_ids:
    raise InputError(f"{runs_path}: no runs to analyze")
  rows, excluded, units = [], [], set()
  for run_id in run_ids:
    path = workdir_lib.result_path(workdir, run_id)
    if not os.path.exists(path):
      excluded.append({"run_id": run_id, "reason": "incomplete: no result.json"})
      continue
    result = workdir_lib.read_json_object(path)
    row = _row_from_result(result, options, path)
    if isinstance(row, str):
      excluded.append({"run_id": run_id, "reason": row})
      continue
    row["run_id"] = str(row["run_id"] or run_id)
    rows.append(row)
    units.add(str(result.get("unit") or conventions_lib.DEFAULT_DATA))
  conventions = {
    "flops": options.flops_convention,
    "params": options.params_convention,
    "data": "/".join(sorted(units)) or conventions_lib.DEFAULT_DATA,  # result.json "unit"
  }
  source = {
    "kind": "workdir",
    "path": os.path.abspath(workdir),
    "runs_found": len(run_ids),
    "budgets_from": "result.json budget_flops",
  }
  return _build(rows, True, options, excluded, conventions, source)


_RESULT_FIELDS = ("final_eval_loss", "params.{params}", "flops.{flops}", "tokens", "budget_flops")


def _row_from_result(result: dict, options: AnalysisOptions, path: str) -> dict[str, Any] | str:
  """One usable row of a result.json (read by `conventions.run_of_result`), or the reason it is
  not usable (a run that did not complete, a non-finite or non-positive value). A field missing
  or of the wrong type in a completed run is a WorkdirFileError naming the file and field."""
  status = workdir_lib.field(result, path, "status", str)
  if status == "completed":
    for name in _RESULT_FIELDS:
      name = name.format(params=options.params_convention, flops=options.flops_convention)
      workdir_lib.field(result, path, name, (int, float, type(None)))
  return conventions_lib.run_of_result(result, options.flops_convention, options.params_convention)


def _unusable(values: dict[str, float | None]) -> str | None:
  """Why a CSV row cannot be fitted (a value missing, non-finite or non-positive), else None."""
  reasons = []
  for kind, test in (
    ("missing", lambda v: v is None),
    ("non-finite", lambda v: v is not None and not math.isfinite(v)),
    ("non-positive", lambda v: v is not None and math.isfinite(v) and v <= 0),
  ):
    bad = [k for k, v in values.items() if test(v)]
    if bad:
      reasons.append(f"{kind} {', '.join(bad)}")
  return "; ".join(reasons) or None


def load_csv(
  path: str,
  options: AnalysisOptions,
  *,
  n_column: str = "N",
  loss_column: str = "loss",
  d_column: str | None = None,
  c_column: str | None = None,
  budget_column: str | None = None,
  run_id_column: str | None = None,
) -> RunTable:
  """Reads a table of runs. D or C may be absent (then C = 6·N·D fills it in); without a
  budget column, runs are grouped into budgets by C (see `_cluster_budgets`)."""
  if not os.path.isfile(path):
    what = "not a file" if os.path.exists(path) else "no such file"
    raise InputError(f"{path}: {what} (--results)")
  try:
    with open(path, newline="") as f:
      reader = csv.DictReader(f)
      header = reader.fieldnames or []
      records = list(reader)
  except OSError as e:
    raise InputError(f"{path}: cannot read ({e.strerror or e}) (--results)") from None
  except (UnicodeDecodeError, csv.Error) as e:
    raise InputError(f"{path}: not a CSV table ({e}) (--results)") from None
  d_column = d_column if d_column is not None else ("D" if "D" in header else None)
  c_column = c_column if c_column is not None else ("C" if "C" in header else None)
  columns = {
    "--n_column": n_column,
    "--loss_column": loss_column,
    "--d_column": d_column,
    "--c_column": c_column,
    "--budget_column": budget_column,
    "--run_id_column": run_id_column,
  }
  _check_columns(path, header, columns)
  rows, excluded = [], []
  for i, record in enumerate(records):
    row = _csv_row(path, record, i + 2, columns)  # The header is line 1.
    reason = _unusable({k: v for k, v in row.items() if k != "run_id"})
    if reason:
      excluded.append({"run_id": row["run_id"], "reason": reason})
    else:
      rows.append(row)
  if not rows and not excluded:
    raise InputError(f"{path}: no rows")
  conventions = {
    "flops": f"csv column {c_column!r}"
    if c_column
    else f"6*N*D from csv columns {n_column!r} and {d_column!r}",
    "params": f"csv column {n_column!r}",
    "data": f"csv column {d_column!r}" if d_column else f"C/(6*N) from csv column {c_column!r}",
  }
  source = {
    "kind": "csv",
    "path": os.path.abspath(path),
    "runs_found": len(records),
    "budgets_from": f"csv column {budget_column!r}",
  }
  return _build(rows, budget_column is not None, options, excluded, conventions, source)


def _check_columns(path: str, header: list[str], columns: dict[str, str | None]) -> None:
  """InputError naming the flag for a column not in the header, or for neither D nor C."""
  for flag, column in columns.items():
    if column is not None and column not in header:
      raise InputError(f"{path}: no column {column!r} ({flag}); columns are {header}")
  if columns["--d_column"] is None and columns["--c_column"] is None:
    raise InputError(
      f"{path}: needs a D or a C column (--d_column or --c_column); columns are {header}"
    )


def _csv_row(
  path: str, record: dict[str, str], line: int, columns: dict[str, str | None]
) -> dict[str, Any]:
  """run_id, N, D, C, loss, budget of one CSV record (None where missing; C = 6·N·D or
  D = C/(6·N) fills in)."""

  def number(flag: str) -> float | None:
    column = columns[flag]
    if column is None:
      return None
    text = (record.get(column) or "").strip()
    if text == "":
      return None
    try:
      return float(text)
    except ValueError:
      raise InputError(f"{path}:{line}: column {column!r} has {text!r}, not a number") from None

  run_id_column = columns["--run_id_column"]
  N, loss, D, C = (number(f) for f in ("--n_column", "--loss_column", "--d_column", "--c_column"))
  if not columns["--d_column"] and None not in (C, N) and N > 0:
    D = C / (6.0 * N)
  if not columns["--c_column"] and None not in (N, D):
    C = 6.0 * N * D
  budget = number("--budget_column") if columns["--budget_column"] else C
  return {
    "N": N,
    "D": D,
    "C": C,
    "loss": loss,
    "budget": budget,
    "run_id": record[run_id_column].strip() if run_id_column else f"row{line}",
  }
