"""Process start-up: joining a multi-host job, a lost peer, and the compilation cache.

A multi-process job runs under a supervisor (`supervise`): the command a user starts on a host
runs the same command again as its child, which joins the job. JAX's distributed service
detects a peer that stopped sending heartbeats (`peer_timeout`), a lost coordinator, or a peer
that never joined (`join_timeout`) and then aborts the child from C++ (SIGABRT after a stack
trace); no Python code can run there. The supervisor turns that into one line naming what
happened and the resumable exit status (75), so the job is relaunched like a preempted one and
resumes from its last checkpoints.
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time

import jax

from flopsfit import workdir as workdir_lib

PREEMPTED = 75  # as flopsfit.cli.PREEMPTED: re-run the same command to resume
SUPERVISED = "FLOPSFIT_SUPERVISED"  # set in the child of a supervisor
_FATAL = "JAX distributed service detected fatal errors"
_STACK = re.compile(r"^\s+@\s+0x|^\*\*\* Check failure stack trace|^\s*$")


def multi_process(coordinator_address, num_processes, process_id) -> bool:
  """Whether a multi-process job is described: explicit flags, or SLURM with several tasks."""
  if coordinator_address or num_processes or process_id is not None:
    return True
  return int(os.environ.get("SLURM_NTASKS", "1")) > 1


def initialize(
  coordinator_address: str | None = None,
  num_processes: int | None = None,
  process_id: int | None = None,
  peer_timeout: int = 60,
  join_timeout: int = 300,
) -> bool:
  """Joins a multi-process job when one is described; returns whether it did.

  Explicit flags (all three) win; otherwise a SLURM job with several tasks is detected from
  its environment. A single process needs nothing. A peer silent for `peer_timeout` seconds,
  or one that has not joined (or, at the end, finished) `join_timeout` seconds after this one,
  ends this process (see `supervise`).
  """
  timeouts = dict(
    initialization_timeout=int(join_timeout),
    heartbeat_timeout_seconds=int(peer_timeout),
    shutdown_timeout_seconds=int(join_timeout),  # processes may finish at different times
  )
  if coordinator_address or num_processes or process_id is not None:
    if not (coordinator_address and num_processes and process_id is not None):
      raise ValueError("--coordinator_address, --num_processes and --process_id go together")
    _stop_when_supervisor_dies()
    jax.distributed.initialize(
      coordinator_address=coordinator_address,
      num_processes=num_processes,
      process_id=process_id,
      **timeouts,
    )
    return True
  if int(os.environ.get("SLURM_NTASKS", "1")) > 1:
    _stop_when_supervisor_dies()
    jax.distributed.initialize(**timeouts)  # reads the SLURM environment
    return True
  return False


def supervise(argv: list[str], process: str, peer_timeout: int, join_timeout: int) -> int:
  """Runs `argv` (this command) as a child that joins the job; returns the exit status.

  The child's stderr is passed through without the C++ stack trace of an abort. When the
  distributed service aborted the child, prints one `error:` line (which process, what
  happened) and returns 75; otherwise returns the child's own status. SIGTERM and SIGINT are
  passed on to the child (it saves a checkpoint and exits 75).
  """
  env = {**os.environ, SUPERVISED: str(os.getpid())}
  # Its own session: a terminal's Ctrl-C reaches the child once, passed on by the supervisor
  # (twice would mean "stop now" without a checkpoint).
  child = subprocess.Popen(
    argv, env=env, stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True
  )
  for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, lambda signum, _: child.send_signal(signum))
  fatal: list[str] = []
  reader = threading.Thread(target=_forward, args=(child.stderr, fatal), daemon=True)
  reader.start()
  status = child.wait()
  reader.join(timeout=5)
  if fatal and status in (-signal.SIGABRT, 128 + signal.SIGABRT):
    what = lost_peer_reason(fatal, peer_timeout, join_timeout)
    print(
      f"error: {process}: {what}; stopped (checkpoints are kept); re-run the same command on "
      "every host to resume",
      file=sys.stderr,
      flush=True,
    )
    return PREEMPTED
  return 128 - status if status < 0 else status


def lost_peer_reason(lines: list[str], peer_timeout: int, join_timeout: int) -> str:
  """What the distributed service's fatal message says happened, in a few words."""
  text = " ".join(lines)
  unhealthy = re.search(r"unhealthy \(stopped sending heartbeats\):\s*([\d ,]+)", text)
  if unhealthy:
    peers = ", ".join(re.findall(r"\d+", unhealthy.group(1)))
    return f"process {peers} stopped answering for {peer_timeout} s (died or hung)"
  if "Shutdown" in text and "arrier" in text:
    return f"not every process reached the end of the job within {join_timeout} s of this one"
  if "RegisterTask" in text or ("barrier" in text.lower() and "DEADLINE" in text):
    return f"not every process joined the job within {join_timeout} s"
  if "leader task" in text or "coordination service" in text.lower():
    return "lost the coordinator (process 0): it died or cannot be reached"
  return "the JAX distributed service stopped the job (a peer died or cannot be reached)"


def _forward(stream, fatal: list[str]) -> None:
  """Copies the child's stderr to ours; keeps the distributed service's fatal message (and
  the lines after it) aside and drops abort stack frames."""
  for line in stream:
    if _STACK.match(line):
      continue
    if _FATAL in line or fatal:
      if len(fatal) < 20:
        fatal.append(line.strip())
      continue
    sys.stderr.write(line)
    sys.stderr.flush()


def _stop_when_supervisor_dies() -> None:
  """In a supervised child: SIGTERM to itself once the supervisor is gone (it checkpoints
  and exits 75), so no orphan keeps a share of the job."""
  supervisor = os.environ.get(SUPERVISED)
  if not supervisor:
    return

  def watch():
    while os.getppid() == int(supervisor):
      time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)

  threading.Thread(target=watch, daemon=True).start()


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
