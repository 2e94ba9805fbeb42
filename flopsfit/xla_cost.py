"""XLA's FLOP count of a lowered or compiled JAX program, normalised across versions and
backends (a leaf: models count their custom kernels with it, the engine counts steps)."""

from typing import Any


def cost_analysis_flops(stage) -> float | None:
  """FLOPs of a `jax.stages.Lowered` (global) or `Compiled` (per device), or None.

  `cost_analysis()` has returned a dict, a list with one dict per module, None, or -1
  depending on the JAX version and backend; all are normalised here.
  """
  try:
    analysis: Any = stage.cost_analysis()
  except Exception:  # some backends do not implement it
    return None
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else None
  if not isinstance(analysis, dict):
    return None
  flops = analysis.get("flops")
  return float(flops) if flops is not None and flops >= 0 else None


def lowered_flops(lowered) -> float | None:
  """Global FLOPs of a `jax.stages.Lowered`, counted by XLA's cost analysis on the host.

  `Lowered.cost_analysis()` runs XLA's HLO cost analysis with the lowering's backend, which
  GPU plugins do not implement (it returns None there). The same analysis run by the CPU
  client over the lowered HLO module gives the count on any backend, from the same program.
  """
  flops = cost_analysis_flops(lowered)
  if flops is not None:
    return flops
  try:
    from jax._src import xla_bridge
    from jax._src.lib import _jax  # the function Lowered.cost_analysis calls on CPU

    module = lowered.compiler_ir("hlo").as_hlo_module()
    analysis = _jax.hlo_module_cost_analysis(xla_bridge.get_backend("cpu"), module)
  except Exception:  # no CPU client (JAX_PLATFORMS without cpu) or a JAX without this call
    return None
  flops = analysis.get("flops") if isinstance(analysis, dict) else None
  return float(flops) if flops is not None and flops >= 0 else None
