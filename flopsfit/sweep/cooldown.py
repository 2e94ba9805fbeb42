"""The cooldown sweep design (Hägele et al. 2024): one warmup-stable trunk per shape, and a
short linear cooldown branched from it at each IsoFLOP budget, so one trunk gives several
(N, D) points (docs/sweep-design.md).

A branch at budget C has the steps T = floor(C / FLOPs per step) that an IsoFLOP run would
have; its last K = round(sweep.cooldown_fraction · T) steps are its own cooldown (the wsd
schedule's decay with decay_fraction = cooldown_fraction, so every branch of a trunk shares one
compiled step), the first S = T - K are the trunk's. So a point is accounted exactly as an
IsoFLOP run (T steps, within one step of C), and the design spends every trunk once plus
every cooldown.
"""

from flopsfit.config_check import ConfigError
from flopsfit.engine.optim import decay_steps

DESIGNS = ("isoflop", "cooldown")


def design_of(config) -> str:
  """config.sweep.design, checked (with the cooldown's settings when it is "cooldown")."""
  design = config.sweep.get("design", "isoflop") or "isoflop"
  if design not in DESIGNS:
    raise ConfigError(f"config.sweep.design: expected one of {DESIGNS}, got {design!r}")
  if design == "cooldown":
    check_warmup(config)
  return design


def cooldown_fraction(sweep) -> float:
  """sweep.cooldown_fraction: each point's share of steps spent in its own cooldown."""
  fraction = sweep.get("cooldown_fraction", 0.2)
  if not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
    raise ConfigError(
      f"config.sweep.cooldown_fraction: expected a fraction in (0, 1), got {fraction!r}"
    )
  return float(fraction)


def check_warmup(config) -> None:
  """The trunk's warmup must end before its first branch point."""
  fraction = cooldown_fraction(config.sweep)
  if config.optim.warmup_fraction + fraction >= 1:
    raise ConfigError(
      f"config.sweep.cooldown_fraction: {fraction} plus config.optim.warmup_fraction "
      f"{config.optim.warmup_fraction} must be < 1 (warmup ends before the cooldown starts)"
    )


def shapes_of(kept_by_budget: list[list[dict]]) -> list[dict]:
  """Every shape the IsoFLOP plan kept at some budget, smallest first."""
  seen = {}
  for runs in kept_by_budget:
    for run in runs:
      seen.setdefault(tuple(sorted(run["shape"].items())), run)
  return [r["shape"] for r in sorted(seen.values(), key=lambda r: r["params"]["non_embedding"])]


def plan(ctx, budgets: list[float], kept_by_budget: list[list[dict]], evaluate) -> list[dict]:
  """Trunks and branches (unseeded, run ids filled in by `seeded`): every shape the IsoFLOP
  plan kept, branched at every budget where it is feasible (`evaluate` gives no reason)."""
  fraction = cooldown_fraction(ctx.config.sweep)
  groups: dict[tuple, list[dict]] = {}
  for shape in shapes_of(kept_by_budget):
    for budget in budgets:
      point = evaluate(ctx, budget, shape)
      if not point.get("reason"):
        key = (tuple(sorted(shape.items())), point["batch_size"], point["learning_rate"])
        groups.setdefault(key, []).append(point)
  shapes = [key[0] for key in groups]
  if len(set(shapes)) < len(shapes):
    raise ConfigError(
      "config.hparams: the rule gives one shape different batch sizes or learning rates at "
      "different budgets; sweep.design 'cooldown' needs one per shape (one trunk)"
    )
  runs = []
  for points in groups.values():
    runs += trunk_and_branches(points, fraction, ctx.config.optim.warmup_fraction)
  return runs


def trunk_and_branches(points: list[dict], fraction: float, warmup_fraction: float) -> list[dict]:
  """One trunk for `points` (one shape, batch size and learning rate), then its branches."""
  points = sorted(points, key=lambda p: p["steps"])
  warmup = max(1, round(warmup_fraction * points[0]["steps"]))
  branches = []
  for p in points:
    cooldown = int(decay_steps(fraction, p["steps"]))  # exactly the wsd schedule's decay
    step = p["steps"] - cooldown
    if step < warmup:
      continue  # too few steps to branch after the warmup
    branches.append(
      {
        **p,
        "warmup_steps": warmup,
        "decay_fraction": fraction,
        "train_flops": cooldown * p["flops_per_step"],
        "cooldown": {
          "role": "branch",
          "trunk": "",
          "branch_step": step,
          "cooldown_steps": cooldown,
        },
      }
    )
  if not branches:
    return []
  last, fps = branches[-1], points[0]["flops_per_step"]
  steps = last["cooldown"]["branch_step"]
  tokens = steps * last["tokens"] / last["steps"]
  trunk = {
    **{k: last[k] for k in ("shape", "batch_size", "learning_rate", "params", "mesh")},
    "budget_flops": (steps + 0.5) * fps,  # floor(budget / fps) = steps, whatever the rounding
    "flops_per_step": fps,
    "steps": steps,
    "spent_flops": steps * fps,
    "train_flops": steps * fps,
    "tokens": tokens,
    "tokens_per_param": tokens / last["params"]["non_embedding"],
    "epochs": last["epochs"] * steps / last["steps"],
    "memory_bytes": last["memory_bytes"],
    "warmup_steps": warmup,
    "cooldown": {"role": "trunk", "branch_steps": [b["cooldown"]["branch_step"] for b in branches]},
  }
  return [trunk] + branches


def seed(entry: dict, seed: int) -> None:
  """Run ids of one seed's copy: a trunk is `trunk-<shape>-s<seed>`, and its branches name it."""
  if not entry.get("cooldown"):
    return
  trunk = "trunk-" + entry["run_id"].split("-", 1)[1]  # c<budget>-<shape>-s<seed> -> trunk-...
  entry["cooldown"] = dict(entry["cooldown"])
  if is_trunk(entry):
    entry["run_id"] = trunk
  else:
    entry["cooldown"]["trunk"] = trunk


def is_trunk(run: dict) -> bool:
  return (run.get("cooldown") or {}).get("role") == "trunk"


def totals(runs: list[dict]) -> dict:
  """sweep.json `design` FLOPs: spent by the design (trunks once, plus every cooldown), and
  what its points are accounted (each its trunk share plus its cooldown)."""
  trunks = [r for r in runs if is_trunk(r)]
  points = [r for r in runs if not is_trunk(r)]
  return {
    "trunks": len(trunks),
    "points": len(points),
    "total_flops": sum(r.get("train_flops", r["spent_flops"]) for r in runs),
    "points_flops": sum(r["spent_flops"] for r in points),
  }
