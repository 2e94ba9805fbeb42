"""A vision transformer (ViT) in Flax NNX: linear patch embedding, learned positions, pre-norm
blocks, mean pooling or a class token, and a linear classification head."""

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import nnx

from flopsfit.models.gpt import Mlp

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
POOLS = ("mean", "cls")


class Attention(nnx.Module):
  """Multi-head self-attention over all patches (not causal), no positions of its own."""

  def __init__(self, d_model: int, n_heads: int, dtype, rngs: nnx.Rngs):
    self.n_heads, self.head_dim = n_heads, d_model // n_heads
    init = nnx.initializers.normal(1.0 / math.sqrt(d_model))
    linear = dict(use_bias=False, kernel_init=init, dtype=dtype, rngs=rngs)
    self.qkv = nnx.Linear(d_model, 3 * d_model, **linear)
    self.out = nnx.Linear(d_model, d_model, **linear)

  def __call__(self, x_BxTxD: jax.Array) -> jax.Array:
    b, t, d = x_BxTxD.shape
    qkv_BxTx3xHxK = self.qkv(x_BxTxD).reshape(b, t, 3, self.n_heads, self.head_dim)
    q, k, v = qkv_BxTx3xHxK[:, :, 0], qkv_BxTx3xHxK[:, :, 1], qkv_BxTx3xHxK[:, :, 2]
    return self.out(jax.nn.dot_product_attention(q, k, v).reshape(b, t, d))


class Block(nnx.Module):
  def __init__(self, d_model: int, n_heads: int, dtype, rngs: nnx.Rngs):
    self.attn_norm = nnx.LayerNorm(d_model, dtype=dtype, rngs=rngs)
    self.attn = Attention(d_model, n_heads, dtype, rngs)
    self.mlp_norm = nnx.LayerNorm(d_model, dtype=dtype, rngs=rngs)
    self.mlp = Mlp(d_model, "gelu", dtype, rngs)

  def __call__(self, x_BxTxD: jax.Array) -> jax.Array:
    x_BxTxD = x_BxTxD + self.attn(self.attn_norm(x_BxTxD))
    return x_BxTxD + self.mlp(self.mlp_norm(x_BxTxD))


class ViT(nnx.Module):
  """`__call__({"image": [B, H, W, C], ...})` returns `{"logits": [B, num_classes]}`.

  The image is cut into (H/p)·(W/p) patches of p×p pixels, each mapped linearly to d_model
  and given a learned position; `n_layers` blocks of d_model / head_dim heads follow, then a
  LayerNorm, the mean over patches (or a learned class token's output) and a linear head.
  """

  def __init__(
    self,
    *,
    d_model: int,
    n_layers: int,
    patch_size: int = 7,
    head_dim: int = 8,
    image_size: int = 28,
    channels: int = 1,
    num_classes: int = 10,
    pool: str = "mean",
    dtype: str = "float32",
    rngs: nnx.Rngs,
  ):
    check_shape(d_model, n_layers, patch_size, head_dim, image_size, pool)
    compute_dtype = _DTYPES[dtype]
    self.patch_size, self.pool, self.d_model = patch_size, pool, d_model
    self.n_patches = (image_size // patch_size) ** 2
    pixels = patch_size * patch_size * channels
    self.patch_embed = nnx.Linear(
      pixels,
      d_model,
      kernel_init=nnx.initializers.normal(1.0 / math.sqrt(pixels)),
      dtype=compute_dtype,
      rngs=rngs,
    )
    self.positions = nnx.Param(0.02 * jax.random.normal(rngs.params(), (self.n_patches, d_model)))
    self.cls = nnx.Param(jnp.zeros((1, 1, d_model))) if pool == "cls" else None
    self.blocks = nnx.List(
      [Block(d_model, d_model // head_dim, compute_dtype, rngs) for _ in range(n_layers)]
    )
    self.final_norm = nnx.LayerNorm(d_model, dtype=compute_dtype, rngs=rngs)
    self.head = nnx.Linear(
      d_model, num_classes, kernel_init=nnx.initializers.zeros, dtype=compute_dtype, rngs=rngs
    )

  def patches(self, image_BxHxWxC: jax.Array) -> jax.Array:
    """[B, H, W, C] -> [B, (H/p)·(W/p), p·p·C], patches in row-major order."""
    b, h, w, c = image_BxHxWxC.shape
    p = self.patch_size
    x = image_BxHxWxC.reshape(b, h // p, p, w // p, p, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // p) * (w // p), p * p * c)

  def __call__(self, batch: dict) -> dict:
    x_BxPxD = self.patch_embed(self.patches(batch["image"])) + self.positions[...]
    if self.cls is not None:
      cls_Bx1xD = jnp.broadcast_to(self.cls[...], (x_BxPxD.shape[0], 1, self.d_model))
      x_BxPxD = jnp.concatenate([cls_Bx1xD.astype(x_BxPxD.dtype), x_BxPxD], axis=1)
    for block in self.blocks:
      x_BxPxD = block(x_BxPxD)
    x_BxPxD = self.final_norm(x_BxPxD)
    pooled_BxD = x_BxPxD[:, 0] if self.cls is not None else x_BxPxD.mean(axis=1)
    return {"logits": self.head(pooled_BxD).astype(jnp.float32)}

  def attention_flops_per_token(self, units_per_record: int) -> float:
    """Forward FLOPs of QKᵀ and the weighted values, 4·L·T²·d per image (T tokens: patches,
    plus the class token), per unit of D (an image, or a patch)."""
    tokens = self.n_patches + (self.cls is not None)
    return 4.0 * len(self.blocks) * tokens**2 * self.d_model / units_per_record


def check_shape(d_model, n_layers, patch_size, head_dim, image_size, pool) -> None:
  if d_model < 1 or n_layers < 1 or head_dim < 1 or d_model % head_dim:
    raise ValueError(
      f"model d_model: expected a positive multiple of head_dim {head_dim} and n_layers >= 1, "
      f"got d_model {d_model}, n_layers {n_layers}"
    )
  if patch_size < 1 or image_size % patch_size:
    raise ValueError(
      f"model patch_size: {patch_size} does not divide image_size {image_size} into patches"
    )
  if pool not in POOLS:
    raise ValueError(f"model pool: expected 'mean' or 'cls', got {pool!r}")


def param_count(
  d_model: int,
  n_layers: int,
  *,
  patch_size: int = 7,
  image_size: int = 28,
  channels: int = 1,
  num_classes: int = 10,
  pool: str = "mean",
) -> int:
  """The ViT's exact parameter count (all of them: a ViT has no embedding table)."""
  d, pixels = d_model, patch_size * patch_size * channels
  patches = (image_size // patch_size) ** 2
  block = 12 * d * d + 4 * d  # qkv 3d², out d², GELU MLP 8d², two LayerNorms
  stem = (pixels + 1) * d + patches * d + (d if pool == "cls" else 0)
  return stem + n_layers * block + 2 * d + (d + 1) * num_classes


@dataclasses.dataclass(frozen=True)
class ViTShapeRule:
  """Picks (d_model, n_layers) for a target parameter count, as `GPTShapeRule` does, but from
  the ViT's exact count (patch embedding, positions and head are a large part of a small ViT).

  Among widths that are multiples of `head_dim` and depths whose d_model / n_layers lies within
  a factor 2 of `aspect_ratio` (any depth 1 shape is allowed), the shape minimises
  |ln(count / target)| + ½·|ln((d / L) / aspect_ratio)|.
  """

  aspect_ratio: int = 24
  head_dim: int = 8
  patch_size: int = 7
  image_size: int = 28
  channels: int = 1
  num_classes: int = 10
  pool: str = "mean"

  def params(self, shape: dict) -> int:
    return param_count(
      shape["d_model"],
      shape["n_layers"],
      patch_size=self.patch_size,
      image_size=self.image_size,
      channels=self.channels,
      num_classes=self.num_classes,
      pool=self.pool,
    )

  def shape_for(self, target_params: float) -> dict:
    best = None
    d_limit = max(self.head_dim, int((target_params * 2 * self.aspect_ratio / 12.0) ** (1 / 3)) * 2)
    for d_model in range(self.head_dim, d_limit + self.head_dim, self.head_dim):
      for n_layers in range(1, max(1, math.ceil(2 * d_model / self.aspect_ratio)) + 1):
        ratio = d_model / n_layers / self.aspect_ratio
        if not 0.5 <= ratio <= 2.0 and n_layers > 1:
          continue
        shape = {"d_model": d_model, "n_layers": n_layers}
        score = abs(math.log(self.params(shape) / target_params)) + 0.5 * abs(math.log(ratio))
        if best is None or score < best[0]:
          best = (score, shape)
    return best[1]
