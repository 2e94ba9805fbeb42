"""The printed summary of a scaling_laws.json dict."""

from typing import Any

from flopsfit.analysis.options import AnalysisOptions


def _num(v: float | None, fmt: str = ".4g") -> str:
  return "-" if v is None else format(v, fmt)


def _est(e: dict[str, Any] | None, fmt: str = ".4g") -> str:
  """ "value [lo, hi]" of an estimate."""
  if not e:
    return "-"
  if e.get("lo") is None:
    return _num(e["value"], fmt)
  return f"{_num(e['value'], fmt)} [{_num(e['lo'], fmt)}, {_num(e['hi'], fmt)}]"


def interval_label(out: dict[str, Any]) -> str:
  """The bootstrap interval of a scaling_laws.json dict as a percentage, e.g. '90%'."""
  level = (out.get("bootstrap") or {}).get("interval")
  if level is None:
    level = (out.get("options") or {}).get("interval", AnalysisOptions.interval)
  return f"{100 * level:.4g}%"


def summary(out: dict[str, Any]) -> str:
  """Human-readable lines: conventions, each approach, predictions, held-out, warnings."""
  conv = out["conventions"]
  boot = out.get("bootstrap") or {}
  lines = [
    f"runs: {len(out['runs'])} used, {len(out['excluded_runs'])} excluded; "
    f"{len(out['budgets'])} budgets",
    f"C: {conv['flops']}; N: {conv['params']}; D: {conv['data']}",
    f"intervals: {interval_label(out)} bootstrap over {boot.get('samples', 0)} resamples",
  ]
  for name, title in (
    ("approach1", "Approach 1 (loss envelope)"),
    ("approach2", "Approach 2 (IsoFLOP parabolas)"),
  ):
    sec = out[name]
    if sec["status"] != "ok":
      lines.append(f"{title}: not fitted: {sec['message']}")
      continue
    extra = ""
    if name == "approach2":
      used = sum(b["included"] for b in sec["budgets"])
      extra = f"  ({used} of {len(sec['budgets'])} budgets used)"
    lines.append(
      f"{title}: N_opt = k*C^a, a = {_est(sec['N_opt']['exponent'], '.3f')}; "
      f"D_opt = k'*C^b, b = {_est(sec['D_opt']['exponent'], '.3f')}{extra}"
    )
  lines += _approach3_lines(out["approach3"])
  if not any(k.startswith("approach") for row in out["predictions"] for k in row):
    lines.append("predictions: none (no approach could be fitted)")
  else:
    lines.append("predictions (value [interval]; * = extrapolation):")
    lines += _prediction_lines(out["predictions"])
  lines += _holdout_lines(out["holdout"])
  lines += noise_lines(out.get("noise"))
  for w in out["warnings"]:
    lines.append(f"WARNING: {w}")
  return "\n".join(lines)


def _prediction_lines(rows: list[dict[str, Any]]) -> list[str]:
  lines = [f"  {'C':>10} {'approach':>9} {'N_opt':>30} {'D_opt':>30} {'D/N':>24} {'loss':>24}"]
  for row in rows:
    for name in ("approach3", "approach2", "approach1"):
      if name not in row:
        continue
      r = row[name]
      mark = "*" if row["extrapolation"] else " "
      lines.append(
        f"  {row['C']:>9.3g}{mark} {name[-1]:>9} {_est(r['N_opt'], '.3g'):>30} "
        f"{_est(r['D_opt'], '.3g'):>30} {_est(r['D_per_N'], '.3g'):>24} "
        f"{_est(r.get('loss'), '.4g'):>24}"
      )
  return lines


def _approach3_lines(sec: dict[str, Any]) -> list[str]:
  lines = []
  if sec["status"] != "ok":
    lines.append(f"Approach 3 (parametric L(N, D)): not fitted: {sec['message']}")
  else:
    p = sec["params"]
    lines.append("Approach 3 (parametric L(N, D) = E + A/N^alpha + B/D^beta):")
    lines.append(f"  E = {_est(p['E'])}  A = {_est(p['A'])}  B = {_est(p['B'])}")
    lines.append(
      f"  alpha = {_est(p['alpha'], '.4f')}  beta = {_est(p['beta'], '.4f')}  "
      f"a = {_est(p['a'], '.3f')}  b = {_est(p['b'], '.3f')}"
    )
    lines.append(
      f"  objective (sum of Huber, delta={sec['huber_delta']:g}) = "
      f"{sec['objective']:.7g}; {sec['starts_reaching_optimum']} of "
      f"{sec['grid']['starts']} starts reach it; frontier: {sec['frontier_method']}"
    )
  return lines


def _holdout_lines(hold: dict[str, Any]) -> list[str]:
  lines = []
  if hold["status"] != "ok":
    lines.append(f"held-out check: not run: {hold['message']}")
  else:
    a3 = hold["approach3"]
    if "error" in a3:
      lines.append(f"held-out check (budget {hold['budget']:.3g}): Approach 3: {a3['error']}")
    else:
      lines.append(
        f"held-out check (budget {hold['budget']:.3g}, {hold['num_runs']} runs): "
        f"Approach 3 loss error mean |rel| {a3['mean_abs_rel_error']:.2%}, "
        f"max {a3['max_abs_rel_error']:.2%}"
      )
    for name in ("approach1", "approach2", "approach3"):
      r = hold[name]
      if "error" not in r and r.get("N_opt_rel_error") is not None:
        lines.append(
          f"  {name}: N_opt rel error {r['N_opt_rel_error']:+.1%}, D_opt "
          f"{r['D_opt_rel_error']:+.1%} (vs the held-out budget's parabola minimum)"
        )
  return lines


def noise_lines(noise: dict[str, Any] | None) -> list[str]:
  """The run-to-run noise and, per budget, its valley's depth against it (none: no replicas)."""
  if not noise:
    return []
  replicated = sum(1 for s in noise["shapes"] if s["runs"] > 1)
  lines = [
    f"run-to-run noise of the final loss: std {noise['pooled_std']:.3g} (pooled over "
    f"{replicated} shapes with seeds, {noise['dof']} degrees of freedom); bootstrap resamples "
    "shapes with their seeds"
  ]
  for v in noise["valleys"]:
    if v["depth"] is None:
      lines.append(f"  budget {v['budget']:.3g}: {v['shapes']} shapes, too few for a valley")
      continue
    verdict = "deeper than the noise" if v["deeper_than_noise"] else "NOT deeper than the noise"
    lines.append(
      f"  budget {v['budget']:.3g}: valley depth {v['depth']:.3g} = "
      f"{v['depth'] / v['standard_error']:.1f} standard errors: {verdict}"
    )
  return lines
