"""The fields a config must have, checked before anything runs, with one-line errors.

A config written by hand (or an old one) that lacks a field or gives it the wrong type fails
here naming the field, instead of with an AttributeError deep inside training.
`configs/gpt.py` has every field, with comments.
"""

import numbers
from collections.abc import Sequence


class ConfigError(ValueError):
  """The config cannot be run; the one-line message names the field."""


_INT, _NUMBER, _STR, _BOOL, _SEQUENCE = "an integer", "a number", "a string", "a bool", "a list"

REQUIRED = {
  "workdir": _STR,
  "seed": _INT,
  "model.factory": _STR,
  "dataset.factory": _STR,
  "loss.factory": _STR,
  "train.budget_flops": _NUMBER,
  "train.batch_size": _INT,
  "train.steps_per_call": _INT,
  "train.log_every": _INT,
  "checkpoint.every_seconds": _NUMBER,
  "checkpoint.every_steps": _INT,
  "checkpoint.keep": _INT,
  "checkpoint.on_finish": _STR,
  "optim.learning_rate": _NUMBER,
  "optim.schedule": _STR,
  "optim.warmup_fraction": _NUMBER,
  "optim.decay_fraction": _NUMBER,
  "optim.final_lr_fraction": _NUMBER,
  "optim.weight_decay": _NUMBER,
  "optim.b1": _NUMBER,
  "optim.b2": _NUMBER,
  "optim.eps": _NUMBER,
  "optim.grad_clip": _NUMBER,
  "eval.tokens": _INT,
  "eval.batch_size": _INT,
}

REQUIRED_FOR_SWEEP = {
  "sweep.budgets": _SEQUENCE,
  "sweep.shapes_per_budget": _INT,
  "sweep.decades": _NUMBER,
  "sweep.tokens_per_param": _NUMBER,
  "sweep.seeds": _SEQUENCE,
  "sweep.min_steps": _INT,
  "sweep.budget_tolerance": _NUMBER,
  "sweep.max_epochs": _NUMBER,
  "sweep.memory_fraction": _NUMBER,
  "sweep.probe": _BOOL,
}


_MISSING = object()

# Fields a config may leave out (their defaults apply), checked when present.
OPTIONAL = {
  "train.vmap_seeds": _BOOL,
}


def _has_type(value, expected: str) -> bool:
  if isinstance(value, bool):
    return expected == _BOOL
  if expected == _INT:
    return isinstance(value, numbers.Integral)
  if expected == _NUMBER:
    return isinstance(value, numbers.Real)
  if expected == _STR:
    return isinstance(value, str)
  if expected == _SEQUENCE:
    return isinstance(value, Sequence) and not isinstance(value, str)
  return False


def check_fields(config, sweep: bool = False) -> None:
  """Raises ConfigError for the first required field that is missing or of the wrong type.

  `sweep`: the sweep section's fields are required too (planning and training a sweep).
  """
  required = {**REQUIRED, **(REQUIRED_FOR_SWEEP if sweep else {})}
  for field, expected in {**required, **OPTIONAL}.items():
    value = config
    for part in field.split("."):
      value = value[part] if hasattr(value, "keys") and part in value else _MISSING
      if value is _MISSING:
        break
    if value is _MISSING and field in OPTIONAL:
      continue
    if value is _MISSING:
      raise ConfigError(
        f"config.{field}: missing; expected {expected} (configs/gpt.py shows every field)"
      )
    if not _has_type(value, expected):
      raise ConfigError(
        f"config.{field}: expected {expected}, got {value!r} ({type(value).__name__})"
      )
