"""Scaling-law analysis: Chinchilla Approaches 1, 2, 3, bootstrap intervals, held-out check.

Notebook use:
  from flopsfit import analysis
  out = analysis.analyze_workdir("/path/to/workdir", analysis.AnalysisOptions(seed=1))
  out = analysis.analyze_csv("runs.csv", n_column="N", c_column="C", loss_column="loss")
"""

from flopsfit.analysis import conventions
from flopsfit.analysis.errors import FitError, InputError
from flopsfit.analysis.options import AnalysisOptions, from_config
from flopsfit.analysis.pipeline import analyze_csv, analyze_table, analyze_workdir
from flopsfit.analysis.results import RunTable, load_csv, load_workdir

__all__ = [
  "AnalysisOptions",
  "FitError",
  "InputError",
  "RunTable",
  "analyze_csv",
  "analyze_table",
  "analyze_workdir",
  "conventions",
  "from_config",
  "load_csv",
  "load_workdir",
]
