"""What makes two configs the same experiment: the config minus where and how it executes."""

import hashlib
import json

# Fields that change how or where runs execute, not what they compute: a workdir planned or a
# run started with one value may be trained or resumed with another.
EXECUTION_FIELDS = (
  "workdir",
  "run",
  "compilation_cache_dir",
  "train.log_every",
  "train.devices",
  "train.mesh",
  "train.peak_flops",
  "train.steps_per_call",
  "train.vmap_seeds",
  "analysis",
  "sweep.probe",
  "checkpoint",
)


def identity(config) -> dict:
  """The config as plain JSON data, without execution-only fields."""
  out = json.loads(json.dumps(config.to_dict() if hasattr(config, "to_dict") else config))
  for field in EXECUTION_FIELDS:
    *parents, leaf = field.split(".")
    node = out
    for p in parents:
      node = node.get(p, {}) if isinstance(node, dict) else {}
    if isinstance(node, dict):
      node.pop(leaf, None)
  return out


def fingerprint(config) -> str:
  return hashlib.sha256(json.dumps(identity(config), sort_keys=True).encode()).hexdigest()[:16]


def differences(a, b, prefix: str = "") -> list[str]:
  """Dotted names of the fields where two identities differ."""
  if isinstance(a, dict) and isinstance(b, dict):
    out = []
    for k in sorted(set(a) | set(b)):
      out += differences(a.get(k), b.get(k), f"{prefix}{k}.")
    return out
  return [] if a == b else [prefix.rstrip(".")]
