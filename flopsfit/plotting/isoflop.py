"""IsoFLOP curves: final loss against N per budget, Approach 2's parabolas and their minima."""

import textwrap
from typing import Any

import numpy as np

from flopsfit.analysis import approach2
from flopsfit.plotting import style
from flopsfit.plotting.inputs import Inputs, NothingToPlot

NAME = "isoflop"
TITLE = "IsoFLOP curves: final loss against model size, one curve per compute budget"
FIGSIZE = style.SINGLE
_MAX_LEGEND_BUDGETS = 12  # More budgets: a colorbar instead of one legend entry each.
_CURVE_MARGIN = 1.3  # The parabola is drawn a little past the sampled sizes.


def parabola(fit: dict[str, Any], num: int = 100) -> tuple[np.ndarray, np.ndarray]:
  """(N, loss) along Approach 2's fit_N (`approach2.parabola`), a little past the sampled N."""
  lo, hi = fit["range"]
  n = np.geomspace(lo / _CURVE_MARGIN, hi * _CURVE_MARGIN, num)
  return n, approach2.parabola(fit["coefficients"], fit["center"], np.log(n))


def condense(reasons: list[str]) -> str:
  """['N: x', 'D: x', 'N: y'] -> 'x (N, D); y (N)'."""
  axes: dict[str, list[str]] = {}
  for r in reasons:
    axis, _, text = r.partition(": ") if ": " in r else ("", "", r)
    axes.setdefault(text, [])
    if axis and axis not in axes[text]:
      axes[text].append(axis)
  return "; ".join(f"{t} ({', '.join(a)})" if a else t for t, a in axes.items())


def _groups(inputs: Inputs) -> list[dict[str, Any]]:
  """Per budget: points, fit (or None), included, reasons; from Approach 2 or the raw runs."""
  sec = (inputs.analysis or {}).get("approach2") or {}
  if sec.get("budgets"):
    return [
      {
        "budget": b["budget"],
        "points": b.get("points") or [],
        "fit": b.get("fit_N"),
        "included": bool(b.get("included")),
        "reasons": b.get("reasons") or [],
      }
      for b in sec["budgets"]
    ]
  by_budget: dict[float | None, list] = {}
  for r in inputs.runs:
    by_budget.setdefault(r.get("budget"), []).append(r)
  return [
    {"budget": b, "points": pts, "fit": None, "included": True, "reasons": []}
    for b, pts in sorted(by_budget.items(), key=lambda kv: kv[0] or 0)
  ]


def draw(inputs: Inputs, colors: style.BudgetColors):
  groups = _groups(inputs)
  if not any(g["points"] for g in groups):
    raise NothingToPlot("no runs with a final loss")
  fig, (ax,) = style.new_figure(FIGSIZE)
  fitted = any(_drawable(g["fit"]) for g in groups)
  many = len(groups) > _MAX_LEGEND_BUDGETS
  left_out_reasons: dict[str, int] = {}
  for g in groups:
    _draw_budget(ax, g, colors, many, left_out_reasons)
  ax.set_xscale("log")
  style.log_if_decades(ax, "y", [p["loss"] for g in groups for p in g["points"]])
  style.plain_log_ticks(ax, "y")
  ax.set_xlabel(style.n_label(inputs.analysis))
  ax.set_ylabel(style.LOSS_LABEL)
  fig.suptitle(
    TITLE if fitted else "IsoFLOP points: final loss against model size (no parabolas fitted)"
  )
  ax.grid(True, which="major", alpha=0.3)
  ax.grid(True, which="minor", alpha=0.1)
  _top_ylim(ax, groups)
  _legend(fig, ax, colors, groups, fitted, many, left_out_reasons)
  notes = []
  if not fitted:
    notes.append(f"no parabolas: {inputs.why_not('approach2')}")
  elif inputs.section("approach2") is None:
    notes.append(inputs.why_not("approach2"))
  style.note(ax, notes)
  return fig


def _draw_budget(ax, g, colors, many: bool, left_out_reasons: dict[str, int]) -> None:
  """One budget's points, parabola and minimum; counts a left-out budget's reasons."""
  b, color = g["budget"], colors(g["budget"])
  alpha = 1.0 if g["included"] else style.LEFT_OUT_ALPHA
  label = None if many else (style.budget_label(b) if b else "runs")
  if not g["included"]:
    reasons = condense(g["reasons"]) or "left out"
    for key in sorted({r.split(": ", 1)[-1] for r in g["reasons"]}):
      left_out_reasons[key] = left_out_reasons.get(key, 0) + 1
    if label:
      label = textwrap.fill(f"{label}, left out: {reasons}", 46)
  pts = sorted(g["points"], key=lambda p: p["N"])
  ax.plot(
    [p["N"] for p in pts],
    [p["loss"] for p in pts],
    "o",
    color=color,
    alpha=alpha,
    markersize=5.5,
    markeredgecolor="white",
    markeredgewidth=0.5,
    label=label,
    gid=style.gid("points", b),
    zorder=3,
  )
  fit = g["fit"]
  if not _drawable(fit):
    return
  n, loss = parabola(fit)
  ax.plot(n, loss, "-", color=color, alpha=alpha, linewidth=1.6, gid=style.gid("fit", b), zorder=2)
  inside = fit.get("N_opt") is not None and fit["range"][0] <= fit["N_opt"] <= fit["range"][1]
  if fit.get("loss_at_opt") is not None and (inside or g["included"]):
    ax.plot(
      [fit["N_opt"]],
      [fit["loss_at_opt"]],
      marker="*",
      markersize=13,
      color=color,
      alpha=alpha,
      markeredgecolor="black",
      markeredgewidth=0.7,
      linestyle="none",
      gid=style.gid("minimum", b),
      zorder=4,
    )


def _legend(fig, ax, colors, groups, fitted: bool, many: bool, left_out_reasons) -> None:
  """One entry per budget beside the axes; with many budgets a colourbar and a legend below
  that counts the left-out budgets per reason."""
  from matplotlib.lines import Line2D

  handles, labels = ax.get_legend_handles_labels()
  if fitted:
    handles.append(Line2D([], [], color="0.3", linewidth=1.6))
    labels.append("Approach 2: parabola in ln N")
    handles.append(
      Line2D(
        [],
        [],
        marker="*",
        markersize=12,
        color="0.6",
        linestyle="none",
        markeredgecolor="black",
        markeredgewidth=0.7,
      )
    )
    labels.append("its minimum (N_opt)")
  if many:
    fig.colorbar(colors.mappable(), ax=ax, label="IsoFLOP budget C (FLOPs)", pad=0.01)
    if left_out_reasons:
      handles.append(
        Line2D([], [], marker="o", color="0.5", alpha=style.LEFT_OUT_ALPHA, linestyle="none")
      )
      labels.append(
        f"faded: {sum(not g['included'] for g in groups)} of {len(groups)} "
        "budgets left out of the fit, budgets per reason:\n"
        + "\n".join(f"  {r}: {k}" for r, k in left_out_reasons.items())
      )
    fig.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False)
  elif handles:
    ax.legend(
      handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, frameon=False
    )


def _drawable(fit: dict[str, Any] | None) -> bool:
  return bool(fit and fit.get("coefficients") and fit.get("range"))


def _top_ylim(ax, groups) -> None:
  """Keeps the view on the points: parabola arms may not stretch the loss axis."""
  losses = [p["loss"] for g in groups for p in g["points"]]
  losses += [
    g["fit"]["loss_at_opt"] for g in groups if g["fit"] and g["fit"].get("loss_at_opt") is not None
  ]
  if ax.get_yscale() == "linear" and losses:
    lo, hi = min(losses), max(losses)
    pad = 0.06 * (hi - lo or abs(hi) or 1.0)
    ax.set_ylim(lo - pad, hi + pad)
