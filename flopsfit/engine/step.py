"""The train state and the jit-compiled, sharded step (forward, backward, AdamW update)."""

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from flopsfit import model_calls, xla_cost
from flopsfit.engine import flops as flops_lib
from flopsfit.engine import mesh as mesh_lib
from flopsfit.engine import optim as optim_lib
from flopsfit.engine import sharding as sharding_lib


def init_fn(build_model: Callable[[], nnx.Module], tx: optax.GradientTransformation):
  """A function of the run's step count returning the initial train state (a pytree)."""

  def init(total_steps):
    _, params, model_state = model_calls.split(build_model())
    return {
      "step": jnp.zeros((), jnp.int32),
      "total_steps": jnp.asarray(total_steps, jnp.int32),
      "params": params,
      "model_state": model_state,
      "opt_state": tx.init(params),
    }

  return init


def loss_and_grads(graphdef, loss_fn):
  """`f(params, model_state, batch) -> ((loss, (metrics, new model_state)), grads)`.

  The model runs in training mode and may draw from its `nnx.Rngs` streams: the returned
  model state holds the advanced streams (see `flopsfit.model_calls`).
  """
  return jax.value_and_grad(model_calls.loss_of(graphdef, loss_fn, train=True), has_aux=True)


def make_step(graphdef, loss_fn, optim, mesh=None):
  """One AdamW step: `step(state, batch) -> (state, metrics)`; lr from (step, total_steps).
  On `mesh` the model's outputs are split over the batch as the batch is
  (`sharding.outputs_split_like_batch`)."""
  tx = optim_lib.adamw_direction(optim)
  if mesh is not None:
    loss_fn = sharding_lib.outputs_split_like_batch(loss_fn, mesh)

  grad_fn = loss_and_grads(graphdef, loss_fn)

  def step(state, batch):
    (loss, (metrics, model_state)), grads = grad_fn(state["params"], state["model_state"], batch)
    direction, opt_state = tx.update(grads, state["opt_state"], state["params"])
    lr = optim_lib.learning_rate(optim, state["step"], state["total_steps"])
    params = jax.tree.map(lambda p, u: p - (lr * u).astype(p.dtype), state["params"], direction)
    new_state = {
      **state,
      "step": state["step"] + 1,
      "params": params,
      "model_state": model_state,
      "opt_state": opt_state,
    }
    return new_state, {
      **metrics,
      "loss": loss,
      "grad_norm": optax.tree.norm(grads),
      "learning_rate": lr,
    }

  return step


def make_eval_step(graphdef, loss_fn, mesh=None):
  """`eval_step(state, batch) -> metrics`: the model in eval mode (`model.eval()`: no dropout),
  the state unchanged, so every eval batch sees the same model whatever the batch size. On
  `mesh` the outputs are split as in `make_step`."""
  if mesh is not None:
    loss_fn = sharding_lib.outputs_split_like_batch(loss_fn, mesh)
  eval_loss = model_calls.loss_of(graphdef, loss_fn, train=False)

  def eval_step(state, batch):
    loss, (metrics, _) = eval_loss(state["params"], state["model_state"], batch)
    return {**metrics, "loss": loss}

  return eval_step


def steps_loop(step):
  """`calls(state, batches, n) -> (state, metrics)`: the first `n` of the K stacked batches,
  one optimizer step each, in one loop (a dynamic trip count, so one executable serves full
  calls and a run's last, shorter one). Metrics of the K - n steps not taken are zeros."""

  def calls(state, batches, n):
    first = jax.tree.map(lambda b: b[0], batches)
    shapes = jax.eval_shape(step, state, first)[1]
    k = jax.tree.leaves(batches)[0].shape[0]
    out = jax.tree.map(lambda m: jnp.zeros((k, *m.shape), m.dtype), shapes)

    def body(i, carry):
      state, out = carry
      batch = jax.tree.map(lambda b: jax.lax.dynamic_index_in_dim(b, i, keepdims=False), batches)
      state, metrics = step(state, batch)
      out = jax.tree.map(lambda o, m: jax.lax.dynamic_update_index_in_dim(o, m, i, 0), out, metrics)
      return state, out

    return jax.lax.fori_loop(0, n, body, (state, out))

  return calls


@dataclasses.dataclass
class CompiledStep:
  """Executables of one shape on one mesh, and the FLOPs of one step.

  A run trains through one executable: `multi` (K = steps_per_call > 1: every call, the last
  shorter one included) or `single` (K = 1). `single` is otherwise compiled on first use only.
  Compiled with `replicas` R > 1, `multi` trains R stacked states at once (`jax.vmap` of the
  step, its batches [K, R, batch, ...], its metrics [K, R]); the FLOPs are still those of one
  replica's step, and `init`, `single` and `eval` are one replica's.
  """

  init: Any  # (total_steps) -> state, placed on the mesh
  lowered_single: Any  # the lowered one-step program: its FLOPs count, `single` compiles it
  multi: Any | None  # (state, K stacked batches, n) -> (state, metrics [K]): the first n steps
  eval: Any  # (state, batch) -> metrics
  steps_per_call: int
  flops_per_step: float  # global, from the lowered step (flops.step_flops): any mesh
  flops_per_step_per_device: float  # XLA's count of the training executable on one device
  state_shapes: Any
  state_sharding: Any  # a NamedSharding per leaf of the state (sharding.state_shardings)
  memory_bytes: int | None  # bytes one device needs for one training call (XLA's analysis)
  compile_seconds: float
  _single: Any = None

  @property
  def single(self):
    """(state, batch) -> (state, metrics): one step, compiled when first asked for."""
    if self._single is None:
      self._single = self.lowered_single.compile()
    return self._single


def batch_shapes(example: dict, batch_size: int, leading: tuple = ()) -> dict:
  return {
    k: jax.ShapeDtypeStruct(leading + (batch_size,) + v.shape[1:], v.dtype)
    for k, v in example.items()
  }


def _lower_single(step, state_shapes, state_sharding, batch, mesh):
  return jax.jit(
    step,
    in_shardings=(state_sharding, mesh_lib.batch_sharding(mesh)),
    out_shardings=(state_sharding, mesh_lib.replicated(mesh)),
    donate_argnums=0,
  ).lower(state_shapes, batch)


def memory_bytes(compiled) -> int | None:
  """Bytes one device needs to run `compiled`: its arguments, outputs and temporaries (an
  output aliasing a donated argument counted once), from XLA's memory analysis."""
  try:
    memory = compiled.memory_analysis()
    return int(
      memory.argument_size_in_bytes
      + memory.output_size_in_bytes
      + memory.temp_size_in_bytes
      - memory.alias_size_in_bytes
    )
  except Exception:  # not every backend reports memory
    return None


def memory_bound_bytes(lowered, state_shapes, batch) -> int | None:
  """An upper bound of the bytes one device needs for a lowered step, without compiling it:
  its arguments plus every byte its operations read or write (XLA's cost analysis of the
  unfused global program). A buffer live at the peak is an argument or was written by some
  operation, so the bound holds on any mesh; it is typically 15-20x the compiled figure.
  None when the program has loops (their bodies are counted once) or no analysis."""
  if "stablehlo.while" in lowered.as_text():
    return None
  touched = xla_cost.lowered_bytes_accessed(lowered)
  if touched is None:
    return None
  arguments = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves((state_shapes, batch)))
  return int(touched + arguments)


def step_flops_and_memory(
  build_model,
  loss_fn,
  optim,
  example_batch: dict,
  batch_size: int,
  mesh=None,
  limit: int | None = None,
) -> tuple[float, int | None]:
  """Global FLOPs of one train step, and the bytes it needs per device on `mesh` (default:
  one device).

  FLOPs are those of `compile_step` on any mesh (flops.step_flops of the lowered step). The
  memory is XLA's memory analysis of the step compiled for `mesh`, except when `limit` is
  given and `memory_bound_bytes` is already under it: then that bound, and nothing is
  compiled (a sweep's small candidates are planned in a fraction of the time). Nothing is
  allocated.
  """
  abstract_model = nnx.eval_shape(build_model)
  state_shapes = jax.eval_shape(init_fn(build_model, optim_lib.adamw_direction(optim)), 0)
  mesh = mesh or mesh_lib.data_mesh(jax.local_devices()[:1])
  batch = batch_shapes(example_batch, batch_size)
  lowered = _lower_single(
    make_step(nnx.graphdef(abstract_model), loss_fn, optim, mesh),
    state_shapes,
    sharding_lib.state_shardings(state_shapes, mesh),
    batch,
    mesh,
  )
  flops = flops_lib.step_flops(lowered, abstract_model, batch)
  if limit is not None:
    bound = memory_bound_bytes(lowered, state_shapes, batch)
    if bound is not None and bound <= limit:
      return flops, bound
  try:
    compiled = lowered.compile()
  except Exception:  # a backend that cannot compile abstractly reports no memory
    return flops, None
  return flops, memory_bytes(compiled)


def compile_step(
  build_model,
  loss_fn,
  optim,
  mesh,
  example_batch: dict,
  batch_size: int,
  steps_per_call: int = 1,
  eval_batch_size: int | None = None,
  replicas: int = 1,
) -> CompiledStep:
  """Compiles the step for abstract inputs (nothing allocated) and counts its FLOPs.

  `example_batch` maps keys to arrays or ShapeDtypeStructs with a leading batch axis.
  Parameters and optimizer state are placed by `sharding.state_shardings` (replicated on a
  data-parallel mesh, sharded over `fsdp` / `tensor`); batches are split over `data` and
  `fsdp`. Each executable is compiled once; the FLOPs come from the lowered step (the same on
  every mesh). `replicas` > 1 compiles `multi` for that many stacked states (seeds of one
  shape trained together), whatever `steps_per_call`.
  """
  start = time.perf_counter()
  abstract_model = nnx.eval_shape(build_model)
  graphdef = nnx.graphdef(abstract_model)
  init = init_fn(build_model, optim_lib.adamw_direction(optim))
  state_shapes = jax.eval_shape(init, 0)
  replicated = mesh_lib.replicated(mesh)
  state_sharding = sharding_lib.state_shardings(state_shapes, mesh)
  step = make_step(graphdef, loss_fn, optim, mesh)
  batch = batch_shapes(example_batch, batch_size)
  lowered = _lower_single(step, state_shapes, state_sharding, batch, mesh)
  global_flops = flops_lib.step_flops(lowered, abstract_model, batch)
  single, multi = None, None
  if replicas > 1 or steps_per_call > 1:  # a loop of K steps (of R stacked states)
    leading = (steps_per_call, replicas) if replicas > 1 else (steps_per_call,)
    stepped = jax.vmap(step) if replicas > 1 else step
    sharding = stacked_shardings(state_sharding) if replicas > 1 else state_sharding
    shapes = stacked_shapes(state_shapes, replicas) if replicas > 1 else state_shapes
    multi = (
      jax.jit(
        steps_loop(stepped),
        in_shardings=(sharding, mesh_lib.batch_sharding(mesh, len(leading)), replicated),
        out_shardings=(sharding, replicated),
        donate_argnums=0,
      )
      .lower(
        shapes,
        batch_shapes(example_batch, batch_size, leading),
        jax.ShapeDtypeStruct((), jnp.int32),
      )
      .compile()
    )
  else:
    single = lowered.compile()
  trains = multi or single  # XLA counts a loop's body once: per device, one step's FLOPs
  eval_one = batch_shapes(example_batch, eval_batch_size or batch_size)
  eval_step = (
    jax.jit(
      make_eval_step(graphdef, loss_fn, mesh),
      in_shardings=(state_sharding, mesh_lib.batch_sharding(mesh)),
      out_shardings=replicated,
    )
    .lower(state_shapes, eval_one)
    .compile()
  )

  return CompiledStep(
    init=placed_init(init, state_sharding),
    lowered_single=lowered,
    multi=multi,
    eval=eval_step,
    steps_per_call=steps_per_call,
    flops_per_step=global_flops,
    flops_per_step_per_device=(
      (xla_cost.cost_analysis_flops(trains) or global_flops * replicas / mesh.size) / replicas
    ),
    state_shapes=state_shapes,
    state_sharding=state_sharding,
    memory_bytes=memory_bytes(trains),
    compile_seconds=time.perf_counter() - start,
    _single=single,
  )


def stacked_shapes(state_shapes, replicas: int):
  """The shapes of `replicas` states stacked on a new leading axis."""
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct((replicas, *x.shape), x.dtype), state_shapes)


def stacked_shardings(state_sharding):
  """One replica's shardings with an unsplit leading replica axis."""
  return jax.tree.map(
    lambda s: jax.sharding.NamedSharding(s.mesh, jax.sharding.PartitionSpec(None, *s.spec)),
    state_sharding,
  )


def stack_states(states: list, state_sharding):
  """Replicas' states (each placed by `state_sharding`) as one state with a replica axis."""
  stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *states)
  return jax.device_put(stacked, stacked_shardings(state_sharding))


def replica_state(stacked, index: int, state_sharding):
  """Replica `index` of a stacked state, placed as one replica's state (what its checkpoint
  and its eval executable take)."""
  return jax.device_put(jax.tree.map(lambda x: x[index], stacked), state_sharding)


# The init runs once per run: compiled without backend optimisation it builds in about 2 s per
# new model width on one CPU core, where eagerly (one optimising compile per parameter shape)
# it took 6-11 s (benchmarks/model_init.py).
_RUN_ONCE = {"xla_backend_optimization_level": 0}


def placed_init(init, state_sharding):
  """`init` (init_fn's) compiled once, returning the state placed by `state_sharding` (each
  device computes only its shards: a sharded state is never whole on one device)."""
  jitted = jax.jit(init, out_shardings=state_sharding)
  compiled = {}  # on first call: a run resumed from a checkpoint never builds its init

  def init_on_mesh(total_steps: int):
    steps = np.int32(total_steps)
    if "init" not in compiled:
      compiled["init"] = jitted.lower(steps).compile(compiler_options=_RUN_ONCE)
    return compiled["init"](steps)

  return init_on_mesh


def global_batch(mesh, local: dict, leading: int) -> dict:
  """This process's batch as one global array, split over `data` after `leading` axes."""
  sharding = mesh_lib.batch_sharding(mesh, leading)

  def put(x):
    shape = list(x.shape)
    shape[leading] *= jax.process_count()
    return jax.make_array_from_process_local_data(sharding, x, tuple(shape))

  return {k: put(np.asarray(v)) for k, v in local.items()}


def call_replica_steps(compiled, state, batch_iterators: list, mesh, k: int):
  """`call_steps` for a stacked state: replica r takes its k batches from batch_iterators[r];
  metrics have leading axes (steps_per_call, replicas)."""
  per_replica = [_call_batches(it, k, compiled.steps_per_call) for it in batch_iterators]
  stacked = {key: np.stack([b[key] for b in per_replica], axis=1) for key in per_replica[0]}
  return compiled.multi(state, global_batch(mesh, stacked, 2), np.int32(k))


def _call_batches(batches, k: int, steps_per_call: int) -> dict:
  """The next k batches stacked on a leading axis of steps_per_call, padded with the last
  (padding the loop never reaches)."""
  local = [next(batches) for _ in range(k)]
  local += local[-1:] * (steps_per_call - k)
  return {key: np.stack([b[key] for b in local]) for key in local[0]}


def call_steps(compiled, state, batches, mesh, k: int):
  """k <= steps_per_call optimizer steps on the next k batches in one jitted call ->
  (state, metrics with a leading axis of steps_per_call, of which the first k are real)."""
  if compiled.multi is None:
    state, metrics = compiled.single(state, global_batch(mesh, next(batches), 0))
    return state, jax.tree.map(lambda x: x[None], metrics)
  stacked = _call_batches(batches, k, compiled.steps_per_call)
  return compiled.multi(state, global_batch(mesh, stacked, 1), np.int32(k))
