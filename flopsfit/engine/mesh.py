"""The device mesh: data parallelism over every device, axis types chosen explicitly."""

import jax
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA = "data"


def data_mesh(devices=None, num_devices: int = 0) -> Mesh:
  """A 1-D mesh named `data` over `devices` (default: all, or the first `num_devices` of
  each process), with Auto axis types: the compiler propagates shardings from the sharded
  batch; parameters are replicated."""
  if devices is None:
    devices = jax.devices()
    if num_devices:
      devices = _first_local(num_devices)
  return jax.make_mesh((len(devices),), (DATA,), axis_types=(AxisType.Auto,), devices=devices)


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh, leading_axes: int = 0) -> NamedSharding:
  """Batch dimension split over `data`, after `leading_axes` unsplit axes (e.g. a scan axis)."""
  return NamedSharding(mesh, P(*([None] * leading_axes), DATA))


def _first_local(n: int) -> list:
  """The first `n` local devices of every process (processes see the same local count)."""
  per_process = {}
  for d in jax.devices():
    per_process.setdefault(d.process_index, []).append(d)
  return [d for devices in per_process.values() for d in devices[:n]]
