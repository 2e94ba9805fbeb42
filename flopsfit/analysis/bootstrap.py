"""Bootstrap over runs: resampled run counts, every approach refitted on each, and intervals.

Runs are drawn with replacement (as many as there are), by default within each budget so every
resample keeps the IsoFLOP design (`bootstrap_by_budget`); a resample enters every fit as integer
run weights. Points that share a training run (the cooldown design's branches of one trunk) share
its noise, so they are drawn together: trunks with replacement, each with all its branches
(`lineage_counts`; a trunk spans budgets, so these draws are not stratified by budget).
Approaches 1 and 2 are refitted exactly, vectorised over resamples. Approach 3 is refitted on
every resample by one batched L-BFGS (`approach3.fit_weighted`) from four starts: the full-data
optimum and the endpoints of the three next-best distinct basins of the full-data grid
search (a resample can move the optimum to another basin); the lowest of the four is kept.
Intervals are central quantiles over the resamples whose fit succeeded; "failed" counts the rest
(e.g. a resample in which fewer than 2 Approach 2 budgets have an interior minimum).
"""

import warnings
from typing import Any

import numpy as np

from flopsfit.analysis import approach1, approach2, approach3
from flopsfit.analysis.results import RunTable


def counts(table: RunTable, samples: int, seed: int, by_budget: bool) -> np.ndarray:
  """[samples, R] how often each run is drawn in each resample."""
  rng = np.random.default_rng(seed)
  out = np.zeros((samples, table.size), dtype=np.int64)
  strata = (
    [np.flatnonzero(table.group == g) for g in range(table.num_groups)]
    if by_budget
    else [np.arange(table.size)]
  )
  for members in strata:
    if members.size:
      out[:, members] = rng.multinomial(
        members.size, np.full(members.size, 1.0 / members.size), size=samples
      )
  return out


def lineage_counts(table: RunTable, samples: int, seed: int) -> np.ndarray:
  """[samples, R] bootstrap counts that draw training runs (trunks) with replacement, as many as
  there are: a trunk drawn k times gives each of its points weight k."""
  rng = np.random.default_rng(seed)
  lineage = table.lineages()
  units = int(lineage.max()) + 1
  draws = rng.multinomial(units, np.full(units, 1.0 / units), size=samples)
  return draws[:, lineage].astype(np.int64)


def refit(
  table: RunTable, counts_BxR: np.ndarray, fits: dict[str, Any], delta: float
) -> dict[str, dict[str, np.ndarray]]:
  """Per approach that fitted on the full data, its parameters on every resample."""
  out = {}
  if "approach1" in fits:
    out["approach1"] = approach1.laws_batched(table, approach1.envelope_batched(table, counts_BxR))
  if "approach2" in fits:
    out["approach2"] = approach2.laws_batched(table, approach2.optima_batched(table, counts_BxR))
  if "approach3" in fits:
    data = approach3.Data.from_arrays(table.N, table.D, table.loss)
    theta, objective = approach3.fit_weighted(
      data, delta, counts_BxR, fits["approach3"].basin_starts
    )
    out["approach3"] = {"theta": theta, "objective": objective}
  return out


def interval(samples: np.ndarray | None, value: float, level: float) -> dict[str, Any]:
  """{"value", "lo", "hi"}: the point estimate and the central `level` quantiles of `samples`."""
  out = {"value": _float(value), "lo": None, "hi": None}
  if samples is not None:
    finite = np.asarray(samples, float)[np.isfinite(samples)]
    if finite.size >= 2:
      lo, hi = np.quantile(finite, [(1 - level) / 2, (1 + level) / 2])
      out["lo"], out["hi"] = float(lo), float(hi)
  return out


def bands(samples_BxM: np.ndarray | None, values_M: np.ndarray, level: float) -> dict[str, list]:
  """{"value", "lo", "hi"} lists over a grid (e.g. of C), from [B, M] samples."""
  out = {"value": [_float(v) for v in values_M], "lo": None, "hi": None}
  if samples_BxM is not None and samples_BxM.shape[0] >= 2:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", RuntimeWarning)  # All-NaN columns give NaN: fine.
      lo, hi = np.nanquantile(samples_BxM, [(1 - level) / 2, (1 + level) / 2], axis=0)
    out["lo"], out["hi"] = [_float(v) for v in lo], [_float(v) for v in hi]
  return out


def _float(v) -> float | None:
  v = float(v)
  return v if np.isfinite(v) else None
