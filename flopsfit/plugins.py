"""Resolves the plugins named in a config and checks them against their contracts.

A plugin is `"package.module:attr"` plus keyword arguments; what each must do is written once,
as protocols, in `flopsfit/contracts.py` (model, dataset, loss, size rule, hyperparameter
rule). Every failure is a `PluginError` whose one-line message names the config field, raised
before any training starts.
"""

import dataclasses
import functools
import importlib
import inspect
import numbers
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from flax import nnx

from flopsfit import contracts, model_calls
from flopsfit.contracts import SPLITS


class PluginError(ValueError):
  """A plugin named in the config cannot be used; the message names the field."""


def resolve(field: str, spec: Any) -> Callable:
  """Imports `"package.module:attr"` and returns the callable it names."""
  if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
    raise PluginError(f"config.{field}: expected 'package.module:attr', got {spec!r}")
  module_name, attr = spec.split(":")
  try:
    obj = importlib.import_module(module_name)
  except Exception as e:  # ImportError, or any error raised while importing the module
    raise PluginError(
      f"config.{field}: cannot import module {module_name!r} ({type(e).__name__}: {e})"
    ) from None
  for part in attr.split("."):
    if not hasattr(obj, part):
      raise PluginError(f"config.{field}: module {module_name!r} has no attribute {attr!r}")
    obj = getattr(obj, part)
  if not callable(obj):
    raise PluginError(f"config.{field}: {spec} is a {type(obj).__name__}, not a callable factory")
  return obj


def call(section: str, spec: str, factory: Callable, kwargs: dict) -> Any:
  """Calls the factory of config.<section>, turning a signature mismatch or a raised error
  into a PluginError."""
  is_class = isinstance(factory, type)
  try:  # a class's own __init__: metaclasses (nnx.Module's) hide the real signature
    signature = inspect.signature(factory.__init__ if is_class else factory)
    signature.bind(*((None,) if is_class else ()), **kwargs)
  except TypeError as e:
    raise PluginError(
      f"config.{section}.kwargs: {spec} does not accept {sorted(kwargs)} ({e})"
    ) from None
  except ValueError:  # some builtins have no signature; let the call decide
    pass
  try:
    return factory(**kwargs)
  except PluginError:
    raise
  except Exception as e:
    raise PluginError(f"config.{section}.factory: {spec} raised {type(e).__name__}: {e}") from None


def kwargs_of(section) -> dict:
  kwargs = section.get("kwargs", None)
  return {} if kwargs is None else dict(kwargs.to_dict() if hasattr(kwargs, "to_dict") else kwargs)


@dataclasses.dataclass
class Plugins:
  """The three resolved plugins of a config, with the model built per shape on demand."""

  model_spec: str
  model_factory: contracts.ModelFactory
  model_kwargs: dict
  dataset: contracts.Dataset
  loss: contracts.Loss

  def model(self, shape: contracts.Shape | None = None, seed: int = 0) -> nnx.Module:
    kwargs = {**self.model_kwargs, **(shape or {}), "rngs": nnx.Rngs(seed)}
    model = call("model", self.model_spec, self.model_factory, kwargs)
    if not isinstance(model, nnx.Module):
      raise PluginError(
        f"config.model.factory: {self.model_spec} returned a "
        f"{type(model).__name__}, expected a flax.nnx.Module"
      )
    return model

  def abstract_model(self, shape: contracts.Shape | None = None) -> nnx.Module:
    """The model with `ShapeDtypeStruct`s for arrays: nothing allocated."""
    return nnx.eval_shape(lambda: self.model(shape))


def load(config) -> Plugins:
  """Resolves the config's plugins and checks that they fit together."""
  for field in ("model", "dataset", "loss"):
    if field not in config or "factory" not in config[field]:
      raise PluginError(f"config.{field}.factory: missing; expected 'package.module:attr'")
  model_factory = resolve("model.factory", config.model.factory)
  dataset_spec = config.dataset.factory
  dataset = call(
    "dataset", dataset_spec, resolve("dataset.factory", dataset_spec), kwargs_of(config.dataset)
  )
  check_dataset(dataset, dataset_spec)
  loss_spec = config.loss.factory
  loss = call("loss", loss_spec, resolve("loss.factory", loss_spec), kwargs_of(config.loss))
  if not callable(loss):
    raise PluginError(
      f"config.loss.factory: {loss_spec} returned a {type(loss).__name__}, "
      "expected a function loss(outputs, batch) (flopsfit.contracts.Loss)"
    )
  return Plugins(config.model.factory, model_factory, kwargs_of(config.model), dataset, loss)


def size_rule(config) -> contracts.SizeRule:
  """`config.model.size_rule`'s rule, checked to have `shape_for`."""
  spec = config.model.size_rule.factory
  factory = resolve("model.size_rule.factory", spec)
  rule = call("model.size_rule", spec, factory, kwargs_of(config.model.size_rule))
  if not callable(getattr(rule, "shape_for", None)):
    raise PluginError(
      f"config.model.size_rule.factory: {spec} returned a {type(rule).__name__} without a "
      "shape_for(target_params) method (flopsfit.contracts.SizeRule)"
    )
  return rule


def shape_for(rule: contracts.SizeRule, spec: str, target_params: float) -> contracts.Shape:
  """`rule.shape_for(target_params)`, checked to be a dict of integer shape fields."""
  shape = rule.shape_for(target_params)
  if not isinstance(shape, dict) or not all(
    isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in shape.values()
  ):
    raise PluginError(
      f"config.model.size_rule.factory: {spec}'s shape_for({target_params:.3g}) returned "
      f"{shape!r}; expected a dict of integer model kwargs (flopsfit.contracts.SizeRule)"
    )
  return {k: int(v) for k, v in shape.items()}


def hparam_rule(config) -> contracts.HparamRule:
  """`config.hparams`' rule, checked to be callable."""
  spec = config.hparams.factory
  rule = call("hparams", spec, resolve("hparams.factory", spec), kwargs_of(config.hparams))
  if not callable(rule):
    raise PluginError(
      f"config.hparams.factory: {spec} returned a {type(rule).__name__}, expected a function "
      "rule(shape, budget_flops) (flopsfit.contracts.HparamRule)"
    )
  return rule


def hparams_for(
  rule: contracts.HparamRule, spec: str, shape: contracts.Shape, budget_flops: float
) -> contracts.Hparams:
  """`rule(shape, budget_flops)`, checked: a positive learning rate and batch size."""
  try:
    hp = rule(shape, budget_flops)
  except Exception as e:
    if str(e).startswith("config."):  # the rule's own one-line error naming its field
      raise PluginError(str(e)) from None
    raise PluginError(
      f"config.hparams.factory: {spec} raised on shape {shape} at budget {budget_flops:.3g} "
      f"({_reason(e)})"
    ) from None
  lr = hp.get("learning_rate") if isinstance(hp, dict) else None
  batch = hp.get("batch_size") if isinstance(hp, dict) else None
  if not (
    isinstance(lr, numbers.Real)
    and lr > 0
    and isinstance(batch, (int, np.integer))
    and not isinstance(batch, bool)
    and batch > 0
  ):
    raise PluginError(
      f"config.hparams.factory: {spec} returned {hp!r} for shape {shape} at budget "
      f"{budget_flops:.3g}; expected {{'learning_rate': > 0, 'batch_size': int > 0}} "
      "(flopsfit.contracts.Hparams)"
    )
  return {**hp, "learning_rate": float(lr), "batch_size": int(batch)}


def check_dataset(dataset, spec: str) -> None:
  """The dataset fits `contracts.Dataset`: unit, units_per_record, and both splits' sources
  give records that are dicts of numpy arrays."""
  units = getattr(dataset, "units_per_record", None)
  if not isinstance(units, (int, np.integer)) or units <= 0:
    raise PluginError(
      f"config.dataset.factory: {spec} has no positive integer "
      f"`units_per_record` (what one record counts as in D), got {units!r}"
    )
  unit = getattr(dataset, "unit", None)
  if not isinstance(unit, str) or not unit:
    raise PluginError(
      f"config.dataset.factory: {spec} has no `unit` string (what D counts: 'tokens', "
      f"'images'), got {unit!r} (flopsfit.contracts.Dataset)"
    )
  if not callable(getattr(dataset, "source", None)):
    raise PluginError(
      f"config.dataset.factory: {spec} has no `source(split)` method (flopsfit.contracts.Dataset)"
    )
  for split in SPLITS:
    try:
      source = dataset.source(split)
      length = len(source)
      record = source[0] if length else None
    except Exception as e:
      raise PluginError(
        f"config.dataset.factory: {spec} has no usable {split!r} split ({type(e).__name__}: {e})"
      ) from None
    if not length:
      raise PluginError(f"config.dataset.factory: {spec}'s {split!r} split is empty")
    if not isinstance(record, dict) or not all(isinstance(v, np.ndarray) for v in record.values()):
      raise PluginError(
        f"config.dataset.factory: {spec}'s {split!r} records must be dicts of "
        f"numpy arrays, got {type(record).__name__}"
      )


def example_batch(dataset, batch_size: int) -> dict:
  """Shapes and dtypes of a training batch, as `ShapeDtypeStruct`s."""
  record = dataset.source("train")[0]
  return {k: jax.ShapeDtypeStruct((batch_size,) + v.shape, v.dtype) for k, v in record.items()}


def _reason(e: Exception) -> str:
  """An exception as one short line: its type and the first line of its message."""
  lines = str(e).strip().splitlines()
  return f"{type(e).__name__}: {lines[0][:300] if lines else ''}"


def check_model_and_loss(plugins: Plugins, shape: dict | None, batch_size: int) -> None:
  """Traces model and loss abstractly as the train and eval steps call them: output keys, loss
  scalar, metrics dict, a gradient, a model state (e.g. random streams) of unchanged structure.
  """
  spec = plugins.model_spec
  graphdef, params, model_state = model_calls.split(plugins.abstract_model(shape))
  batch = example_batch(plugins.dataset, batch_size)
  try:
    outputs, new_model_state = jax.eval_shape(
      functools.partial(model_calls.apply, graphdef, train=True), params, model_state, batch
    )
  except Exception as e:
    raise PluginError(
      f"config.model.factory: {spec} failed on a batch with keys {sorted(batch)} "
      f"under jax.jit in training mode ({_reason(e)})"
    ) from None
  check_outputs_and_loss(plugins.loss, outputs, batch)
  _check_same_state(spec, model_state, new_model_state)
  for train, how in ((True, "differentiated in training mode"), (False, "run in eval mode")):
    loss = model_calls.loss_of(graphdef, plugins.loss, train=train)
    step = jax.value_and_grad(loss, has_aux=True) if train else loss
    try:
      jax.eval_shape(step, params, model_state, batch)
    except Exception as e:
      raise PluginError(
        f"config.model.factory: {spec} cannot be {how} (model.{'train' if train else 'eval'}(), "
        f"as the {'train' if train else 'eval'} step does) ({_reason(e)})"
      ) from None


def _variables(state) -> dict:
  return {
    jax.tree_util.keystr(path, simple=True, separator="/"): (x.shape, x.dtype)
    for path, x in jax.tree_util.tree_leaves_with_path(nnx.as_pure(state))
  }


def _check_same_state(spec: str, before, after) -> None:
  """A call returns the model state with the variables, shapes and dtypes it was given."""
  before, after = _variables(before), _variables(after)
  if before != after:
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    raise PluginError(
      f"config.model.factory: {spec} creates or changes variables when called "
      f"({', '.join(changed[:5])}); create every variable in __init__ with a fixed shape"
    )


def check_outputs_and_loss(loss, outputs, batch: dict) -> None:
  """The model's outputs are a dict that `loss(outputs, batch)` maps to (scalar, metrics)."""
  if not isinstance(outputs, dict):
    raise PluginError(
      f"config.model.factory: the model returned a {type(outputs).__name__}, "
      "expected a dict of outputs such as {'logits': ...}"
    )
  try:
    value, metrics = jax.eval_shape(loss, outputs, batch)
  except KeyError as e:
    raise PluginError(
      f"config.model.factory: model outputs {sorted(outputs)} lack the key "
      f"{e.args[0]!r} that config.loss needs"
    ) from None
  except (TypeError, ValueError) as e:
    raise PluginError(
      f"config.loss.factory: loss(outputs, batch) failed or did not return "
      f"(scalar, metrics dict) ({_reason(e)})"
    ) from None
  if getattr(value, "shape", None) != ():
    raise PluginError(
      f"config.loss.factory: loss must return a scalar, got shape "
      f"{getattr(value, 'shape', type(value).__name__)}"
    )
  if not isinstance(metrics, dict):
    raise PluginError(
      f"config.loss.factory: loss must return (scalar, dict of metrics), "
      f"got metrics of type {type(metrics).__name__}"
    )
