"""Plans an IsoFLOP sweep into <workdir>/sweep.json: `python -m flopsfit.plan --config=...`."""

from absl import flags
from ml_collections import config_flags

from flopsfit import cli, config_check, plugins
from flopsfit import workdir as workdir_lib
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
  del argv  # cli.run refuses positional arguments
  logs.flopsfit_info_only()
  config = _CONFIG.value
  config_check.check_fields(config, sweep=True)
  workdir_lib.check_workdir(config.workdir)
  distributed.enable_compilation_cache(config)
  plan = planner.load_or_plan(
    config,
    force=_FORCE.value,
    probe=_PROBE.value and config.sweep.get("probe", True),
    parallel=_PARALLEL.value,
  )
  print(planner.format_plan(plan))
  print(f"wrote {workdir_lib.sweep_path(config.workdir)}")


if __name__ == "__main__":
  cli.run(main, (planner.PlanError, plugins.PluginError, config_check.ConfigError))
