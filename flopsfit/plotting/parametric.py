"""Approach 3's L(N, D) = E + A/N^α + B/D^β as contours over the (N, D) plane, with the runs,
each budget's IsoFLOP line and the compute-optimal frontier."""

from typing import Any

import numpy as np

from flopsfit.analysis import approach3
from flopsfit.analysis import frontier as analysis_frontier
from flopsfit.plotting import frontier, style
from flopsfit.plotting.inputs import Inputs, NothingToPlot

NAME = "parametric"
TITLE = "Approach 3: fitted L(N, D) with the runs and the compute-optimal frontier"
FIGSIZE = style.SINGLE
_GRID = 160
_MARGIN = 3.0  # the plane extends this factor past the runs and the frontier


def loss(params: dict[str, Any], N, D) -> np.ndarray:
  """The analysis's L(N, D) at an approach3 `params` section's point estimates."""
  theta = approach3.theta_of({k: v["value"] for k, v in params.items()})
  return approach3.predict_loss(theta, N, D)


def flops_per_unit(flop_model: dict[str, Any], N) -> np.ndarray:
  """The analysis's φ(N) (C = φ(N)·D) of a scaling_laws.json `flop_model`."""
  return analysis_frontier.flops_per_unit(flop_model["coefficients"], flop_model["powers"], N)


def isoflop_lines(budgets: list[dict[str, Any]], most: int = 12) -> list[tuple[float, float]]:
  """(budget, C) of the IsoFLOP lines to draw: every budget's mean C, or with more than `most`
  budgets, the powers of ten in their range."""
  if len(budgets) <= most:
    return [(b["budget"], b["C_mean"]) for b in budgets]
  c = np.array([b["C_mean"] for b in budgets], float)
  powers = 10.0 ** np.arange(np.ceil(np.log10(c.min())), np.floor(np.log10(c.max())) + 1)
  return [(float(p), float(p)) for p in powers]


def draw(inputs: Inputs, colors: style.BudgetColors):
  a3 = inputs.section("approach3")
  if a3 is None:
    raise NothingToPlot(inputs.why_not("approach3"))
  analysis = inputs.analysis
  runs = inputs.runs
  front_n = frontier.curve(analysis, "approach3", "N_opt")
  front_d = frontier.curve(analysis, "approach3", "D_opt")
  ns = [r["N"] for r in runs if r.get("D")]
  ds = [r["D"] for r in runs if r.get("D")]
  if front_n is not None and front_d is not None:
    ns += list(front_n["value"])
    ds += list(front_d["value"])
  if not ns:
    raise NothingToPlot("no runs with N and D")
  n_grid = np.geomspace(min(ns) / _MARGIN, max(ns) * _MARGIN, _GRID)
  d_grid = np.geomspace(min(ds) / _MARGIN, max(ds) * _MARGIN, _GRID)

  fig, (ax,) = style.new_figure(FIGSIZE)
  _draw_contours(fig, ax, a3["params"], n_grid, d_grid, runs)
  handles, labels = [], []
  _draw_isoflop_lines(ax, analysis, n_grid, colors, handles, labels)
  _draw_runs(ax, runs, colors, handles, labels)
  if front_n is not None and front_d is not None:
    _draw_frontier(ax, a3, runs, front_n, front_d, handles, labels)
  ax.set_xscale("log")
  ax.set_yscale("log")
  ax.set_xlim(n_grid[0], n_grid[-1])
  ax.set_ylim(d_grid[0], d_grid[-1])
  ax.set_xlabel(style.n_label(analysis))
  ax.set_ylabel(style.d_label(analysis))
  p = a3["params"]
  ax.set_title(
    f"L(N, D) = {p['E']['value']:.3g} + {p['A']['value']:.4g}/N^"
    f"{p['alpha']['value']:.3f} + {p['B']['value']:.4g}/D^{p['beta']['value']:.3f}",
    fontsize=11,
  )
  fig.suptitle(TITLE)
  ax.legend(handles, labels, loc="lower left", fontsize=8.5, framealpha=0.9)
  return fig


def _draw_contours(fig, ax, params, n_grid, d_grid, runs) -> None:
  """Filled and labelled contours of L(N, D), from its minimum on the plane to a little above
  the worst run."""
  nn, dd = np.meshgrid(n_grid, d_grid)
  ll = loss(params, nn, dd)
  run_losses = [r["loss"] for r in runs] or [float(ll.max())]
  bottom = float(ll.min())
  top = max(run_losses) + 0.25 * (max(run_losses) - bottom)
  from matplotlib.ticker import MaxNLocator

  levels = MaxNLocator(nbins=14).tick_values(bottom, top)
  levels = levels[(levels > bottom) & (levels <= top)]
  filled = ax.contourf(
    nn,
    dd,
    np.clip(ll, bottom, levels[-1]),
    levels=np.concatenate([[bottom], levels]),
    cmap="Greys_r",
    alpha=0.45,
  )
  lines = ax.contour(nn, dd, ll, levels=levels[::2], colors="0.35", linewidths=0.7)
  ax.clabel(lines, fmt="%.2f", fontsize=8, inline=True)
  lines.set_gid("contours")
  fig.colorbar(filled, ax=ax, label="L(N, D): fitted loss (nats)", pad=0.01, format="%.2f")


def _draw_isoflop_lines(ax, analysis, n_grid, colors, handles: list, labels: list) -> None:
  """D = C / φ(N) for each budget (or power of ten), φ the analysis's FLOP model."""
  from matplotlib.lines import Line2D

  flop = analysis.get("flop_model") or analysis_frontier.SIX_ND.to_json()
  lines_at = isoflop_lines(analysis.get("budgets") or [])
  for budget, c in lines_at:
    d_line = c / flops_per_unit(flop, n_grid)
    ax.plot(
      n_grid, d_line, "--", color=colors(budget), linewidth=1.1, gid=style.gid("isoflop", budget)
    )
  if lines_at:
    handles.append(Line2D([], [], color="0.3", linestyle="--", linewidth=1.1))
    which = (
      "one per budget"
      if len(lines_at) == len(analysis.get("budgets") or [])
      else "at powers of ten"
    )
    labels.append(f"IsoFLOP lines, {flop['formula']}\n({which})")


def _draw_runs(ax, runs, colors, handles: list, labels: list) -> None:
  from matplotlib.lines import Line2D

  by_budget: dict = {}
  for r in runs:
    if r.get("D"):
      by_budget.setdefault(r.get("budget"), []).append(r)
  for b, rs in by_budget.items():
    ax.plot(
      [r["N"] for r in rs],
      [r["D"] for r in rs],
      "o",
      color=colors(b),
      markersize=6,
      markeredgecolor="black",
      markeredgewidth=0.5,
      linestyle="none",
      gid=style.gid("runs", b),
      zorder=4,
    )
  handles.append(
    Line2D(
      [],
      [],
      marker="o",
      color="0.6",
      markeredgecolor="black",
      markeredgewidth=0.5,
      linestyle="none",
    )
  )
  labels.append("runs")


def _draw_frontier(ax, a3, runs, front_n, front_d, handles: list, labels: list) -> None:
  """The compute-optimal (N, D) path, dashed past the largest run's C."""
  color = style.APPROACH_COLORS["approach3"]
  c_max = max((r["C"] for r in runs if r.get("C")), default=None)
  joined = {
    "C": front_n["C"],
    "value": front_n["value"],
    "lo": front_d["value"],
    "hi": front_d["value"],
  }
  if (
    front_n["C"].size == front_d["C"].size and np.array_equal(front_n["C"], front_d["C"]) and c_max
  ):
    inside, beyond = frontier.split_at(c_max, joined)  # N in "value", D in "lo"
  else:
    inside, beyond = joined, {k: v[:0] for k, v in joined.items()}
  (line,) = ax.plot(
    inside["value"], inside["lo"], "-", color=color, linewidth=2.2, gid="frontier", zorder=5
  )
  if beyond["C"].size:
    ax.plot(
      beyond["value"],
      beyond["lo"],
      "--",
      color=color,
      linewidth=2.2,
      gid="frontier-extrapolation",
      zorder=5,
    )
  handles.append(line)
  a = style.estimate((a3.get("params") or {}).get("a"), ".3f")
  labels.append(
    "compute-optimal frontier, dashed past the\nlargest run "
    f"($N_{{\\rm opt}} \\propto C^a$, a = {a})"
  )
