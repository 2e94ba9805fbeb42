"""Readable run ids that parse back: `c<budget>-<shape>-s<seed>`, e.g. `c2e+11-d32-L2-s0`."""

import re

_SHORT = {"d_model": "d", "n_layers": "L"}
_LONG = {v: k for k, v in _SHORT.items()}


def format_run_id(budget_flops: float, shape: dict, seed: int) -> str:
  parts = [f"c{budget_flops:.3g}"]
  parts += [
    f"{_SHORT.get(k, k)}{v}" for k, v in sorted(shape.items(), key=lambda kv: _order(kv[0]))
  ]
  parts.append(f"s{seed}")
  return "-".join(parts)


def _order(key: str) -> tuple:
  return (list(_SHORT).index(key) if key in _SHORT else len(_SHORT), key)


def parse_run_id(run_id: str) -> dict:
  """Inverse of `format_run_id`: {"budget_flops", "shape", "seed"}."""
  match = re.fullmatch(r"c([0-9.]+e[+-]?\d+|[0-9.]+)-(.*)-s(\d+)", run_id)
  if not match:
    raise ValueError(f"run id {run_id!r}: expected 'c<budget>-<shape>-s<seed>'")
  shape = {}
  for part in match.group(2).split("-"):
    key, value = re.fullmatch(r"([A-Za-z_]+?)(\d+)", part).groups()
    shape[_LONG.get(key, key)] = int(value)
  return {"budget_flops": float(match.group(1)), "shape": shape, "seed": int(match.group(3))}
