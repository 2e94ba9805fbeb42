"""Run claims between real processes: one winner per run, stale claims taken over, live kept."""

import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time

from flopsfit.sweep import claims

RUN = "c1e+09-d8-L1-s0"


def _race(args):
  """In a fresh process: wait for the start time, then try to claim (or take over) RUN."""
  workdir, start, worker = args
  while time.time() < start:
    pass
  claim, _ = claims.try_claim(workdir, RUN, claims.identity(worker, "race"), timeout=60)
  return claim and claim.owner["token"]  # the winner keeps it (its process lives on)


def _race_all(workdir: str, processes: int = 6) -> list:
  context = multiprocessing.get_context("spawn")
  with context.Pool(processes) as pool:
    start = time.time() + 2.0  # every process started and waiting
    return pool.map(_race, [(workdir, start, i) for i in range(processes)], chunksize=1)


def _write_claim(workdir, **fields) -> str:
  path = claims.claim_path(workdir, RUN)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  owner = {**claims.identity(7, "other-sweep"), **fields}
  with open(path, "w") as f:
    json.dump(owner, f)
  return path


def _dead_pid() -> int:
  proc = subprocess.Popen([sys.executable, "-c", "pass"])
  proc.wait()
  return proc.pid


def test_racing_claimers_one_wins(tmp_path):
  winners = [t for t in _race_all(str(tmp_path)) if t]
  assert len(winners) == 1
  assert json.load(open(claims.claim_path(str(tmp_path), RUN)))["token"] == winners[0]


def test_racing_takers_of_a_dead_claim_one_wins(tmp_path):
  path = _write_claim(str(tmp_path), pid=_dead_pid(), pid_start_ticks=None)
  winners = [t for t in _race_all(str(tmp_path)) if t]
  assert len(winners) == 1 and json.load(open(path))["token"] == winners[0]


def test_claim_of_a_dead_process_is_taken_over(tmp_path):
  workdir = str(tmp_path)
  path = _write_claim(workdir, pid=_dead_pid())
  claim, holder = claims.try_claim(workdir, RUN, claims.identity(0, "mine"))
  assert holder is None and claim is not None
  assert json.load(open(path))["token"] == claim.owner["token"]
  claim.release()
  assert os.listdir(os.path.dirname(path)) == []  # no claim, no takeover lock left behind


def test_claim_without_heartbeat_is_taken_over_and_a_fresh_one_is_not(tmp_path):
  workdir = str(tmp_path)
  path = _write_claim(workdir, host="another-host", pid=1)
  claim, holder = claims.try_claim(workdir, RUN, claims.identity(0, "mine"), timeout=30)
  assert claim is None and holder["host"] == "another-host"  # heartbeat fresh: kept
  old = time.time() - 31
  os.utime(path, (old, old))
  claim, holder = claims.try_claim(workdir, RUN, claims.identity(0, "mine"), timeout=30)
  assert claim is not None and json.load(open(path))["host"] == socket.gethostname()
  claim.release()


def test_live_claim_is_kept_and_its_heartbeat_refreshes_it(tmp_path):
  workdir = str(tmp_path)
  claim, _ = claims.try_claim(workdir, RUN, claims.identity(0, "a"), timeout=1.0, heartbeat=0.1)
  first = os.stat(claim.path).st_mtime
  time.sleep(1.5)  # longer than the timeout: only the heartbeat keeps it fresh
  assert os.stat(claim.path).st_mtime > first
  other, holder = claims.try_claim(workdir, RUN, claims.identity(1, "b"), timeout=1.0)
  assert other is None and holder["token"] == claim.owner["token"]
  claim.release()
  assert not os.path.exists(claim.path)


def test_claim_left_unwritten_by_a_dead_claimer_is_taken_over(tmp_path):
  workdir = str(tmp_path)
  path = claims.claim_path(workdir, RUN)
  os.makedirs(os.path.dirname(path))
  open(path, "w").close()  # created, never written: looks like a claim being written
  claim, holder = claims.try_claim(workdir, RUN, claims.identity(0, "mine"), timeout=5)
  assert claim is None and holder == {}
  old = time.time() - 6
  os.utime(path, (old, old))
  claim, _ = claims.try_claim(workdir, RUN, claims.identity(0, "mine"), timeout=5)
  assert claim is not None
  claim.release()
