"""The device mesh: named axes `data`, `fsdp` and `tensor`, axis types chosen explicitly.

- `data`: the batch is split over it; parameters and optimizer state are replicated on it.
- `fsdp`: the batch is split over it too, and parameters and optimizer state are sharded on it
  (fully sharded data parallelism; XLA gathers them where the step needs them).
- `tensor`: the model's matmuls are split over it (Megatron-style, by the model's sharding
  rules); every device of a `tensor` group sees the same rows of the batch.

The axes are `AxisType.Auto`: the compiler propagates shardings from the arguments' shardings
(`jax.make_mesh`'s default, Explicit, would make every NNX operation state its sharding).
"""

import jax
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from flopsfit.config_check import ConfigError

DATA, FSDP, TENSOR = "data", "fsdp", "tensor"
AXES = (DATA, FSDP, TENSOR)
BATCH_AXES = (DATA, FSDP)  # the mesh axes the batch dimension is split over


def make_mesh(devices=None, num_devices: int = 0, fsdp: int = 1, tensor: int = 1) -> Mesh:
  """A (data, fsdp, tensor) mesh over `devices` (default: all, or the first `num_devices` of
  each process); `data` takes the devices left after `fsdp` × `tensor`."""
  if devices is None:
    devices = jax.devices()
    if num_devices:
      devices = _first_local(num_devices)
  n, model_axes = len(devices), fsdp * tensor
  if fsdp < 1 or tensor < 1 or n % model_axes:
    raise ConfigError(
      f"config.train.mesh: fsdp={fsdp} × tensor={tensor} must divide the {n} devices"
    )
  return jax.make_mesh(
    (n // model_axes, fsdp, tensor),
    AXES,
    axis_types=(AxisType.Auto,) * 3,
    devices=devices,
  )


def data_mesh(devices=None, num_devices: int = 0) -> Mesh:
  """Data parallelism over every device: parameters and optimizer state replicated."""
  return make_mesh(devices, num_devices)


def mesh_of_config(config, devices=None, num_devices: int = 0) -> Mesh:
  """The mesh `config.train.mesh` asks for (`fsdp`, `tensor`; 0 or missing: 1)."""
  spec = config.train.get("mesh") or {}
  sizes = {}
  for name in (FSDP, TENSOR):
    value = spec.get(name, 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
      raise ConfigError(f"config.train.mesh.{name}: expected an integer >= 0, got {value!r}")
    sizes[name] = value or 1
  return make_mesh(devices, num_devices, sizes[FSDP], sizes[TENSOR])


def shape_of(mesh: Mesh) -> dict:
  """{"data": n, "fsdp": f, "tensor": t}: what result.json records."""
  return {name: int(size) for name, size in mesh.shape.items()}


def batch_devices(mesh: Mesh) -> int:
  """How many ways the batch is split: data × fsdp."""
  return mesh.shape[DATA] * mesh.shape[FSDP]


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh, leading_axes: int = 0) -> NamedSharding:
  """Batch dimension split over `data` and `fsdp`, after `leading_axes` unsplit axes (e.g. a
  scan axis)."""
  return NamedSharding(mesh, P(*([None] * leading_axes), BATCH_AXES))


def _first_local(n: int) -> list:
  """The first `n` local devices of every process (processes see the same local count)."""
  per_process = {}
  for d in jax.devices():
    per_process.setdefault(d.process_index, []).append(d)
  return [d for devices in per_process.values() for d in devices[:n]]
