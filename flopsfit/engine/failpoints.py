"""Named places where a test can have the process killed with SIGKILL, like a real crash.

`FLOPSFIT_FAILPOINT=<name>[:<n>[:TERM]]` kills the process the n-th time (default: first) it
passes `hit(<name>)`; with `:TERM` it sends itself SIGTERM instead, as a scheduler preempting
the job does (the run saves a checkpoint and stops). Unset, `hit` does nothing. Names:
`train_call` (a training call dispatched, not finished; a group of seeds trained together
passes it once per seed), `eval_batch` (inside the final eval), `checkpoint_save` (a checkpoint
being written in the background).
"""

import os
import signal

_counts: dict[str, int] = {}


def hit(name: str) -> None:
  spec = os.environ.get("FLOPSFIT_FAILPOINT")
  if not spec:
    return
  target, _, rest = spec.partition(":")
  if target != name:
    return
  nth, _, how = rest.partition(":")
  _counts[spec] = _counts.get(spec, 0) + 1  # per spec: a process may be given several in turn
  if _counts[spec] == int(nth or 1):
    os.kill(os.getpid(), signal.SIGTERM if how == "TERM" else signal.SIGKILL)
