"""Loss plugins: `loss(outputs, batch) -> (scalar, metrics)`."""

import jax
import jax.numpy as jnp
import optax


def next_token_cross_entropy(pad_id: int | None = None):
  """Mean cross-entropy of logits[:, t] against tokens[:, t+1], skipping padding.

  Padding is a target equal to `pad_id`, or a 0 in an optional `batch["mask"]` ([B, T]).
  Metrics: accuracy (the target's logit is the largest; a tie counts), perplexity, and
  `weight` (predicted tokens, to average over batches).
  """

  def loss(outputs: dict, batch: dict):
    # Position t predicts token t+1; the last position has none and is masked out. The logits
    # are used whole, and the target's logit is picked by a select, not a gather: so the
    # gradient of the loss is one elementwise pass over [B, T, V] (a slice's gradient would be a
    # pad and a gather's a scatter, each another pass over the largest tensor of the step).
    logits_BxTxV = outputs["logits"].astype(jnp.float32)
    tokens_BxT = batch["tokens"]
    targets_BxT = jnp.roll(tokens_BxT, -1, axis=1)
    mask_BxT = jnp.broadcast_to(
      jnp.arange(tokens_BxT.shape[1]) < tokens_BxT.shape[1] - 1, tokens_BxT.shape
    ).astype(jnp.float32)
    if pad_id is not None:
      mask_BxT = mask_BxT * (targets_BxT != pad_id)
    if "mask" in batch:
      mask_BxT = mask_BxT * jnp.roll(batch["mask"], -1, axis=1).astype(jnp.float32)
    is_target_BxTxV = jnp.arange(logits_BxTxV.shape[-1]) == targets_BxT[..., None]
    target_BxT = jnp.where(is_target_BxTxV, logits_BxTxV, 0.0).sum(axis=-1)
    xent_BxT = jax.nn.logsumexp(logits_BxTxV, axis=-1) - target_BxT
    weight = mask_BxT.sum()
    denom = jnp.maximum(weight, 1.0)
    mean = (xent_BxT * mask_BxT).sum() / denom
    # Correct where the target's logit is the largest (a tie counts): a max, which the
    # log-softmax already takes, instead of argmax's slow (value, index) reduction.
    correct = (target_BxT >= logits_BxTxV.max(axis=-1)) * mask_BxT
    return mean, {"accuracy": correct.sum() / denom, "perplexity": jnp.exp(mean), "weight": weight}

  return loss


def classification_cross_entropy(label_smoothing: float = 0.0):
  """Mean cross-entropy of `logits` [B, K] against integer `batch["label"]` [B].

  `label_smoothing` mixes that fraction of a uniform distribution into the targets (0: plain
  cross-entropy). Metrics: accuracy, and `weight` (examples, to average over batches).
  """
  if not 0.0 <= label_smoothing < 1.0:
    raise ValueError(f"loss label_smoothing: expected a value in [0, 1), got {label_smoothing}")

  def loss(outputs: dict, batch: dict):
    logits_BxK = outputs["logits"].astype(jnp.float32)
    labels_B = batch["label"]
    targets_BxK = optax.smooth_labels(
      jax.nn.one_hot(labels_B, logits_BxK.shape[-1]), label_smoothing
    )
    mean = optax.softmax_cross_entropy(logits_BxK, targets_BxK).mean()
    correct = (jnp.argmax(logits_BxK, -1) == labels_B).astype(jnp.float32)
    return mean, {"accuracy": correct.mean(), "weight": jnp.float32(labels_B.shape[0])}

  return loss
