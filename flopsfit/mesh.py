"""The device mesh: data parallelism over every device, axis types chosen explicitly."""

import jax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

DATA = "data"


def data_mesh(devices=None) -> Mesh:
  """A 1-D mesh named `data` over all devices, with Auto axis types (the compiler propagates
  shardings from the sharded batch; parameters are replicated)."""
  devices = jax.devices() if devices is None else devices
  return jax.make_mesh((len(devices),), (DATA,), axis_types=(AxisType.Auto,), devices=devices)


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh, leading_axes: int = 0) -> NamedSharding:
  """Batch dimension split over `data`, after `leading_axes` unsplit axes (e.g. a scan axis)."""
  return NamedSharding(mesh, P(*([None] * leading_axes), DATA))
