"""A Flax Linen module trained as a model plugin through Flax's NNX bridge (models/linen.py)."""

import json
import math
import os

import jax.numpy as jnp
import numpy as np
import user_models
from flax import nnx

from flopsfit.engine import run as run_lib
from flopsfit.models.linen import LinenModel


def _model(**kwargs):
  return LinenModel(
    module=user_models.LinenDropoutLM(vocab_size=64, d_model=16, dropout=0.5),
    inputs={"tokens": ((32,), "int32")},
    deterministic_kwarg="deterministic",
    rngs=nnx.Rngs(0),
    **kwargs,
  )


def test_dropout_follows_train_and_eval_mode():
  model = _model()
  batch = {"tokens": jnp.arange(64, dtype=jnp.int32).reshape(2, 32)}
  model.eval()
  first, second = model(batch)["logits"], model(batch)["logits"]
  assert np.array_equal(first, second)
  model.train()
  assert not np.allclose(model(batch)["logits"], model(batch)["logits"])  # new masks per call
  params = nnx.state(model, nnx.Param)
  assert {type(v) for _, v in nnx.to_flat_state(params)} == {nnx.Param}  # Linen's params


def test_linen_model_trains_and_is_counted(gpt_config):
  d, v = 16, 64
  gpt_config.model.factory = "flopsfit.models.linen:LinenModel"
  gpt_config.model.kwargs = {
    "module": "user_models:LinenDropoutLM",
    "inputs": {"tokens": ((32,), "int32")},
    "deterministic_kwarg": "deterministic",
    "vocab_size": v,
    "d_model": d,
  }
  gpt_config.model.shape_fields = ("d_model",)
  gpt_config.train.budget_flops = 5e8
  result = run_lib.train_run(gpt_config)
  assert result["status"] == "completed" and result["run_id"] == "c5e+08-d16-s0"
  dense = (d * 4 * d + 4 * d) + (4 * d * d + d) + (d * v + v)
  # Linen's Embed is not an nnx.Embed: its table counts as a non-embedding matmul parameter.
  assert result["params"]["total"] == v * d + dense
  assert result["params"]["matmul_active"] == v * d + 4 * d * d * 2 + d * v
  tokens_per_step = result["tokens_per_step"]
  # XLA's count of forward, backward and AdamW: at least 6 FLOPs per matmul parameter and token.
  dense_matmul = 4 * d * d * 2 + d * v
  assert result["flops_per_step"] > 6 * dense_matmul * tokens_per_step
  metrics = os.path.join(gpt_config.workdir, "runs", result["run_id"], "metrics.jsonl")
  losses = [json.loads(line)["loss"] for line in open(metrics) if '"loss"' in line]
  assert losses[0] > math.log(v) - 0.3  # starts near chance
  assert losses[-1] < losses[0] - 0.3 and result["final_eval_loss"] < losses[0] - 0.3
