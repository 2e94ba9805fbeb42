"""Every figure and report.md from plotting Inputs: what exists is drawn, the rest is listed."""

import dataclasses
import os
import traceback
from collections.abc import Callable
from typing import Any

import matplotlib

from flopsfit import workdir as workdir_lib
from flopsfit.plotting import (
  frontier,
  isoflop,
  loss_compute,
  parametric,
  report,
  residuals,
  style,
  training_curves,
)
from flopsfit.plotting import (
  inputs as inputs_lib,
)
from flopsfit.plotting.inputs import Inputs, NothingToPlot

FIGURES = (isoflop, frontier, loss_compute, parametric, training_curves, residuals)
NAMES = tuple(m.NAME for m in FIGURES)


@dataclasses.dataclass
class PlotResult:
  out_dir: str
  paths: dict[str, list[str]]  # figure name -> [png (, svg)]
  report: str
  missing: list[str]  # inputs not found, and figures not drawn with the reason
  errors: list[str]  # figures that failed (a bug): name, exception
  figures: dict[str, Any] = dataclasses.field(default_factory=dict)  # name -> Figure if kept

  @property
  def pngs(self) -> dict[str, str]:
    return {name: paths[0] for name, paths in self.paths.items()}


def figure_size(name: str) -> tuple[int, int]:
  """The (width, height) in pixels of figure `name`'s PNG."""
  return style.pixel_size({m.NAME: m.FIGSIZE for m in FIGURES}[name])


def plot_inputs(
  inputs: Inputs,
  out_dir: str,
  svg: bool = False,
  keep_figures: bool = False,
  training_x: str = "flops",
) -> PlotResult:
  """Draws every figure it has data for into `out_dir`, then report.md."""
  os.makedirs(out_dir, exist_ok=True)
  colors = style.BudgetColors(inputs.budgets)
  result = PlotResult(out_dir=out_dir, paths={}, report="", missing=list(inputs.missing), errors=[])
  for module in FIGURES:
    draw: Callable = module.draw
    kwargs = {"x": training_x} if module is training_curves else {}
    try:
      with matplotlib.rc_context(style.FONT):
        fig = draw(inputs, colors, **kwargs)
        result.paths[module.NAME] = style.save(fig, out_dir, module.NAME, svg)
    except NothingToPlot as e:
      result.missing.append(f"{module.NAME}: not drawn: {e}")
      _remove_stale(out_dir, module.NAME)
      continue
    except Exception as e:  # One figure's bug must not cost the others; it is reported.
      last = traceback.extract_tb(e.__traceback__)[-1]
      result.errors.append(
        f"{module.NAME}: {type(e).__name__}: {e} ({os.path.basename(last.filename)}:{last.lineno})"
      )
      _remove_stale(out_dir, module.NAME)
      continue
    if keep_figures:
      result.figures[module.NAME] = fig
  notes = result.missing + [f"{e} (a bug: please report it)" for e in result.errors]
  result.report = report.write(inputs, out_dir, result.pngs, notes)
  return result


def _remove_stale(out_dir: str, name: str) -> None:
  """A figure not drawn this time must not survive from an earlier run."""
  for ext in ("png", "svg"):
    path = os.path.join(out_dir, f"{name}.{ext}")
    if os.path.exists(path):
      os.remove(path)


def plot_analysis(
  analysis: dict[str, Any],
  out_dir: str,
  svg: bool = False,
  keep_figures: bool = False,
  analysis_path: str | None = None,
) -> PlotResult:
  """The figures of a scaling_laws.json dict alone (e.g. an analysis of external results)."""
  return plot_inputs(inputs_lib.from_analysis(analysis, analysis_path), out_dir, svg, keep_figures)


def plot_workdir(
  workdir: str,
  out_dir: str | None = None,
  svg: bool = False,
  keep_figures: bool = False,
  training_x: str = "flops",
  analysis: dict[str, Any] | None = None,
  config: dict[str, Any] | None = None,
) -> PlotResult:
  """The figures of a workdir (default out_dir: `<workdir>/plots`), from its
  scaling_laws.json (or `analysis`), result.json files and metrics.jsonl files."""
  inputs = inputs_lib.load_workdir(workdir, analysis=analysis, config=config)
  return plot_inputs(
    inputs, out_dir or workdir_lib.plots_dir(workdir), svg, keep_figures, training_x
  )
