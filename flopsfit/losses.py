"""Loss plugins: `loss(outputs, batch) -> (scalar, metrics)`."""

import jax.numpy as jnp
import optax


def next_token_cross_entropy(pad_id: int | None = None):
  """Mean cross-entropy of logits[:, t] against tokens[:, t+1], skipping padding.

  Padding is a target equal to `pad_id`, or a 0 in an optional `batch["mask"]` ([B, T]).
  Metrics: accuracy, perplexity, and `weight` (predicted tokens, to average over batches).
  """

  def loss(outputs: dict, batch: dict):
    logits_BxTxV = outputs["logits"][:, :-1].astype(jnp.float32)
    targets_BxT = batch["tokens"][:, 1:]
    mask_BxT = jnp.ones(targets_BxT.shape, jnp.float32)
    if pad_id is not None:
      mask_BxT = mask_BxT * (targets_BxT != pad_id)
    if "mask" in batch:
      mask_BxT = mask_BxT * batch["mask"][:, 1:].astype(jnp.float32)
    xent_BxT = optax.softmax_cross_entropy_with_integer_labels(logits_BxTxV, targets_BxT)
    weight = mask_BxT.sum()
    denom = jnp.maximum(weight, 1.0)
    mean = (xent_BxT * mask_BxT).sum() / denom
    correct = (jnp.argmax(logits_BxTxV, -1) == targets_BxT) * mask_BxT
    return mean, {"accuracy": correct.sum() / denom, "perplexity": jnp.exp(mean), "weight": weight}

  return loss
