"""Analysis options: the FLOP and parameter conventions, fitter and bootstrap settings."""

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from flopsfit.analysis.conventions import (
  DEFAULT_FLOPS,
  DEFAULT_PARAMS,
  FLOPS_CONVENTIONS,
  PARAMS_CONVENTIONS,
)
from flopsfit.analysis.errors import InputError


@dataclasses.dataclass(frozen=True)
class AnalysisOptions:
  """How to fit. Every field is recorded in scaling_laws.json under "options"."""

  flops_convention: str = DEFAULT_FLOPS  # Which result.json "flops" entry is C.
  params_convention: str = DEFAULT_PARAMS  # Which result.json "params" entry is N.
  huber_delta: float = 1e-3
  bootstrap_samples: int = 1000
  # Resample runs within each budget (keeps the IsoFLOP design); None: only when budgets are
  # given (a workdir, or a CSV with --budget_column), not when they are inferred by clustering C.
  bootstrap_by_budget: bool | None = None
  seed: int = 0
  interval: float = 0.95  # Central bootstrap interval reported as lo, hi.
  predict: Sequence[float] | None = None  # Budgets for the predictions table.
  max_loss: float | None = None  # Runs with loss >= this are excluded (outliers).
  budget_rtol: float = 0.05  # CSV without a budget column: C within this ratio share a budget.
  frontier_points: int = 41  # C grid for the stored frontier bands.

  def __post_init__(self):
    if self.flops_convention not in FLOPS_CONVENTIONS:
      raise InputError(
        f"analysis.flops_convention: expected one of {FLOPS_CONVENTIONS}, "
        f"found {self.flops_convention!r}"
      )
    if self.params_convention not in PARAMS_CONVENTIONS:
      raise InputError(
        f"analysis.params_convention: expected one of {PARAMS_CONVENTIONS}, "
        f"found {self.params_convention!r}"
      )
    if not self.huber_delta > 0:
      raise InputError(f"analysis.huber_delta: expected > 0, found {self.huber_delta}")
    if self.bootstrap_samples < 0:
      raise InputError(f"analysis.bootstrap_samples: expected >= 0, found {self.bootstrap_samples}")
    if not 0 < self.interval < 1:
      raise InputError(f"analysis.interval: expected in (0, 1), found {self.interval}")
    if not self.budget_rtol >= 0:
      raise InputError(f"analysis.budget_rtol: expected >= 0, found {self.budget_rtol}")
    if self.max_loss is not None and not math.isfinite(self.max_loss):
      raise InputError(f"analysis.max_loss: expected a finite loss, found {self.max_loss}")
    if self.frontier_points < 2:
      raise InputError(f"analysis.frontier_points: expected >= 2, found {self.frontier_points}")
    if self.predict is not None and any(not c > 0 for c in self.predict):
      raise InputError(f"predict: budgets must be positive, found {list(self.predict)}")

  def to_json(self) -> dict[str, Any]:
    out = dataclasses.asdict(self)
    out["predict"] = None if self.predict is None else [float(c) for c in self.predict]
    return out


def from_config(section: Any, **overrides: Any) -> AnalysisOptions:
  """Builds options from a config's optional `analysis` ConfigDict (or dict); unknown keys fail."""
  fields = {f.name for f in dataclasses.fields(AnalysisOptions)}
  values = {}
  if section is not None:
    items = section.items() if hasattr(section, "items") else dict(section).items()
    for key, value in items:
      if key not in fields:
        raise InputError(f"config.analysis.{key}: unknown field; known fields are {sorted(fields)}")
      values[key] = tuple(value) if key == "predict" and value is not None else value
  values.update({k: v for k, v in overrides.items() if v is not None})
  return AnalysisOptions(**values)
