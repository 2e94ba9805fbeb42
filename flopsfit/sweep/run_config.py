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
    if devices is not None:
      out.train.devices = devices
  return out
