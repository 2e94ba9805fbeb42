"""Training curves: train loss against FLOPs (or D, in tokens, images, ...) for every run,
coloured by N, from metrics.jsonl, with each run's final eval loss marked at its end."""

import math

from flopsfit.plotting import style
from flopsfit.plotting.inputs import Inputs, NothingToPlot

NAME = "training_curves"
FIGSIZE = style.SINGLE
X_AXES = ("flops", "tokens")
_FLOPS_LABEL = "compute spent (FLOPs, XLA-measured)"


def curve(rows: list[dict], x: str) -> tuple[list[float], list[float]]:
  """(x, loss) of the logged steps with a positive x and a finite loss."""
  xs, ys = [], []
  for r in rows:
    xv, yv = r.get(x), r.get("loss")
    if (
      isinstance(xv, (int, float)) and isinstance(yv, (int, float)) and xv > 0 and math.isfinite(yv)
    ):
      xs.append(float(xv))
      ys.append(float(yv))
  return xs, ys


def run_size(inputs: Inputs, run_id: str):
  """N of a run (in the analysis's parameter convention), or None if unknown."""
  params = (inputs.results.get(run_id) or {}).get("params") or {}
  return params.get(inputs.params_convention) or params.get("non_embedding")


def draw(inputs: Inputs, colors: style.BudgetColors, x: str = "flops"):
  if x not in X_AXES:
    raise ValueError(f"training curves: x must be one of {X_AXES}, found {x!r}")
  curves = {run_id: curve(rows, x) for run_id, rows in sorted(inputs.curves.items())}
  curves = {k: v for k, v in curves.items() if v[0]}
  if not curves:
    raise NothingToPlot(
      "no metrics.jsonl with logged steps"
      if inputs.workdir
      else "no workdir (an analysis of results alone has no metrics.jsonl)"
    )
  sizes = {run_id: run_size(inputs, run_id) for run_id in curves}
  color_of, mappable = style.size_colors(sizes.values())
  fig, (ax,) = style.new_figure(FIGSIZE)
  all_y, unknown = [], 0
  final_x, final_y = [], []
  for run_id, (xs, ys) in sorted(curves.items(), key=lambda kv: -(sizes[kv[0]] or 0)):
    n = sizes[run_id]
    unknown += n is None
    ax.plot(xs, ys, "-", color=color_of(n), linewidth=1.1, alpha=0.85, gid=f"curve:{run_id}")
    all_y += ys
    result = inputs.results.get(run_id) or {}
    end_x = result.get("tokens") if x == "tokens" else (result.get("flops") or {}).get("xla")
    final = result.get("final_eval_loss")
    if (
      isinstance(end_x, (int, float))
      and isinstance(final, (int, float))
      and math.isfinite(final)
      and end_x > 0
    ):
      final_x.append(end_x)
      final_y.append(final)
  if final_x:
    ax.plot(
      final_x,
      final_y,
      "o",
      color="black",
      markersize=3.5,
      linestyle="none",
      gid="final-eval",
      zorder=4,
      label="final eval loss",
    )
    all_y += final_y
  ax.set_xscale("log")
  style.log_if_decades(ax, "y", all_y, decades=0.5)
  style.plain_log_ticks(ax, "y")
  units = {str(r.get("unit")) for r in inputs.results.values() if r and r.get("unit")}
  unit = "/".join(sorted(units)) or "tokens"  # result.json "unit": tokens, images, ...
  ax.set_xlabel(_FLOPS_LABEL if x == "flops" else f"{unit} seen (D)")
  ax.set_ylabel("train loss, mean over the logging window (nats)")
  fig.suptitle(
    f"Training curves: {len(curves)} runs, loss against {'compute' if x == 'flops' else unit}"
  )
  ax.grid(True, which="major", alpha=0.3)
  ax.grid(True, which="minor", alpha=0.08)
  fig.colorbar(mappable, ax=ax, label=style.n_label(inputs.analysis), pad=0.01)
  if final_x:
    ax.legend(loc="upper right", fontsize=9)
  notes = []
  if unknown:
    notes.append(f"{unknown} run(s) without result.json: N unknown, drawn grey")
  style.note(ax, notes)
  return fig
