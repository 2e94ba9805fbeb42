"""Process start-up: joining a multi-host job, and the persistent compilation cache."""

import os

import jax

from flopsfit import workdir as workdir_lib


def initialize(
  coordinator_address: str | None = None,
  num_processes: int | None = None,
  process_id: int | None = None,
) -> bool:
  """Joins a multi-process job when one is described; returns whether it did.

  Explicit flags (all three) win; otherwise a SLURM job with several tasks is detected from
  its environment. A single process needs nothing.
  """
  if coordinator_address or num_processes or process_id is not None:
    if not (coordinator_address and num_processes and process_id is not None):
      raise ValueError("--coordinator_address, --num_processes and --process_id go together")
    jax.distributed.initialize(
      coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id
    )
    return True
  if int(os.environ.get("SLURM_NTASKS", "1")) > 1:
    jax.distributed.initialize()  # reads the SLURM environment
    return True
  return False


def enable_compilation_cache(config) -> None:
  """JAX's persistent compilation cache, so a re-run or resumed run does not compile again.

  In `config.compilation_cache_dir`, or `<workdir>/jax_cache`; the first directory set in a
  process stays in force (JAX initialises its cache once).
  """
  if jax.config.jax_compilation_cache_dir:
    return
  path = config.get("compilation_cache_dir", "") or workdir_lib.jax_cache_dir(config.workdir)
  jax.config.update("jax_compilation_cache_dir", os.path.abspath(path))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
