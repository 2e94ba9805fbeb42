"""Model plugin adapter: a Flax Linen module trained as an NNX model, through Flax's NNX bridge.

`LinenModel` wraps a `flax.linen.Module` in `flax.nnx.bridge.ToNNX` and initialises its
variables in `__init__` from zero inputs of the record shapes given (`nnx.bridge.lazy_init`),
so the engine sees an ordinary `nnx.Module`: Linen's `params` become `nnx.Param`s, and the
random streams the Linen module draws from (`make_rng("dropout")`) are `nnx.Rngs` streams of the
model state, checkpointed and advanced every step. The Linen module takes the batch dict and
returns the outputs dict, like any model plugin (flopsfit.contracts.Model). Training and eval
mode reach it through `deterministic_kwarg`: the name of a boolean keyword argument of its
`__call__` (e.g. "deterministic"), given True by `model.eval()` and False by `model.train()`.
"""

from typing import Any

import jax.numpy as jnp
from flax import linen, nnx

from flopsfit import plugins


class LinenModel(nnx.Module):
  """A Linen module as a model plugin.

  `module`: a `linen.Module`, or the import path (`"package.module:attr"`) of a class built
  with `module_kwargs` (the model kwargs of the config, shape fields included).
  `inputs`: `{key: (record_shape, dtype)}` of one record, e.g. `{"tokens": ((64,), "int32")}`.
  `streams`: the Linen RNG collections it draws from when called (besides "params").
  """

  def __init__(
    self,
    *,
    module: linen.Module | str,
    inputs: dict,
    deterministic_kwarg: str | None = None,
    streams: tuple[str, ...] = ("dropout",),
    rngs: nnx.Rngs,
    **module_kwargs: Any,
  ):
    if isinstance(module, str):
      module = plugins.resolve("model.kwargs.module", module)(**module_kwargs)
    if not isinstance(module, linen.Module):
      raise TypeError(f"model module: expected a flax.linen.Module, got {type(module).__name__}")
    self.deterministic_kwarg = deterministic_kwarg
    self.deterministic = False  # set by model.train() / model.eval()
    streams = {name: rngs[name]() for name in ("params", *streams)}
    self.linen = nnx.bridge.ToNNX(module, rngs=nnx.Rngs(**streams))
    example = {k: jnp.zeros((1, *shape), dtype) for k, (shape, dtype) in dict(inputs).items()}
    nnx.bridge.lazy_init(self.linen, example, **self._mode())

  def _mode(self) -> dict:
    return {self.deterministic_kwarg: self.deterministic} if self.deterministic_kwarg else {}

  def __call__(self, batch: dict) -> dict:
    return self.linen(batch, **self._mode())
