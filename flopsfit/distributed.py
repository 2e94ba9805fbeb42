"""Multi-host start-up: `jax.distributed.initialize` before any other JAX call."""

import os

import jax


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> bool:
  """Joins a multi-process job when one is described; returns whether it did.

  Explicit flags (all three) win; otherwise a SLURM job with several tasks is detected from
  its environment. A single process needs nothing.
  """
  if coordinator_address or num_processes or process_id is not None:
    if not (coordinator_address and num_processes and process_id is not None):
      raise ValueError("--coordinator_address, --num_processes and --process_id go together")
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)
    return True
  if int(os.environ.get("SLURM_NTASKS", "1")) > 1:
    jax.distributed.initialize()  # reads the SLURM environment
    return True
  return False
