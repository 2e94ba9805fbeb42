"""Shared plotted fixtures: one workdir and one external-results analysis, each plotted once."""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # The analysis makes many tiny BLAS calls.

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import pytest  # noqa: E402

from flopsfit import plotting  # noqa: E402

from . import fixtures  # noqa: E402


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
  """A fixture workdir with scaling_laws.json written."""
  path = str(tmp_path_factory.mktemp("plot") / "workdir")
  fixtures.write_workdir(path)
  fixtures.analyze_workdir(path)
  return path


@pytest.fixture(scope="session")
def plotted(workdir):
  """plot_workdir of the fixture, figures kept."""
  return plotting.plot_workdir(workdir, keep_figures=True, svg=True)


@pytest.fixture(scope="session")
def analysis(workdir):
  return plotting.read_analysis(os.path.join(workdir, "scaling_laws.json"))


@pytest.fixture(scope="session")
def external(tmp_path_factory):
  """(analysis of a CSV of runs, plot_analysis of it with figures kept)."""
  base = tmp_path_factory.mktemp("external")
  out = fixtures.analyze_csv(fixtures.write_csv(str(base / "runs.csv")))
  return out, plotting.plot_analysis(out, str(base / "plots"), keep_figures=True)
