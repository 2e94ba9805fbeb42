"""How the engine calls a model plugin inside `jax.jit` and `jax.grad`: as pure functions.

A model is split into its parameters (`nnx.Param`: differentiated, updated by the optimizer)
and its model state, everything else: the `nnx.Rngs` streams its layers draw from when called
(`nnx.RngKey`, `nnx.RngCount`) and variables such as `nnx.BatchStat`. Each call merges a fresh
copy of the model inside the traced function, so the model may advance its streams there (a
model merged outside the trace cannot: Flax raises `TraceContextError`), puts it in training
or evaluation mode with Flax's `model.train()` / `model.eval()`, and returns the advanced model
state, which the train step carries to the next step and checkpoints.
"""

from collections.abc import Callable

from flax import nnx


def split(model: nnx.Module) -> tuple:
  """`(graphdef, params, model_state)` of a model (concrete or from `nnx.eval_shape`)."""
  return nnx.split(model, nnx.Param, ...)


def apply(graphdef, params, model_state, batch: dict, *, train: bool) -> tuple[dict, nnx.State]:
  """`(outputs, advanced model_state)` of the model called on `batch` in train or eval mode.

  Training mode is Flax's `model.train()` (`deterministic=False`, `use_running_average=False`
  on every submodule that has the attribute: dropout on, batch statistics updated); eval mode
  is `model.eval()` (both True). A model may override `train`/`eval` for its own switches.
  """
  model = nnx.merge(graphdef, params, model_state, copy=True)
  if train:
    model.train()
  else:
    model.eval()
  outputs = model(batch)
  return outputs, nnx.state(model, nnx.Not(nnx.Param))


def loss_of(graphdef, loss_fn: Callable, *, train: bool) -> Callable:
  """`f(params, model_state, batch) -> (loss, (metrics, advanced model_state))`."""

  def loss(params, model_state, batch):
    outputs, new_model_state = apply(graphdef, params, model_state, batch, train=train)
    value, metrics = loss_fn(outputs, batch)
    return value, (metrics, new_model_state)

  return loss
