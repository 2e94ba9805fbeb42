"""The whole analysis: runs in, the scaling_laws.json dict out (fields in WORKSPACE.md)."""

from typing import Any

import numpy as np

from flopsfit import workdir as workdir_lib
from flopsfit.analysis import (
  approach1,
  approach2,
  approach3,
  bootstrap,
  frontier,
  holdout,
  noise,
  power_law,
  predictions,
  results,
)
from flopsfit.analysis.errors import FitError
from flopsfit.analysis.options import AnalysisOptions

VERSION = 1
_FLOP_MODEL_WARN = 0.05  # Warn when the FLOP model misses a run's C by more than this.


def write_json(path: str, out: dict[str, Any]) -> None:
  workdir_lib.write_json_atomic(path, out)


def analyze_workdir(
  workdir: str, options: AnalysisOptions = AnalysisOptions(), write: bool = True
) -> dict[str, Any]:
  """Analyzes `<workdir>/runs/*/result.json`; writes `<workdir>/scaling_laws.json` if `write`."""
  out = analyze_table(results.load_workdir(workdir, options), options)
  if write:
    write_json(workdir_lib.scaling_laws_path(workdir), out)
  return out


def analyze_csv(
  path: str,
  options: AnalysisOptions = AnalysisOptions(),
  out_path: str | None = None,
  **columns: str | None,
) -> dict[str, Any]:
  """Analyzes a CSV of runs (`columns`: see `results.load_csv`); writes `out_path` if given."""
  out = analyze_table(results.load_csv(path, options, **columns), options)
  if out_path:
    write_json(out_path, out)
  return out


def analyze_table(
  table: results.RunTable, options: AnalysisOptions = AnalysisOptions()
) -> dict[str, Any]:
  """Every approach, bootstrap, predictions and held-out check on `table`, as one dict."""
  warnings: list[str] = []
  if table.excluded:
    listed = "; ".join(f"{e['run_id']} ({e['reason']})" for e in table.excluded)
    warnings.append(f"{len(table.excluded)} run(s) excluded: {listed}")
  out = _inputs_section(table, options)
  if table.size == 0:
    return _jsonable(_nothing_fitted(out, warnings))
  flops = _flop_model(table, warnings)
  out["flop_model"] = flops.to_json()
  fits = _fit_approaches(table, options.huber_delta, out, warnings)
  boot, out["bootstrap"] = _bootstrap(table, options, fits, warnings)

  level = options.interval
  c_grid = predictions.grid_of_C(table, options.frontier_points)
  budgets = np.asarray(
    options.predict if options.predict else predictions.default_budgets(table), float
  )
  grid_curves = {n: predictions.curves(n, f, boot.get(n), c_grid, flops) for n, f in fits.items()}
  budget_curves = {
    n: predictions.curves(n, f, boot.get(n), budgets, flops) for n, f in fits.items()
  }
  out.update(_approach_sections(table, fits, boot, grid_curves, c_grid, options, flops, warnings))
  if boot:
    out["bootstrap"]["failed"] = {
      name: int(np.sum(~np.isfinite(b["theta"][:, 3] if name == "approach3" else b["N_exponent"])))
      for name, b in boot.items()
    }
  out["frontier"] = predictions.frontier_bands(c_grid, grid_curves, level)
  out["predictions"] = predictions.table_rows(budgets, budget_curves, table, level)
  out["holdout"] = _holdout(table, fits, options.huber_delta, warnings)
  out["noise"] = _noise(table, warnings)
  out["warnings"] = warnings
  return _jsonable(out)


def _inputs_section(table: results.RunTable, options: AnalysisOptions) -> dict[str, Any]:
  """What was fitted: source, conventions, options, runs, excluded runs, budgets."""
  return {
    "version": VERSION,
    "source": table.source,
    "conventions": dict(table.conventions),
    "options": options.to_json(),
    "runs": [
      {"run_id": str(r), "N": n, "D": d, "C": c, "loss": l, "budget": float(b)}
      for r, n, d, c, l, b in zip(
        table.run_id, table.N, table.D, table.C, table.loss, table.budgets[table.group]
      )
    ],
    "excluded_runs": table.excluded,
    "budgets": [
      {"budget": float(b), "C_mean": float(c), "num_runs": int(k)}
      for b, c, k in zip(
        table.budgets, table.group_mean_C(), np.bincount(table.group, minlength=table.num_groups)
      )
    ],
  }


def _nothing_fitted(out: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
  message = "no usable runs"
  for name in ("approach1", "approach2", "approach3"):
    out[name] = {"status": "failed", "message": message}
  out.update(
    flop_model=None,
    bootstrap=None,
    frontier=None,
    predictions=[],
    holdout={"status": "failed", "message": message},
    noise=None,
    warnings=warnings + [message],
  )
  return out


def _flop_model(table: results.RunTable, warnings: list[str]) -> frontier.FlopModel:
  flops = frontier.FlopModel.fit(table)
  if not flops.exact and flops.max_rel_error > _FLOP_MODEL_WARN:
    warnings.append(
      f"the FLOP model {flops.formula()} misses some run's C by "
      f"{flops.max_rel_error:.1%}; the frontier uses it"
    )
  return flops


def _fit_approaches(
  table: results.RunTable, delta: float, out: dict[str, Any], warnings: list[str]
) -> dict[str, Any]:
  """The full-data fit of each approach that can be fitted; a failed one goes into `out`."""
  fits: dict[str, Any] = {}
  for name, fit_one in (
    ("approach1", approach1.fit),
    ("approach2", approach2.fit),
    ("approach3", lambda t: _fit_approach3(t, delta)),
  ):
    try:
      fits[name] = fit_one(table)
    except FitError as e:
      out[name] = {"status": "failed", "message": str(e), **e.details}
      warnings.append(f"{name}: {e}")
  return fits


def _bootstrap(
  table: results.RunTable, options: AnalysisOptions, fits: dict[str, Any], warnings: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
  """(per approach, its parameters on every resample; the output's `bootstrap` section)."""
  boot: dict[str, Any] = {}
  by_budget = (
    table.source["budgets_given"]
    if options.bootstrap_by_budget is None
    else options.bootstrap_by_budget
  )
  trunks, replicas = table.has_shared_lineages(), noise.has_replicas(table)
  if trunks:
    if options.bootstrap_by_budget:
      warnings.append(
        "bootstrap_by_budget=True ignored: a trunk's branches span budgets, so the bootstrap "
        "draws whole trunks with their branches over all budgets"
      )
    by_budget = False
  if options.bootstrap_samples >= 2 and fits:
    samples, seed = options.bootstrap_samples, options.seed
    if trunks:
      counts = bootstrap.lineage_counts(table, samples, seed)
    elif replicas:
      counts = noise.cluster_counts(table, samples, seed, by_budget)
    else:
      counts = bootstrap.counts(table, samples, seed, by_budget)
    boot = bootstrap.refit(table, counts, fits, options.huber_delta)
  section = {
    "samples": options.bootstrap_samples,
    "unit": "trunk with its branches" if trunks else "shape with its seeds" if replicas else "run",
    "by_budget": by_budget,
    "seed": options.seed,
    "interval": options.interval,
  }
  return boot, section


def _approach_sections(
  table, fits, boot, grid_curves, c_grid, options, flops, warnings: list[str]
) -> dict[str, Any]:
  """The output section of every fitted approach, with its intervals."""
  out = {}
  for name in ("approach1", "approach2"):
    if name in fits:
      out[name] = _power_law_section(fits[name], boot.get(name), options.interval)
  if "approach2" in fits:
    left_out = [b for b in fits["approach2"]["budgets"] if not b["included"]]
    if left_out:
      warnings.append(_left_out_warning(left_out, len(fits["approach2"]["budgets"])))
  if "approach3" in fits:
    out["approach3"] = _approach3_section(
      table,
      fits["approach3"],
      boot.get("approach3"),
      grid_curves["approach3"],
      c_grid,
      options,
      flops,
      warnings,
    )
  return out


def _holdout(table, fits, delta: float, warnings: list[str]) -> dict[str, Any]:
  try:
    return {"status": "ok", **holdout.check(table, fits.get("approach2"), delta)}
  except FitError as e:
    warnings.append(f"holdout: {e}")
    return {"status": "failed", "message": str(e)}


def _noise(table: results.RunTable, warnings: list[str]) -> dict[str, Any] | None:
  """Run-to-run noise from replicas (None without); warns for valleys not deeper than it."""
  section = noise.estimate(table)
  for v in (section or {}).get("valleys", []):
    if v["deeper_than_noise"] is False:
      warnings.append(
        f"noise: the valley of budget {v['budget']:.3g} is not deeper than the run-to-run noise "
        f"(depth {v['depth']:.3g}, standard error {v['standard_error']:.3g})"
      )
  return section


def _left_out_warning(left_out: list[dict[str, Any]], total: int) -> str:
  """Names each left-out budget and why; past 10 budgets, counts them by reason."""
  head = f"approach2: {len(left_out)} of {total} budget(s) left out of the power-law fit"
  if len(left_out) <= 10:
    return (
      head + ": " + "; ".join(f"{b['budget']:.3g} ({', '.join(b['reasons'])})" for b in left_out)
    )
  by_reason: dict[str, int] = {}
  for b in left_out:
    for reason in sorted({r.split(": ", 1)[1] for r in b["reasons"]}):
      by_reason[reason] = by_reason.get(reason, 0) + 1
  return (
    head
    + " (budgets per reason: "
    + ", ".join(f"{r}: {k}" for r, k in by_reason.items())
    + "); see approach2.budgets"
  )


def _fit_approach3(table: results.RunTable, delta: float) -> approach3.GridFit:
  approach3.check_enough(table.N, table.D)
  return approach3.fit_grid(approach3.Data.from_arrays(table.N, table.D, table.loss), delta)


def _power_law_section(
  fit: dict[str, Any], boot: dict[str, np.ndarray] | None, level: float
) -> dict[str, Any]:
  """Approach 1 or 2 output: its own fields plus N_opt, D_opt laws with intervals."""
  section = {"status": "ok", **{k: v for k, v in fit.items() if k not in ("N_opt", "D_opt")}}
  for name in ("N", "D"):
    law = fit[f"{name}_opt"]
    section[f"{name}_opt"] = {
      "coefficient": bootstrap.interval(
        None if boot is None else np.exp(boot[f"{name}_log_k"]), law["coefficient"], level
      ),
      "exponent": bootstrap.interval(
        None if boot is None else boot[f"{name}_exponent"], law["exponent"], level
      ),
    }
  return section


def _approach3_section(
  table, fit: approach3.GridFit, boot, curves, c_grid, options, flops, warnings: list[str]
) -> dict[str, Any]:
  outside = _approach3_warnings(fit, warnings)
  return {
    "status": "ok",
    "params": _approach3_params(fit, boot, options.interval),
    "theta": dict(zip(approach3.PARAM_NAMES, (float(v) for v in fit.theta))),
    "objective": fit.objective,
    "objective_form": "sum over runs of Huber(delta) of log residuals",
    "huber_delta": options.huber_delta,
    "gradient_max": fit.grad_max,
    "grid": {
      "starts": int(fit.endpoints_objective.size),
      "axes": {
        n: [float(v) for v in ax] for n, ax in zip(approach3.PARAM_NAMES, approach3.GRID_AXES)
      },
    },
    "winning_start": dict(zip(approach3.PARAM_NAMES, (float(v) for v in fit.winning_start))),
    "winning_start_on_boundary": fit.winning_start_on_boundary,
    "starts_reaching_optimum": fit.starts_reaching_optimum,
    "params_outside_grid": outside,
    "frontier_method": "closed_form" if flops.exact else "numerical",
    **_approach3_laws(curves, c_grid, options.interval),
    "residuals": _residuals(table, fit),
  }


def _approach3_params(fit: approach3.GridFit, boot, level: float) -> dict[str, Any]:
  """Estimates of E, A, B, alpha, beta, a, b: the fit and the bootstrap interval."""
  samples = None
  if boot is not None:
    theta = boot["theta"]
    samples = {
      "E": np.exp(theta[:, 2]),
      "A": np.exp(theta[:, 0]),
      "B": np.exp(theta[:, 1]),
      "alpha": theta[:, 3],
      "beta": theta[:, 4],
      "a": theta[:, 4] / (theta[:, 3] + theta[:, 4]),
      "b": theta[:, 3] / (theta[:, 3] + theta[:, 4]),
    }
  return {
    k: bootstrap.interval(None if samples is None else samples[k], v, level)
    for k, v in approach3.named(fit.theta).items()
  }


def _approach3_laws(curves, c_grid: np.ndarray, level: float) -> dict[str, Any]:
  """N_opt and D_opt power laws summarising the frontier over `c_grid`, with intervals."""
  laws = {}
  for name in ("N_opt", "D_opt"):
    value, band = curves[name]
    log_k, exponent = power_law.fit_batched(
      np.log(c_grid)[None], np.log(value)[None], np.ones((1, c_grid.size))
    )
    boot_log_k = boot_exp = None
    if band is not None:
      boot_log_k, boot_exp = power_law.fit_batched(
        np.broadcast_to(np.log(c_grid), band.shape), np.log(band), np.ones(band.shape)
      )
    laws[name] = {
      "coefficient": bootstrap.interval(
        None if boot_log_k is None else np.exp(boot_log_k), np.exp(log_k[0]), level
      ),
      "exponent": bootstrap.interval(boot_exp, exponent[0], level),
    }
  return laws


def _approach3_warnings(fit: approach3.GridFit, warnings: list[str]) -> list[str]:
  """Warns about a start-grid boundary optimum; returns the parameters outside the grid."""
  lo = np.array([ax[0] for ax in approach3.GRID_AXES])
  hi = np.array([ax[-1] for ax in approach3.GRID_AXES])
  outside = [n for n, v, l, h in zip(approach3.PARAM_NAMES, fit.theta, lo, hi) if not l <= v <= h]
  if fit.winning_start_on_boundary:
    warnings.append(
      "approach3: the optimum was reached only from starts on the boundary of "
      "the start grid; the grid may not cover the optimum's basin"
    )
  if outside:
    warnings.append(f"approach3: fitted {', '.join(outside)} outside the start grid's range")
  return outside


def _residuals(table: results.RunTable, fit: approach3.GridFit) -> list[dict[str, Any]]:
  data = approach3.Data.from_arrays(table.N, table.D, table.loss)
  predicted = approach3.predict_loss(fit.theta, table.N, table.D)
  log_residual = np.log(predicted) - data.log_loss
  return [
    {
      "run_id": str(r),
      "N": float(n),
      "D": float(d),
      "loss": float(l),
      "predicted": float(p),
      "log_residual": float(e),
    }
    for r, n, d, l, p, e in zip(table.run_id, table.N, table.D, table.loss, predicted, log_residual)
  ]


def _jsonable(obj: Any) -> Any:
  """Plain JSON types; NaN and infinities become null."""
  if isinstance(obj, dict):
    return {str(k): _jsonable(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [_jsonable(v) for v in obj]
  if isinstance(obj, np.ndarray):
    return [_jsonable(v) for v in obj.tolist()]
  if isinstance(obj, (bool, np.bool_)):
    return bool(obj)
  if isinstance(obj, (int, np.integer)):
    return int(obj)
  if isinstance(obj, (float, np.floating)):
    return float(obj) if np.isfinite(obj) else None
  return obj
