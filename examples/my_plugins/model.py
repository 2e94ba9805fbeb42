"""Model plugin: a causal 'context mixer' language model with dropout, and its size rule."""

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import nnx


class ContextMixer(nnx.Module):
  """Each position sees the embeddings of its last `context` tokens, concatenated, through a
  GELU MLP with dropout on the hidden units; a residual connection and an output head.

  Contract (flopsfit.contracts.Model): built as `ContextMixer(**kwargs, rngs=nnx.Rngs(seed))`,
  called on a batch `{"tokens": int32 [B, T]}`, returns `{"logits": float32 [B, T, V]}`.
  """

  def __init__(
    self,
    *,
    vocab_size: int,
    width: int,
    context: int = 4,
    dropout: float = 0.1,
    rngs: nnx.Rngs,
  ):
    self.context = context
    self.embed = nnx.Embed(vocab_size, width, rngs=rngs)
    self.up = nnx.Linear(context * width, 4 * width, rngs=rngs)
    self.dropout = nnx.Dropout(dropout, rngs=rngs)  # drops in model.train(), not in model.eval()
    self.down = nnx.Linear(4 * width, width, rngs=rngs)
    self.head = nnx.Linear(width, vocab_size, rngs=rngs)

  def __call__(self, batch: dict) -> dict:
    x_BxTxD = self.embed(batch["tokens"])
    t = x_BxTxD.shape[1]
    # Position t sees tokens t, t-1, ..., t-context+1 (zeros before the start): causal.
    past = [jnp.pad(x_BxTxD, ((0, 0), (k, 0), (0, 0)))[:, :t] for k in range(self.context)]
    h_BxTxF = self.dropout(jax.nn.gelu(self.up(jnp.concatenate(past, axis=-1))))
    return {"logits": self.head(x_BxTxD + self.down(h_BxTxF))}


@dataclasses.dataclass(frozen=True)
class WidthRule:
  """Size rule (flopsfit.contracts.SizeRule): the width whose non-embedding parameter count,
  about (4·context + 4)·width² + vocab_size·width, is closest to the target (multiples of 4)."""

  vocab_size: int
  context: int = 4

  def shape_for(self, target_params: float) -> dict:
    def params(width: int) -> float:
      return (4 * self.context + 4) * width**2 + self.vocab_size * width

    widths = range(4, 4 * int(math.sqrt(target_params)) + 8, 4)
    best = min(widths, key=lambda w: abs(math.log(params(w) / target_params)))
    return {"width": best}
