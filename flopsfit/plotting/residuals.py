"""Approach 3's residuals, ln(predicted) − ln(observed) loss, against C and against N."""

import numpy as np

from flopsfit.plotting import style
from flopsfit.plotting.inputs import Inputs, NothingToPlot

NAME = "residuals"
TITLE = "Approach 3 residuals: ln L(N, D) − ln(observed loss)"
FIGSIZE = style.DOUBLE


def draw(inputs: Inputs, colors: style.BudgetColors):
  a3 = inputs.section("approach3")
  if a3 is None or not a3.get("residuals"):
    raise NothingToPlot(inputs.why_not("approach3") if a3 is None else "approach3 has no residuals")
  by_id = {r["run_id"]: r for r in inputs.runs}
  rows = []
  for res in a3["residuals"]:
    run = by_id.get(res["run_id"], {})
    rows.append({**res, "C": run.get("C"), "budget": run.get("budget")})
  values = np.array([r["log_residual"] for r in rows], float)
  rms = float(np.sqrt(np.mean(values**2)))
  delta = a3.get("huber_delta")
  fig, axes = style.new_figure(FIGSIZE, ncols=2)
  for ax, key, label in (
    (axes[0], "C", style.c_label(inputs.analysis)),
    (axes[1], "N", style.n_label(inputs.analysis)),
  ):
    by_budget: dict = {}
    for r in rows:
      if r.get(key):
        by_budget.setdefault(r.get("budget"), []).append(r)
    for b, rs in sorted(by_budget.items(), key=lambda kv: kv[0] or 0):
      ax.plot(
        [r[key] for r in rs],
        [r["log_residual"] for r in rs],
        "o",
        color=colors(b),
        markersize=5.5,
        markeredgecolor="white",
        markeredgewidth=0.4,
        linestyle="none",
        gid=style.gid(f"residuals-{key}", b),
      )
    ax.axhline(0.0, color="black", linewidth=0.9)
    if delta:
      ax.axhspan(
        -delta,
        delta,
        color="0.5",
        alpha=0.15,
        linewidth=0,
        label=f"±Huber δ = {delta:g} (quadratic zone)",
      )
    ax.set_xscale("log")
    ax.set_xlabel(label)
    ax.set_ylabel("ln(predicted) − ln(observed)  (≈ relative error)")
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title(f"against {'compute' if key == 'C' else 'model size'}")
    limit = 1.1 * max(float(np.max(np.abs(values))), delta or 0.0, 1e-6)
    ax.set_ylim(-limit, limit)
    from matplotlib.ticker import PercentFormatter

    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))
  from matplotlib.lines import Line2D

  handles, labels = axes[0].get_legend_handles_labels()
  handles.append(Line2D([], [], marker="o", color="0.5", linestyle="none"))
  labels.append(f"runs, coloured by budget; RMS {rms:.2%}, max |r| {np.max(np.abs(values)):.2%}")
  axes[0].legend(handles, labels, loc="upper left", fontsize=8.5, framealpha=0.9)
  fig.suptitle(TITLE)
  return fig
