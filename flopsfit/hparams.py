"""Hyperparameter rules: learning rate and batch size as functions of a run's shape and budget.

A rule is named in `config.hparams` like a plugin and called as
`rule(shape, budget_flops) -> {"learning_rate": float, "batch_size": int}`.
"""

import math


def width_scaled_adamw(
  *,
  lr_constant: float = 0.8,
  lr_max: float = 2e-2,
  width_field: str = "d_model",
  batch_size: int = 32,
  batch_budget_exponent: float = 0.0,
  reference_budget: float = 1e12,
  batch_min: int = 8,
  batch_max: int = 4096,
):
  """AdamW learning rate ∝ 1/width, capped; batch size a power of two growing with budget.

  lr = min(lr_max, lr_constant / width). Adam's update size is independent of the gradient
  scale, so a hidden matrix's change in output grows with its fan-in: scaling the rate by
  1/width keeps that change comparable across widths (the muP rule for hidden layers), and the
  cap stops the narrowest models from being driven unstably. batch = batch_size ·
  (budget / reference_budget)^batch_budget_exponent, rounded to a power of two and clipped:
  one batch size for every size within a budget, so sizes differ only in shape.
  """

  def rule(shape: dict, budget_flops: float) -> dict:
    if width_field not in shape:
      raise ValueError(
        f"config.hparams.kwargs.width_field: {width_field!r} is not a shape "
        f"field (shape has {sorted(shape)})"
      )
    raw = batch_size * (budget_flops / reference_budget) ** batch_budget_exponent
    batch = int(min(batch_max, max(batch_min, 2 ** round(math.log2(raw)))))
    return {"learning_rate": min(lr_max, lr_constant / shape[width_field]), "batch_size": batch}

  return rule
