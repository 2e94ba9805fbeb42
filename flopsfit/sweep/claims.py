"""Atomic run claims: `runs/<id>/claim.json`, so that workers, shards and restarts compose.

A process trains a run only while it holds the run's claim. `claim.json` is created with
O_CREAT|O_EXCL (exactly one creator wins) and holds the owner's identity; a thread refreshes its
mtime (the heartbeat). A claim whose owner is dead (same host, pid gone) or whose heartbeat is
older than `timeout` seconds is stale and can be taken over: the taker first creates
`claim.json.takeover-<token>` exclusively (one taker per stale claim), checks that claim.json
still holds that token, then replaces it atomically (os.replace: claim.json never disappears,
so no plain claimer slips in). The claim is removed once the run's result.json is written.
"""

import json
import os
import socket
import threading
import time
import uuid

from absl import logging

from flopsfit import workdir as workdir_lib

CLAIM = "claim.json"
DEFAULT_TIMEOUT = 60.0  # seconds without a heartbeat after which a claim is stale


def claim_path(workdir: str, run_id: str) -> str:
  return os.path.join(workdir_lib.run_dir(workdir, run_id), CLAIM)


def _start_ticks(pid: int) -> int | None:
  """The process's start time in clock ticks (/proc), to tell a reused pid apart."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      fields = f.read().rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else int(fields[19])  # a zombie is dead
  except (OSError, IndexError, ValueError):
    return None


def pid_alive(pid: int, start_ticks: int | None = None) -> bool:
  """Whether `pid` on this host is the live process that wrote the claim."""
  if os.path.exists("/proc/self/stat"):
    ticks = _start_ticks(pid)
    return ticks is not None and (start_ticks is None or ticks == start_ticks)
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def identity(worker: int = 0, sweep: str = "") -> dict:
  """Who holds a claim: this process, its worker index, and the sweep invocation it serves."""
  return {
    "host": socket.gethostname(),
    "pid": os.getpid(),
    "pid_start_ticks": _start_ticks(os.getpid()),
    "worker": worker,
    "sweep": sweep,
    "started": time.time(),
    "token": uuid.uuid4().hex,
  }


def read_claim(path: str) -> tuple[dict | None, float] | None:
  """(contents or None while being written, heartbeat mtime); None if there is no claim."""
  try:
    mtime = os.stat(path).st_mtime
    with open(path) as f:
      text = f.read()
  except FileNotFoundError:
    return None
  try:
    return json.loads(text), mtime
  except json.JSONDecodeError:  # created, contents not yet written (or the writer died)
    return None, mtime


def is_stale(claim: dict | None, mtime: float, timeout: float) -> bool:
  if claim and claim.get("host") == socket.gethostname():
    if not pid_alive(claim["pid"], claim.get("pid_start_ticks")):
      return True
  return time.time() - mtime > timeout


class Claim:
  """A held claim on one run; `release()` removes it, the heartbeat thread keeps it fresh."""

  def __init__(self, path: str, owner: dict, heartbeat: float):
    self.path, self.owner, self.lost = path, owner, False
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._beat, args=(heartbeat,), daemon=True)
    self._thread.start()

  def _beat(self, every: float) -> None:
    while not self._stop.wait(every):
      held = read_claim(self.path)
      if not held or not held[0] or held[0].get("token") != self.owner["token"]:
        self.lost = True
        logging.error("%s: this claim was taken over (no heartbeat for too long)", self.path)
        return
      try:
        os.utime(self.path)
      except FileNotFoundError:
        return

  def release(self) -> None:
    """Stops the heartbeat and removes claim.json if it is still this claim."""
    self._stop.set()
    self._thread.join()
    held = read_claim(self.path)
    if held and held[0] and held[0].get("token") == self.owner["token"]:
      os.remove(self.path)
    directory = os.path.dirname(self.path)
    for name in os.listdir(directory):
      if name.startswith(CLAIM + ".takeover-"):
        _remove_quietly(os.path.join(directory, name))


def try_claim(
  workdir: str, run_id: str, owner: dict, timeout: float = DEFAULT_TIMEOUT, heartbeat=None
) -> tuple[Claim | None, dict | None]:
  """(the claim, None) if this process now holds the run, else (None, the holder's identity).

  A stale claim is taken over. `owner` comes from `identity()`; each attempt gets a new token.
  """
  path = claim_path(workdir, run_id)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  owner = {**owner, "token": uuid.uuid4().hex, "started": time.time()}
  beat = heartbeat or max(0.5, min(5.0, timeout / 6))
  if _create_exclusive(path, owner):
    return Claim(path, owner, beat), None
  held = read_claim(path)
  if held is None:  # released between our attempt and the read: try once more
    return (Claim(path, owner, beat), None) if _create_exclusive(path, owner) else (None, {})
  holder, mtime = held
  if not is_stale(holder, mtime, timeout):
    return None, holder or {}
  if _take_over(path, holder, mtime, owner, timeout):
    logging.warning("%s: took over the stale claim of %s", run_id, _describe(holder))
    return Claim(path, owner, beat), None
  return None, holder or {}


def _create_exclusive(path: str, owner: dict) -> bool:
  try:
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
  except FileExistsError:
    return False
  with os.fdopen(fd, "w") as f:
    json.dump(owner, f, indent=2, sort_keys=True)
    f.write("\n")
  return True


def _take_over(path: str, holder: dict | None, mtime: float, owner: dict, timeout: float) -> bool:
  """Replaces the stale claim `holder` with `owner`'s, unless another taker got there first."""
  key = holder["token"] if holder and holder.get("token") else f"unwritten-{mtime:.6f}"
  for attempt in range(8):  # a taker that died holding its lock leaves it stale: next name
    lock = f"{path}.takeover-{key}-{attempt}"
    if _create_exclusive(lock, owner):
      break
    lock_state = read_claim(lock)
    if lock_state is None or time.time() - lock_state[1] <= timeout:
      return False  # another taker is at work (or just finished)
  else:
    return False
  try:
    now = read_claim(path)
    now_key = None
    if now is not None:
      now_key = now[0]["token"] if now[0] and now[0].get("token") else f"unwritten-{now[1]:.6f}"
    if now_key != key:
      return False  # taken over (or released) meanwhile
    tmp = f"{path}.{owner['token']}.tmp"
    with open(tmp, "w") as f:
      json.dump(owner, f, indent=2, sort_keys=True)
      f.write("\n")
    os.replace(tmp, path)
    return True
  finally:
    _remove_quietly(lock)


def _remove_quietly(path: str) -> None:
  try:
    os.remove(path)
  except FileNotFoundError:
    pass


def _describe(holder: dict | None) -> str:
  if not holder:
    return "a claimer that died before writing its claim"
  return f"{holder.get('host')}:{holder.get('pid')} (worker {holder.get('worker')})"
