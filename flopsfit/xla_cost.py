"""XLA's cost analysis of a lowered or compiled JAX program (FLOPs, bytes accessed),
normalised across versions and backends (a leaf: models count their custom kernels with it,
the engine counts steps)."""

from typing import Any


def _normalised(analysis: Any) -> dict | None:
  """`cost_analysis()` has returned a dict, a list with one dict per module, None, or -1
  depending on the JAX version and backend."""
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else None
  return analysis if isinstance(analysis, dict) else None


def _figure(analysis: dict | None, key: str) -> float | None:
  value = analysis.get(key) if analysis else None
  return float(value) if value is not None and value >= 0 else None


def cost_analysis_flops(stage) -> float | None:
  """FLOPs of a `jax.stages.Lowered` (global) or `Compiled` (per device), or None."""
  try:
    return _figure(_normalised(stage.cost_analysis()), "flops")
  except Exception:  # some backends do not implement it
    return None


def lowered_cost(lowered) -> dict | None:
  """XLA's cost analysis of a `jax.stages.Lowered` (global, before partitioning and fusion).

  `Lowered.cost_analysis()` runs XLA's HLO cost analysis with the lowering's backend, which
  GPU plugins do not implement (it returns None there). The same analysis run by the CPU
  client over the lowered HLO module gives the figures on any backend, from the same program.
  """
  try:
    analysis = _normalised(lowered.cost_analysis())
  except Exception:
    analysis = None
  if analysis is not None:
    return analysis
  try:
    from jax._src import xla_bridge
    from jax._src.lib import _jax  # the function Lowered.cost_analysis calls on CPU

    module = lowered.compiler_ir("hlo").as_hlo_module()
    return _normalised(_jax.hlo_module_cost_analysis(xla_bridge.get_backend("cpu"), module))
  except Exception:  # no CPU client (JAX_PLATFORMS without cpu) or a JAX without this call
    return None


def lowered_flops(lowered) -> float | None:
  """Global FLOPs of a `jax.stages.Lowered` (see `lowered_cost`), or None."""
  return _figure(lowered_cost(lowered), "flops")


def lowered_bytes_accessed(lowered) -> float | None:
  """Bytes the lowered program's operations read and write, each operation counted once."""
  return _figure(lowered_cost(lowered), "bytes accessed")
