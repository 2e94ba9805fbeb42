"""The config of one run of sweep.json."""


def run_config(config, run: dict, devices: int | None = None):
  """The config of one planned run: shape, budget, seed, hyperparameters and mesh filled in;
  `devices` overrides train.devices (a packed worker uses all of its device group: 0)."""
  out = config.copy_and_resolve_references()
  with out.unlocked():
    for key, value in run["shape"].items():
      out.model.kwargs[key] = value
    out.train.budget_flops = run["budget_flops"]
    out.train.batch_size = run["batch_size"]
    out.optim.learning_rate = run["learning_rate"]
    out.seed = run["seed"]
    out.run = run["run_id"]
    if run.get("mesh"):  # the planner's choice (sweep.json), e.g. FSDP for a large model
      out.train.mesh = dict(run["mesh"])
    if run.get("cooldown"):  # the cooldown design's trunk or branch (sweep/cooldown.py)
      _cooldown_fields(out, run)
    if devices is not None:
      out.train.devices = devices
  return out


def _cooldown_fields(out, run: dict) -> None:
  """A trunk trains at constant lr after the warmup; a branch decays over its cooldown."""
  role = run["cooldown"]
  out.train.cooldown = {k: v for k, v in role.items() if k != "cooldown_steps"}
  out.optim.schedule = "constant" if role["role"] == "trunk" else "wsd"
  out.optim.warmup_steps = run["warmup_steps"]
  if role["role"] == "branch":  # decays over its last cooldown_steps = round(fraction · steps)
    out.optim.decay_fraction = run["decay_fraction"]
