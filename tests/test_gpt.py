import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from flopsfit import model_calls
from flopsfit.engine.params import count_params
from flopsfit.models.gpt import GPT, GPTShapeRule, causal_attention, swiglu_mlp


def _tokens(seed=0, shape=(2, 16)):
  return jax.random.randint(jax.random.key(seed), shape, 0, 64)


@pytest.mark.parametrize("mlp", ["swiglu", "gelu"])
def test_outputs_are_causal(mlp):
  model = GPT(vocab_size=64, d_model=32, n_layers=2, mlp=mlp, rngs=nnx.Rngs(0))
  tokens = _tokens()
  changed = tokens.at[:, 10:].set((tokens[:, 10:] + 1) % 64)
  a, b = model({"tokens": tokens})["logits"], model({"tokens": changed})["logits"]
  assert a.shape == (2, 16, 64)
  np.testing.assert_allclose(a[:, :10], b[:, :10], atol=1e-5)
  assert not np.allclose(a[:, 10:], b[:, 10:])


@pytest.mark.parametrize("tied, mlp", [(True, "swiglu"), (False, "swiglu"), (True, "gelu")])
def test_parameter_counts_are_exact(tied, mlp):
  d, layers, vocab = 48, 3, 64
  model = nnx.eval_shape(
    lambda: GPT(
      vocab_size=vocab, d_model=d, n_layers=layers, mlp=mlp, tied_embeddings=tied, rngs=nnx.Rngs(0)
    )
  )
  hidden = 128 if mlp == "swiglu" else 4 * d  # 8/3·48 = 128
  mlp_params = 3 * d * hidden if mlp == "swiglu" else 2 * d * hidden
  blocks = layers * (4 * d * d + mlp_params + 2 * d)
  embedding = vocab * d
  head = 0 if tied else d * vocab
  counts = count_params(model)
  assert counts == {
    "total": embedding + blocks + d + head,
    "embedding": embedding,
    "non_embedding": blocks + d + head,
    "matmul_active": layers * (4 * d * d + mlp_params) + d * vocab,
  }
  real = GPT(
    vocab_size=vocab, d_model=d, n_layers=layers, mlp=mlp, tied_embeddings=tied, rngs=nnx.Rngs(0)
  )
  assert sum(x.size for x in jax.tree.leaves(nnx.state(real, nnx.Param))) == counts["total"]


def test_bf16_compute_keeps_float32_parameters():
  model = GPT(vocab_size=64, d_model=32, n_layers=1, dtype="bfloat16", rngs=nnx.Rngs(0))
  logits = model({"tokens": _tokens()})["logits"]
  assert logits.dtype == jnp.float32
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
  full = GPT(vocab_size=64, d_model=32, n_layers=1, rngs=nnx.Rngs(0))({"tokens": _tokens()})
  np.testing.assert_allclose(logits, full["logits"], atol=0.1)


def test_shape_rule_hits_target_sizes_and_keeps_aspect_ratio():
  rule = GPTShapeRule(aspect_ratio=16, head_dim=16)
  previous = 0
  for target in [3e4, 1e5, 3e5, 1e6, 3e6]:
    shape = rule.shape_for(target)
    assert shape["d_model"] % 16 == 0
    n = nnx.eval_shape(lambda: GPT(vocab_size=64, rngs=nnx.Rngs(0), **shape))
    non_embedding = count_params(n)["non_embedding"]
    assert 0.5 * target < non_embedding < 2.0 * target, (target, shape, non_embedding)
    assert non_embedding >= previous
    previous = non_embedding


def test_bad_shape_is_a_clear_error():
  with pytest.raises(ValueError, match="d_model: 40 is not a multiple of head_dim 16"):
    GPT(vocab_size=64, d_model=40, n_layers=1, rngs=nnx.Rngs(0))


def _random_primitives(model, tokens) -> set:
  graphdef, params, model_state = model_calls.split(model)
  jaxpr = jax.make_jaxpr(
    lambda p, s: model_calls.apply(graphdef, p, s, {"tokens": tokens}, train=True)
  )(params, model_state)
  names = {str(e.primitive) for e in jaxpr.jaxpr.eqns}
  return {n for n in names if "random" in n or "threefry" in n}


def test_dropout_zero_is_the_model_without_dropout():
  """The default (dropout 0): same parameters, no random streams to checkpoint, no random ops."""
  build = lambda rate: GPT(vocab_size=64, d_model=32, n_layers=2, dropout=rate, rngs=nnx.Rngs(0))
  plain, dropped = build(0.0), build(0.1)
  params = jax.tree.leaves(nnx.state(plain, nnx.Param))
  assert all(
    np.array_equal(a, b) for a, b in zip(params, jax.tree.leaves(nnx.state(dropped, nnx.Param)))
  ), "the dropout rate changes the initial parameters"
  assert count_params(plain) == count_params(dropped)
  assert not jax.tree.leaves(nnx.state(plain, nnx.Not(nnx.Param)))
  assert not _random_primitives(plain, _tokens())
  assert _random_primitives(dropped, _tokens())


def test_dropout_acts_in_training_mode_only():
  tokens = {"tokens": _tokens()}
  plain = GPT(vocab_size=64, d_model=32, n_layers=2, rngs=nnx.Rngs(0))(tokens)["logits"]
  model = GPT(vocab_size=64, d_model=32, n_layers=2, dropout=0.1, rngs=nnx.Rngs(0))
  first, second = model(tokens)["logits"], model(tokens)["logits"]  # train mode by default
  assert not np.allclose(first, plain) and not np.allclose(first, second)
  model.eval()
  np.testing.assert_array_equal(model(tokens)["logits"], plain)


def test_bad_dropout_rate_is_a_clear_error():
  with pytest.raises(ValueError, match=r"dropout: expected a rate in \[0, 1\), got 1.0"):
    GPT(vocab_size=64, d_model=32, n_layers=1, dropout=1.0, rngs=nnx.Rngs(0))


@pytest.mark.parametrize(("dtype", "tolerance"), [(jnp.float32, 1e-5), (jnp.bfloat16, 2e-2)])
def test_causal_attention_matches_jax_attention_and_its_gradients(dtype, tolerance):
  """The GPT's own attention is `jax.nn.dot_product_attention` (XLA, causal), forward and
  backward, at every position: it replaced it for speed only."""
  q, k, v, dy = (
    jax.random.normal(key, (2, 12, 3, 8), dtype) for key in jax.random.split(jax.random.key(0), 4)
  )
  reference = lambda q, k, v: jax.nn.dot_product_attention(
    q, k, v, is_causal=True, implementation="xla"
  )
  ours, ours_vjp = jax.vjp(causal_attention, q, k, v)
  theirs, theirs_vjp = jax.vjp(reference, q, k, v)
  assert ours.dtype == dtype
  for a, b in zip((ours, *ours_vjp(dy)), (theirs, *theirs_vjp(dy)), strict=True):
    np.testing.assert_allclose(np.float32(a), np.float32(b), atol=tolerance, rtol=tolerance)


@pytest.mark.parametrize(("dtype", "tolerance"), [(jnp.float32, 1e-5), (jnp.bfloat16, 2e-2)])
def test_swiglu_mlp_matches_autodiff_of_the_plain_expression(dtype, tolerance):
  """The MLP's own backward pass gives autodiff's gradients for the input and both kernels."""
  keys = jax.random.split(jax.random.key(1), 4)
  x = jax.random.normal(keys[0], (24, 16), dtype)
  up = jax.random.normal(keys[1], (16, 2, 40), dtype) / 4
  down = jax.random.normal(keys[2], (40, 16), dtype) / 6
  dy = jax.random.normal(keys[3], (24, 16), dtype)

  def plain(x, up, down):
    gate_value = jnp.einsum("nd,dgf->ngf", x, up)
    return (jax.nn.silu(gate_value[:, 0]) * gate_value[:, 1]) @ down

  ours, ours_vjp = jax.vjp(swiglu_mlp, x, up, down)
  theirs, theirs_vjp = jax.vjp(plain, x, up, down)
  assert ours.dtype == dtype
  for a, b in zip((ours, *ours_vjp(dy)), (theirs, *theirs_vjp(dy)), strict=True):
    scale = float(np.max(np.abs(np.float32(b))))
    np.testing.assert_allclose(np.float32(a), np.float32(b), atol=tolerance * scale, rtol=tolerance)
