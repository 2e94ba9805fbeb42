"""Typed failures of the analysis: bad input (stop) and a fit that cannot be made (report)."""


class InputError(Exception):
  """Unusable input: a missing file, column or flag. The message names it, in one line."""


class FitError(Exception):
  """An approach cannot be fitted on these runs (too few points, ...). Others still run.

  `details` holds what was computed before the failure (e.g. Approach 2's per-budget curves),
  so the output can still show it.
  """

  def __init__(self, message: str, details: dict | None = None):
    super().__init__(message)
    self.details = details or {}
