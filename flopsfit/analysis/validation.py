"""Did the law hold beyond the sweep? Compares the validation runs (`python -m flopsfit.validate`)
with scaling_laws.json's predictions at their compute, and writes validation.json.

Two checks, each against the law's bootstrap interval at the runs' mean C:
- loss: the eval loss of the run at the predicted optimum lies inside Approach 3's predicted
  loss of the compute-optimal model;
- place in the valley: the minimum of the parabola in ln N through the runs (below, at and
  above the predicted optimum) lies inside the predicted N_opt interval. A valley whose lowest
  loss is at the smallest or largest size has no interior minimum: the optimum lies beyond it.
The verdict is `passed` when every check holds, `failed` when one does not, `inconclusive` when
a check has no interval (no bootstrap) or a run did not complete.
"""

import os
from typing import Any

import numpy as np

from flopsfit import law_lookup
from flopsfit import workdir as workdir_lib
from flopsfit.analysis import results
from flopsfit.analysis.errors import InputError
from flopsfit.analysis.options import AnalysisOptions

VERSION = 1


def validate_workdir(workdir: str, write: bool = True) -> dict[str, Any]:
  """Reads scaling_laws.json and `<workdir>/validation/` (its sweep.json and runs); returns the
  validation.json dict, written to `<workdir>/validation.json` if `write`."""
  laws = _read(workdir_lib.scaling_laws_path(workdir))
  vdir = workdir_lib.validation_dir(workdir)
  plan = _read(workdir_lib.sweep_path(vdir))
  options = laws.get("options") or {}
  conventions = {k: options[k] for k in ("flops_convention", "params_convention") if k in options}
  table = results.load_workdir(vdir, AnalysisOptions(bootstrap_samples=0, **conventions))
  roles = {r["run_id"]: r["role"] for r in workdir_lib.field(plan, vdir, "runs", list)}
  table = table.subset(np.array([r in roles for r in table.run_id], dtype=bool))
  budget = float(workdir_lib.field(plan, vdir, "budget"))
  out = check(laws, table, roles, budget, plan.get("approach"))
  out["factor"] = plan.get("factor")
  if write:
    workdir_lib.write_json_atomic(workdir_lib.validation_result_path(workdir), out)
  return out


def _read(path: str) -> dict[str, Any]:
  try:
    return workdir_lib.read_json_object(path)
  except workdir_lib.WorkdirFileError as e:
    raise InputError(str(e)) from None


def check(
  laws: dict[str, Any],
  table: results.RunTable,
  roles: dict[str, str],
  budget: float,
  approach: str | None = None,
) -> dict[str, Any]:
  """The validation.json dict for the runs of `table` (each run's role: below, centre,
  above) against the laws' predictions. The verdict rests on Approach 3's loss and on the N_opt
  of `approach` (the one the runs were planned from; default: the first fitted of 3, 2, 1);
  the other approaches' N_opt are compared too, for information."""
  level = (laws.get("bootstrap") or {}).get("interval") or 0.95
  missing = sorted(set(roles) - set(table.run_id))
  out: dict[str, Any] = {
    "version": VERSION,
    "budget": budget,
    "interval": level,
    "missing_runs": missing,
    "runs": [],
    "predicted": {},
    "checks": {},
    "problems": [],
  }
  if table.size == 0:
    out["verdict"], out["problems"] = "inconclusive", ["no validation run completed"]
    return out
  C = float(np.mean(table.C))
  out["C"] = C
  for name in ("approach3", "approach2", "approach1"):
    if (laws.get(name) or {}).get("status") == "ok" and name in (laws.get("frontier") or {}):
      quantities = ("N_opt", "D_opt", "loss") if name == "approach3" else ("N_opt", "D_opt")
      out["predicted"][name] = {q: law_lookup.at(laws, name, q, C) for q in quantities}
  out["runs"] = _runs(laws, table, roles)
  out["observed"] = valley(table)
  out["approach"] = approach if approach in out["predicted"] else next(iter(out["predicted"]), None)
  out["checks"] = _checks(out, table, roles)
  out["verdict"], out["problems"] = _verdict(out["checks"], missing)
  return out


def _runs(laws, table: results.RunTable, roles: dict[str, str]) -> list[dict[str, Any]]:
  rows = []
  for i in np.argsort(table.N):
    row = {**table.point(int(i)), "role": roles[str(table.run_id[i])]}
    predicted = law_lookup.approach3_loss(laws, row["N"], row["D"])
    row["predicted_loss"] = predicted
    row["rel_error"] = None if predicted is None else predicted / row["loss"] - 1
    rows.append(row)
  return rows


def valley(table: results.RunTable) -> dict[str, Any]:
  """The observed valley: the mean loss per size, the parabola in ln N through it, and its
  minimum (`N_opt`, `loss_at_opt`) when interior, else `edge` (smallest or largest)."""
  sizes = np.unique(table.N)
  means = np.array([table.loss[table.N == n].mean() for n in sizes])
  best = int(np.argmin(means))
  out = {"N": sizes.tolist(), "mean_loss": means.tolist(), "best_N": float(sizes[best])}
  out.update(N_opt=None, loss_at_opt=None, edge=None)
  if sizes.size >= 3:
    x = np.log(sizes)
    c2, c1, c0 = np.polyfit(x, means, 2)
    vertex = -c1 / (2 * c2) if c2 > 0 else None
    if vertex is not None and x[0] < vertex < x[-1]:
      out["N_opt"] = float(np.exp(vertex))
      out["loss_at_opt"] = float(c0 + c1 * vertex + c2 * vertex**2)
  if out["N_opt"] is None:
    out["edge"] = "smallest" if best == 0 else "largest" if best == sizes.size - 1 else None
  return out


def _inside(observed: float | None, interval: dict[str, Any]) -> dict[str, Any]:
  lo, hi = interval.get("lo"), interval.get("hi")
  inside = None if observed is None or lo is None or hi is None else bool(lo <= observed <= hi)
  return {
    "observed": observed,
    "predicted": interval.get("value"),
    "lo": lo,
    "hi": hi,
    "inside": inside,
  }


def _checks(out: dict[str, Any], table, roles) -> dict[str, Any]:
  checks = {}
  centre = [i for i, r in enumerate(table.run_id) if roles[str(r)] == "centre"]
  a3 = out["predicted"].get("approach3")
  if a3 and centre:
    checks["loss"] = {**_inside(float(np.mean(table.loss[centre])), a3["loss"]), "decides": True}
  for approach, predicted in out["predicted"].items():
    checks[f"N_opt_{approach}"] = {
      **_inside(out["observed"]["N_opt"], predicted["N_opt"]),
      "decides": approach == out["approach"],
    }
  return checks


def _verdict(checks: dict[str, Any], missing: list[str]) -> tuple[str, list[str]]:
  problems = [f"run {r} did not complete" for r in missing]
  checks = {k: c for k, c in checks.items() if c["decides"]}
  for name, c in checks.items():
    what = "loss of the predicted optimum" if name == "loss" else f"{name.split('_', 2)[2]} N_opt"
    if c["inside"] is False:
      problems.append(
        f"{what}: observed {c['observed']:.4g} outside the predicted [{c['lo']:.4g}, {c['hi']:.4g}]"
      )
    elif c["inside"] is None:
      problems.append(
        f"{what}: no interval to compare with"
        if c["observed"] is not None
        else f"{what}: the valley has no interior minimum"
      )
  failed = any(c["inside"] is False for c in checks.values())
  no_minimum = any(c["observed"] is None for k, c in checks.items() if k.startswith("N_opt"))
  if failed or no_minimum:
    return "failed", problems
  return ("inconclusive" if problems else "passed"), problems


def format_validation(out: dict[str, Any]) -> str:
  """A few lines: the budget, each run against Approach 3, each check, and the verdict."""
  lines = [f"validation at C={out.get('C', out['budget']):.4g} (budget {out['budget']:.4g})"]
  for r in out["runs"]:
    pred = "" if r["predicted_loss"] is None else f", Approach 3 {r['predicted_loss']:.4f}"
    lines.append(
      f"  {r['role']:<6} {r['run_id']:<28} N={r['N']:>10,.0f} loss {r['loss']:.4f}{pred}"
    )
  edge = (out.get("observed") or {}).get("edge")
  if edge:
    lines.append(f"  the lowest loss is at the {edge} size: the optimum lies beyond the runs")
  for name, c in out["checks"].items():
    obs = "-" if c["observed"] is None else f"{c['observed']:.4g}"
    band = "-" if c["lo"] is None else f"[{c['lo']:.4g}, {c['hi']:.4g}]"
    note = "" if c["decides"] else " (for information)"
    lines.append(f"  {name}: observed {obs}, predicted {c['predicted']:.4g} {band}{note}")
  lines.append(f"verdict: {out['verdict']}" + "".join(f"\n  - {p}" for p in out["problems"]))
  return "\n".join(lines)


def exists(workdir: str) -> bool:
  return os.path.exists(workdir_lib.validation_result_path(workdir))
