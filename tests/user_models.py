"""Model plugins that draw random numbers when called, written as a user would from the contract.

`factory(**kwargs, rngs=nnx.Rngs(seed))` returns an `nnx.Module`; `__call__(batch)` returns
`{"logits": [B, T, V]}`. They keep `nnx.Rngs` streams and draw from them inside `__call__`
(the Linen model through `flopsfit.models.linen:LinenModel`, Flax's NNX bridge).
"""

import jax
import jax.numpy as jnp
from flax import linen, nnx


class DropoutMLP(nnx.Module):
  """Token embedding, a GELU MLP with dropout on its hidden units, and an output head."""

  def __init__(self, *, vocab_size: int, d_model: int, dropout: float = 0.1, rngs: nnx.Rngs):
    self.embed = nnx.Embed(vocab_size, d_model, rngs=rngs)
    self.up = nnx.Linear(d_model, 4 * d_model, rngs=rngs)
    self.dropout = nnx.Dropout(dropout, rngs=rngs)
    self.down = nnx.Linear(4 * d_model, d_model, rngs=rngs)
    self.head = nnx.Linear(d_model, vocab_size, rngs=rngs)

  def __call__(self, batch: dict) -> dict:
    x_BxTxD = self.embed(batch["tokens"])
    h_BxTxF = self.dropout(jax.nn.gelu(self.up(x_BxTxD)))
    return {"logits": self.head(x_BxTxD + self.down(h_BxTxF))}


class LSTM(nnx.Module):
  """An LSTM language model on Flax's `nnx.RNN`, which draws its initial carry from `rngs`."""

  def __init__(self, *, vocab_size: int, d_model: int, rngs: nnx.Rngs):
    self.embed = nnx.Embed(vocab_size, d_model, rngs=rngs)
    self.rnn = nnx.RNN(nnx.OptimizedLSTMCell(d_model, d_model, rngs=rngs), rngs=rngs)
    self.head = nnx.Linear(d_model, vocab_size, rngs=rngs)

  def __call__(self, batch: dict) -> dict:
    return {"logits": self.head(self.rnn(self.embed(batch["tokens"])))}


class LinenDropoutLM(linen.Module):
  """A Flax Linen language model with dropout, for `flopsfit.models.linen:LinenModel`."""

  vocab_size: int
  d_model: int
  dropout: float = 0.1

  @linen.compact
  def __call__(self, batch: dict, deterministic: bool) -> dict:
    x_BxTxD = linen.Embed(self.vocab_size, self.d_model)(batch["tokens"])
    h_BxTxF = jax.nn.gelu(linen.Dense(4 * self.d_model)(x_BxTxD))
    h_BxTxF = linen.Dropout(self.dropout, deterministic=deterministic)(h_BxTxF)
    return {"logits": linen.Dense(self.vocab_size)(x_BxTxD + linen.Dense(self.d_model)(h_BxTxF))}


class PoisonedMLP(DropoutMLP):
  """DropoutMLP whose logits are NaN for about half of the seeds (a number drawn at init above
  0.5): runs that diverge from their first step beside runs of the same config that do not."""

  def __init__(self, *, rngs: nnx.Rngs, **kwargs):
    super().__init__(rngs=rngs, **kwargs)
    self.poison = nnx.Variable(jax.random.uniform(rngs.params()))

  def __call__(self, batch: dict) -> dict:
    logits = super().__call__(batch)["logits"]
    return {"logits": logits + jnp.where(self.poison[...] > 0.5, jnp.nan, 0.0)}
