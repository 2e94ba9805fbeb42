"""FLOPs counted whatever kernel runs: a custom call is counted through the model's
`custom_call_flops`, or the step is refused; never silently under-counted."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import gpt_optim
from flax import nnx

from flopsfit import losses, xla_cost
from flopsfit.config_check import ConfigError
from flopsfit.engine import flops, mesh
from flopsfit.engine import step as step_lib

OPTIM = gpt_optim()
VOCAB, D, HEADS, SEQ, BATCH = 64, 32, 4, 32, 8


def xla_attention(q_BxTxHxK, k_BxTxHxK, v_BxTxHxK):
  return jax.nn.dot_product_attention(
    q_BxTxHxK, k_BxTxHxK, v_BxTxHxK, is_causal=True, implementation="xla"
  )


def _np_forward(q, k, v):
  """Causal softmax attention in numpy (the host kernel): (out, probabilities)."""
  scale = 1.0 / np.sqrt(q.shape[-1])
  s_BxHxTxS = np.einsum("bthk,bshk->bhts", q, k) * scale
  t = q.shape[1]
  s_BxHxTxS = np.where(np.tril(np.ones((t, t), bool)), s_BxHxTxS, -np.inf)
  p_BxHxTxS = np.exp(s_BxHxTxS - s_BxHxTxS.max(-1, keepdims=True))
  p_BxHxTxS /= p_BxHxTxS.sum(-1, keepdims=True)
  return np.einsum("bhts,bshk->bthk", p_BxHxTxS, v).astype(q.dtype), p_BxHxTxS


def _np_backward(q, k, v, dy):
  scale = 1.0 / np.sqrt(q.shape[-1])
  _, p = _np_forward(q, k, v)
  dv = np.einsum("bhts,bthk->bshk", p, dy)
  dp = np.einsum("bthk,bshk->bhts", dy, v)
  ds = p * (dp - (dp * p).sum(-1, keepdims=True)) * scale
  dq = np.einsum("bhts,bshk->bthk", ds, k)
  dk = np.einsum("bhts,bthk->bshk", ds, q)
  return tuple(x.astype(q.dtype) for x in (dq, dk, dv))


@jax.custom_vjp
def callback_attention(q, k, v):
  """Attention run on the host through `jax.pure_callback`: a custom call XLA cannot count."""
  return jax.pure_callback(
    lambda *a: _np_forward(*a)[0], jax.ShapeDtypeStruct(q.shape, q.dtype), q, k, v
  )


def _fwd(q, k, v):
  return callback_attention(q, k, v), (q, k, v)


def _bwd(residuals, dy):
  shapes = tuple(jax.ShapeDtypeStruct(x.shape, x.dtype) for x in residuals)
  return jax.pure_callback(_np_backward, shapes, *residuals, dy)


callback_attention.defvjp(_fwd, _bwd)


class TinyLM(nnx.Module):
  """One attention layer; `kernel` picks XLA attention or the host-callback kernel."""

  def __init__(self, kernel: str = "xla", *, rngs: nnx.Rngs):
    self.kernel = kernel
    self.embed = nnx.Embed(VOCAB, D, rngs=rngs)
    self.qkv = nnx.Linear(D, 3 * D, use_bias=False, rngs=rngs)
    self.out = nnx.Linear(D, D, use_bias=False, rngs=rngs)
    self.head = nnx.Linear(D, VOCAB, use_bias=False, rngs=rngs)

  def __call__(self, batch):
    x_BxTxD = self.embed(batch["tokens"])
    b, t, _ = x_BxTxD.shape
    qkv = self.qkv(x_BxTxD).reshape(b, t, 3, HEADS, D // HEADS)
    attend = callback_attention if self.kernel == "callback" else xla_attention
    y_BxTxHxK = attend(qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2])
    return {"logits": self.head(x_BxTxD + self.out(y_BxTxHxK.reshape(b, t, D)))}


class CountedTinyLM(TinyLM):
  def custom_call_flops(self, batch_shapes: dict) -> float:
    """The callback kernel's FLOPs, forward and backward: XLA's count of the XLA attention."""
    b, t = batch_shapes["tokens"].shape
    qkv = jax.ShapeDtypeStruct((b, t, HEADS, D // HEADS), jnp.float32)

    def forward_backward(q, k, v, dy):
      y, vjp = jax.vjp(xla_attention, q, k, v)
      return y, vjp(dy)

    return xla_cost.cost_analysis_flops(jax.jit(forward_backward).lower(qkv, qkv, qkv, qkv))


def _compile(model_class, kernel, devices=1):
  tokens = np.random.default_rng(0).integers(0, VOCAB, (BATCH, SEQ), dtype=np.int32)
  return step_lib.compile_step(
    lambda: model_class(kernel, rngs=nnx.Rngs(0)),
    losses.next_token_cross_entropy(),
    OPTIM,
    mesh.data_mesh(jax.devices()[:devices]),
    {"tokens": tokens},
    BATCH,
  )


def test_step_with_uncounted_custom_call_is_refused():
  with pytest.raises(ConfigError, match=r"config\.model\.factory: .*python_cpu_callback"):
    _compile(TinyLM, "callback")


@pytest.mark.parametrize("devices", [1, 2])
def test_custom_call_flops_from_the_plugin_match_the_xla_model(devices):
  plain = _compile(TinyLM, "xla", devices).flops_per_step
  counted = _compile(CountedTinyLM, "callback", devices)
  assert counted.flops_per_step == pytest.approx(plain, rel=0.01)
  # The uncounted part is real work: without the plugin's count the step would look cheaper.
  assert flops.custom_call_targets(counted.single.as_text())


def test_custom_call_kernel_trains_like_the_xla_kernel():
  """The callback model is a faithful test subject: its first step's loss equals XLA's."""
  tokens = np.random.default_rng(1).integers(0, VOCAB, (BATCH, SEQ), dtype=np.int32)
  losses_of = {}
  for kernel in ("xla", "callback"):
    compiled = _compile(CountedTinyLM, kernel)
    state = compiled.init(10)
    for _ in range(2):
      state, metrics = compiled.single(state, {"tokens": tokens})
    losses_of[kernel] = float(metrics["loss"])
  assert losses_of["callback"] == pytest.approx(losses_of["xla"], rel=1e-4)


def test_annotation_custom_calls_are_not_kernels():
  text = 'stablehlo.custom_call @Sharding(%0) ... custom_call_target="SPMDFullToShardShape"'
  assert flops.custom_call_targets(text) == []
  assert flops.custom_call_targets('custom_call_target="__cudnn$fmhaSoftmax"') == [
    "__cudnn$fmhaSoftmax"
  ]


def test_cost_analysis_forms_are_normalised():
  class Fake:
    def __init__(self, value):
      self.value = value

    def cost_analysis(self):
      return self.value

  assert xla_cost.cost_analysis_flops(Fake({"flops": 10.0})) == 10.0
  assert xla_cost.cost_analysis_flops(Fake([{"flops": 12.0}])) == 12.0
  assert xla_cost.cost_analysis_flops(Fake(None)) is None
  assert xla_cost.cost_analysis_flops(Fake({"flops": -1.0})) is None
  assert xla_cost.cost_analysis_flops(Fake(-1)) is None
  assert xla_cost.cost_analysis_flops(Fake([])) is None


def _gpt_step_flops(attention: str) -> float:
  from flopsfit.models.gpt import GPT

  tokens = np.random.default_rng(0).integers(0, VOCAB, (BATCH, SEQ), dtype=np.int32)
  factory = lambda: GPT(
    vocab_size=VOCAB, d_model=D, n_layers=2, dtype="bfloat16", attention=attention, rngs=nnx.Rngs(0)
  )
  return step_lib.compile_step(
    factory,
    losses.next_token_cross_entropy(),
    OPTIM,
    mesh.data_mesh(jax.devices()[:1]),
    {"tokens": tokens},
    BATCH,
  ).flops_per_step


def test_gpt_fused_attention_counts_the_flops_of_its_xla_attention(monkeypatch):
  """The GPT's `attention="cudnn"` (a custom call on GPUs) is counted as its XLA attention.

  cuDNN needs a GPU, so here the fused kernel is stood in for by the host-callback kernel,
  which XLA cannot count either; `benchmarks/step_throughput.py --attention=cudnn` runs the
  real one on a GPU (docs/performance-gpu.md).
  """
  plain = _gpt_step_flops("xla")
  xla_attention_fn = jax.nn.dot_product_attention

  def attention(q, k, v, *, is_causal, implementation):
    if implementation == "cudnn":
      return callback_attention(q, k, v)
    return xla_attention_fn(q, k, v, is_causal=is_causal, implementation=implementation)

  monkeypatch.setattr(jax.nn, "dot_product_attention", attention)
  fused = _gpt_step_flops("cudnn")
  assert fused == pytest.approx(plain, rel=0.01)


@pytest.mark.parametrize(
  ("kwargs", "message"),
  [
    ({"attention": "flash"}, r"model attention: expected one of \('xla', 'cudnn'\)"),
    ({"attention": "cudnn", "dtype": "float32"}, r"'cudnn' needs dtype 'bfloat16'"),
  ],
)
def test_gpt_attention_kernel_is_checked(kwargs, message):
  from flopsfit.models.gpt import GPT

  with pytest.raises(ValueError, match=message):
    GPT(vocab_size=VOCAB, d_model=D, n_layers=1, rngs=nnx.Rngs(0), **kwargs)


def test_lowered_step_is_counted_on_the_host_where_the_backend_gives_no_count():
  """GPU plugins answer `Lowered.cost_analysis()` with None; the host count of the same
  lowered program is the number CPU gives directly."""

  class GpuLikeLowered:  # a Lowered whose backend has no cost analysis, as on GPUs
    def __init__(self, lowered):
      self.lowered = lowered

    def cost_analysis(self):
      return None

    def compiler_ir(self, dialect):
      return self.lowered.compiler_ir(dialect)

  tokens = np.zeros((BATCH, SEQ), np.int32)
  model = TinyLM(rngs=nnx.Rngs(0))
  graphdef, params = nnx.split(model)
  loss = lambda p: losses.next_token_cross_entropy()(
    nnx.merge(graphdef, p)({"tokens": tokens}), {"tokens": tokens}
  )[0]
  lowered = jax.jit(jax.grad(loss)).lower(params)
  direct = xla_cost.cost_analysis_flops(lowered)
  assert direct and xla_cost.lowered_flops(GpuLikeLowered(lowered)) == direct
