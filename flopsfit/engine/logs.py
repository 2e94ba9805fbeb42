"""Console logging for the binaries: flopsfit's progress lines, and only warnings from libraries."""

import logging
import os

from absl import logging as absl_logging


def flopsfit_info_only() -> None:
  """INFO lines from flopsfit's own modules; WARNING and above from everything (Orbax logs
  every file it writes at INFO, which would bury the progress lines)."""
  absl_logging.use_absl_handler()  # as absl.app.run does: sweep workers run without it
  absl_logging.set_verbosity(absl_logging.INFO)
  package = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # flopsfit/
  absl_logging.get_absl_handler().addFilter(
    lambda record: record.levelno >= logging.WARNING or record.pathname.startswith(package)
  )
