"""Loss against compute: every run, Approach 1's envelope, and Approach 3's loss along the
compute-optimal frontier with its band, approaching E."""

import numpy as np

from flopsfit.plotting import frontier, style
from flopsfit.plotting.inputs import Inputs, NothingToPlot

NAME = "loss_compute"
TITLE = "Final loss against compute: every run and the compute-optimal frontier"
FIGSIZE = style.SINGLE


def draw(inputs: Inputs, colors: style.BudgetColors):
  runs = [r for r in inputs.runs if r.get("C")]
  if not runs:
    raise NothingToPlot("no runs with a final loss and compute")
  analysis = inputs.analysis or {}
  fig, (ax,) = style.new_figure(FIGSIZE)
  _draw_runs(ax, runs, colors)
  from matplotlib.lines import Line2D

  budget_color = colors(inputs.budgets[-1] if inputs.budgets else None)
  legend = _Legend([Line2D([], [], marker="o", color=budget_color, linestyle="none")])
  legend.labels.append("runs (coloured by budget)")
  notes = []
  a1 = inputs.section("approach1")
  if a1 and a1.get("envelope"):
    legend.add(_draw_envelope(ax, a1), "Approach 1: lower envelope (best run per budget)")
  else:
    notes.append(inputs.why_not("approach1"))
  a3 = inputs.section("approach3")
  cur = frontier.curve(analysis, "approach3", "loss") if a3 else None
  ylim_values = [r["loss"] for r in runs]
  if cur is not None:
    ylim_values += _draw_frontier_loss(ax, analysis, a3, cur, max(r["C"] for r in runs), legend)
  else:
    notes.append(inputs.why_not("approach3"))
  ylim_values += _draw_loss_floor(ax, inputs.results, legend)
  _finish_axes(ax, inputs, runs, ylim_values)
  ax.legend(legend.handles, legend.labels, loc="upper right", fontsize=8.5, framealpha=0.9)
  if len(inputs.budgets) > 1:
    fig.colorbar(colors.mappable(), ax=ax, label="IsoFLOP budget (FLOPs)", pad=0.01)
  style.note(
    ax,
    [n for n in notes if inputs.analysis is not None]
    or ([inputs.why_not("approach1")] if inputs.analysis is None else []),
  )
  return fig


class _Legend:
  """Handles and labels, in the order they are drawn."""

  def __init__(self, handles: list):
    self.handles, self.labels = handles, []

  def add(self, handle, label: str) -> None:
    self.handles.append(handle)
    self.labels.append(label)


def _draw_runs(ax, runs, colors: style.BudgetColors) -> None:
  by_budget: dict = {}
  for r in runs:
    by_budget.setdefault(r.get("budget"), []).append(r)
  for b, rs in sorted(by_budget.items(), key=lambda kv: kv[0] or 0):
    ax.plot(
      [r["C"] for r in rs],
      [r["loss"] for r in rs],
      "o",
      color=colors(b),
      markersize=5,
      alpha=0.8,
      markeredgecolor="white",
      markeredgewidth=0.4,
      linestyle="none",
      gid=style.gid("runs", b),
      zorder=3,
    )


def _draw_envelope(ax, a1):
  env = sorted(a1["envelope"], key=lambda e: e["C"])
  (line,) = ax.plot(
    [e["C"] for e in env],
    [e["loss"] for e in env],
    "s-",
    color=style.APPROACH_COLORS["approach1"],
    markersize=6,
    linewidth=1.0,
    markerfacecolor="none",
    markeredgewidth=1.4,
    gid="envelope",
    zorder=4,
  )
  return line


def _draw_frontier_loss(ax, analysis, a3, cur, c_max: float, legend: _Legend) -> list[float]:
  """Approach 3's loss along the frontier (band, solid, dashed past c_max), E and the
  predictions; returns the losses drawn, for the y range."""
  color = style.APPROACH_COLORS["approach3"]
  inside, beyond = frontier.split_at(c_max, cur)
  band = None
  if np.isfinite(cur["lo"]).any():
    band = ax.fill_between(
      cur["C"],
      cur["lo"],
      cur["hi"],
      color=color,
      alpha=style.BAND_ALPHA,
      linewidth=0,
      gid="band-loss",
    )
  (solid,) = ax.plot(
    inside["C"], inside["value"], "-", color=color, linewidth=2, gid="frontier-loss", zorder=5
  )
  if beyond["C"].size:
    ax.plot(beyond["C"], beyond["value"], "--", color=color, linewidth=2, gid="extrapolation-loss")
  legend.add(solid, "Approach 3: loss at the compute-optimal (N, D)\n(dashed: extrapolated)")
  if band is not None:
    legend.add(band, "its bootstrap interval")
  drawn = []
  e = (a3.get("params") or {}).get("E") or {}
  if e.get("value") is not None:
    eline = ax.axhline(e["value"], color=color, linestyle=":", linewidth=1.3, gid="E")
    legend.add(eline, f"E = {style.estimate(e, '.3f')} (irreducible loss)")
    drawn.append(e["value"])
  pred = [
    (row["C"], row["approach3"]["loss"]["value"])
    for row in frontier.predicted_rows(analysis)
    if ((row.get("approach3") or {}).get("loss") or {}).get("value")
  ]
  if pred:
    (mk,) = ax.plot(
      *zip(*pred),
      "D",
      color=color,
      markerfacecolor="white",
      markersize=6,
      markeredgewidth=1.4,
      linestyle="none",
      gid="predictions-loss",
      zorder=5,
    )
    legend.add(mk, "predicted loss at the prediction budgets")
    drawn += [p[1] for p in pred]
  return drawn + list(cur["value"])


def _draw_loss_floor(ax, results, legend: _Legend) -> list[float]:
  """The data's own loss floor when every result reports the same one."""
  floors = sorted(
    {
      r.get("loss_floor")
      for r in results.values()
      if isinstance(r, dict) and isinstance(r.get("loss_floor"), (int, float))
    }
  )
  if len(floors) != 1:
    return []
  floor = ax.axhline(floors[0], color="0.35", linestyle="-.", linewidth=1.1, gid="loss-floor")
  legend.add(floor, f"the data's loss floor, {floors[0]:.3f} (result.json loss_floor)")
  return [floors[0]]


def _finish_axes(ax, inputs: Inputs, runs, ylim_values: list[float]) -> None:
  ax.set_xscale("log")
  style.log_if_decades(ax, "y", ylim_values)
  if ax.get_yscale() == "linear":
    lo, hi = min(ylim_values), max(r["loss"] for r in runs)
    pad = 0.05 * (hi - lo or 1.0)
    ax.set_ylim(lo - pad, hi + pad)
  style.plain_log_ticks(ax, "y")
  ax.set_xlabel(style.c_label(inputs.analysis))
  ax.set_ylabel(style.LOSS_LABEL)
  ax.figure.suptitle(TITLE)
  ax.grid(True, which="major", alpha=0.3)
  ax.grid(True, which="minor", alpha=0.08)
