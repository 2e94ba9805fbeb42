"""Named places where a test can have the process killed with SIGKILL, like a real crash.

`FLOPSFIT_FAILPOINT=<name>[:<n>]` kills the process the n-th time (default: first) it passes
`hit(<name>)`. Unset, `hit` does nothing. Names: `train_call` (a training call dispatched,
not finished), `eval_batch` (inside the final eval), `checkpoint_save` (a checkpoint being
written in the background).
"""

import os
import signal

_counts: dict[str, int] = {}


def hit(name: str) -> None:
  spec = os.environ.get("FLOPSFIT_FAILPOINT")
  if not spec:
    return
  target, _, nth = spec.partition(":")
  if target != name:
    return
  _counts[name] = _counts.get(name, 0) + 1
  if _counts[name] == int(nth or 1):
    os.kill(os.getpid(), signal.SIGKILL)
