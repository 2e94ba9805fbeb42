"""The FLOP and parameter conventions a law can be fitted in, and how a result.json is read in
them: the one table that options validation, the printed summary, report.md and the figures'
axis labels all use."""

import dataclasses
import math
from typing import Any


@dataclasses.dataclass(frozen=True)
class Convention:
  label: str  # short, for an axis label
  meaning: str  # one phrase, for the report


# What C is: the key of result.json "flops".
FLOPS = {
  "xla": Convention(
    "XLA-measured",
    "FLOPs of the compiled train step from XLA's cost analysis, times the steps run",
  ),
  "6ND_total": Convention("6·N·D, N total", "6·N·D with N all parameters"),
  "6ND_non_embedding": Convention(
    "6·N·D, N non-embedding", "6·N·D with N the non-embedding parameters"
  ),
  "attention_inclusive": Convention(
    "attention-inclusive", "6·N·D plus the attention FLOPs, Chinchilla App. F style"
  ),
}
# What N is: the key of result.json "params".
PARAMS = {
  "non_embedding": Convention("non-embedding", "parameters outside the embedding tables"),
  "total": Convention("total", "all parameters"),
}
FLOPS_CONVENTIONS = tuple(FLOPS)
PARAMS_CONVENTIONS = tuple(PARAMS)
DEFAULT_FLOPS = "xla"
DEFAULT_PARAMS = "non_embedding"
DEFAULT_DATA = "tokens"


def flops_label(name: str) -> str:
  """The short label of a FLOP convention; an unknown one (a CSV column) as given."""
  return FLOPS[name].label if name in FLOPS else name


def params_label(name: str) -> str:
  return PARAMS[name].label if name in PARAMS else name


def flops_meaning(name: str) -> str:
  """What C means in this convention, or '' for a convention not in the table."""
  return FLOPS[name].meaning if name in FLOPS else ""


def run_of_result(
  result: Any, flops: str = DEFAULT_FLOPS, params: str = DEFAULT_PARAMS
) -> dict[str, Any] | str:
  """One run of a result.json as numbers: run_id, N, D, C, loss, budget in the conventions
  `flops` (C) and `params` (N), and `lineage` (a cooldown branch's trunk, else None); or, when
  it cannot be fitted, the reason as a string."""
  if not isinstance(result, dict):
    return "result.json is not a JSON object"
  if (result.get("cooldown") or {}).get("role") == "trunk":
    return "trunk of the cooldown design (constant lr, no cooldown): its branches are the points"
  status = result.get("status")
  if status != "completed":
    error = result.get("error")
    return f"status {status!r}" + (f": {error}" if error else "")
  try:
    values = {
      "loss": result["final_eval_loss"],
      "N": result["params"][params],
      "C": result["flops"][flops],
      "D": result["tokens"],
      "budget": result["budget_flops"],
    }
  except (KeyError, TypeError) as e:
    return f"result.json lacks field {e}"
  for name, value in values.items():
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
      what = "final_eval_loss" if name == "loss" else name
      return f"{what} is {value!r}, not a finite number"
    if name != "loss" and value <= 0:
      return f"{name} is {value!r}, not positive"
  trunk = (result.get("cooldown") or {}).get("trunk")
  return {
    "run_id": result.get("run_id"),
    **{k: float(v) for k, v in values.items()},
    "lineage": str(trunk) if trunk else None,
  }
