"""The step's FLOP count and schedule (meshes: tests/engine/test_sharding.py)."""

import jax
import ml_collections
import numpy as np
import pytest
from conftest import gpt_optim
from flax import nnx

from flopsfit import losses
from flopsfit.data.synthetic import ZipfMarkovLanguage
from flopsfit.engine import flops, mesh
from flopsfit.engine import step as step_lib
from flopsfit.models.gpt import GPT

OPTIM = gpt_optim()


def _build(d_model=32, n_layers=2, **kwargs):
  return lambda: GPT(vocab_size=64, d_model=d_model, n_layers=n_layers, rngs=nnx.Rngs(0), **kwargs)


def _batch(batch_size=16, seq_len=32):
  source = ZipfMarkovLanguage(seq_len=seq_len).source("train")
  return {"tokens": np.stack([source[i]["tokens"] for i in range(batch_size)])}


def _rel(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)


def test_xla_flops_match_attention_inclusive_count():
  """XLA's count of a whole step vs 6·N_matmul + 12·L·T·d per token (Chinchilla App. F style)."""
  d_model, n_layers, seq_len, batch_size = 128, 2, 128, 8
  build = _build(d_model, n_layers)
  m = mesh.data_mesh(jax.devices()[:1])
  compiled = step_lib.compile_step(
    build, losses.next_token_cross_entropy(), OPTIM, m, _batch(batch_size, seq_len), batch_size
  )
  from flopsfit.engine.params import count_params

  model = nnx.eval_shape(build)
  tokens = batch_size * seq_len
  analytic = flops.analytic_flops(
    count_params(model), tokens, model.attention_flops_per_token(seq_len)
  )["attention_inclusive"]
  assert abs(compiled.flops_per_step / analytic - 1) < 0.05, (compiled.flops_per_step, analytic)


def test_flops_per_step_are_the_same_on_every_mesh_and_in_the_plan():
  """Counted once from the lowered step: 1, 2 and 8 devices and the planner agree exactly,
  and within 5% of XLA's count of the step compiled for one device."""
  batch, loss_fn = _batch(), losses.next_token_cross_entropy()
  counts = {
    n: step_lib.compile_step(
      _build(16, 1), loss_fn, OPTIM, mesh.data_mesh(jax.devices()[:n]), batch, 16
    )
    for n in (1, 2, 8)
  }
  planned, _ = step_lib.step_flops_and_memory(_build(16, 1), loss_fn, OPTIM, batch, 16)
  assert counts[1].flops_per_step == counts[2].flops_per_step == counts[8].flops_per_step
  assert planned == counts[1].flops_per_step
  compiled_one_device = counts[1].flops_per_step_per_device
  assert abs(counts[1].flops_per_step / compiled_one_device - 1) < 0.05


def test_memory_bound_holds_and_spares_the_compile_under_the_limit():
  """The planner's memory without compiling is an upper bound of XLA's compiled figure; it is
  used only when it is under the limit, otherwise the step is compiled and measured."""
  batch, loss_fn = _batch(), losses.next_token_cross_entropy()
  for d_model, n_layers in ((16, 1), (64, 2)):
    _, compiled = step_lib.step_flops_and_memory(
      _build(d_model, n_layers), loss_fn, OPTIM, batch, 16
    )
    _, bound = step_lib.step_flops_and_memory(
      _build(d_model, n_layers), loss_fn, OPTIM, batch, 16, limit=2**40
    )
    assert compiled < bound < 40 * compiled, (d_model, compiled, bound)
    _, measured = step_lib.step_flops_and_memory(
      _build(d_model, n_layers), loss_fn, OPTIM, batch, 16, limit=bound - 1
    )
    assert measured == compiled


@pytest.mark.parametrize("schedule", ["cosine", "wsd"])
def test_schedule_warms_up_and_ends_at_final_fraction(schedule):
  from flopsfit.engine import optim

  config = ml_collections.ConfigDict(OPTIM.to_dict())
  config.schedule = schedule
  lrs = np.array([float(optim.learning_rate(config, s, 200)) for s in range(200)])
  assert lrs[0] == pytest.approx(1e-2 / 10)  # step 1 of a 10-step warmup
  assert lrs[9] == pytest.approx(1e-2) and lrs.max() == pytest.approx(1e-2)
  assert lrs[-1] == pytest.approx(1e-3)
  assert np.all(np.diff(lrs[10:]) <= 1e-12)
  if schedule == "wsd":
    assert lrs[159] == pytest.approx(1e-2) and lrs[170] < 1e-2


def test_cooldown_trunk_and_branch_share_learning_rates_until_the_branch():
  from flopsfit.engine import optim

  trunk = ml_collections.ConfigDict(OPTIM.to_dict())
  trunk.schedule, trunk.warmup_steps = "constant", 7
  branch = ml_collections.ConfigDict(trunk.to_dict())
  branch.schedule, branch.decay_fraction = "wsd", 0.2  # 30 of 150 steps
  lr_trunk = np.array([float(optim.learning_rate(trunk, s, 500)) for s in range(500)])
  lr_branch = np.array([float(optim.learning_rate(branch, s, 150)) for s in range(150)])
  assert lr_trunk[6] == pytest.approx(1e-2) and lr_trunk[5] < 1e-2  # 7-step warmup, any length
  assert np.all(lr_trunk[7:] == np.float32(1e-2))  # constant after it
  np.testing.assert_array_equal(lr_branch[:120], lr_trunk[:120])  # same until the branch step
  assert np.all(np.diff(lr_branch[120:]) < 0) and lr_branch[-1] == pytest.approx(1e-3)
