"""Every figure from a fixture workdir and from an external-results analysis: valid PNGs of the
expected size, and artists whose data are the analysis's numbers."""

import json
import os

import numpy as np
import pytest

from flopsfit import plotting
from flopsfit.plotting import frontier, parametric, style

from . import fixtures
from .helpers import artists, legend_text, one, png_size, rgba, xy


def nearest(x: np.ndarray, values: np.ndarray) -> np.ndarray:
  """Indices of x nearest each value, asserting they agree to 1e-9 relative."""
  at = np.argmin(np.abs(np.log(x)[None, :] - np.log(values)[:, None]), axis=1)
  np.testing.assert_allclose(x[at], values, rtol=1e-9)
  return at


def test_every_figure_is_a_png_of_its_size(plotted):
  assert plotted.errors == []
  assert set(plotted.paths) == set(plotting.NAMES)
  for name, paths in plotted.paths.items():
    png, svg = paths
    assert png_size(png) == plotting.figure_size(name), name
    assert os.path.getsize(png) < 400_000, f"{png} is {os.path.getsize(png)} bytes"
    with open(svg) as f:
      assert "<svg" in f.read(2000), svg
  assert os.path.dirname(plotted.report) == os.path.join(os.path.dirname(plotted.out_dir), "plots")


def test_every_figure_has_a_title_and_labelled_axes(plotted):
  for name, fig in plotted.figures.items():
    title = fig.get_suptitle() or fig.axes[0].get_title()
    assert title, name
    for ax in fig.axes:
      if ax.get_label() == "<colorbar>":
        continue
      assert ax.get_xlabel() and ax.get_ylabel(), (name, ax.get_title())
      assert ax.get_xscale() == "log", (name, ax.get_xlabel())


def test_isoflop_points_parabolas_minima_and_left_out_budget(plotted, analysis):
  fig = plotted.figures["isoflop"]
  budgets = analysis["approach2"]["budgets"]
  assert len(artists(fig, "points")) == len(budgets) == len(fixtures.BUDGETS) + 1
  for b in budgets:
    pts = sorted(b["points"], key=lambda p: p["N"])
    x, y = xy(one(fig, style.gid("points", b["budget"])))
    np.testing.assert_allclose(x, [p["N"] for p in pts])
    np.testing.assert_allclose(y, [p["loss"] for p in pts])
    fit = b["fit_N"]
    x, y = xy(one(fig, style.gid("fit", b["budget"])))
    c0, c1, c2 = fit["coefficients"]
    u = np.log(x) - fit["center"]
    np.testing.assert_allclose(y, c0 + c1 * u + c2 * u * u, rtol=1e-12)
    assert x.min() < fit["range"][0] and x.max() > fit["range"][1]
    if b["included"]:
      x, y = xy(one(fig, style.gid("minimum", b["budget"])))
      np.testing.assert_allclose([x[0], y[0]], [fit["N_opt"], fit["loss_at_opt"]])
      assert one(fig, style.gid("points", b["budget"])).get_alpha() == 1.0
  left_out = [b for b in budgets if not b["included"]]
  assert [b["budget"] for b in left_out] == [fixtures.SKEWED_BUDGET]
  assert one(fig, style.gid("points", fixtures.SKEWED_BUDGET)).get_alpha() == style.LEFT_OUT_ALPHA
  text = legend_text(fig.axes[0])
  assert "C = 2e17 FLOPs, left out" in text and "lowest loss" in text
  assert "edge of the sampled range (N, D)" in text.replace("\n", " ")


def test_frontier_lines_bands_points_and_extrapolation(plotted, analysis):
  fig = plotted.figures["frontier"]
  c_max = max(r["C"] for r in analysis["runs"])
  grid = np.array(analysis["frontier"]["C"])
  for ax_index, quantity in enumerate(("N_opt", "D_opt")):
    for approach in ("approach2", "approach3"):
      band = analysis["frontier"][approach][quantity]
      x, y = xy(one(fig, f"line-{approach}-{quantity}", ax_index))
      assert x.max() == pytest.approx(c_max)
      inside = grid < c_max  # every stored grid point, and its value, on the solid line
      at = nearest(x, grid[inside])
      np.testing.assert_allclose(x[at], grid[inside], rtol=1e-9)
      np.testing.assert_allclose(y[at], np.array(band["value"])[inside])
      x, y = xy(one(fig, f"extrapolation-{approach}-{quantity}", ax_index))
      assert x.min() == pytest.approx(c_max) and x.max() == pytest.approx(grid.max())
      np.testing.assert_allclose(y[-1], band["value"][-1])
      # The band spans the stored interval, to the prediction budgets.
      verts = one(fig, f"band-{approach}-{quantity}", ax_index).get_paths()[0].vertices
      assert verts[:, 1].min() == pytest.approx(min(band["lo"]), rel=1e-9)
      assert verts[:, 1].max() == pytest.approx(max(band["hi"]), rel=1e-9)
      # The budget beyond the runs is marked with its predicted value.
      beyond = [r for r in analysis["predictions"] if r["extrapolation"]]
      x, y = xy(one(fig, f"predictions-{approach}-{quantity}", ax_index))
      np.testing.assert_allclose(x, [r["C"] for r in beyond])
      np.testing.assert_allclose(y, [r[approach][quantity]["value"] for r in beyond])
      exponent = analysis[approach][quantity]["exponent"]
      assert style.estimate(exponent, ".3f") in legend_text(fig.axes[ax_index])
    fit_key = "fit_N" if quantity == "N_opt" else "fit_D"
    for b in analysis["approach2"]["budgets"]:
      gid = style.gid(f"points-{quantity}", b["budget"])
      if b["included"]:
        x, y = xy(one(fig, gid, ax_index))
        np.testing.assert_allclose([x[0], y[0]], [b["C_mean"], b[fit_key][quantity]])
      else:  # Its minimum lies beyond its runs: not drawn.
        assert gid not in artists(fig, f"points-{quantity}")


def test_frontier_reaches_requested_prediction_budgets():
  analysis = {
    "runs": [{"C": 1e18}],
    "budgets": [{"budget": 1e18, "C_mean": 1e18}],
    "frontier": {
      "C": [1e17, 1e18, 1e19],
      "approach3": {"N_opt": {"value": [1.0, 2.0, 4.0], "lo": [None] * 3, "hi": [None] * 3}},
    },
    "predictions": [{"C": 1e21, "approach3": {"N_opt": {"value": 16.0, "lo": 15.0, "hi": 17.0}}}],
  }
  cur = frontier.curve(analysis, "approach3", "N_opt")
  np.testing.assert_allclose(cur["C"], [1e17, 1e18, 1e19, 1e21])
  np.testing.assert_allclose(cur["value"], [1, 2, 4, 16])
  inside, beyond = frontier.split_at(3e18, cur)
  assert inside["C"][-1] == beyond["C"][0] == 3e18
  assert inside["value"][-1] == pytest.approx(2.0 * 3 ** np.log10(2), rel=1e-9)


def test_loss_compute_runs_envelope_frontier_and_E(plotted, analysis):
  fig = plotted.figures["loss_compute"]
  drawn = sorted((x, y) for line in artists(fig, "runs").values() for x, y in zip(*xy(line)))
  assert drawn == sorted((r["C"], r["loss"]) for r in analysis["runs"])
  env = sorted(analysis["approach1"]["envelope"], key=lambda e: e["C"])
  x, y = xy(one(fig, "envelope"))
  np.testing.assert_allclose(x, [e["C"] for e in env])
  np.testing.assert_allclose(y, [e["loss"] for e in env])
  grid = np.array(analysis["frontier"]["C"])
  values = np.array(analysis["frontier"]["approach3"]["loss"]["value"])
  x, y = xy(one(fig, "frontier-loss"))
  c_max = max(r["C"] for r in analysis["runs"])
  at = nearest(x, grid[grid < c_max])
  np.testing.assert_allclose(y[at], values[grid < c_max])
  x, y = xy(one(fig, "extrapolation-loss"))
  np.testing.assert_allclose(y[-1], values[-1])
  assert xy(one(fig, "loss-floor"))[1][0] == fixtures.LOSS_FLOOR
  x, y = xy(one(fig, "E"))
  assert y[0] == analysis["approach3"]["params"]["E"]["value"]
  assert y[0] < min(r["loss"] for r in analysis["runs"])


def test_parametric_contours_are_the_fitted_law(plotted, analysis):
  fig = plotted.figures["parametric"]
  params = analysis["approach3"]["params"]
  contours = one(fig, "contours")
  assert len(contours.levels) >= 4
  for level, segments in zip(contours.levels, contours.allsegs):
    for seg in segments:
      predicted = parametric.loss(params, seg[:, 0], seg[:, 1])
      np.testing.assert_allclose(predicted, level, rtol=2e-3)
  drawn = sorted((x, y) for line in artists(fig, "runs").values() for x, y in zip(*xy(line)))
  assert drawn == sorted((r["N"], r["D"]) for r in analysis["runs"])
  flop = analysis["flop_model"]
  for b in analysis["budgets"]:
    x, y = xy(one(fig, style.gid("isoflop", b["budget"])))
    phi = sum(c * x**q for c, q in zip(flop["coefficients"], flop["powers"]))
    np.testing.assert_allclose(phi * y, b["C_mean"], rtol=1e-9)
  x, y = xy(one(fig, "frontier"))
  front = analysis["frontier"]["approach3"]
  inside = np.array(analysis["frontier"]["C"]) < max(r["C"] for r in analysis["runs"])
  at = nearest(x, np.array(front["N_opt"]["value"])[inside])
  np.testing.assert_allclose(x[at], np.array(front["N_opt"]["value"])[inside], rtol=1e-9)
  np.testing.assert_allclose(y[at], np.array(front["D_opt"]["value"])[inside])


def test_training_curves_come_from_metrics_jsonl(plotted, workdir):
  fig = plotted.figures["training_curves"]
  curves = artists(fig, "curve")
  run_ids = sorted(os.listdir(os.path.join(workdir, "runs")))
  assert len(run_ids) == len(fixtures.runs()["N"]) + 2
  for run_id in run_ids:
    x, y = xy(one(fig, f"curve:{run_id}"))
    with open(os.path.join(workdir, "runs", run_id, "metrics.jsonl")) as f:
      rows = [json.loads(line) for line in f if line.endswith("\n")]
    rows = [r for r in rows if np.isfinite(r["loss"])]
    np.testing.assert_allclose(x, [r["flops"] for r in rows])
    np.testing.assert_allclose(y, [r["loss"] for r in rows])
  # The crash-truncated last line is skipped; the unfinished run (no N) is grey.
  assert xy(one(fig, "curve:unfinished-s0"))[0].size == fixtures.LOG_STEPS // 2
  assert rgba(one(fig, "curve:unfinished-s0").get_color()) == rgba("0.5")
  assert len(curves) == len(run_ids)
  x, y = xy(one(fig, "final-eval"))
  assert x.size == len(fixtures.runs()["N"])  # every run with a final loss
  colours = {rgba(line.get_color()) for line in curves.values()}
  assert len(colours) > 10  # coloured by N


def test_training_curves_against_tokens(workdir, tmp_path):
  result = plotting.plot_workdir(
    workdir, out_dir=str(tmp_path), keep_figures=True, training_x="tokens"
  )
  fig = result.figures["training_curves"]
  run_id = sorted(os.listdir(os.path.join(workdir, "runs")))[0]
  with open(os.path.join(workdir, "runs", run_id, "metrics.jsonl")) as f:
    tokens = [json.loads(line)["tokens"] for line in f]
  np.testing.assert_allclose(xy(one(fig, f"curve:{run_id}"))[0], tokens)
  assert "tokens" in fig.axes[0].get_xlabel()


def test_residuals_against_C_and_N(plotted, analysis):
  fig = plotted.figures["residuals"]
  by_id = {r["run_id"]: r for r in analysis["runs"]}
  res = analysis["approach3"]["residuals"]
  for key in ("C", "N"):
    drawn = sorted(
      (x, y) for line in artists(fig, f"residuals-{key}").values() for x, y in zip(*xy(line))
    )
    assert drawn == sorted((by_id[r["run_id"]][key], r["log_residual"]) for r in res)


def test_a_budget_has_one_colour_in_every_figure(plotted):
  budget = 1e18
  colours = {
    "isoflop": one(plotted.figures["isoflop"], style.gid("points", budget)).get_color(),
    "frontier": one(plotted.figures["frontier"], style.gid("points-N_opt", budget)).get_color(),
    "loss": one(plotted.figures["loss_compute"], style.gid("runs", budget)).get_color(),
    "parametric": one(plotted.figures["parametric"], style.gid("runs", budget)).get_color(),
    "residuals": one(plotted.figures["residuals"], style.gid("residuals-C", budget)).get_color(),
  }
  assert len({rgba(c) for c in colours.values()}) == 1, colours
  small = one(plotted.figures["isoflop"], style.gid("points", 1e17)).get_color()
  assert rgba(small) != rgba(colours["isoflop"])


def test_external_results_analysis(external):
  out, result = external
  assert result.errors == []
  assert set(result.paths) == set(plotting.NAMES) - {"training_curves"}
  assert any("training_curves" in m and "no workdir" in m for m in result.missing)
  for name, (png,) in result.paths.items():
    assert png_size(png) == plotting.figure_size(name)
  fig = result.figures["isoflop"]
  for b in out["approach2"]["budgets"]:
    x, y = xy(one(fig, style.gid("points", b["budget"])))
    np.testing.assert_allclose(y, [p["loss"] for p in sorted(b["points"], key=lambda p: p["N"])])
  drawn = sum(xy(line)[0].size for line in artists(result.figures["loss_compute"], "runs").values())
  assert drawn == len(out["runs"]) == 35


def test_report_has_every_section_and_figure(plotted, analysis):
  with open(plotted.report) as f:
    text = f.read()
  for section in (
    "## Setup",
    "## Fitted laws",
    "## Held-out check",
    "## Predictions",
    "## Warnings",
    "## Missing",
    "## Figures",
  ):
    assert section in text, section
  for name in plotting.NAMES:
    assert f"({name}.png)" in text
  assert "C = `xla`" in text
  assert style.estimate(analysis["approach3"]["params"]["a"]) in text
  assert f"{analysis['holdout']['approach3']['mean_abs_rel_error']:.2%}" in text
  assert "unfinished-s0" in text and "left out of the power-law fit" in text
  assert text.count("\\*") >= 2  # the extrapolated prediction rows are marked
