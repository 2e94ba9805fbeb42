"""The config of one run of sweep.json."""


def run_config(config, run: dict):
  """The config of one planned run: shape, budget, seed and hyperparameters filled in."""
  out = config.copy_and_resolve_references()
  with out.unlocked():
    for key, value in run["shape"].items():
      out.model.kwargs[key] = value
    out.train.budget_flops = run["budget_flops"]
    out.train.batch_size = run["batch_size"]
    out.optim.learning_rate = run["learning_rate"]
    out.seed = run["seed"]
    out.run = run["run_id"]
  return out
