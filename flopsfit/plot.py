"""Draws the figures of a scaling-law analysis and a one-page report into <workdir>/plots/.

  python -m flopsfit.plot --config=configs/gpt.py        # <workdir>: scaling_laws.json, runs
  python -m flopsfit.plot --analysis=scaling_laws.json   # an analysis of external results
  python -m flopsfit.plot --config=configs/gpt.py --svg --out=/tmp/plots

Without scaling_laws.json in the workdir, the analysis is run first (options from the config's
`analysis` section); if it cannot be (no finished runs), what exists is plotted and the rest is
listed in report.md. The binary only parses flags; the work is in flopsfit.plotting.
"""

import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # As in analyze.py: many tiny BLAS calls.

import matplotlib  # noqa: E402

matplotlib.use("Agg")

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from flopsfit import cli, plotting  # noqa: E402
from flopsfit import workdir as workdir_lib  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Overrides config.workdir.")
_ANALYSIS = flags.DEFINE_string(
  "analysis",
  None,
  "A scaling_laws.json to plot (default: <workdir>/scaling_laws.json). "
  "Without a workdir, its figures go to <its directory>/plots.",
)
_OUT = flags.DEFINE_string("out", None, "Plots directory (default: <workdir>/plots).")
_SVG = flags.DEFINE_bool("svg", False, "Also write every figure as SVG.")
_ANALYZE = flags.DEFINE_bool(
  "analyze", True, "Run the analysis first when the workdir has no scaling_laws.json."
)
_TRAINING_X = flags.DEFINE_enum(
  "training_x", "flops", ["flops", "tokens"], "x axis of the training curves."
)


def _analyze_first(workdir: str, config) -> None:
  """Writes <workdir>/scaling_laws.json if it is missing; says so. Bad runs are not fatal."""
  from flopsfit import analysis

  path = workdir_lib.scaling_laws_path(workdir)
  if os.path.exists(path):
    return
  print(f"{path} not found: running the analysis first (as python -m flopsfit.analyze would)")
  options = analysis.from_config(config.get("analysis") if config is not None else None)
  try:
    analysis.analyze_workdir(workdir, options)
  except analysis.InputError as e:
    print(f"plot: cannot analyze ({e}); plotting what exists")


def run() -> plotting.PlotResult:
  config = _CONFIG.value
  workdir = _WORKDIR.value or (config.get("workdir") if config is not None else None)
  loaded = None
  if _ANALYSIS.value:
    loaded = plotting.read_analysis(_ANALYSIS.value)
  if workdir is None:
    if loaded is None:
      raise plotting.PlotInputError("give --config (with config.workdir), --workdir or --analysis")
    out = _OUT.value or os.path.join(
      os.path.dirname(os.path.abspath(_ANALYSIS.value)), workdir_lib.PLOTS
    )
    return plotting.plot_analysis(loaded, out, svg=_SVG.value, analysis_path=_ANALYSIS.value)
  if not os.path.isdir(workdir):
    raise plotting.PlotInputError(f"{workdir}: no such workdir (config.workdir or --workdir)")
  if loaded is None and _ANALYZE.value:
    _analyze_first(workdir, config)
  return plotting.plot_workdir(
    workdir,
    out_dir=_OUT.value,
    svg=_SVG.value,
    training_x=_TRAINING_X.value,
    analysis=loaded,
    config=config.to_dict() if config is not None else None,
  )


def main(argv):
  del argv  # cli.run refuses positional arguments
  result = run()
  for paths in result.paths.values():
    print(f"wrote {', '.join(paths)}")
  print(f"wrote {result.report}")
  for line in result.missing:
    print(f"missing: {line}")
  for line in result.errors:
    print(f"plot: error drawing {line}", file=sys.stderr)


if __name__ == "__main__":
  cli.run(main, (plotting.PlotInputError,))
