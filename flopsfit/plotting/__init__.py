"""Figures of a scaling-law analysis and a one-page report.md. matplotlib only (no JAX).

Notebook use:
  from flopsfit import plotting
  result = plotting.plot_workdir("workdirs/gpt")                 # -> workdirs/gpt/plots/
  result = plotting.plot_analysis(analysis_dict, "/tmp/plots", keep_figures=True)
  result.paths, result.missing, result.figures["frontier"]
"""

from flopsfit.plotting.inputs import (
  Inputs,
  NothingToPlot,
  PlotInputError,
  from_analysis,
  load_workdir,
  read_analysis,
)
from flopsfit.plotting.render import (
  FIGURES,
  NAMES,
  PlotResult,
  figure_size,
  plot_analysis,
  plot_inputs,
  plot_workdir,
)

__all__ = [
  "FIGURES",
  "Inputs",
  "NAMES",
  "NothingToPlot",
  "PlotInputError",
  "PlotResult",
  "figure_size",
  "from_analysis",
  "load_workdir",
  "plot_analysis",
  "plot_inputs",
  "plot_workdir",
  "read_analysis",
]
