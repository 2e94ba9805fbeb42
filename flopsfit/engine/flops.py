"""Compute accounting: XLA's FLOP count of a compiled step, and the analytic conventions."""

from typing import Any


def cost_analysis_flops(compiled) -> float | None:
  """FLOPs per device of a `jax.stages.Compiled`, or None when XLA gives no count.

  `cost_analysis()` has returned a dict, a list with one dict per module, None, or -1
  depending on the JAX version and backend; all are normalised here.
  """
  try:
    analysis: Any = compiled.cost_analysis()
  except Exception:  # some backends do not implement it
    return None
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else None
  if not isinstance(analysis, dict):
    return None
  flops = analysis.get("flops")
  return float(flops) if flops is not None and flops >= 0 else None


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
