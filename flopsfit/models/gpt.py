"""A decoder-only GPT in Flax NNX: pre-norm RMSNorm, rotary positions, causal attention.

Optional dropout (GPT-2 style: on the embeddings and on each residual branch's output) draws
from one `nnx.Rngs` stream; its default rate 0 is what scaling-law sweeps use.

Every parameter names its axes once (`_axes`): `embed` (d_model), `heads` (attention's heads;
`qkv` is an (embed, q/k/v, heads, head_dim) kernel), `mlp` (the MLP's hidden width), `vocab`,
`norm`. The engine's rules
(`flopsfit.engine.sharding.LOGICAL_RULES`) map them to the mesh: `embed` to `fsdp`, `heads`,
`mlp` and `vocab` to `tensor` (Megatron-style: the first matmul of attention and of the MLP
split by columns, the second by rows). q, k and v are taken with `jnp.split` along an axis of
their own, so the backward pass concatenates instead of padding strided slices. Attention
(`causal_attention`) and the SwiGLU MLP (`swiglu_mlp`) have their own backward passes, written
for fewer passes over their largest tensors than autodiff gives (docs/performance-step.md).
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import nnx

from flopsfit import xla_cost

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
ATTENTION_KERNELS = ("xla", "cudnn")  # `causal_attention`, or cuDNN's fused kernel


def _axes(*names: str) -> dict:
  """Variable metadata naming a parameter's logical axes (applied by the engine, not eagerly:
  the model is built without a mesh)."""
  return {"out_sharding": names, "eager_sharding": False}


def _linear(d_in: int, d_out: int, init, dtype, rngs: nnx.Rngs, axes: tuple) -> nnx.Linear:
  """A bias-free projection whose kernel names its logical `axes`."""
  return nnx.Linear(
    d_in,
    d_out,
    use_bias=False,
    kernel_init=init,
    dtype=dtype,
    rngs=rngs,
    kernel_metadata=_axes(*axes),
  )


def rotary(x_BxTxHxK: jax.Array) -> jax.Array:
  """Applies rotary position embeddings (half-split layout) along T."""
  _, t, _, k = x_BxTxHxK.shape
  half = k // 2
  freq_F = 1.0 / (10_000.0 ** (jnp.arange(half, dtype=jnp.float32) / half))
  angle_TxF = jnp.arange(t, dtype=jnp.float32)[:, None] * freq_F[None, :]
  sin, cos = jnp.sin(angle_TxF)[None, :, None, :], jnp.cos(angle_TxF)[None, :, None, :]
  # One split, not two slices: its gradient is a concatenate, not two pads and an add.
  x1, x2 = jnp.split(x_BxTxHxK.astype(jnp.float32), 2, axis=-1)
  out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  return out.astype(x_BxTxHxK.dtype)


def _dot(spec: str, a: jax.Array, b: jax.Array) -> jax.Array:
  """An einsum accumulated in float32 (bfloat16 inputs: the algorithm jax's attention names)."""
  bf16 = a.dtype == jnp.bfloat16
  return jnp.einsum(
    spec,
    a,
    b,
    precision=jax.lax.DotAlgorithmPreset.BF16_BF16_F32 if bf16 else None,
    preferred_element_type=jnp.float32,
  )


def _heads_first(x_BxTxHxK: jax.Array) -> jax.Array:
  """[B, T, H, K] to [B, H, T, K], and back."""
  return x_BxTxHxK.transpose(0, 2, 1, 3)


@jax.custom_vjp
def causal_attention(q_BxTxHxK: jax.Array, k_BxSxHxK: jax.Array, v_BxSxHxK: jax.Array):
  """Causal softmax attention written out for XLA, with its own backward pass.

  Scores and softmax in float32, as `jax.nn.dot_product_attention`'s XLA implementation
  computes them, with the same dot FLOPs (tests/test_gpt.py compares outputs and gradients).
  The weighted sum is taken of the unnormalised exponentials and divided by the row sums
  after (on [B, H, T, K], not on the scores), and the backward pass takes the softmax
  gradient in closed form, P·(dP - rowsum(dO·O)): no pass over the scores divides, reduces
  or transposes them. Sweep-sized steps on one CPU core ran 1.2x faster than with autodiff of
  the plain softmax (docs/performance-step.md).
  """
  return _attention_forward(q_BxTxHxK, k_BxSxHxK, v_BxSxHxK)[0]


def _attention_forward(q_BxTxHxK, k_BxSxHxK, v_BxSxHxK):
  """The output, and what the backward pass keeps: the exponentials, the inverse row sums and
  the float32 output (heads first)."""
  t, s, head_dim = q_BxTxHxK.shape[1], k_BxSxHxK.shape[1], q_BxTxHxK.shape[-1]
  q, k, v = (_heads_first(x) for x in (q_BxTxHxK, k_BxSxHxK, v_BxSxHxK))
  scores_BxHxTxS = _dot("bhtk,bhsk->bhts", q, k) * (1.0 / math.sqrt(head_dim))
  causal_TxS = jnp.tril(jnp.ones((t, s), bool))
  scores_BxHxTxS = jnp.where(causal_TxS, scores_BxHxTxS, jnp.finfo(jnp.float32).min)
  top_BxHxTx1 = jnp.max(scores_BxHxTxS, axis=-1, keepdims=True)
  exp_BxHxTxS = jnp.exp(scores_BxHxTxS - top_BxHxTx1).astype(v.dtype)
  inv_sum_BxHxTx1 = 1.0 / jnp.sum(exp_BxHxTxS, axis=-1, keepdims=True, dtype=jnp.float32)
  out_BxHxTxK = _dot("bhts,bhsk->bhtk", exp_BxHxTxS, v) * inv_sum_BxHxTx1
  return _heads_first(out_BxHxTxK).astype(v.dtype), (exp_BxHxTxS, inv_sum_BxHxTx1, out_BxHxTxK)


def _attention_fwd(q, k, v):
  out, kept = _attention_forward(q, k, v)
  return out, (q, k, v, *kept)


def _attention_bwd(residuals, d_out_BxTxHxK):
  q_BxTxHxK, k_BxSxHxK, v_BxSxHxK, exp_BxHxTxS, inv_sum_BxHxTx1, out_BxHxTxK = residuals
  q, k, v = (_heads_first(x) for x in (q_BxTxHxK, k_BxSxHxK, v_BxSxHxK))
  d_out_BxHxTxK = _heads_first(d_out_BxTxHxK)
  d_out_f32 = d_out_BxHxTxK.astype(jnp.float32)
  row_BxHxTx1 = jnp.sum(d_out_f32 * out_BxHxTxK, axis=-1, keepdims=True)  # rowsum(P·dP)
  d_probs_BxHxTxS = _dot("bhtk,bhsk->bhts", d_out_BxHxTxK, v)
  scale_BxHxTx1 = inv_sum_BxHxTx1 * (1.0 / math.sqrt(q.shape[-1]))
  d_scores_BxHxTxS = (exp_BxHxTxS * scale_BxHxTx1) * (d_probs_BxHxTxS - row_BxHxTx1)
  d_scores_BxHxTxS = d_scores_BxHxTxS.astype(q.dtype)
  dq_BxHxTxK = _dot("bhts,bhsk->bhtk", d_scores_BxHxTxS, k)
  # dk and dv transposed ([B, H, K, S]), from q and dO transposed ([B, H, K, T]): XLA then
  # transposes these small tensors, not the scores, and runs plain matmuls (1.1x).
  dk_BxHxKxS = _dot("bhkt,bhts->bhks", q.transpose(0, 1, 3, 2), d_scores_BxHxTxS)
  d_values_BxHxKxT = (d_out_f32 * inv_sum_BxHxTx1).astype(v.dtype).transpose(0, 1, 3, 2)
  dv_BxHxKxS = _dot("bhkt,bhts->bhks", d_values_BxHxKxT, exp_BxHxTxS)
  dq = _heads_first(dq_BxHxTxK)
  dk, dv = (d.transpose(0, 3, 1, 2) for d in (dk_BxHxKxS, dv_BxHxKxS))
  return dq.astype(q.dtype), dk.astype(k.dtype), dv.astype(v.dtype)


causal_attention.defvjp(_attention_fwd, _attention_bwd)


class Attention(nnx.Module):
  """Multi-head causal self-attention: `causal_attention` compiled by XLA (`kernel="xla"`), or
  cuDNN's fused kernel through `jax.nn.dot_product_attention` on NVIDIA GPUs (`"cudnn"`)."""

  def __init__(self, d_model: int, n_heads: int, dtype, rngs: nnx.Rngs, kernel: str = "xla"):
    self.kernel = kernel
    self.n_heads = n_heads
    self.head_dim = d_model // n_heads
    init = nnx.initializers.normal(1.0 / math.sqrt(d_model))
    # Kernel (embed, q/k/v, head, head_dim): q, k and v are contiguous slices of the output,
    # and a tensor split of the heads keeps whole heads on each device, so attention needs no
    # communication (Megatron-style).
    self.qkv = nnx.Einsum(
      "btd,dshk->btshk",
      (d_model, 3, n_heads, self.head_dim),
      kernel_init=init,
      dtype=dtype,
      rngs=rngs,
      kernel_metadata=_axes("embed", None, "heads", None),
    )
    self.out = _linear(d_model, d_model, init, dtype, rngs, ("heads", "embed"))

  def __call__(self, x_BxTxD: jax.Array) -> jax.Array:
    b, t, d = x_BxTxD.shape
    qkv_BxTx3xHxK = self.qkv(x_BxTxD)
    q, k, v = (part[:, :, 0] for part in jnp.split(qkv_BxTx3xHxK, 3, axis=2))
    q, k = rotary(q), rotary(k)
    if self.kernel == "cudnn":
      y_BxTxHxK = jax.nn.dot_product_attention(q, k, v, is_causal=True, implementation="cudnn")
    else:
      y_BxTxHxK = causal_attention(q, k, v)
    return self.out(y_BxTxHxK.reshape(b, t, d))


@jax.custom_vjp
def swiglu_mlp(x_NxD: jax.Array, up_Dx2xF: jax.Array, down_FxD: jax.Array) -> jax.Array:
  """SwiGLU on N tokens: (silu(x·W_gate) · x·W_value)·W_down, its gate and value kernels one
  (D, 2, F) array, with its own backward pass.

  The backward pass computes the gate and value gradients from the kept sigmoid (no division)
  and multiplies each with its half of the kernel: no [N, 2, F] gradient, which XLA's CPU
  backend wrote twice (once transposed for d_x). The same math as autodiff of the plain
  expression (tests/test_gpt.py); on one CPU core the sweep's d40-L3 and d64-L4 steps ran about
  1.1x faster than with autodiff, and 1.02-1.07x faster again without the [N, 2, F] gradient
  (docs/performance-step.md).
  """
  return _swiglu_mlp_fwd(x_NxD, up_Dx2xF, down_FxD)[0]


def _swiglu_mlp_fwd(x_NxD, up_Dx2xF, down_FxD):
  gate_value_Nx2xF = jnp.einsum("nd,dgf->ngf", x_NxD, up_Dx2xF)
  gate, value = gate_value_Nx2xF[:, 0], gate_value_Nx2xF[:, 1]
  sigmoid = jax.nn.sigmoid(gate)
  h_NxF = gate * sigmoid * value
  return h_NxF @ down_FxD, (x_NxD, up_Dx2xF, down_FxD, gate_value_Nx2xF, sigmoid, h_NxF)


def _swiglu_mlp_bwd(kept, d_out_NxD):
  x_NxD, up_Dx2xF, down_FxD, gate_value_Nx2xF, sigmoid, h_NxF = kept
  gate, value = gate_value_Nx2xF[:, 0], gate_value_Nx2xF[:, 1]
  d_down = jnp.einsum("nf,nd->fd", h_NxF, d_out_NxD)
  d_h_NxF = jnp.einsum("nd,fd->nf", d_out_NxD, down_FxD)
  silu = gate * sigmoid
  d_gate_NxF = d_h_NxF * value * (sigmoid + silu * (1.0 - sigmoid))
  d_value_NxF = d_h_NxF * silu
  d_x = jnp.einsum("nf,df->nd", d_gate_NxF, up_Dx2xF[:, 0]) + jnp.einsum(
    "nf,df->nd", d_value_NxF, up_Dx2xF[:, 1]
  )
  d_up = jnp.stack(
    [jnp.einsum("nd,nf->df", x_NxD, d_gate_NxF), jnp.einsum("nd,nf->df", x_NxD, d_value_NxF)],
    axis=1,
  )
  return d_x, d_up, d_down


swiglu_mlp.defvjp(_swiglu_mlp_fwd, _swiglu_mlp_bwd)


class Mlp(nnx.Module):
  """SwiGLU (hidden 8/3·d, rounded to a multiple of 8) or GELU (hidden 4·d) MLP."""

  def __init__(self, d_model: int, kind: str, dtype, rngs: nnx.Rngs):
    if kind not in ("swiglu", "gelu"):
      raise ValueError(f"model mlp: expected 'swiglu' or 'gelu', got {kind!r}")
    self.kind = kind
    hidden = 8 * math.ceil(8 * d_model / 3 / 8) if kind == "swiglu" else 4 * d_model
    init_in = nnx.initializers.normal(1.0 / math.sqrt(d_model))
    init_out = nnx.initializers.normal(1.0 / math.sqrt(hidden))
    if kind == "swiglu":  # kernel (embed, gate/value, unit): a tensor split keeps pairs together
      self.up = nnx.Einsum(
        "btd,dgf->btgf",
        (d_model, 2, hidden),
        kernel_init=init_in,
        dtype=dtype,
        rngs=rngs,
        kernel_metadata=_axes("embed", None, "mlp"),
      )
    else:
      self.up = _linear(d_model, hidden, init_in, dtype, rngs, ("embed", "mlp"))
    self.down = _linear(hidden, d_model, init_out, dtype, rngs, ("mlp", "embed"))

  def __call__(self, x_BxTxD: jax.Array) -> jax.Array:
    if self.kind == "swiglu":  # input and kernels in the compute dtype, as nnx.Linear casts them
      x, up, down = nnx.nn.dtypes.promote_dtype(
        (x_BxTxD, self.up.kernel[...], self.down.kernel[...]), dtype=self.up.dtype
      )
      b, t, d = x.shape
      return swiglu_mlp(x.reshape(b * t, d), up, down).reshape(b, t, d)
    return self.down(jax.nn.gelu(self.up(x_BxTxD)))


class Block(nnx.Module):
  def __init__(
    self,
    d_model: int,
    n_heads: int,
    mlp: str,
    dtype,
    rngs: nnx.Rngs,
    dropout: float = 0.0,
    attention: str = "xla",
  ):
    self.attn_norm = nnx.RMSNorm(d_model, dtype=dtype, rngs=rngs, scale_metadata=_axes("norm"))
    self.attn = Attention(d_model, n_heads, dtype, rngs, attention)
    self.mlp_norm = nnx.RMSNorm(d_model, dtype=dtype, rngs=rngs, scale_metadata=_axes("norm"))
    self.mlp = Mlp(d_model, mlp, dtype, rngs)
    self.attn_dropout = nnx.Dropout(dropout)  # keys come from GPT's stream at call time
    self.mlp_dropout = nnx.Dropout(dropout)

  def __call__(self, x_BxTxD: jax.Array, dropout_rngs: nnx.RngStream | None = None) -> jax.Array:
    y_BxTxD = self.attn_dropout(self.attn(self.attn_norm(x_BxTxD)), rngs=dropout_rngs)
    x_BxTxD = x_BxTxD + y_BxTxD
    return x_BxTxD + self.mlp_dropout(self.mlp(self.mlp_norm(x_BxTxD)), rngs=dropout_rngs)


class GPT(nnx.Module):
  """Decoder-only transformer. `__call__({"tokens": [B, T]})` returns `{"logits": [B, T, V]}`.

  `dropout` > 0 adds dropout in training mode (`model.train()`, the default) and none in
  `model.eval()`; the parameters, their initial values and the FLOPs of dropout 0 are unchanged.
  `attention="cudnn"` runs attention as cuDNN's fused kernel (NVIDIA GPUs, bfloat16): a custom
  call XLA cannot count, so `custom_call_flops` gives its cost as XLA counts the same attention.
  """

  def __init__(
    self,
    *,
    vocab_size: int,
    d_model: int,
    n_layers: int,
    head_dim: int = 16,
    mlp: str = "swiglu",
    tied_embeddings: bool = True,
    dtype: str = "float32",
    dropout: float = 0.0,
    attention: str = "xla",
    rngs: nnx.Rngs,
  ):
    if d_model % head_dim:
      raise ValueError(f"model d_model: {d_model} is not a multiple of head_dim {head_dim}")
    if not 0.0 <= dropout < 1.0:
      raise ValueError(f"model dropout: expected a rate in [0, 1), got {dropout}")
    if attention not in ATTENTION_KERNELS:
      raise ValueError(f"model attention: expected one of {ATTENTION_KERNELS}, got {attention!r}")
    if attention == "cudnn" and dtype != "bfloat16":
      raise ValueError(f"model attention: 'cudnn' needs dtype 'bfloat16', got {dtype!r}")
    self.attention = attention
    self.n_heads, self.head_dim = d_model // head_dim, head_dim
    self.tied_embeddings = tied_embeddings
    compute_dtype = _DTYPES[dtype]
    self.embed = nnx.Embed(
      vocab_size,
      d_model,
      embedding_init=nnx.initializers.normal(1.0),
      dtype=compute_dtype,
      rngs=rngs,
      embedding_metadata=_axes("vocab", "embed"),
    )
    self.blocks = nnx.List(
      [
        Block(d_model, d_model // head_dim, mlp, compute_dtype, rngs, dropout, attention)
        for _ in range(n_layers)
      ]
    )
    self.final_norm = nnx.RMSNorm(
      d_model, dtype=compute_dtype, rngs=rngs, scale_metadata=_axes("norm")
    )
    head_init = nnx.initializers.normal(1.0 / math.sqrt(d_model))
    self.head = (
      None
      if tied_embeddings
      else _linear(d_model, vocab_size, head_init, compute_dtype, rngs, ("embed", "vocab"))
    )
    self.d_model, self.compute_dtype = d_model, compute_dtype
    self.embed_dropout = nnx.Dropout(dropout)
    # Drawn last, so the parameters start from the same values whatever the dropout rate.
    self.dropout_rngs = rngs.dropout.fork() if dropout else None

  def __call__(self, batch: dict) -> dict:
    x_BxTxD = self.embed_dropout(self.embed(batch["tokens"]), rngs=self.dropout_rngs)
    for block in self.blocks:
      x_BxTxD = block(x_BxTxD, self.dropout_rngs)
    x_BxTxD = self.final_norm(x_BxTxD)
    if self.head is None:
      # Scaled before the product ([B, T, D], not [B, T, V]): then the head's matmuls, forward
      # and backward, are plain dots (on GPUs a library GEMM rather than a fused kernel).
      logits_BxTxV = self.embed.attend(x_BxTxD / math.sqrt(self.d_model))
    else:
      logits_BxTxV = self.head(x_BxTxD)
    return {"logits": logits_BxTxV.astype(jnp.float32)}

  def attention_flops_per_token(self, seq_len: int) -> float:
    """Forward FLOPs per token of QKᵀ and of the weighted sum of values: 4·L·T·d."""
    return 4.0 * len(self.blocks) * seq_len * self.d_model

  def custom_call_flops(self, batch_shapes: dict) -> float:
    """FLOPs of the fused attention kernels of one train step: XLA's count of
    `causal_attention` on the same shapes, forward and backward, once per layer."""
    b, t = batch_shapes["tokens"].shape
    qkv = jax.ShapeDtypeStruct((b, t, self.n_heads, self.head_dim), self.compute_dtype)

    def forward_backward(q, k, v, dy):
      y, vjp = jax.vjp(causal_attention, q, k, v)
      return y, vjp(dy)

    per_layer = xla_cost.lowered_flops(jax.jit(forward_backward).lower(qkv, qkv, qkv, qkv))
    if per_layer is None:
      raise RuntimeError("XLA gave no FLOP count for the GPT's attention on this backend")
    return len(self.blocks) * per_layer


@dataclasses.dataclass(frozen=True)
class GPTShapeRule:
  """Picks (d_model, n_layers) for a target non-embedding parameter count.

  A block has about 12·d² parameters. Among widths that are multiples of `head_dim` and
  depths >= 1 whose ratio d_model / n_layers lies within a factor 2 of `aspect_ratio`, the
  shape minimises |ln(12·d²·L / target)| + ½·|ln((d / L) / aspect_ratio)|: close to the
  target, and as close to the aspect ratio as that allows, which gives a fine ladder of sizes.
  """

  aspect_ratio: int = 16
  head_dim: int = 16

  def shape_for(self, target_params: float) -> dict:
    best = None
    d_limit = max(self.head_dim, int((target_params * 2 * self.aspect_ratio / 12.0) ** (1 / 3)) * 2)
    for d_model in range(self.head_dim, d_limit + self.head_dim, self.head_dim):
      for n_layers in range(
        max(1, math.floor(d_model / (2 * self.aspect_ratio))),
        max(1, math.ceil(2 * d_model / self.aspect_ratio)) + 1,
      ):
        ratio = d_model / n_layers / self.aspect_ratio
        if not 0.5 <= ratio <= 2.0 and n_layers > 1:
          continue
        score = abs(math.log(12.0 * d_model**2 * n_layers / target_params)) + 0.5 * abs(
          math.log(ratio)
        )
        if best is None or score < best[0]:
          best = (score, {"d_model": d_model, "n_layers": n_layers})
    return best[1]
