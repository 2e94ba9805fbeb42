"""Plans an IsoFLOP sweep into <workdir>/sweep.json: `python -m flopsfit.plan --config=...`."""

import sys

from absl import app, flags
from ml_collections import config_flags

from flopsfit import config_check, plugins
from flopsfit.engine import distributed, logs
from flopsfit.sweep import planner

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py[:args]).")
_FORCE = flags.DEFINE_bool(
  "force",
  False,
  "Re-plan a workdir that holds another sweep's results, moving them to <workdir>/archive/<time>/.",
)
_PROBE = flags.DEFINE_bool("probe", True, "Time a few steps to estimate each run's duration.")
_PARALLEL = flags.DEFINE_string(
  "parallel", "auto", "The `train --parallel` the time estimate assumes (auto, N or 1)."
)
flags.mark_flags_as_required(["config"])


def main(argv):
  logs.flopsfit_info_only()
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  config = _CONFIG.value
  try:
    config_check.check_fields(config, sweep=True)
    distributed.enable_compilation_cache(config)
    plan = planner.load_or_plan(
      config,
      force=_FORCE.value,
      probe=_PROBE.value and config.sweep.get("probe", True),
      parallel=_PARALLEL.value,
    )
  except (planner.PlanError, plugins.PluginError, config_check.ConfigError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  print(planner.format_plan(plan))
  print(f"wrote {config.workdir}/sweep.json")


if __name__ == "__main__":
  app.run(main)
