"""Checks a fitted law beyond the sweep: plans and trains the model it predicts to be
compute-optimal at a larger budget, and one size below and above it.

The runs live in `<workdir>/validation/` (its own sweep.json and runs/), so they are resumable
like a sweep's runs and never enter the sweep's analysis; `flopsfit.analysis.validation`
compares them with the predictions.
"""

import uuid

from flopsfit import identity as identity_lib
from flopsfit import law_lookup
from flopsfit import plugins as plugins_lib
from flopsfit import workdir as workdir_lib
from flopsfit.sweep import claims, planner, runner

ROLES = ("below", "centre", "above")


def plan_validation(
  config, budget: float | None = None, factor: float = 10.0, spread: float = 2.0
) -> dict:
  """The validation plan: the law's optimum at `budget` (default `factor` × the largest swept
  budget) and sizes `spread` times smaller and larger, each with its exact steps."""
  laws = _read_laws(config.workdir)
  swept = [float(b["budget"]) for b in laws.get("budgets") or []]
  if not swept:
    raise planner.PlanError(f"{workdir_lib.scaling_laws_path(config.workdir)}: no budgets fitted")
  if budget is None:
    if not factor > 1:
      raise planner.PlanError(f"--factor: expected > 1, got {factor}")
    budget = factor * max(swept)
  if not budget > 0 or not spread > 1:
    raise planner.PlanError(f"--budget, --spread: expected > 0 and > 1, got {budget}, {spread}")
  try:
    approach = law_lookup.usable_approach(laws)
    predicted = law_lookup.at(laws, approach, "N_opt", budget)
  except law_lookup.LawError as e:
    raise planner.PlanError(f"{workdir_lib.scaling_laws_path(config.workdir)}: {e}") from None
  ctx = planner.context(config)
  runs = []
  for role, shape in _shapes(config, predicted["value"], spread).items():
    run = planner.evaluate(ctx, budget, shape)
    if "reason" in run:
      raise planner.PlanError(
        f"validation run {run['run_id']} ({role} the predicted optimum): {run['reason']}; "
        "choose another --budget or --spread"
      )
    runs += [{**r, "role": role} for r in planner.seeded(run, config.sweep.seeds)]
  return {
    "version": planner.SWEEP_VERSION,
    "identity": identity_lib.identity(config),
    "budget": budget,
    "factor": budget / max(swept),
    "spread": spread,
    "approach": approach,
    "predicted_N_opt": predicted,
    "flops_convention": (laws.get("conventions") or {}).get("flops"),
    "runs": runs,
  }


def _read_laws(workdir: str) -> dict:
  path = workdir_lib.scaling_laws_path(workdir)
  try:
    return workdir_lib.read_json_object(path)
  except workdir_lib.WorkdirFileError as e:
    raise planner.PlanError(f"{e}; run `python -m flopsfit.analyze` first") from None


def _shapes(config, centre: float, spread: float) -> dict[str, dict]:
  """Three distinct shapes of the size rule: at the predicted N, `spread` times smaller and
  larger (the spread widens when the rule's ladder is too coarse to tell them apart)."""
  rule, spec = plugins_lib.size_rule(config), config.model.size_rule.factory
  shape_for = lambda target: plugins_lib.shape_for(rule, spec, target)
  wider = spread
  for _ in range(6):
    shapes = {r: shape_for(centre * wider**k) for r, k in zip(ROLES, (-1, 0, 1))}
    if len({tuple(sorted(s.items())) for s in shapes.values()}) == 3:
      return shapes
    wider *= 1.5
  # The ladder ends below the optimum (its smallest shape): the optimum and two sizes above.
  ladder = [shape_for(centre * spread**k) for k in range(12)]
  distinct = [s for i, s in enumerate(ladder) if s not in ladder[:i]]
  if len(distinct) >= 3:
    return dict(zip(("centre", "above", "above_2"), distinct[:3]))
  raise planner.PlanError(f"the size rule gives no three distinct shapes around N={centre:.3g}")


def validation_config(config):
  """`config` writing into `<workdir>/validation/`, sharing the sweep's compilation cache."""
  out = config.copy_and_resolve_references()
  with out.unlocked():
    out.compilation_cache_dir = config.get("compilation_cache_dir") or workdir_lib.jax_cache_dir(
      config.workdir
    )
    out.workdir = workdir_lib.validation_dir(config.workdir)
  return out


def train_validation(
  config,
  budget: float | None = None,
  factor: float = 10.0,
  spread: float = 2.0,
  claim_timeout: float = claims.DEFAULT_TIMEOUT,
) -> tuple[dict, list[dict]]:
  """Plans the validation into `<workdir>/validation/sweep.json` and trains its unfinished
  runs in this process (a re-run resumes). Returns (plan, one summary row per run)."""
  plan = plan_validation(config, budget, factor, spread)
  vconfig = validation_config(config)
  workdir_lib.write_json_atomic(workdir_lib.sweep_path(vconfig.workdir), plan)
  owner = claims.identity(worker=0, sweep=uuid.uuid4().hex)
  rows, _ = runner.train_claimed(vconfig, plan["runs"], owner, claim_timeout)
  return plan, rows
