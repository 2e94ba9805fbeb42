"""Checks the fitted law one decade up: `python -m flopsfit.validate --config=...`.

Trains the model scaling_laws.json predicts to be compute-optimal at a budget beyond the sweep
(`--factor` × the largest swept budget, or `--budget`), and one size below and above it, in
`<workdir>/validation/` (re-run the command to resume); then writes `<workdir>/validation.json`:
whether its loss and its place in the valley fall inside the predicted intervals. Kept short on
purpose: the logic is in flopsfit.sweep.validate and flopsfit.analysis.validation.
"""

import sys

from absl import flags
from ml_collections import config_flags

from flopsfit import analysis, cli, config_check, plugins
from flopsfit import workdir as workdir_lib
from flopsfit.analysis import validation
from flopsfit.engine import checkpoints, distributed, logs
from flopsfit.sweep import planner, runner
from flopsfit.sweep import validate as validate_lib

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py[:args]).")
_BUDGET = flags.DEFINE_float("budget", None, "FLOP budget to check at (default: --factor).")
_FACTOR = flags.DEFINE_float("factor", 10.0, "Budget = this × the largest swept budget.")
_SPREAD = flags.DEFINE_float(
  "spread", 2.0, "The sizes below and above are this many times smaller and larger."
)
_CLAIM_TIMEOUT = flags.DEFINE_float(
  "claim_timeout", 60.0, "Seconds without a heartbeat after which a run's claim is taken over."
)
flags.mark_flags_as_required(["config"])


def main(argv):
  del argv  # cli.run refuses positional arguments
  logs.flopsfit_info_only()
  config = _CONFIG.value
  config_check.check_fields(config, sweep=True)
  workdir_lib.check_workdir(config.workdir)
  distributed.enable_compilation_cache(config)
  try:
    _, rows = validate_lib.train_validation(
      config, _BUDGET.value, _FACTOR.value, _SPREAD.value, _CLAIM_TIMEOUT.value
    )
  except checkpoints.Preempted as e:
    print(f"preempted ({e}): checkpoint saved; re-run the same command to resume", file=sys.stderr)
    sys.exit(cli.PREEMPTED)
  print(runner.format_summary(rows))
  out = validation.validate_workdir(config.workdir)
  print(validation.format_validation(out))
  print(f"wrote {workdir_lib.validation_result_path(config.workdir)}")
  if out["missing_runs"]:
    sys.exit(cli.INCOMPLETE)


if __name__ == "__main__":
  cli.run(
    main,
    (plugins.PluginError, config_check.ConfigError, planner.PlanError, analysis.InputError),
  )
