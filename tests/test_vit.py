"""The ViT model plugin: output shapes, parameter counts of its size rule, bad shapes."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from flopsfit.engine import params as params_lib
from flopsfit.models.vit import ViT, ViTShapeRule, param_count


@pytest.mark.parametrize("pool", ["mean", "cls"])
def test_logits_per_image(pool):
  model = ViT(
    d_model=16,
    n_layers=2,
    patch_size=4,
    image_size=8,
    channels=3,
    num_classes=5,
    pool=pool,
    rngs=nnx.Rngs(0),
  )
  image = jnp.asarray(np.random.default_rng(0).random((3, 8, 8, 3)), jnp.float32)
  logits = model({"image": image, "label": jnp.zeros(3, jnp.int32)})["logits"]
  assert logits.shape == (3, 5) and logits.dtype == jnp.float32
  assert model.attention_flops_per_token(1) == 4 * 2 * (4 + (pool == "cls")) ** 2 * 16
  assert model.attention_flops_per_token(4) == model.attention_flops_per_token(1) / 4


def test_patches_are_row_major_pixel_blocks():
  model = ViT(d_model=8, n_layers=1, patch_size=2, image_size=4, rngs=nnx.Rngs(0))
  image = jnp.arange(16, dtype=jnp.float32).reshape(1, 4, 4, 1)
  patches = model.patches(image)
  assert patches.shape == (1, 4, 4)
  assert patches[0, 1].tolist() == [2, 3, 6, 7] and patches[0, 2].tolist() == [8, 9, 12, 13]


@pytest.mark.parametrize("target", [2e3, 1e4, 3e4, 1e5])
def test_size_rule_counts_exactly_what_the_model_has(target):
  rule = ViTShapeRule(aspect_ratio=24, head_dim=8, patch_size=7, image_size=28)
  shape = rule.shape_for(target)
  model = nnx.eval_shape(lambda: ViT(**shape, patch_size=7, image_size=28, rngs=nnx.Rngs(0)))
  counts = params_lib.count_params(model)
  assert counts["total"] == counts["non_embedding"] == rule.params(shape)
  assert 0.5 < rule.params(shape) / target < 2.0
  assert shape["d_model"] % 8 == 0


def test_size_rule_grows_with_the_target():
  rule = ViTShapeRule()
  sizes = [rule.params(rule.shape_for(t)) for t in np.geomspace(5e3, 3e5, 12)]
  assert sizes == sorted(sizes) and len(set(sizes)) >= 8
  assert param_count(24, 1, pool="cls") == param_count(24, 1) + 24


def test_bad_shapes_are_named():
  with pytest.raises(ValueError, match="model d_model: expected a positive multiple of head_dim 8"):
    ViT(d_model=12, n_layers=1, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="model patch_size: 5 does not divide image_size 28"):
    ViT(d_model=16, n_layers=1, patch_size=5, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="model pool: expected 'mean' or 'cls'"):
    ViT(d_model=16, n_layers=1, pool="max", rngs=nnx.Rngs(0))
