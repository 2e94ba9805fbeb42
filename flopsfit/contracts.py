"""The plugin contracts, written once: what flopsfit calls on each plugin a config names.

A config names factories by import path (`"package.module:attr"`) with keyword arguments:
`config.model` a `ModelFactory`, `config.dataset` a `DatasetFactory`, `config.loss` a
`LossFactory`, `config.model.size_rule` a factory of a `SizeRule`, `config.hparams` a factory of
an `HparamRule`. `flopsfit/plugins.py` checks these contracts when a config is loaded, before
anything trains, and fails in one line naming the config field; docs/plugins.md walks through
them. Plugins need not import this module: the protocols are structural (any object with these
methods and attributes fits), and a plugin may use them in its own type annotations.
"""

from typing import Any, Protocol, TypedDict, runtime_checkable

import jax
import numpy as np
from flax import nnx

SPLITS = ("train", "eval")  # the splits every dataset gives

Record = dict[str, np.ndarray]  # one record of a source: {"tokens": int32[T]}, {"image": ...}
Batch = dict[str, jax.Array]  # records stacked: {"tokens": [B, T]}, {"image": [B, H, W, C], ...}
Outputs = dict[str, jax.Array]  # what a model returns: {"logits": ...}
Metrics = dict[str, jax.Array]  # scalars; `weight` (if present) weights eval batches
Shape = dict[str, int]  # a model's shape fields: {"d_model": 64, "n_layers": 2}


@runtime_checkable
class Model(Protocol):
  """A `flax.nnx.Module` mapping a batch to a dict of outputs; it does not compute the loss.

  Create every variable in `__init__` with a fixed shape. The model may draw from `nnx.Rngs`
  streams it keeps (dropout, noise): the engine calls `model.train()` before training steps and
  `model.eval()` before the final eval, and checkpoints the streams with the train state.
  """

  def __call__(self, batch: Batch) -> Outputs: ...


class ModelFactory(Protocol):
  """`config.model.factory`: called with `config.model.kwargs`, the run's shape fields and
  `rngs=nnx.Rngs(seed)`; the shape fields (`config.model.shape_fields`) are keyword arguments."""

  def __call__(self, *, rngs: nnx.Rngs, **kwargs: Any) -> Model: ...


@runtime_checkable
class CountsMatmulParams(Protocol):
  """Optional on a model: parameters multiplied with activations per unit of data, when the
  default (every >= 2-D parameter outside `nnx.Embed` tables) is wrong for it."""

  def matmul_active_params(self) -> int: ...


@runtime_checkable
class CountsAttentionFlops(Protocol):
  """Optional on a model: forward FLOPs per token of attention's QKᵀ and weighted values, for
  the `attention_inclusive` convention (0 when absent)."""

  def attention_flops_per_token(self, seq_len: int) -> float: ...


@runtime_checkable
class CountsCustomCallFlops(Protocol):
  """Optional on a model, required when its step calls custom kernels XLA cannot count (cuDNN,
  Pallas, Triton): their FLOPs for one train step (docs/plugins-flops.md)."""

  def custom_call_flops(self, batch_shapes: dict[str, jax.ShapeDtypeStruct]) -> float: ...


@runtime_checkable
class Source(Protocol):
  """A grain random-access source of one split: records by index, and a `__repr__` that is the
  same for the same data (grain checks it when an iterator state is restored). Optional:
  `__getitems__(indices)`, the records at `indices` in one call (the engine reads each batch
  with it when present)."""

  def __len__(self) -> int: ...

  def __getitem__(self, index: int) -> Record: ...

  def __repr__(self) -> str: ...


@runtime_checkable
class Dataset(Protocol):
  """What a dataset factory returns: a source per split and what one record counts as in D.

  `unit` names the unit of D ("tokens", "images"); `units_per_record` is how many of them one
  record holds. The engine shuffles, repeats, batches and shards the sources; batch `s` of a run
  is a function of (seed, s). Optional: a `loss_floor` attribute (the lowest loss any model can
  reach on this data), stored with every result.
  """

  unit: str
  units_per_record: int

  def source(self, split: str) -> Source: ...


class DatasetFactory(Protocol):
  """`config.dataset.factory`: called with `config.dataset.kwargs`."""

  def __call__(self, **kwargs: Any) -> Dataset: ...


class Loss(Protocol):
  """`loss(outputs, batch) -> (scalar, metrics)`, traced inside the jitted train and eval steps;
  a KeyError for an output the model lacks is reported as such. On several devices every output
  whose leading axis has the batch's size arrives split over that axis as the batch is."""

  def __call__(self, outputs: Outputs, batch: Batch) -> tuple[jax.Array, Metrics]: ...


class LossFactory(Protocol):
  """`config.loss.factory`: called with `config.loss.kwargs`."""

  def __call__(self, **kwargs: Any) -> Loss: ...


@runtime_checkable
class SizeRule(Protocol):
  """What `config.model.size_rule.factory` returns: a model shape for a target non-embedding
  parameter count (the planner asks for many targets around the expected optimum)."""

  def shape_for(self, target_params: float) -> Shape: ...


class Hparams(TypedDict):
  """A run's hyperparameters as an `HparamRule` returns them."""

  learning_rate: float
  batch_size: int


class HparamRule(Protocol):
  """What `config.hparams.factory` returns: a run's learning rate and batch size from its shape
  and FLOP budget (one batch size for every shape of a budget keeps the sizes comparable)."""

  def __call__(self, shape: Shape, budget_flops: float) -> Hparams: ...
