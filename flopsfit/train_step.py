"""The train state and the jit-compiled, sharded step (forward, backward, AdamW update)."""

import dataclasses
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from flopsfit import flops as flops_lib
from flopsfit import mesh as mesh_lib
from flopsfit import optim as optim_lib


def init_fn(build_model: Callable[[], nnx.Module], tx: optax.GradientTransformation):
  """A function of the run's step count returning the initial train state (a pytree)."""

  def init(total_steps):
    _, params, model_state = nnx.split(build_model(), nnx.Param, ...)
    return {"step": jnp.zeros((), jnp.int32), "total_steps": jnp.asarray(total_steps, jnp.int32),
            "params": params, "model_state": model_state, "opt_state": tx.init(params)}

  return init


def make_step(graphdef, loss_fn, optim):
  """One AdamW step: `step(state, batch) -> (state, metrics)`; lr from (step, total_steps)."""
  tx = optim_lib.adamw_direction(optim)

  def step(state, batch):
    def loss_of(params):
      model = nnx.merge(graphdef, params, state["model_state"])
      loss, metrics = loss_fn(model(batch), batch)
      return loss, (metrics, nnx.state(model, nnx.Not(nnx.Param)))

    (loss, (metrics, model_state)), grads = jax.value_and_grad(loss_of, has_aux=True)(state["params"])
    direction, opt_state = tx.update(grads, state["opt_state"], state["params"])
    lr = optim_lib.learning_rate(optim, state["step"], state["total_steps"])
    params = jax.tree.map(lambda p, u: p - (lr * u).astype(p.dtype), state["params"], direction)
    new_state = {**state, "step": state["step"] + 1, "params": params,
                 "model_state": model_state, "opt_state": opt_state}
    return new_state, {**metrics, "loss": loss, "grad_norm": optax.global_norm(grads),
                       "learning_rate": lr}

  return step


def make_eval_step(graphdef, loss_fn):
  def eval_step(state, batch):
    model = nnx.merge(graphdef, state["params"], state["model_state"])
    loss, metrics = loss_fn(model(batch), batch)
    return {**metrics, "loss": loss}
  return eval_step


def _scanned(step):
  def multi(state, batches):
    return jax.lax.scan(step, state, batches)
  return multi


@dataclasses.dataclass
class CompiledStep:
  """Executables of one shape on one mesh, and the FLOPs XLA counts for one step."""
  init: Any                 # (total_steps) -> state, placed on the mesh
  single: Any               # (state, batch) -> (state, metrics)
  multi: Any | None         # (state, K stacked batches) -> (state, metrics of each step)
  eval: Any                 # (state, batch) -> metrics
  steps_per_call: int
  flops_per_step: float     # global: XLA's per-device count × devices
  flops_per_step_per_device: float
  state_shapes: Any
  compile_seconds: float


def batch_shapes(example: dict, batch_size: int, leading: tuple = ()) -> dict:
  return {k: jax.ShapeDtypeStruct(leading + (batch_size,) + v.shape[1:], v.dtype)
          for k, v in example.items()}


def compile_step(build_model, loss_fn, optim, mesh, example_batch: dict, batch_size: int,
                 steps_per_call: int = 1, eval_batch_size: int | None = None) -> CompiledStep:
  """Compiles the step for abstract inputs (nothing allocated) and counts its FLOPs.

  `example_batch` maps keys to arrays or ShapeDtypeStructs with a leading batch axis.
  Parameters are replicated; batches are split over the mesh's `data` axis.
  """

  start = time.perf_counter()
  graphdef = nnx.graphdef(nnx.eval_shape(build_model))
  init = init_fn(build_model, optim_lib.adamw_direction(optim))
  state_shapes = jax.eval_shape(init, 0)
  replicated = mesh_lib.replicated(mesh)
  state_sharding = jax.tree.map(lambda _: replicated, state_shapes)
  step = make_step(graphdef, loss_fn, optim)
  batch_sharding = mesh_lib.batch_sharding(mesh)
  one = batch_shapes(example_batch, batch_size)
  single = jax.jit(step, in_shardings=(state_sharding, batch_sharding),
                   out_shardings=(state_sharding, replicated), donate_argnums=0
                   ).lower(state_shapes, one).compile()
  per_device = flops_lib.cost_analysis_flops(single)
  if per_device is None:
    raise RuntimeError("XLA gave no FLOP count for the train step on this backend")
  multi = None
  if steps_per_call > 1:
    stacked = batch_shapes(example_batch, batch_size, (steps_per_call,))
    multi = jax.jit(_scanned(step), in_shardings=(state_sharding, mesh_lib.batch_sharding(mesh, 1)),
                    out_shardings=(state_sharding, replicated), donate_argnums=0
                    ).lower(state_shapes, stacked).compile()
  eval_one = batch_shapes(example_batch, eval_batch_size or batch_size)
  eval_step = jax.jit(make_eval_step(graphdef, loss_fn),
                      in_shardings=(state_sharding, batch_sharding), out_shardings=replicated
                      ).lower(state_shapes, eval_one).compile()
  init_compiled = jax.jit(init, out_shardings=state_sharding).lower(
      jax.ShapeDtypeStruct((), jnp.int32)).compile()
  return CompiledStep(init=init_compiled, single=single, multi=multi, eval=eval_step,
                      steps_per_call=steps_per_call, flops_per_step=per_device * mesh.size,
                      flops_per_step_per_device=per_device, state_shapes=state_shapes,
                      compile_seconds=time.perf_counter() - start)
