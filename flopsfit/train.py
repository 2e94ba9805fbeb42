"""Trains a sweep (or one model) to exact FLOP budgets: `python -m flopsfit.train --config=...`.

With a `sweep` section in the config it plans (if there is no sweep.json yet) and trains every
unfinished run, several at once on disjoint device groups (`--parallel`, docs/performance-sweep.md);
`--runs` or `--shard_index/--num_shards` select a part. Without one, or with
`--single`, it trains the one model the config describes. Kept short on purpose: the logic
is in libraries.
"""

import os
import sys

from absl import flags
from ml_collections import config_flags

from flopsfit import cli, config_check, plugins
from flopsfit import workdir as workdir_lib
from flopsfit.engine import checkpoints, distributed, logs
from flopsfit.engine import run as run_lib
from flopsfit.sweep import planner, runner, summary

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py[:args]).")
_RUNS = flags.DEFINE_list("runs", None, "Run ids of sweep.json to train (default: all).")
_SHARD_INDEX = flags.DEFINE_integer(
  "shard_index", 0, "This process trains runs i with i % num_shards == shard_index."
)
_NUM_SHARDS = flags.DEFINE_integer("num_shards", 1, "Number of processes splitting the sweep.")
_COORDINATOR = flags.DEFINE_string(
  "coordinator_address",
  None,
  "Multi-host: host:port of "
  "process 0 (with --num_processes, --process_id); under SLURM "
  "these are found automatically.",
)
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Multi-host: number of processes.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "Multi-host: this process's index.")
_PEER_TIMEOUT = flags.DEFINE_integer(
  "peer_timeout",
  60,
  "Multi-host: seconds without a heartbeat from a peer after which every other process "
  "stops with status 75 (re-run to resume).",
)
_JOIN_TIMEOUT = flags.DEFINE_integer(
  "join_timeout",
  300,
  "Multi-host: seconds to wait for every process to join (and at the end, to finish) before "
  "stopping with status 75.",
)
_SINGLE = flags.DEFINE_bool(
  "single",
  False,
  "Train only the one model the config describes "
  "(config.model.kwargs, config.train), not its sweep.",
)
_PEAK_FLOPS = flags.DEFINE_float(
  "peak_flops",
  None,
  "Peak FLOP/s per device for MFU (same as "
  "--config.train.peak_flops); default: measured on CPU, a "
  "device table on GPUs.",
)
_PARALLEL = flags.DEFINE_string(
  "parallel",
  "auto",
  "Sweep workers: 'auto' packs runs on disjoint device groups (CPU cores, GPUs) chosen from "
  "the runs' sizes; N: N workers; 1: one run at a time on all devices, in plan order.",
)
_CLAIM_TIMEOUT = flags.DEFINE_float(
  "claim_timeout",
  60.0,
  "Seconds without a heartbeat after which another process takes over a run's claim.json.",
)
flags.mark_flags_as_required(["config"])


def main(argv):
  del argv  # cli.run refuses positional arguments
  logs.flopsfit_info_only()
  job = (_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  for name, value in (
    ("--peer_timeout", _PEER_TIMEOUT.value),
    ("--join_timeout", _JOIN_TIMEOUT.value),
  ):
    if value < 1:
      raise config_check.ConfigError(f"{name}: expected seconds >= 1, got {value}")
  if distributed.multi_process(*job) and distributed.SUPERVISED not in os.environ:
    process = (
      f"process {_PROCESS_ID.value} of {_NUM_PROCESSES.value}"
      if _NUM_PROCESSES.value
      else f"process {os.environ.get('SLURM_PROCID', '?')} of {os.environ.get('SLURM_NTASKS')}"
    )
    command = [sys.executable, "-m", "flopsfit.train", *sys.argv[1:]]
    sys.exit(distributed.supervise(command, process, _PEER_TIMEOUT.value, _JOIN_TIMEOUT.value))
  distributed.initialize(*job, _PEER_TIMEOUT.value, _JOIN_TIMEOUT.value)
  config = _CONFIG.value
  train_sweep = "sweep" in config and not _SINGLE.value
  config_check.check_fields(config, sweep=train_sweep)
  workdir_lib.check_workdir(config.workdir)
  if _PEAK_FLOPS.value is not None:
    if not _PEAK_FLOPS.value > 0:
      raise config_check.ConfigError(f"--peak_flops: expected FLOP/s > 0, got {_PEAK_FLOPS.value}")
    config.train.peak_flops = _PEAK_FLOPS.value
  try:
    if train_sweep:
      if _PARALLEL.value != "1" and "XLA_PYTHON_CLIENT_PREALLOCATE" not in os.environ:
        os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"  # GPUs stay free for the workers
        os.environ["FLOPSFIT_PARENT_NO_PREALLOCATE"] = "1"
      outcome = runner.train_sweep(
        config,
        _RUNS.value,
        _SHARD_INDEX.value,
        _NUM_SHARDS.value,
        _PARALLEL.value,
        _CLAIM_TIMEOUT.value,
      )
      rows = outcome.rows
      print(runner.format_summary(rows))
      if outcome.summary and outcome.summary["runs_trained"]:
        print(summary.format_summary(outcome.summary))
      if outcome.exit_reason == "config error":
        sys.exit(2)
      if outcome.exit_reason == "preempted":
        print("preempted: checkpoints saved; re-run the same command to resume", file=sys.stderr)
        sys.exit(checkpoints.PREEMPTED_EXIT_CODE)
      incomplete = [r["run_id"] for r in rows if r["status"] != "completed"]
      if incomplete:
        print(
          f"sweep incomplete: {len(incomplete)} run(s) not completed: {', '.join(incomplete)}",
          file=sys.stderr,
        )
        sys.exit(cli.INCOMPLETE)
      return
    result = run_lib.train_run(config)
  except checkpoints.Preempted as e:
    print(f"preempted ({e}): checkpoint saved; re-run the same command to resume", file=sys.stderr)
    sys.exit(cli.PREEMPTED)
  if result["status"] != "completed":
    print(f"run {result['run_id']} {result['status']}: {result['error']}", file=sys.stderr)
    sys.exit(cli.INCOMPLETE)


if __name__ == "__main__":
  cli.run(
    main,
    (
      plugins.PluginError,
      config_check.ConfigError,
      planner.PlanError,
      checkpoints.CheckpointMismatch,
    ),
  )
