import jax.numpy as jnp
import numpy as np
import pytest

from flopsfit import losses


def test_next_token_accuracy_counts_the_targets_predicted_first_and_skips_padding():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(4, 9, 7)).astype(np.float32)
  tokens = rng.integers(0, 7, (4, 9)).astype(np.int32)
  tokens[:, 1::2] = logits[:, :-1].argmax(-1)[:, ::2]  # about half the targets predicted
  tokens[3, 5:] = 0  # padding
  mean, metrics = losses.next_token_cross_entropy(pad_id=0)(
    {"logits": jnp.asarray(logits)}, {"tokens": jnp.asarray(tokens)}
  )
  targets, mask = tokens[:, 1:], tokens[:, 1:] != 0
  predicted = logits[:, :-1].argmax(-1) == targets
  assert metrics["weight"] == mask.sum()
  assert float(metrics["accuracy"]) == pytest.approx((predicted & mask).sum() / mask.sum())
  log_probs = logits[:, :-1] - np.log(np.exp(logits[:, :-1]).sum(-1, keepdims=True))
  xent = -np.take_along_axis(log_probs, targets[..., None], -1)[..., 0]
  assert float(mean) == pytest.approx((xent * mask).sum() / mask.sum(), rel=1e-5)
