"""AdamW with warmup then cosine or warmup-stable-decay, over exactly the run's steps.

The schedule takes the run's total step count as an array, so one compiled step serves
every budget: FLOPs per step are counted before the step count is known.
"""

import jax
import jax.numpy as jnp
import optax

SCHEDULES = ("cosine", "wsd")


def learning_rate(optim, step: jax.Array, total_steps: jax.Array) -> jax.Array:
  """The learning rate of 0-based `step` of a run of `total_steps` steps.

  Linear warmup over `warmup_fraction` of the run to `learning_rate`, then either a cosine
  to `final_lr_fraction`·peak at the last step, or (wsd) a constant phase and a linear decay
  over the last `decay_fraction` of the run.
  """
  step = jnp.asarray(step, jnp.float32)
  total = jnp.maximum(jnp.asarray(total_steps, jnp.float32), 1.0)
  peak = optim.learning_rate
  final = peak * optim.final_lr_fraction
  warmup = jnp.maximum(1.0, jnp.round(optim.warmup_fraction * total))
  warm = peak * jnp.minimum(1.0, (step + 1.0) / warmup)
  if optim.schedule == "cosine":
    progress = jnp.clip((step - warmup) / jnp.maximum(1.0, total - 1.0 - warmup), 0.0, 1.0)
    after = final + (peak - final) * 0.5 * (1.0 + jnp.cos(jnp.pi * progress))
  elif optim.schedule == "wsd":
    decay = jnp.maximum(1.0, jnp.round(optim.decay_fraction * total))
    progress = jnp.clip((step - (total - decay)) / jnp.maximum(1.0, decay - 1.0), 0.0, 1.0)
    after = peak + (final - peak) * progress
  else:
    raise ValueError(f"config.optim.schedule: expected one of {SCHEDULES}, got {optim.schedule!r}")
  return jnp.where(step < warmup, warm, after)


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
