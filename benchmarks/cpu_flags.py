"""An experiment: XLA CPU runtime flags for small steps, set before JAX starts its backend.

benchmarks/tiny_step.py times a step with them against the step without them. flopsfit's
packed CPU workers set both on their own (flopsfit/sweep/workers.py: the one-core Eigen flag,
and, on x86 CPUs without AVX-512, the YNNPACK one once this XLA has shown it accepts it); this
module sets them in a benchmark's process, whatever the CPU. The flags:
- `--xla_cpu_experimental_ynn_fusion_type=` (no YNNPACK fusions): XLA's own loop and dot
  emitters were faster than a YNNPACK call for the small reductions and matmuls of a tiny step
  on an AVX2-only CPU, slower on one with AVX-512 (docs/performance-step.md).
- `--xla_cpu_multi_thread_eigen=false` when the process has one core: no thread-pool
  hand-off per matmul. With several cores Eigen keeps its threads (large steps need them).

Flags already in `XLA_FLAGS` win; nothing changes once the backend has started.
"""

import os

from absl import logging

YNN_OFF = "--xla_cpu_experimental_ynn_fusion_type="
EIGEN_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false"


def usable_cores() -> int:
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # not Linux
    return os.cpu_count() or 1


def default_flags(cores: int) -> list[str]:
  return [YNN_OFF] + ([EIGEN_ONE_THREAD] if cores <= 1 else [])


def configure(cores: int | None = None) -> str:
  """Adds the default CPU flags to `XLA_FLAGS` (those not already given); returns XLA_FLAGS.

  Call first thing in a binary or a worker process, before any JAX computation.
  """
  import jax._src.xla_bridge as xla_bridge  # noqa: PLC0415 (private: the only init probe)

  current = os.environ.get("XLA_FLAGS", "")
  if xla_bridge.backends_are_initialized():
    logging.warning("cpu_flags.configure: JAX already started; XLA_FLAGS stay %r", current)
    return current
  given = {flag.split("=")[0] for flag in current.split()}
  added = [f for f in default_flags(cores or usable_cores()) if f.split("=")[0] not in given]
  os.environ["XLA_FLAGS"] = " ".join([current, *added]).strip()
  return os.environ["XLA_FLAGS"]
