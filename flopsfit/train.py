"""Trains models to exact FLOP budgets: `python -m flopsfit.train --config=configs/gpt.py`.

Kept short on purpose: flags in, one library call, an exit code out.
"""

import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from flopsfit import plugins
from flopsfit import trainer

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py[:args]).")
flags.mark_flags_as_required(["config"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  try:
    result = trainer.train_run(_CONFIG.value)
  except (plugins.PluginError, trainer.ConfigError) as e:
    logging.error("%s", e)
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  if result["status"] != "completed":
    print(f"run {result['run_id']} {result['status']}: {result['error']}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  logging.set_verbosity(logging.INFO)
  app.run(main)
