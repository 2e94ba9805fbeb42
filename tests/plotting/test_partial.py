"""Plotting what exists: no analysis, no results, failed approaches, an empty workdir."""

import copy
import os
import shutil

import pytest

from flopsfit import plotting
from flopsfit.plotting import style

from . import fixtures
from .helpers import artists, one, png_size


def _copy_without(workdir, tmp_path, *names):
  """A copy of the workdir without the named files (in the workdir or in every run)."""
  target = str(tmp_path / "copy")
  shutil.copytree(workdir, target, ignore=shutil.ignore_patterns(*names, "plots"))
  return target


def test_results_without_analysis_plot_raw_points_and_curves(workdir, tmp_path):
  target = _copy_without(workdir, tmp_path, "scaling_laws.json")
  result = plotting.plot_workdir(target, keep_figures=True)
  assert result.errors == []
  assert set(result.paths) == {"isoflop", "loss_compute", "training_curves"}
  fig = result.figures["isoflop"]
  assert "no parabolas" in fig.get_suptitle()
  assert not artists(fig, "fit") and not artists(fig, "minimum")
  drawn = sum(len(a.get_xdata()) for a in artists(fig, "points").values())
  assert drawn == len(fixtures.runs()["N"])  # completed runs only, not the diverged one
  missing = "\n".join(result.missing)
  assert "scaling_laws.json: not found" in missing
  for name in ("frontier", "parametric", "residuals"):
    assert f"{name}: not drawn" in missing
  with open(result.report) as f:
    report = f.read()
  assert "no analysis yet" in report and "## Missing" in report
  for name in result.paths:
    assert png_size(result.paths[name][0]) == plotting.figure_size(name)


def test_curves_only(workdir, tmp_path):
  target = _copy_without(workdir, tmp_path, "scaling_laws.json", "result.json")
  result = plotting.plot_workdir(target, keep_figures=True)
  assert result.errors == []
  assert set(result.paths) == {"training_curves"}
  assert "run(s) without result.json" in "\n".join(result.missing)


@pytest.mark.parametrize("make", ["missing", "empty", "no_runs"])
def test_nothing_to_plot_still_writes_the_report(tmp_path, make):
  workdir = tmp_path / "w"
  if make != "missing":
    workdir.mkdir()
  if make == "no_runs":
    (workdir / "runs").mkdir()
  result = plotting.plot_workdir(str(workdir), out_dir=str(tmp_path / "plots"))
  assert result.paths == {} and result.errors == []
  with open(result.report) as f:
    assert "No figure could be drawn" in f.read()


def test_failed_approach3_draws_the_rest_with_a_note(analysis, tmp_path, plotted):
  broken = copy.deepcopy(analysis)
  broken["approach3"] = {"status": "failed", "message": "too few runs"}
  for row in broken["predictions"]:
    row.pop("approach3", None)
  broken["frontier"].pop("approach3")
  # Into the same plots directory: the figures that cannot be drawn now must not linger.
  out = str(tmp_path / "plots")
  shutil.copytree(plotted.out_dir, out)
  result = plotting.plot_analysis(broken, out, keep_figures=True)
  assert result.errors == []
  assert set(result.paths) == {"isoflop", "frontier", "loss_compute"}
  assert not os.path.exists(os.path.join(out, "parametric.png"))
  assert not os.path.exists(os.path.join(out, "residuals.svg"))
  fig = result.figures["frontier"]
  assert not artists(fig, "line-approach3-N_opt")
  notes = [t.get_text() for ax in fig.axes for t in ax.texts if t.get_gid() == "note"]
  assert notes and "approach3 not fitted: too few runs" in notes[0]
  fig = result.figures["loss_compute"]
  one(fig, "envelope")
  assert not artists(fig, "frontier-loss")


def test_every_approach_failed(tmp_path):
  """Two runs: nothing can be fitted, yet the runs are drawn."""
  workdir = str(tmp_path / "w")
  runs = {k: v[:2] for k, v in fixtures.runs().items()}
  from tests.analysis import synthetic

  synthetic.write_workdir(workdir, runs)
  out = fixtures.analyze_workdir(workdir, samples=0)
  assert all(out[a]["status"] == "failed" for a in ("approach1", "approach2", "approach3"))
  result = plotting.plot_workdir(workdir, keep_figures=True)
  assert result.errors == []
  assert {"isoflop", "loss_compute"} <= set(result.paths)
  assert "frontier" not in result.paths
  x = one(result.figures["isoflop"], style.gid("points", fixtures.BUDGETS[0])).get_xdata()
  assert len(x) == 2


def test_invalid_analysis_is_a_plot_input_error(tmp_path):
  path = tmp_path / "scaling_laws.json"
  path.write_text('{"version": 1')
  with pytest.raises(plotting.PlotInputError, match="not valid JSON"):
    plotting.read_analysis(str(path))
  path.write_text('{"version": 2, "runs": []}')
  with pytest.raises(plotting.PlotInputError, match="version 1"):
    plotting.read_analysis(str(path))
  with pytest.raises(plotting.PlotInputError, match="no such file"):
    plotting.read_analysis(str(tmp_path / "none.json"))
