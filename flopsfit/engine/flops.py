"""Compute accounting: XLA's FLOP count of a train step, custom kernels, analytic conventions.

The budget counts FLOPs on the step's lowered program (`Lowered.cost_analysis()`): global,
before partitioning and before backend fusion, so one count serves every mesh and backend
and nothing is compiled twice. XLA counts zero inside a custom call (a cuDNN, Pallas or
Triton kernel, a `jax.pure_callback`); such a step is counted only when the model plugin
gives those kernels' FLOPs (`custom_call_flops`, docs/plugins-flops.md), otherwise refused.
"""

import re

from flopsfit.config_check import ConfigError
from flopsfit.xla_cost import lowered_flops

# Custom calls that only annotate (sharding, placement, layout) and do no arithmetic.
ANNOTATION_TARGETS = frozenset(
  {
    "Sharding",
    "SPMDFullToShardShape",
    "SPMDShardToFullShape",
    "annotate_device_placement",
    "MoveToHost",
    "MoveToDevice",
    "LayoutConstraint",
    "ShardBarrierFrom",
    "ShardBarrierTo",
    "X64Combine",
    "X64SplitLow",
    "X64SplitHigh",
  }
)
_STABLEHLO_TARGET = re.compile(r"custom_call\s*@([\w$.\-]+)")
_HLO_TARGET = re.compile(r'custom_call_target="([^"]+)"')


def custom_call_targets(program_text: str) -> list[str]:
  """The kernels a program calls that XLA cannot count: custom-call targets in StableHLO
  (`Lowered.as_text()`) or HLO (`Compiled.as_text()`) text, annotations left out."""
  found = set(_STABLEHLO_TARGET.findall(program_text)) | set(_HLO_TARGET.findall(program_text))
  return sorted(found - ANNOTATION_TARGETS)


def step_flops(lowered, model, batch_shapes: dict) -> float:
  """Global model FLOPs of one train step: XLA's count of its lowered program, plus the
  model's `custom_call_flops(batch_shapes)` when the step calls custom kernels.

  Raises ConfigError naming the kernels when the model does not say what they cost.
  """
  flops = lowered_flops(lowered)
  if flops is None:
    raise RuntimeError(
      "XLA gave no FLOP count for the train step on this backend; keep the CPU platform "
      "available to JAX (JAX_PLATFORMS must include cpu): flopsfit counts FLOPs with it"
    )
  targets = custom_call_targets(lowered.as_text())
  if not targets:
    return flops
  kernel_flops = getattr(model, "custom_call_flops", None)
  if not callable(kernel_flops):
    raise ConfigError(
      f"config.model.factory: the train step calls custom kernel(s) {', '.join(targets)} "
      "whose FLOPs XLA cannot count; give the model a custom_call_flops(batch_shapes) "
      "method (docs/plugins-flops.md) or build it from XLA operations"
    )
  extra = float(kernel_flops(batch_shapes))
  if not extra > 0:
    raise ConfigError(
      f"config.model.factory: custom_call_flops returned {extra!r} for kernel(s) "
      f"{', '.join(targets)}; expected the positive FLOPs of one train step"
    )
  return flops + extra


def analytic_flops(params: dict, tokens: float, attention_flops_per_token: float) -> dict:
  """Training compute under the literature's conventions (forward + backward = 3× forward).

  - 6ND_total, 6ND_non_embedding: 6·N·D with N total or without embeddings (Kaplan, Chinchilla).
  - attention_inclusive: 6·N_matmul·D + 3·(attention forward FLOPs per token)·D, the
    Chinchilla App. F / DeepSeek style count; for a GPT attention forward is 4·L·T·d per token
    (QKᵀ and attention-weighted values, the full T×T as XLA computes it).
  """
  return {
    "6ND_total": 6.0 * params["total"] * tokens,
    "6ND_non_embedding": 6.0 * params["non_embedding"] * tokens,
    "attention_inclusive": (6.0 * params["matmul_active"] + 3.0 * attention_flops_per_token)
    * tokens,
  }
