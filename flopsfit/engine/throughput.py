"""Peak FLOP/s for MFU: measured with a large matmul on CPU, from a table on accelerators."""

import functools
import time

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

# Dense peak FLOP/s per chip by compute dtype (vendor datasheets, no sparsity).
PEAK_FLOPS = {
  "H100": {"bfloat16": 989e12, "float32": 67e12},
  "H200": {"bfloat16": 989e12, "float32": 67e12},
  "A100": {"bfloat16": 312e12, "float32": 19.5e12},
  "L4": {"bfloat16": 121e12, "float32": 30.3e12},
  "TPU v4": {"bfloat16": 275e12, "float32": 275e12 / 4},
  "TPU v5 lite": {"bfloat16": 197e12, "float32": 197e12 / 4},
  "TPU v5p": {"bfloat16": 459e12, "float32": 459e12 / 4},
}


@functools.cache
def measured_matmul_peak(mesh, dtype=jnp.float32, size: int = 1024, repeats: int = 20) -> float:
  """FLOP/s of the whole mesh: the best of `repeats` runs of one square matmul per device,
  all devices at once (forced CPU devices share one processor, so they are timed together).

  20 runs (about 0.15 s on 2 CPU cores, once per process and mesh): with 5, five processes in
  a row on a quiet 2-core Xeon measured 2.57-3.04e11 FLOP/s, with 20 3.03-3.08e11 (two later
  sweeps: 3.04e11 and 3.3e11), so efficiencies and MFU computed against it moved by up to 18%
  from process to process with 5, up to about 9% with 20.
  """
  sharding = NamedSharding(mesh, P(mesh.axis_names))
  a = jax.device_put(jnp.ones((mesh.size, size, size), dtype), sharding)
  matmul = jax.jit(lambda x: x @ x, out_shardings=sharding)
  matmul(a).block_until_ready()
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    matmul(a).block_until_ready()
    best = min(best, time.perf_counter() - start)
  return 2.0 * mesh.size * size**3 / best


def peak_flops(
  mesh, compute_dtype: str, per_device_override: float = 0.0
) -> tuple[float | None, str]:
  """(peak FLOP/s of the whole mesh, where it came from); None when the device is unknown."""
  if per_device_override:
    return per_device_override * mesh.size, "given (--peak_flops or train.peak_flops)"
  device = mesh.devices.flat[0]
  if device.platform == "cpu":
    return measured_matmul_peak(
      mesh, jnp.dtype(compute_dtype)
    ), "measured matmul (once per process)"
  for name, peaks in PEAK_FLOPS.items():
    if name.lower() in device.device_kind.lower() and compute_dtype in peaks:
      return peaks[compute_dtype] * mesh.size, f"table ({name}, {compute_dtype})"
  return None, f"unknown device {device.device_kind!r}: give --peak_flops (per device) for MFU"
