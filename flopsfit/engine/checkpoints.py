"""Orbax checkpoints of one run: train state, grain iterator position and progress.

A checkpoint holds the train state (parameters, optimizer state, step, model variables such
as RNG counters), the data iterator's position, and a JSON record of progress (FLOPs spent,
elapsed seconds, the unlogged metrics window, the run's config fingerprint). Resuming from it
replays exactly the same batches with the same optimizer state, so on CPU a resumed run ends
bitwise equal to an uninterrupted one.
"""

import os
import shutil
import signal

import grain
import orbax.checkpoint as ocp
from absl import logging
from orbax.checkpoint.checkpoint_managers import preservation_policy

from flopsfit import workdir as workdir_lib
from flopsfit.engine import failpoints

PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL: "preempted; re-run the same command to resume"
ON_FINISH = ("delete", "keep_last", "keep_all")


class Preempted(Exception):
  """SIGTERM or SIGINT arrived; a checkpoint was saved and the run can be resumed."""


class CheckpointMismatch(ValueError):
  """A checkpoint belongs to another config or shape."""


class RunCheckpoints:
  """`<run_dir>/checkpoints/<step>/{state,data,progress}`, keeping the `keep` latest and every
  step of `kept_steps` (a cooldown trunk's branch points, which its branches restore)."""

  def __init__(self, run_dir: str, fingerprint: str, keep: int, kept_steps=(), read_only=False):
    self.directory = os.path.abspath(os.path.join(run_dir, workdir_lib.CHECKPOINTS))
    self.fingerprint = fingerprint
    self.kept_steps = tuple(int(s) for s in kept_steps)
    policies = [preservation_policy.LatestN(keep)]
    if self.kept_steps:
      policies.append(preservation_policy.CustomSteps(self.kept_steps))
    options = (
      ocp.CheckpointManagerOptions(read_only=True)
      if read_only
      else ocp.CheckpointManagerOptions(
        preservation_policy=preservation_policy.AnyPreservationPolicy(policies),
        enable_async_checkpointing=True,
        cleanup_tmp_directories=True,
      )
    )
    self._manager = ocp.CheckpointManager(self.directory, options=options)

  def steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def restore_latest(self, abstract_state, iterator) -> tuple | None:
    """(state, progress) of the newest readable checkpoint, or None when there is none.

    An unreadable checkpoint (a crash while it was written, a corrupted file) is skipped with
    a warning and the one before it is used. One from another config is refused.
    """
    for step in reversed(self.steps()):
      try:
        restored = self._restore(step, abstract_state, iterator)
      except Exception as e:  # a partial or corrupted checkpoint
        logging.warning(
          "checkpoint %s/%d is unreadable (%s: %s); trying an earlier one",
          self.directory,
          step,
          type(e).__name__,
          str(e).splitlines()[0][:200],
        )
        continue
      progress = restored["progress"]
      problem = _progress_problem(progress)
      if problem:
        logging.warning(
          "checkpoint %s/%d is unreadable (progress: %s); trying an earlier one",
          self.directory,
          step,
          problem,
        )
        continue
      if progress.get("fingerprint") != self.fingerprint:
        raise CheckpointMismatch(
          f"{self.directory}/{step}: checkpoint of another config or shape (fingerprint "
          f"{progress.get('fingerprint')} != {self.fingerprint}); use a new workdir or "
          "remove the run directory"
        )
      return restored["state"], progress
    return None

  def _restore(self, step: int, abstract_state, iterator) -> dict:
    return self._manager.restore(
      step,
      args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state),
        data=grain.checkpoint.CheckpointRestore(iterator),
        progress=ocp.args.JsonRestore(),
      ),
    )

  def restore_step(self, step: int, abstract_state, iterator) -> tuple:
    """(state, progress) of the checkpoint at `step`, which must exist and be of this config;
    CheckpointMismatch otherwise (a branch restoring its trunk's branch point)."""
    if step not in self.steps():
      raise CheckpointMismatch(
        f"{self.directory}: no checkpoint at step {step} (has {self.steps()}); train the "
        "trunk first, or re-train it if its checkpoints were deleted"
      )
    restored = self._restore(step, abstract_state, iterator)
    progress = restored["progress"]
    problem = _progress_problem(progress)
    if problem or progress.get("fingerprint") != self.fingerprint:
      raise CheckpointMismatch(
        f"{self.directory}/{step}: {problem or 'checkpoint of another config or shape'}; "
        "re-train the trunk in a new workdir"
      )
    return restored["state"], progress

  def save(self, step: int, state, iterator, progress: dict) -> None:
    """Starts writing a checkpoint in the background (Orbax commits it atomically).

    A checkpoint already at this step is one that could not be restored: it is replaced.
    """
    if step in self._manager.all_steps():
      self._manager.delete(step)
    self._manager.save(
      step,
      force=True,
      args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        data=grain.checkpoint.CheckpointSave(iterator),
        progress=ocp.args.JsonSave({**progress, "fingerprint": self.fingerprint}),
      ),
    )
    failpoints.hit("checkpoint_save")

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def finish(self, on_finish: str) -> None:
    """After the result is written: delete all checkpoints, keep the last, or keep all."""
    self.wait()
    if on_finish == "delete" and self.kept_steps:  # a trunk: its branch points stay
      for step in self.steps():
        if step not in self.kept_steps:
          self._manager.delete(step)
      self._manager.close()
    elif on_finish == "delete":
      self._manager.close()
      shutil.rmtree(self.directory, ignore_errors=True)
    elif on_finish == "keep_last":
      for step in self.steps()[:-1]:
        if step not in self.kept_steps:
          self._manager.delete(step)
      self._manager.close()
    else:
      self._manager.close()


_PROGRESS_FIELDS = {
  "step": int,
  "elapsed_seconds": (int, float),
  "window": dict,
  "resumed_from": list,
}


def _progress_problem(progress) -> str | None:
  """What is wrong with a restored progress record (a field missing or of the wrong type)."""
  if not isinstance(progress, dict):
    return f"expected an object, found {type(progress).__name__}"
  for name, kind in _PROGRESS_FIELDS.items():
    value = progress.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
      return f"field {name!r} is {value!r}, expected {getattr(kind, '__name__', 'a number')}"
  return None


class StopSignals:
  """Within `with`, SIGTERM and SIGINT set `requested` instead of killing the process."""

  def __init__(self):
    self.requested: str | None = None
    self._previous = {}

  def __enter__(self):
    for sig in (signal.SIGTERM, signal.SIGINT):
      try:
        self._previous[sig] = signal.signal(sig, self._handle)
      except ValueError:  # not the main thread: signals stay as they are
        pass
    return self

  def _handle(self, signum, frame):
    if self.requested:  # a second signal: stop now
      raise KeyboardInterrupt
    self.requested = signal.Signals(signum).name
    logging.warning("%s received: saving a checkpoint at the next step boundary", self.requested)

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
    return False
