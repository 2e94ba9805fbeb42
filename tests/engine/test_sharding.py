"""One run over many devices: data, FSDP, tensor and mixed meshes compute what one device does,
FSDP keeps only a shard per device, and a checkpoint restores onto another mesh."""

import re

import grain
import jax
import numpy as np
import optax
import pytest
from conftest import gpt_optim
from flax import nnx
from jax.sharding import PartitionSpec as P

from flopsfit import losses
from flopsfit.data.synthetic import ZipfMarkovLanguage
from flopsfit.engine import checkpoints, sharding
from flopsfit.engine import mesh as mesh_lib
from flopsfit.engine import step as step_lib
from flopsfit.models.gpt import GPT

MESHES = {  # name: (data, fsdp, tensor)
  "one": (1, 1, 1),
  "data": (8, 1, 1),
  "fsdp": (1, 8, 1),
  "tensor": (1, 1, 8),
  "mixed": (2, 2, 2),
}


def _build():
  return GPT(vocab_size=64, d_model=32, n_layers=1, head_dim=4, rngs=nnx.Rngs(0))  # 8 heads


def _batch(batch_size=16, seq_len=16):
  source = ZipfMarkovLanguage(seq_len=seq_len).source("train")
  return {"tokens": np.stack([source[i]["tokens"] for i in range(batch_size)])}


def _mesh(name):
  data, fsdp, tensor = MESHES[name]
  return mesh_lib.make_mesh(jax.devices()[: data * fsdp * tensor], fsdp=fsdp, tensor=tensor)


def _rel(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)


@pytest.fixture(scope="module")
def first_steps():
  """Per mesh: the compiled step, the initial state, the first step's loss, gradients and
  parameters after it."""
  batch, loss_fn = _batch(), losses.next_token_cross_entropy()
  graphdef = nnx.graphdef(nnx.eval_shape(_build))
  out = {}
  for name in MESHES:
    m = _mesh(name)
    compiled = step_lib.compile_step(_build, loss_fn, gpt_optim(), m, batch, 16)
    state = compiled.init(100)
    params_sharding = compiled.state_sharding["params"]
    grad_fn = jax.jit(
      step_lib.loss_and_grads(graphdef, loss_fn),
      in_shardings=(
        params_sharding,
        compiled.state_sharding["model_state"],
        mesh_lib.batch_sharding(m),
      ),
    )
    (loss, _), grads = grad_fn(state["params"], state["model_state"], batch)
    initial = jax.device_get(state)
    state_bytes = sharding.bytes_per_device(state)
    after, metrics = compiled.single(state, jax.device_put(batch, mesh_lib.batch_sharding(m)))
    out[name] = dict(
      mesh=m,
      compiled=compiled,
      initial=initial,
      state=after,
      state_bytes=state_bytes,
      loss=float(loss),
      step_loss=float(metrics["loss"]),
      grads=jax.device_get(grads),
      params=jax.device_get(after["params"]),
    )
  return out


@pytest.mark.parametrize("name", [n for n in MESHES if n != "one"])
def test_mesh_gives_the_first_step_of_one_device(first_steps, name):
  one, other = first_steps["one"], first_steps[name]
  assert mesh_lib.shape_of(other["mesh"]) == dict(zip(mesh_lib.AXES, MESHES[name]))
  # One init program whatever the mesh, each device computing its shards: the same state.
  for x, x1 in zip(jax.tree.leaves(other["initial"]), jax.tree.leaves(one["initial"]), strict=True):
    np.testing.assert_array_equal(x, x1)
  assert _rel(other["loss"], one["loss"]) < 1e-5
  assert _rel(other["step_loss"], one["step_loss"]) < 1e-5
  for g, g1 in zip(jax.tree.leaves(other["grads"]), jax.tree.leaves(one["grads"]), strict=True):
    assert _rel(g, g1) < 1e-5
  for p, p1 in zip(jax.tree.leaves(other["params"]), jax.tree.leaves(one["params"]), strict=True):
    assert _rel(p, p1) < 1e-5
  # The budget (steps = budget / FLOPs per step) does not depend on the mesh.
  assert other["compiled"].flops_per_step == one["compiled"].flops_per_step
  if name == "data":  # each device does about 1/8 of the work, plus the replicated update and
    # the gradient all-reduce's adds (~10% of 1/8 for this 30k-parameter model)
    total = one["compiled"].flops_per_step
    assert total / 8 < other["compiled"].flops_per_step_per_device < 1.15 * total / 8


def test_fsdp_keeps_one_shard_of_parameters_and_optimizer_state_per_device(first_steps):
  fsdp, data = first_steps["fsdp"], first_steps["data"]
  state = fsdp["state"]
  qkv = state["params"]["blocks"][0]["attn"]["qkv"]["kernel"]
  # (embed, q/k/v, heads, head_dim): embed -> fsdp, heads -> (tensor = 1)
  assert qkv.sharding.spec == P(mesh_lib.FSDP, None, None, None)
  for name, x in (("params", qkv), ("mu", None), ("nu", None)):
    if x is None:
      adam = [s for s in state["opt_state"] if hasattr(s, "mu")][0]
      x = getattr(adam, name)["blocks"][0]["attn"]["qkv"]["kernel"]
    assert x.sharding.spec == P(mesh_lib.FSDP, None, None, None), name
    assert {s.data.shape for s in x.addressable_shards} == {(32 // 8, 3, 8, 4)}, name
    assert len({s.device for s in x.addressable_shards}) == 8
  # The norms' scales are small and named `norm`: replicated.
  assert state["params"]["final_norm"]["scale"].sharding.is_fully_replicated
  # Per device, the state is about an eighth of the replicated one.
  assert fsdp["state_bytes"] < 0.2 * data["state_bytes"]
  whole = sum(x.nbytes for x in jax.tree.leaves(data["initial"]))
  assert data["state_bytes"] == whole


def _one_hot_cross_entropy(outputs, batch):
  """A user's next-token loss with one-hot targets: an iota comparison over the vocabulary."""
  logits = outputs["logits"][:, :-1]
  targets = jax.nn.one_hot(batch["tokens"][:, 1:], logits.shape[-1])
  return optax.softmax_cross_entropy(logits, targets).mean(), {}


def test_fsdp_splits_the_batch_whatever_the_loss_compares_over_the_vocabulary():
  """A loss that compares an iota with the targets over the vocabulary must not lead XLA to
  split the step over the vocabulary and gather activations: the model's outputs are split
  like the batch, so per device the FSDP step needs about what it needs with the built-in loss,
  a fraction of one device's step."""
  batch, optim = _batch(), gpt_optim()

  def memory(loss_fn, name):
    return step_lib.step_flops_and_memory(_build, loss_fn, optim, batch, 16, _mesh(name))[1]

  builtin = memory(losses.next_token_cross_entropy(), "fsdp")
  one_hot = memory(_one_hot_cross_entropy, "fsdp")
  single = memory(_one_hot_cross_entropy, "one")
  assert one_hot < 1.2 * builtin, (one_hot, builtin)
  assert one_hot < 0.5 * single, (one_hot, single)


def test_tensor_splits_the_matmuls_megatron_style(first_steps):
  params = first_steps["tensor"]["state"]["params"]
  block = params["blocks"][0]
  t = mesh_lib.TENSOR
  assert block["attn"]["qkv"]["kernel"].sharding.spec == P(None, None, t, None)  # heads
  assert block["attn"]["out"]["kernel"].sharding.spec == P(t, None)  # rows
  assert block["mlp"]["up"]["kernel"].sharding.spec == P(None, None, t)  # (embed, gate/value, mlp)
  assert block["mlp"]["down"]["kernel"].sharding.spec == P(t, None)
  assert params["embed"]["embedding"].sharding.spec == P(t, None)  # vocab
  mixed = first_steps["mixed"]["state"]["params"]["blocks"][0]["mlp"]["up"]["kernel"]
  assert mixed.sharding.spec == P(mesh_lib.FSDP, None, t)
  # Each device keeps whole heads and whole SwiGLU gate/value pairs: the step's only
  # collectives are all-reduces (or small gathers), never a reshuffle of activations between
  # the matmuls.
  hlo = first_steps["tensor"]["compiled"].single.as_text()
  collectives = set(re.findall(r" (all-to-all|collective-permute|all-gather|all-reduce)\(", hlo))
  assert "all-reduce" in collectives
  assert not collectives & {"all-to-all", "collective-permute"}, collectives


class _UserModel(nnx.Module):
  """A model that names no axes: the default rule places it."""

  def __init__(self, rngs):
    self.wide = nnx.Linear(48, 200, rngs=rngs)  # kernel 9,600 elements; bias small
    self.odd = nnx.Linear(200, 21, use_bias=False, rngs=rngs)  # 200 = 8 × 25: shardable
    self.prime = nnx.Linear(67, 65, use_bias=False, rngs=rngs)  # no dimension divisible


def test_default_rule_shards_the_largest_divisible_dimension_and_replicates_small_arrays():
  def init():
    _, params, _ = nnx.split(_UserModel(nnx.Rngs(0)), nnx.Param, ...)
    return {"params": params, "opt": optax.adam(1e-3).init(params)}

  shapes = jax.eval_shape(init)
  placed = sharding.state_shardings(shapes, _mesh("fsdp"))
  specs = jax.tree.map(lambda s: s.spec, placed)
  f = mesh_lib.FSDP
  assert specs["params"]["wide"]["kernel"].get_value() == P(None, f)  # 200 > 48, 8 | 200
  assert specs["params"]["wide"]["bias"].get_value() == P()  # 200 elements: small
  assert specs["params"]["odd"]["kernel"].get_value() == P(f, None)  # 21 is not divisible
  assert specs["params"]["prime"]["kernel"].get_value() == P()
  assert specs["opt"][0].mu["wide"]["kernel"].get_value() == P(None, f)  # follows the param
  assert specs["opt"][0].count == P()
  # On a data-parallel mesh nothing is sharded.
  replicated = sharding.state_shardings(shapes, _mesh("data"))
  assert all(s.is_fully_replicated for s in jax.tree.leaves(replicated))


def test_logical_names_drop_axes_that_do_not_divide():
  m = _mesh("mixed")
  assert sharding.spec_from_names(("embed", "mlp"), (32, 6), m) == P("fsdp", "tensor")
  assert sharding.spec_from_names(("embed", "mlp"), (31, 7), m) == P(None, None)
  with pytest.raises(ValueError, match="'hidden' has no rule"):
    sharding.spec_from_names(("hidden",), (8,), m)


def test_checkpoint_written_on_one_mesh_restores_on_another(first_steps, tmp_path):
  """Saved data-parallel on 8 devices; restored FSDP on 2 devices and FSDP on 8, where the
  next step equals the data-parallel one."""
  data, fsdp = first_steps["data"], first_steps["fsdp"]
  saved = data["state"]
  dataset = grain.MapDataset.range(8).to_iter_dataset()
  ckpt = checkpoints.RunCheckpoints(str(tmp_path), "fp", keep=1)
  progress = {"step": 1, "elapsed_seconds": 1.0, "window": {}, "resumed_from": []}
  ckpt.save(1, saved, iter(dataset), progress)
  ckpt.wait()
  expected = jax.device_get(saved)
  shapes = data["compiled"].state_shapes
  two = mesh_lib.make_mesh(jax.devices()[:2], fsdp=2)
  for target_mesh in (two, fsdp["mesh"]):
    target = sharding.state_shardings(shapes, target_mesh)
    state, restored_progress = ckpt.restore_latest(
      sharding.with_shardings(shapes, target), iter(dataset)
    )
    assert restored_progress["step"] == 1
    for got, want, where in zip(
      jax.tree.leaves(state), jax.tree.leaves(expected), jax.tree.leaves(target), strict=True
    ):
      assert got.sharding == where
      np.testing.assert_array_equal(np.asarray(got), want)
  # The FSDP step continues the data-parallel run: step 2 is the same on both meshes.
  batch = _batch()
  batch["tokens"] = batch["tokens"][::-1].copy()
  _, on_data = data["compiled"].single(
    jax.device_put(expected, data["compiled"].state_sharding),
    jax.device_put(batch, mesh_lib.batch_sharding(data["mesh"])),
  )
  _, on_fsdp = fsdp["compiled"].single(
    state, jax.device_put(batch, mesh_lib.batch_sharding(fsdp["mesh"]))
  )
  assert _rel(on_fsdp["loss"], on_data["loss"]) < 1e-5
