"""Run-to-run noise of the final loss, from runs that repeat a shape with other seeds.

Replicas are runs of one budget with the same N and D (`sweep.seeds` of two or more trains
every planned shape once per seed, for the same steps). Their spread estimates the noise: the
standard deviation per shape, and pooled over shapes (the root of the degrees-of-freedom-weighted
mean variance). A budget's valley
is deeper than the noise when both of its ends rise above its lowest shape by more than twice
the standard error of that difference (about a 95% level for Gaussian noise).
"""

from typing import Any

import numpy as np

from flopsfit.analysis.results import RunTable

SIGNIFICANCE = 2.0  # depth / standard error above which a valley counts as deeper than the noise


def clusters(table: RunTable) -> np.ndarray:
  """[R] cluster index of each run: runs of one budget with the same N and D (seeds of one
  planned run) share one."""
  keys = [(int(g), float(n), float(d)) for g, n, d in zip(table.group, table.N, table.D)]
  index = {k: i for i, k in enumerate(sorted(set(keys)))}
  return np.array([index[k] for k in keys], dtype=np.int64)


def has_replicas(table: RunTable) -> bool:
  return table.size > 0 and np.bincount(clusters(table)).max() > 1


def estimate(table: RunTable) -> dict[str, Any] | None:
  """The noise section of scaling_laws.json, or None without replicas."""
  if not has_replicas(table):
    return None
  cluster = clusters(table)
  shapes, pooled_ss, dof = [], 0.0, 0
  for c in range(cluster.max() + 1):
    members = np.flatnonzero(cluster == c)
    losses = table.loss[members]
    std = float(np.std(losses, ddof=1)) if members.size > 1 else None
    if members.size > 1:
      pooled_ss += float(np.sum((losses - losses.mean()) ** 2))
      dof += members.size - 1
    shapes.append(
      {
        "budget": float(table.budgets[table.group[members[0]]]),
        "N": float(table.N[members[0]]),
        "runs": int(members.size),
        "mean_loss": float(losses.mean()),
        "std": std,
      }
    )
  pooled = float(np.sqrt(pooled_ss / dof))
  return {
    "shapes": shapes,
    "pooled_std": pooled,
    "dof": dof,
    "valleys": [_valley(table, cluster, g, pooled) for g in range(table.num_groups)],
  }


def _valley(table: RunTable, cluster: np.ndarray, group: int, std: float) -> dict[str, Any]:
  """Depth of one budget's valley (the lower of its two ends above its lowest shape, in mean
  loss per shape) against the standard error of that difference."""
  in_group = table.group == group
  ids = np.unique(cluster[in_group])
  n = np.array([table.N[cluster == c][0] for c in ids])
  order = ids[np.argsort(n)]
  means = np.array([table.loss[cluster == c].mean() for c in order])
  counts = np.array([np.sum(cluster == c) for c in order])
  out = {"budget": float(table.budgets[group]), "shapes": int(order.size)}
  if order.size < 3:
    return {**out, "depth": None, "standard_error": None, "deeper_than_noise": None}
  low = int(np.argmin(means))
  ends = [0, order.size - 1]
  rises = [means[e] - means[low] for e in ends]
  end = ends[int(np.argmin(rises))]
  se = std * np.sqrt(1.0 / counts[end] + 1.0 / counts[low])
  depth = float(min(rises))
  return {
    **out,
    "depth": depth,
    "standard_error": float(se),
    "deeper_than_noise": bool(low not in ends and depth > SIGNIFICANCE * se),
  }


def cluster_counts(table: RunTable, samples: int, seed: int, by_budget: bool) -> np.ndarray:
  """[samples, R] bootstrap counts that resample shapes with their seeds: clusters are drawn
  with replacement (within each budget when `by_budget`), and each draw of a cluster draws its
  runs with replacement, so the noise between seeds enters every interval."""
  rng = np.random.default_rng(seed)
  cluster = clusters(table)
  out = np.zeros((samples, table.size), dtype=np.int64)
  ids = np.arange(cluster.max() + 1)
  group_of = np.array([table.group[cluster == c][0] for c in ids])
  strata = [ids[group_of == g] for g in range(table.num_groups)] if by_budget else [ids]
  for members in strata:
    draws = rng.multinomial(members.size, np.full(members.size, 1.0 / members.size), size=samples)
    for j, c in enumerate(members):
      runs = np.flatnonzero(cluster == c)
      for b in np.flatnonzero(draws[:, j]):
        picks = rng.multinomial(draws[b, j] * runs.size, np.full(runs.size, 1.0 / runs.size))
        out[b, runs] += picks
  return out
