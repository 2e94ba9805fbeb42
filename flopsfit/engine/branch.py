"""The cooldown design's runs (docs/sweep-design.md): a trunk keeps checkpoints at its branch
steps; a branch starts from its trunk's checkpoint at its branch step instead of from scratch.

`config.train.cooldown` says which a run is: `{"role": "trunk", "branch_steps": [...]}`,
`{"role": "branch", "trunk": <run id>, "branch_step": S}`, or empty for an ordinary run.
"""

import os

import jax
import numpy as np
from absl import logging

from flopsfit import identity as identity_lib
from flopsfit import workdir as workdir_lib
from flopsfit.config_check import ConfigError
from flopsfit.engine import checkpoints as checkpoints_lib
from flopsfit.engine import sharding as sharding_lib

ROLES = ("trunk", "branch")


def role_of(config) -> dict | None:
  """config.train.cooldown as a checked dict, or None for an ordinary run."""
  spec = config.train.get("cooldown")
  if not spec or not spec.get("role"):
    return None
  spec = dict(spec)
  if spec["role"] not in ROLES:
    raise ConfigError(f"config.train.cooldown.role: expected one of {ROLES}, got {spec['role']!r}")
  if spec["role"] == "trunk":
    return {"role": "trunk", "branch_steps": sorted(int(s) for s in spec["branch_steps"])}
  if not spec.get("trunk") or int(spec.get("branch_step", 0)) < 1:
    raise ConfigError(
      f"config.train.cooldown: a branch needs `trunk` (a run id) and `branch_step` >= 1, got {spec}"
    )
  return {"role": "branch", "trunk": str(spec["trunk"]), "branch_step": int(spec["branch_step"])}


def check_trunk(config) -> None:
  """A branch's trunk must have been trained (its config.json exists): checked before compiling."""
  role = role_of(config)
  if role and role["role"] == "branch":
    path = os.path.join(workdir_lib.run_dir(config.workdir, role["trunk"]), workdir_lib.CONFIG)
    if not os.path.exists(path):
      raise checkpoints_lib.CheckpointMismatch(
        f"{path}: missing; the trunk {role['trunk']} of branch {config.get('run', '')} was not "
        "trained"
      )


def kept_steps(config) -> tuple[int, ...]:
  """Steps whose checkpoints a run keeps until it is deleted: a trunk's branch steps."""
  role = role_of(config)
  return tuple(role["branch_steps"]) if role and role["role"] == "trunk" else ()


def restore_trunk(run, batches) -> tuple[dict, dict]:
  """(state, progress) of a branch: its trunk's checkpoint at the branch step (batches rewound
  to it), with the branch's own step count so its schedule decays to the branch's end."""
  role = role_of(run.config)
  step = role["branch_step"]
  if not 1 <= step < run.total_steps:
    raise ConfigError(
      f"config.train.cooldown.branch_step: {step}; expected 1 <= step < the run's "
      f"{run.total_steps} steps"
    )
  check_trunk(run.config)
  trunk_dir = workdir_lib.run_dir(run.config.workdir, role["trunk"])
  path = os.path.join(trunk_dir, workdir_lib.CONFIG)
  trunk_config = workdir_lib.field(workdir_lib.read_json_object(path), path, "config", dict)
  ckpt = checkpoints_lib.RunCheckpoints(
    trunk_dir, identity_lib.fingerprint(trunk_config), keep=1, read_only=True
  )
  abstract = sharding_lib.with_shardings(run.compiled.state_shapes, run.compiled.state_sharding)
  state, progress = ckpt.restore_step(step, abstract, batches)
  total = state["total_steps"]
  state = {**state, "total_steps": jax.device_put(np.int32(run.total_steps), total.sharding)}
  logging.info("%s: branched from %s at step %d", run.run_id, role["trunk"], step)
  return state, {
    "step": step,
    "elapsed_seconds": 0.0,  # this branch's own time; the trunk's is in its result.json
    "window": progress["window"],
    "resumed_from": [step],
  }


def result_fields(config, total_steps: int) -> dict | None:
  """result.json `cooldown`: the run's role, its trunk and steps (None: an ordinary run)."""
  role = role_of(config)
  if role is None:
    return None
  if role["role"] == "trunk":
    return role
  return {**role, "cooldown_steps": total_steps - role["branch_step"]}
