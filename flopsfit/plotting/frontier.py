"""The compute-optimal frontier: N_opt(C) and D_opt(C), Approach 2 points, Approaches 2 and 3
lines with bootstrap bands, extended to the prediction budgets (dashed past the largest run)."""

from typing import Any

import numpy as np

from flopsfit.plotting import style
from flopsfit.plotting.inputs import Inputs, NothingToPlot

NAME = "frontier"
TITLE = "Compute-optimal model size and data against compute"
FIGSIZE = style.DOUBLE
APPROACHES = ("approach2", "approach3")
QUANTITIES = (("N_opt", "N", "fit_N"), ("D_opt", "D", "fit_D"))


def curve(analysis: dict[str, Any], approach: str, quantity: str) -> dict[str, np.ndarray] | None:
  """C, value, lo, hi of one approach's frontier: the stored grid and the prediction budgets,
  merged and sorted by C (lo, hi are NaN without a bootstrap). None if there is none."""
  c, value, lo, hi = [], [], [], []
  grid = analysis.get("frontier") or {}
  band = (grid.get(approach) or {}).get(quantity)
  if band and band.get("value"):
    for i, ci in enumerate(grid["C"]):
      c.append(ci)
      value.append(band["value"][i])
      lo.append((band.get("lo") or [None] * len(grid["C"]))[i])
      hi.append((band.get("hi") or [None] * len(grid["C"]))[i])
  for row in analysis.get("predictions") or []:
    est = (row.get(approach) or {}).get(quantity)
    if est and est.get("value") is not None:
      c.append(row["C"])
      value.append(est["value"])
      lo.append(est.get("lo"))
      hi.append(est.get("hi"))
  if not c:
    return None
  as_array = lambda v: np.array([np.nan if x is None else x for x in v], float)
  c, value, lo, hi = map(as_array, (c, value, lo, hi))
  keep = np.isfinite(c) & np.isfinite(value) & (value > 0)
  order = np.argsort(c[keep], kind="stable")
  c, value, lo, hi = (a[keep][order] for a in (c, value, lo, hi))
  first = np.concatenate([[True], np.diff(np.log(c)) > 1e-9]) if c.size else c.astype(bool)
  return {"C": c[first], "value": value[first], "lo": lo[first], "hi": hi[first]}


def split_at(c_max: float, cur: dict[str, np.ndarray]):
  """(inside, beyond): the curve up to and from c_max, sharing a point interpolated there."""
  c = cur["C"]
  if not c.size or c[-1] <= c_max or c[0] >= c_max:
    inside = c <= c_max
    return ({k: v[inside] for k, v in cur.items()}, {k: v[~inside] for k, v in cur.items()})
  log_c = np.log(c)
  joint = {"C": c_max}
  for k in ("value", "lo", "hi"):
    joint[k] = float(np.exp(np.interp(np.log(c_max), log_c, np.log(cur[k]))))
  inside, beyond = c < c_max, c > c_max
  return (
    {k: np.append(v[inside], joint[k]) for k, v in cur.items()},
    {k: np.insert(v[beyond], 0, joint[k]) for k, v in cur.items()},
  )


def _bracketed(fit: dict[str, Any], quantity: str) -> bool:
  lo, hi = fit.get("range") or (None, None)
  return lo is not None and lo <= fit[quantity] <= hi


def predicted_rows(analysis: dict[str, Any]) -> list[dict[str, Any]]:
  """Prediction rows at budgets other than the swept ones (those already have their points)."""
  swept = np.array([b["C_mean"] for b in analysis.get("budgets") or []], float)
  return [
    row
    for row in analysis.get("predictions") or []
    if not swept.size or np.min(np.abs(np.log(row["C"] / swept))) > 0.01
  ]


def _law_label(analysis, approach: str, quantity: str) -> str:
  law = (analysis.get(approach) or {}).get(quantity) or {}
  exponent = style.estimate(law.get("exponent"), ".3f")
  symbol = "a" if quantity == "N_opt" else "b"
  return (
    f"{style.APPROACH_LABELS[approach]}: ${quantity[0]}_{{\\rm opt}} \\propto C^{symbol}$,"
    f" {symbol} = {exponent}"
  )


def draw(inputs: Inputs, colors: style.BudgetColors):
  analysis = inputs.analysis
  if analysis is None:
    raise NothingToPlot(inputs.why_not("approach2"))
  a2_budgets = ((analysis.get("approach2") or {}).get("budgets")) or []
  curves = {
    (a, q): curve(analysis, a, q) for a in APPROACHES if inputs.section(a) for q, _, _ in QUANTITIES
  }
  curves = {k: v for k, v in curves.items() if v is not None}
  has_points = any((b.get("fit_N") or {}).get("N_opt") for b in a2_budgets)
  if not curves and not has_points:
    raise NothingToPlot("; ".join(inputs.why_not(a) for a in APPROACHES))
  c_max = max((r["C"] for r in inputs.runs if r.get("C")), default=None)

  fig, axes = style.new_figure(FIGSIZE, ncols=2)
  for ax, (quantity, symbol, fit_key) in zip(axes, QUANTITIES):
    _draw_minima(ax, a2_budgets, quantity, fit_key, colors)
    for approach in APPROACHES:
      cur = curves.get((approach, quantity))
      if cur is not None:
        _draw_law(ax, analysis, approach, quantity, cur, c_max)
    if c_max:
      ax.axvline(c_max, color="0.5", linestyle=":", linewidth=1)
    _label_panel(ax, analysis, quantity, symbol)
    _legend(
      ax,
      has_points,
      bool(c_max),
      bool(predicted_rows(analysis)),
      any(np.isfinite(c["lo"]).any() for c in curves.values()),
    )
    style.note(ax, [inputs.why_not(a) for a in APPROACHES if not inputs.section(a)])
  fig.suptitle(TITLE)
  return fig


def _draw_minima(ax, a2_budgets, quantity: str, fit_key: str, colors: style.BudgetColors):
  """Approach 2's per-budget minima; a left-out budget's only when inside its runs."""
  for b in a2_budgets:
    fit = b.get(fit_key) or {}
    included = bool(b.get("included"))
    if fit.get(quantity) is None or not (included or _bracketed(fit, quantity)):
      continue  # A left-out budget's minimum far outside its runs would only mislead.
    ax.plot(
      [b["C_mean"]],
      [fit[quantity]],
      "o",
      color=colors(b["budget"]),
      markersize=8,
      markeredgecolor="black",
      markeredgewidth=0.6,
      linestyle="none",
      zorder=4,
      alpha=1.0 if included else style.LEFT_OUT_ALPHA,
      gid=style.gid(f"points-{quantity}", b["budget"]),
    )


def _draw_law(ax, analysis, approach: str, quantity: str, cur, c_max: float | None):
  """One approach's law: its band, solid up to the largest run, dashed beyond, and diamonds at
  the prediction budgets."""
  color = style.APPROACH_COLORS[approach]
  inside, beyond = split_at(c_max, cur) if c_max else (cur, {k: v[:0] for k, v in cur.items()})
  label = _law_label(analysis, approach, quantity)
  if np.isfinite(cur["lo"]).any():
    ax.fill_between(
      cur["C"],
      cur["lo"],
      cur["hi"],
      color=color,
      alpha=style.BAND_ALPHA,
      linewidth=0,
      gid=style.gid(f"band-{approach}-{quantity}"),
    )
  ax.plot(
    inside["C"],
    inside["value"],
    "-",
    color=color,
    linewidth=2,
    label=label,
    gid=style.gid(f"line-{approach}-{quantity}"),
  )
  if beyond["C"].size:
    ax.plot(
      beyond["C"],
      beyond["value"],
      "--",
      color=color,
      linewidth=2,
      label=None if inside["C"].size else label,
      gid=style.gid(f"extrapolation-{approach}-{quantity}"),
    )
  pred = [
    (row["C"], row[approach][quantity]["value"])
    for row in predicted_rows(analysis)
    if ((row.get(approach) or {}).get(quantity) or {}).get("value")
  ]
  if pred:
    ax.plot(
      *zip(*pred),
      "D",
      color=color,
      markersize=5.5,
      markerfacecolor="white",
      markeredgewidth=1.4,
      linestyle="none",
      zorder=5,
      gid=style.gid(f"predictions-{approach}-{quantity}"),
    )


def _label_panel(ax, analysis, quantity: str, symbol: str) -> None:
  ax.set_xscale("log")
  ax.set_yscale("log")
  ax.set_xlabel(style.c_label(analysis))
  ax.set_ylabel(style.n_label(analysis) if symbol == "N" else style.d_label(analysis))
  what = "model size" if symbol == "N" else "data"
  ax.set_title(f"${quantity[0]}_{{\\rm opt}}$: compute-optimal {what}")
  ax.grid(True, which="major", alpha=0.3)
  ax.grid(True, which="minor", alpha=0.08)


def _legend(ax, has_points: bool, has_cmax: bool, has_predictions: bool, has_bands: bool):
  from matplotlib.lines import Line2D
  from matplotlib.patches import Patch

  handles, labels = ax.get_legend_handles_labels()
  if has_points:
    handles.append(
      Line2D(
        [],
        [],
        marker="o",
        color="0.55",
        markeredgecolor="black",
        markeredgewidth=0.6,
        linestyle="none",
        markersize=8,
      )
    )
    labels.append("Approach 2: a budget's parabola minimum\n(faded: left out of the fit)")
  if has_bands:
    handles.append(Patch(color="0.5", alpha=style.BAND_ALPHA * 2))
    labels.append("bootstrap interval")
  if has_predictions:
    handles.append(
      Line2D(
        [],
        [],
        marker="D",
        color="0.3",
        markerfacecolor="white",
        linestyle="none",
        markersize=5.5,
        markeredgewidth=1.4,
      )
    )
    labels.append("prediction budgets")
  if has_cmax:
    handles.append(Line2D([], [], color="0.3", linestyle="--", linewidth=2))
    labels.append("extrapolated: beyond the largest run")
    handles.append(Line2D([], [], color="0.5", linestyle=":", linewidth=1))
    labels.append("the largest run's C")
  ax.legend(handles, labels, loc="upper left", fontsize=8.5, framealpha=0.9)
