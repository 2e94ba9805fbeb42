"""What every figure shares: budget colours, approach colours, sizes, number formats, saving."""

import math
import os
from collections.abc import Iterable, Sequence

import matplotlib
import numpy as np
from matplotlib import colors as mcolors
from matplotlib import figure as mfigure

from flopsfit.analysis import conventions

DPI = 110
SINGLE = (8.5, 5.6)  # inches: one panel and an outside legend
DOUBLE = (13.0, 5.6)  # two panels side by side
FONT = {
  "font.size": 10.5,
  "axes.titlesize": 12,
  "axes.labelsize": 11,
  "legend.fontsize": 9,
  "figure.titlesize": 13,
}

# Budgets: a sequential map from dark (small C) to light (large C), cut before viridis's pale
# yellow end so that the largest budget stays visible on white.
BUDGET_CMAP = "viridis"
_BUDGET_RANGE = (0.0, 0.85)
SIZE_CMAP = "plasma"  # training curves, coloured by N
_SIZE_RANGE = (0.0, 0.85)
APPROACH_COLORS = {"approach1": "0.25", "approach2": "#e6750a", "approach3": "#c4161c"}
APPROACH_LABELS = {"approach1": "Approach 1", "approach2": "Approach 2", "approach3": "Approach 3"}
LEFT_OUT_ALPHA = 0.3
BAND_ALPHA = 0.18


def pixel_size(figsize: Sequence[float]) -> tuple[int, int]:
  """The (width, height) in pixels of a saved PNG of this figure size."""
  return int(round(figsize[0] * DPI)), int(round(figsize[1] * DPI))


def new_figure(figsize: Sequence[float], ncols: int = 1):
  """A figure with `ncols` axes in a constrained layout (no overlapping labels)."""
  with matplotlib.rc_context(FONT):
    fig = mfigure.Figure(figsize=figsize, dpi=DPI, layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
  return fig, list(axes)


def save(fig: mfigure.Figure, out_dir: str, name: str, svg: bool = False) -> list[str]:
  """Writes `<name>.png` (and `.svg`) at the figure's own size; returns the paths."""
  os.makedirs(out_dir, exist_ok=True)
  paths = [os.path.join(out_dir, f"{name}.png")]
  if svg:
    paths.append(os.path.join(out_dir, f"{name}.svg"))
  with matplotlib.rc_context(FONT):
    for path in paths:
      tmp = path + ".tmp"
      fig.savefig(tmp, dpi=DPI, format=path.rsplit(".", 1)[1])
      os.replace(tmp, path)
  return paths


class BudgetColors:
  """One colour per IsoFLOP budget, on a log scale over the budgets: the same in every figure."""

  def __init__(self, budgets: Iterable[float]):
    self.budgets = sorted({float(b) for b in budgets if b is not None and b > 0})
    lo, hi = _BUDGET_RANGE
    self.cmap = mcolors.LinearSegmentedColormap.from_list(
      "budgets", matplotlib.colormaps[BUDGET_CMAP](np.linspace(lo, hi, 256))
    )
    if self.budgets:
      vmin, vmax = self.budgets[0], self.budgets[-1]
      if vmin == vmax:
        vmin, vmax = vmin / 10, vmax * 10
    else:
      vmin, vmax = 1.0, 10.0
    self.norm = mcolors.LogNorm(vmin=vmin, vmax=vmax)

  def __call__(self, budget: float | None):
    if budget is None or not budget > 0:
      return "0.5"
    return self.cmap(float(self.norm(budget)))

  def mappable(self):
    """A ScalarMappable for a colorbar of the budgets."""
    from matplotlib import cm

    return cm.ScalarMappable(norm=self.norm, cmap=self.cmap)


def size_colors(values: Iterable[float]):
  """(colour function, ScalarMappable) over N on a log scale, for the training curves."""
  from matplotlib import cm

  values = [v for v in values if v is not None and v > 0]
  vmin, vmax = (min(values), max(values)) if values else (1.0, 10.0)
  if vmin == vmax:
    vmin, vmax = vmin / 2, vmax * 2
  lo, hi = _SIZE_RANGE
  cmap = mcolors.LinearSegmentedColormap.from_list(
    "sizes", matplotlib.colormaps[SIZE_CMAP](np.linspace(lo, hi, 256))
  )
  norm = mcolors.LogNorm(vmin=vmin, vmax=vmax)
  mappable = cm.ScalarMappable(norm=norm, cmap=cmap)
  return (lambda v: cmap(float(norm(v))) if v is not None and v > 0 else "0.5"), mappable


def sci(x: float | None, digits: int = 3) -> str:
  """1.5e+18 -> '1.5e18'; None -> '-'."""
  if x is None or not math.isfinite(x):
    return "-"
  text = f"{x:.{digits}g}"
  if "e" in text:
    mantissa, exponent = text.split("e")
    return f"{mantissa}e{int(exponent)}"
  return text


def estimate(e: dict | None, fmt: str = ".3f") -> str:
  """'0.568 [0.541, 0.592]' of an estimate dict; the value alone without an interval."""
  if not e or e.get("value") is None:
    return "-"
  if e.get("lo") is None or e.get("hi") is None:
    return format(e["value"], fmt)
  return f"{format(e['value'], fmt)} [{format(e['lo'], fmt)}, {format(e['hi'], fmt)}]"


def sci_estimate(e: dict | None, digits: int = 3) -> str:
  """'6.1e7 [5.7e7, 6.8e7]' of an estimate dict."""
  if not e or e.get("value") is None:
    return "-"
  if e.get("lo") is None or e.get("hi") is None:
    return sci(e["value"], digits)
  return f"{sci(e['value'], digits)} [{sci(e['lo'], digits)}, {sci(e['hi'], digits)}]"


def note(ax, lines: Sequence[str]) -> None:
  """Grey text in the axes' lower left: what this panel could not show, and why."""
  if lines:
    import textwrap

    text = "\n".join(textwrap.fill(line, 70) for line in lines)
    ax.text(
      0.01,
      0.01,
      text,
      transform=ax.transAxes,
      fontsize=8.5,
      color="0.3",
      va="bottom",
      ha="left",
      gid="note",
      bbox=dict(boxstyle="round,pad=0.3", facecolor="white", edgecolor="0.8", alpha=0.9),
    )


def log_if_decades(ax, axis: str, values: Sequence[float], decades: float = 1.0) -> None:
  """Log scale on `axis` ("x"/"y") when the positive values span more than `decades`."""
  v = np.asarray([x for x in values if x is not None and np.isfinite(x) and x > 0], float)
  if v.size and np.log10(v.max() / v.min()) > decades:
    getattr(ax, f"set_{axis}scale")("log")


def _conventions(analysis: dict | None) -> dict:
  return (analysis or {}).get("conventions") or {}


def c_label(analysis: dict | None) -> str:
  conv = _conventions(analysis).get("flops", conventions.DEFAULT_FLOPS)
  return f"C: compute (FLOPs, {conventions.flops_label(conv)})"


def n_label(analysis: dict | None) -> str:
  conv = _conventions(analysis).get("params", conventions.DEFAULT_PARAMS)
  return f"N: parameters ({conventions.params_label(conv)})"


def d_label(analysis: dict | None) -> str:
  conv = _conventions(analysis).get("data", conventions.DEFAULT_DATA)
  return f"D: {conv}" if conv.isidentifier() else f"D: data ({conv})"  # a unit, or a CSV column


LOSS_LABEL = "final loss (nats)"


def budget_label(budget: float) -> str:
  return f"C = {sci(budget, 3)} FLOPs"


def gid(kind: str, budget: float | None = None) -> str:
  """The artist id tests look data up by: 'points' or 'points:1e+17'."""
  return kind if budget is None else f"{kind}:{float(budget)!r}"


def plain_log_ticks(ax, axis: str = "y") -> None:
  """On a log axis spanning under two decades, ticks at 1, 2, 3, 5 × 10^k labelled as plain
  numbers (3, 4, 5) instead of 3×10^0."""
  from matplotlib import ticker

  target = ax.yaxis if axis == "y" else ax.xaxis
  if getattr(ax, f"get_{axis}scale")() != "log":
    return
  lo, hi = getattr(ax, f"get_{axis}lim")()
  if lo <= 0 or np.log10(hi / lo) >= 2:
    return
  target.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0)))
  target.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
  target.set_minor_formatter(ticker.NullFormatter())
