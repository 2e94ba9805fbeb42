"""Loss plugin: next-token cross-entropy with optional label smoothing."""

import jax
import jax.numpy as jnp
import optax


def smoothed_next_token_loss(smoothing: float = 0.0):
  """Factory (flopsfit.contracts.LossFactory): returns `loss(outputs, batch) -> (scalar,
  metrics)`. Predicts tokens[:, 1:] from logits[:, :-1]; the targets are mixed with a uniform
  distribution by `smoothing`. Metrics: the plain cross-entropy, accuracy, and `weight` (the
  targets counted, so eval averages batches by it)."""

  def loss(outputs: dict, batch: dict):
    logits_BxTxV = outputs["logits"][:, :-1].astype(jnp.float32)
    targets_BxT = batch["tokens"][:, 1:]
    vocab = logits_BxTxV.shape[-1]
    onehot_BxTxV = jax.nn.one_hot(targets_BxT, vocab)
    soft_BxTxV = (1.0 - smoothing) * onehot_BxTxV + smoothing / vocab
    value = optax.softmax_cross_entropy(logits_BxTxV, soft_BxTxV).mean()
    xent = optax.softmax_cross_entropy(logits_BxTxV, onehot_BxTxV).mean()
    accuracy = (jnp.argmax(logits_BxTxV, -1) == targets_BxT).mean()
    return value, {"xent": xent, "accuracy": accuracy, "weight": jnp.float32(targets_BxT.size)}

  return loss
