"""Run-to-run noise from seeds: estimated on replicas with known noise, used by the bootstrap,
and compared with each budget's valley."""

import numpy as np
import pytest

from flopsfit import analysis
from flopsfit.analysis import noise, pipeline
from tests.analysis import synthetic

LAW = synthetic.UNEQUAL
BUDGETS = (1e17, 1e18, 1e19)


def replicas(sigma: float, seeds: int = 4, sizes: int = 7, seed: int = 0) -> dict[str, np.ndarray]:
  """Each shape of a noise-free IsoFLOP grid trained `seeds` times, each final loss with
  Gaussian noise of standard deviation `sigma` (nats)."""
  base = synthetic.isoflop_runs(LAW, BUDGETS, sizes=sizes, noise=0.0, seed=seed)
  runs = {k: np.repeat(v, seeds) for k, v in base.items()}
  runs["loss"] = runs["loss"] + sigma * np.random.default_rng(seed + 1).standard_normal(
    runs["loss"].size
  )
  return runs


def test_the_noise_estimate_recovers_a_known_noise():
  for sigma in (0.005, 0.05):
    section = noise.estimate(synthetic.table(replicas(sigma)))
    assert section["dof"] == 3 * 7 * 3  # 21 shapes, 4 seeds each
    assert section["pooled_std"] == pytest.approx(sigma, rel=0.2)
    assert len(section["shapes"]) == 21 and all(s["runs"] == 4 for s in section["shapes"])
    stds = [s["std"] for s in section["shapes"]]
    assert np.median(stds) == pytest.approx(sigma, rel=0.35)


def test_valleys_are_deeper_than_small_noise_and_not_than_large():
  """The grid spans a factor 6 either side of the optimum: its ends rise about 0.1 nats."""
  quiet = noise.estimate(synthetic.table(replicas(0.005)))
  assert all(v["deeper_than_noise"] for v in quiet["valleys"])
  loud = noise.estimate(synthetic.table(replicas(1.0)))
  assert not any(v["deeper_than_noise"] for v in loud["valleys"])
  out = pipeline.analyze_table(
    synthetic.table(replicas(0.3)), analysis.AnalysisOptions(bootstrap_samples=0)
  )
  shallow = [v["budget"] for v in out["noise"]["valleys"] if not v["deeper_than_noise"]]
  warned = [w for w in out["warnings"] if "is not deeper than the run-to-run noise" in w]
  assert shallow and len(warned) == len(shallow)


def test_without_seeds_there_is_no_noise_section_and_the_bootstrap_is_over_runs():
  out = pipeline.analyze_table(
    synthetic.table(synthetic.isoflop_runs(LAW, BUDGETS, sizes=7)),
    analysis.AnalysisOptions(bootstrap_samples=8),
  )
  assert out["noise"] is None and out["bootstrap"]["unit"] == "run"


def test_the_bootstrap_resamples_shapes_with_their_seeds():
  """Every resample keeps each budget's number of runs, and a shape drawn k times contributes
  k draws per seed it has (a shape left out contributes none)."""
  table = synthetic.table(replicas(0.01, seeds=3))
  counts = noise.cluster_counts(table, samples=200, seed=0, by_budget=True)
  cluster = noise.clusters(table)
  for g in range(table.num_groups):
    assert np.all(counts[:, table.group == g].sum(axis=1) == np.sum(table.group == g))
  per_cluster = np.stack([counts[:, cluster == c].sum(axis=1) for c in range(cluster.max() + 1)])
  assert np.all(per_cluster % 3 == 0)
  assert np.mean(per_cluster == 0) == pytest.approx((6 / 7) ** 7, abs=0.03)  # shapes left out


def test_seeds_widen_the_intervals_as_the_noise_grows():
  """More noise between seeds, wider bootstrap intervals: the noise enters them."""
  widths = []
  for sigma in (0.002, 0.03):
    out = pipeline.analyze_table(
      synthetic.table(replicas(sigma, seeds=3)), analysis.AnalysisOptions(bootstrap_samples=64)
    )
    assert out["bootstrap"]["unit"] == "shape with its seeds"
    exponent = out["approach2"]["N_opt"]["exponent"]
    widths.append(exponent["hi"] - exponent["lo"])
  assert widths[1] > 2 * widths[0]


def test_the_report_says_whether_each_valley_is_deeper_than_the_noise():
  from flopsfit.plotting import inputs, report

  out = pipeline.analyze_table(
    synthetic.table(replicas(0.005)), analysis.AnalysisOptions(bootstrap_samples=0)
  )
  text = report.render(inputs.from_analysis(out), {}, [])
  section = text.split("## Run-to-run noise", 1)[1].split("##", 1)[0]
  assert f"std {out['noise']['pooled_std']:.3g}" in section
  assert section.count(": deeper than the noise") == 3
