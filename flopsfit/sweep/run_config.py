"""The config of one run of sweep.json."""


def run_config(config, run: dict, devices: int | None = None):
  """The config of one planned run: shape, budget, seed and hyperparameters filled in;
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
    if devices is not None:
      out.train.devices = devices
  return out
