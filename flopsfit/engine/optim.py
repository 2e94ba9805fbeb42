"""AdamW with warmup then cosine, warmup-stable-decay or constant, over exactly the run's steps.

The schedule takes the run's total step count as an array, so one compiled step serves
every budget: FLOPs per step are counted before the step count is known. `warmup_steps`
(optional, 0: `warmup_fraction`) fixes the warmup in steps, so that the trunk of the cooldown
design ("constant") and each of its branches ("wsd") share the same learning rates up to the
branch step (docs/sweep-design.md) and all branches of a trunk share one compiled step.
"""

import jax
import jax.numpy as jnp
import optax

SCHEDULES = ("cosine", "wsd", "constant")


def learning_rate(optim, step: jax.Array, total_steps: jax.Array) -> jax.Array:
  """The learning rate of 0-based `step` of a run of `total_steps` steps.

  Linear warmup over `warmup_fraction` of the run (or `warmup_steps`) to `learning_rate`, then
  either a cosine to `final_lr_fraction`·peak at the last step, or (wsd) a constant phase and a
  linear decay over the last `decay_steps(decay_fraction, total)` steps, or (constant) the peak
  to the end.
  """
  step = jnp.asarray(step, jnp.float32)
  total = jnp.maximum(jnp.asarray(total_steps, jnp.float32), 1.0)
  peak = optim.learning_rate
  final = peak * optim.final_lr_fraction
  warmup = jnp.maximum(1.0, jnp.round(optim.warmup_fraction * total))
  if optim.get("warmup_steps", 0):
    warmup = jnp.asarray(float(optim.warmup_steps), jnp.float32)
  warm = peak * jnp.minimum(1.0, (step + 1.0) / warmup)
  if optim.schedule == "cosine":
    progress = jnp.clip((step - warmup) / jnp.maximum(1.0, total - 1.0 - warmup), 0.0, 1.0)
    after = final + (peak - final) * 0.5 * (1.0 + jnp.cos(jnp.pi * progress))
  elif optim.schedule == "wsd":
    decay = decay_steps(optim.decay_fraction, total)
    progress = jnp.clip((step - (total - decay)) / jnp.maximum(1.0, decay - 1.0), 0.0, 1.0)
    after = peak + (final - peak) * progress
  elif optim.schedule == "constant":
    after = jnp.full_like(step, peak)
  else:
    raise ValueError(f"config.optim.schedule: expected one of {SCHEDULES}, got {optim.schedule!r}")
  return jnp.where(step < warmup, warm, after)


def decay_steps(fraction: float, total_steps) -> jax.Array:
  """Steps of the wsd schedule's final decay: max(1, round(fraction · total)) in float32 (the
  cooldown planner uses this very function, so its branch steps match the schedule)."""
  total = jnp.asarray(total_steps, jnp.float32)
  return jnp.maximum(1.0, jnp.round(jnp.float32(fraction) * total))


def _decay_mask(params):
  """Weight decay on matrices only, not on norm scales or biases."""
  return jax.tree.map(lambda p: p.ndim >= 2, params)


def adamw_direction(optim) -> optax.GradientTransformation:
  """Clipped AdamW update direction at learning rate 1; the step scales it by -lr."""
  return optax.chain(
    optax.clip_by_global_norm(optim.grad_clip),
    optax.scale_by_adam(b1=optim.b1, b2=optim.b2, eps=optim.eps),
    optax.add_decayed_weights(optim.weight_decay, mask=_decay_mask),
  )
