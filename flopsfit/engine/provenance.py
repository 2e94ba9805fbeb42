"""Where a result came from: software versions, devices, mesh, git commit."""

import importlib.metadata
import os
import platform
import subprocess

import jax


def git_commit() -> str | None:
  """The checkout's commit (with '-dirty' if it has changes), or None outside a git checkout."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  try:
    commit = subprocess.run(
      ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
    ).stdout.strip()
    dirty = subprocess.run(
      ["git", "status", "--porcelain", "--untracked-files=no"],
      cwd=root,
      capture_output=True,
      text=True,
      timeout=10,
    ).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return None
  return commit + ("-dirty" if dirty else "")


def _version(package: str) -> str | None:
  try:
    return importlib.metadata.version(package)
  except importlib.metadata.PackageNotFoundError:
    return None


def provenance(mesh) -> dict:
  device = mesh.devices.flat[0]
  return {
    "device_kind": device.device_kind,
    "platform": device.platform,
    "device_count": int(mesh.size),
    "process_count": jax.process_count(),
    "mesh": {name: int(size) for name, size in mesh.shape.items()},  # data, fsdp, tensor
    "versions": {
      p: _version(p)
      for p in ("jax", "jaxlib", "flax", "optax", "grain", "orbax-checkpoint", "numpy", "flopsfit")
    },
    "python": platform.python_version(),
    "git_commit": git_commit(),
  }
