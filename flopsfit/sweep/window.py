"""Which model sizes a budget can train, and which of them to plan.

A budget's feasible window is the range of sizes whose runs keep `sweep.min_steps` steps, need no
more data than `sweep.max_epochs` passes, fit in memory and spend the budget within
`sweep.budget_tolerance`. The planner first tries the prior's shapes (`sweep.shapes_per_budget`
over `sweep.decades` around the expected optimum); when some of them fall outside the window it
spreads the shapes over the window instead, re-centred on the part of the window nearest the
expected optimum. Sizes never compiled are judged from the FLOPs per record and the memory of the
compiled ones (log-log interpolation); every planned run is compiled and checked exactly.
"""

import math

import numpy as np

from flopsfit import plugins as plugins_lib

_POOL_MARGIN = 1.5  # decades searched beyond the prior's span on each side
_POOL_PER_DECADE = 12  # size-rule targets per decade of the pool
_ROUNDS = 4  # re-estimates after planned shapes turned out infeasible


def candidate_shapes(config, centre: float) -> list[dict]:
  """`sweep.shapes_per_budget` distinct shapes spread evenly in log N over `sweep.decades`
  decades around `centre` (from the size rule), or the config's explicit `sweep.shapes`."""
  sweep = config.sweep
  if sweep.get("shapes"):
    return [dict(s) for s in sweep.shapes]
  count, decades = sweep.shapes_per_budget, sweep.decades
  for widen in range(12):  # tiny N has few distinct shapes: widen the range until enough
    half = 0.5 * decades * (1.25**widen)
    shapes = _distinct(config, np.geomspace(centre / 10**half, centre * 10**half, 6 * count))
    if len(shapes) >= count:
      picks = np.unique(np.round(np.linspace(0, len(shapes) - 1, count)).astype(int))
      return [shapes[i] for i in picks]
  return shapes


def _distinct(config, targets) -> list[dict]:
  rule, spec = plugins_lib.size_rule(config), config.model.size_rule.factory
  shapes = []
  for t in targets:
    s = plugins_lib.shape_for(rule, spec, float(t))
    if s not in shapes:
      shapes.append(s)
  return shapes


def drop_reason(run: dict, sweep, available_units: float, memory) -> tuple[str, str] | None:
  """(limit, reason) when a run cannot be trained: limit is `min_steps`, `budget_tolerance`,
  `data` or `memory`; None when it can."""
  if run["steps"] < sweep.min_steps:
    return "min_steps", (
      f"too few steps: {run['steps']} < sweep.min_steps={sweep.min_steps} (short runs "
      "measure optimisation, not model size)"
    )
  miss = 1 - run["spent_flops"] / run["budget_flops"]
  if miss > sweep.budget_tolerance:
    return "budget_tolerance", (
      f"misses the budget by {miss:.2%} > sweep.budget_tolerance={sweep.budget_tolerance:g}"
    )
  if run["tokens"] > available_units:
    return "data", (
      f"needs {run['tokens']:.3g} units of data, the train split offers "
      f"{available_units:.3g} (sweep.max_epochs={sweep.max_epochs:g})"
    )
  if memory and run["memory_bytes"] and run["memory_bytes"] > sweep.memory_fraction * memory:
    mesh = run.get("mesh") or {"fsdp": 1, "tensor": 1}
    return "memory", (
      f"needs {run['memory_bytes'] / 2**30:.2f} GiB per device with fsdp={mesh['fsdp']}, "
      f"tensor={mesh['tensor']}, more than sweep.memory_fraction={sweep.memory_fraction:g} "
      f"of {memory / 2**30:.1f} GiB (sweep.device_memory_bytes)"
    )
  return None


def plan_budget(ctx, budget: float, centre: float, evaluate) -> tuple[list, list, dict]:
  """(runs kept, candidates dropped, the budget's window) at `budget`. `evaluate(ctx, budget,
  shape)` compiles a shape into a run dict, with `limit` and `reason` when it is infeasible."""
  sweep = ctx.config.sweep
  tried = {}
  for shape in candidate_shapes(ctx.config, centre):
    tried[_key(shape)] = evaluate(ctx, budget, shape)
  prior = list(tried.values())
  if sweep.get("shapes") or all("reason" not in r for r in prior):
    kept = [r for r in prior if "reason" not in r]
    window = {"N": _range(kept), "limits": {"below": None, "above": None}, "searched": False}
  else:
    pool = shape_pool(ctx, centre)
    kept, window = [], {"N": None, "limits": {"below": None, "above": None}, "searched": True}
    for _ in range(_ROUNDS):
      verdicts = [_verdict(ctx, budget, s, tried) for s in pool]
      block = _block(ctx, pool, verdicts, centre)
      if block is None:
        break
      lo, hi = block
      window["N"] = [ctx.counts(pool[lo])["non_embedding"], ctx.counts(pool[hi])["non_embedding"]]
      window["limits"] = {
        "below": verdicts[lo - 1] if lo > 0 else None,
        "above": verdicts[hi + 1] if hi + 1 < len(pool) else None,
      }
      usable = [s for s in pool[lo : hi + 1] if "reason" not in tried.get(_key(s), {})]
      if not usable:  # the estimates saw a feasible block; every shape of it, tried, is not
        break
      chosen = _pick(ctx, usable, centre, sweep.decades, sweep.shapes_per_budget)
      for shape in chosen:
        if _key(shape) not in tried:
          tried[_key(shape)] = evaluate(ctx, budget, shape)
      kept = [tried[_key(s)] for s in chosen]
      if all("reason" not in r for r in kept):
        break
      kept = [r for r in kept if "reason" not in r]
  if not sweep.get("shapes"):
    kept.sort(key=lambda r: r["params"]["non_embedding"])
  dropped = sorted(
    (r for r in tried.values() if "reason" in r), key=lambda r: r["params"]["non_embedding"]
  )
  window.update(_verdict_on(ctx, kept, centre, window, budget))
  window["recentred"] = {_key(r["shape"]) for r in kept} != {
    _key(r["shape"]) for r in prior if "reason" not in r
  }
  return kept, dropped, window


def _key(shape: dict) -> tuple:
  return tuple(sorted(shape.items()))


def _range(runs: list[dict]) -> list[int] | None:
  sizes = [r["params"]["non_embedding"] for r in runs]
  return [min(sizes), max(sizes)] if sizes else None


def shape_pool(ctx, centre: float) -> list[dict]:
  """Distinct shapes of the size rule from `_POOL_MARGIN` decades below the prior's span to as
  far above it, ascending in non-embedding N."""
  half = 0.5 * ctx.config.sweep.decades + _POOL_MARGIN
  count = int(math.ceil(2 * half * _POOL_PER_DECADE))
  shapes = _distinct(ctx.config, np.geomspace(centre / 10**half, centre * 10**half, count))
  return sorted(shapes, key=lambda s: ctx.counts(s)["non_embedding"])


def _verdict(ctx, budget: float, shape: dict, tried: dict) -> str | None:
  """The limit a shape breaks at `budget` (None: feasible): exact when it was compiled for this
  budget, else estimated from every shape compiled so far."""
  if _key(shape) in tried:
    return tried[_key(shape)].get("limit")
  hp = ctx.hparams(shape, budget)
  counts = ctx.counts(shape)
  per_record, memory = _estimates(ctx, counts)
  flops_per_step = per_record * hp["batch_size"]
  steps = int(budget // flops_per_step)
  run = {  # the budget miss is a sawtooth in FLOPs per step: only an exact count can tell it
    "steps": steps,
    "spent_flops": budget,
    "budget_flops": budget,
    "tokens": steps * hp["batch_size"] * ctx.units,
    "memory_bytes": memory,
  }
  found = drop_reason(run, ctx.config.sweep, ctx.available, ctx.memory)
  return found[0] if found else None


def _estimates(ctx, counts: dict) -> tuple[float, float | None]:
  """(FLOPs per record of a step, its memory) for a shape with parameter `counts`, interpolated
  in log-log from the compiled shapes (extrapolated along the outermost two)."""
  points = {}
  for (shape_key, batch, _), compiled in ctx.cache.items():
    params = ctx.counts(dict(shape_key))
    points.setdefault(params["matmul_active"], []).append(
      (compiled.flops_per_step / batch, compiled.memory_bytes, params["total"])
    )
  xs = np.array(sorted(points), float)
  flops = np.array([np.mean([p[0] for p in points[x]]) for x in xs])
  per_record = float(np.exp(_interp(np.log(counts["matmul_active"]), np.log(xs), np.log(flops))))
  memories = [(p[2], p[1]) for x in xs for p in points[x] if p[1]]
  if not memories:
    return per_record, None
  totals, bytes_ = (np.array(v, float) for v in zip(*sorted(memories)))
  memory = float(np.exp(_interp(np.log(counts["total"]), np.log(totals), np.log(bytes_))))
  return per_record, memory


def _interp(x: float, xs: np.ndarray, ys: np.ndarray) -> float:
  if xs.size == 1:
    return float(ys[0] + (x - xs[0]))  # proportional
  if x < xs[0] or x > xs[-1]:
    i = (0, 1) if x < xs[0] else (-2, -1)
    slope = (ys[i[1]] - ys[i[0]]) / (xs[i[1]] - xs[i[0]])
    return float(ys[i[0]] + slope * (x - xs[i[0]]))
  return float(np.interp(x, xs, ys))


def _block(ctx, pool, verdicts, centre) -> tuple[int, int] | None:
  """(first, last) pool index of the contiguous feasible block nearest the centre."""
  blocks, start = [], None
  verdicts = [None if v == "budget_tolerance" else v for v in verdicts]  # a miss is not a limit
  for i, v in enumerate([*verdicts, "end"]):
    if v is None and start is None:
      start = i
    elif v is not None and start is not None:
      blocks.append((start, i - 1))
      start = None
  if not blocks:
    return None

  def distance(block):
    lo, hi = (math.log(ctx.counts(pool[i])["non_embedding"]) for i in block)
    return max(lo - math.log(centre), math.log(centre) - hi, 0.0)

  return min(blocks, key=distance)


def _pick(ctx, shapes: list[dict], centre: float, decades: float, count: int) -> list[dict]:
  """`count` shapes of a feasible block, spread evenly over a span of `decades` decades placed
  as near the centre as the block allows (the whole block when it is narrower; the span widens
  until it holds `count` shapes)."""
  logs = np.log10([ctx.counts(s)["non_embedding"] for s in shapes])
  width, c = decades, math.log10(centre)
  while True:
    lo = min(max(c - width / 2, logs[0]), logs[-1] - width)
    inside = [i for i, x in enumerate(logs) if lo - 1e-9 <= x <= lo + width + 1e-9]
    if len(inside) >= count or width >= logs[-1] - logs[0]:
      break
    width *= 1.25
  inside = inside or list(range(len(shapes)))
  picks = np.unique(np.round(np.linspace(0, len(inside) - 1, min(count, len(inside)))).astype(int))
  return [shapes[inside[i]] for i in picks]


def _verdict_on(ctx, kept: list[dict], centre: float, window: dict, budget: float) -> dict:
  """Whether the kept runs can bracket an optimum, and, when not, what to change."""
  sizes = [r["params"]["non_embedding"] for r in kept]
  inside = len(sizes) >= 2 and sizes[0] < centre < sizes[-1]
  brackets = len(sizes) >= 3 and inside
  out = {"shapes": len(sizes), "centre_inside": inside, "brackets": brackets, "advice": None}
  if not brackets:
    batch = kept[0]["batch_size"] if kept else None
    out["advice"] = advice(ctx.config.sweep, sizes, centre, window, batch, ctx.available)
  return out


_FIX = {
  "min_steps": "larger models get fewer than sweep.min_steps={min_steps} steps: a larger budget, "
  "a smaller batch (now {batch}; halving it doubles every run's steps) or a lower sweep.min_steps",
  "data": "smaller models need more than the {available:.3g} units of data the train split offers "
  "(sweep.max_epochs={max_epochs:g}): more data, a larger sweep.max_epochs, or a smaller budget",
  "memory": "larger models do not fit in memory: a smaller batch or more devices",
  "budget_tolerance": "runs miss the budget by more than sweep.budget_tolerance: a larger budget",
}


def advice(sweep, sizes: list[int], centre: float, window: dict, batch, available) -> str:
  """One sentence per problem: too few shapes, the expected optimum outside the planned sizes,
  and for each limit of the window what to change."""
  fields = dict(
    min_steps=sweep.min_steps, batch=batch, available=available, max_epochs=sweep.max_epochs
  )
  limits = window.get("limits") or {}
  span = f"N {sizes[0]:,}-{sizes[-1]:,}" if sizes else "no size"
  parts = []
  if len(sizes) < 3:
    parts.append(f"only {len(sizes)} feasible shape(s) ({span}); 3 or more are needed")
  if sizes and centre >= sizes[-1]:
    parts.append(f"the expected optimum N≈{centre:.3g} is at or above the largest ({sizes[-1]:,})")
  elif sizes and centre <= sizes[0]:
    parts.append(f"the expected optimum N≈{centre:.3g} is at or below the smallest ({sizes[0]:,})")
  beyond = {
    "above": bool(sizes) and centre >= sizes[-1],
    "below": bool(sizes) and centre <= sizes[0],
  }
  for side in ("above", "below"):
    limit = limits.get(side)
    if limit and (len(sizes) < 3 or beyond[side]):
      parts.append(f"{side} the window, " + _FIX[limit].format(**fields))
  if not sizes:
    parts += [_FIX[k].format(**fields) for k in ("min_steps", "data")]
  return "; ".join(parts)


def warnings_of(windows: dict) -> list[str]:
  """One line per budget that cannot bracket an optimum."""
  return [
    f"budget {float(b):.3g} cannot bracket an optimum: {w['advice']}"
    for b, w in windows.items()
    if not w["brackets"]
  ]
