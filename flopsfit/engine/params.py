"""Exact parameter counts of an (abstract) model: total, embedding, non-embedding, matmul."""

import math

import jax
from flax import nnx


def _size(state) -> int:
  return sum(math.prod(x.shape) for x in jax.tree.leaves(state))


def count_params(model: nnx.Module) -> dict:
  """Counts parameters of a model built with `nnx.eval_shape` (no memory allocated).

  - embedding: tables of `nnx.Embed` modules (input lookups, not matmuls);
  - non_embedding: total - embedding (an untied output head counts here);
  - matmul_active: parameters multiplied with activations per token: every >=2-D parameter
    outside embedding tables, plus the tables when `model.tied_embeddings` is true (the head
    is then a matmul with the table). A model may define `matmul_active_params()` instead.
  """
  total = _size(nnx.state(model, nnx.Param))
  embedding = sum(
    _size(nnx.state(m, nnx.Param)) for _, m in nnx.iter_modules(model) if isinstance(m, nnx.Embed)
  )
  if hasattr(model, "matmul_active_params"):
    matmul = int(model.matmul_active_params())
  else:
    embed_ids = {
      id(x)
      for _, m in nnx.iter_modules(model)
      if isinstance(m, nnx.Embed)
      for x in jax.tree.leaves(nnx.state(m, nnx.Param))
    }
    matmul = sum(
      math.prod(x.shape)
      for x in jax.tree.leaves(nnx.state(model, nnx.Param))
      if len(x.shape) >= 2 and id(x) not in embed_ids
    )
    if getattr(model, "tied_embeddings", False):
      matmul += embedding
  return {
    "total": total,
    "embedding": embedding,
    "non_embedding": total - embedding,
    "matmul_active": matmul,
  }
