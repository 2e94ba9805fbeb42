"""The packed layout: which runs go on how many devices, in which order."""

import pytest

from flopsfit.config_check import ConfigError
from flopsfit.sweep import layout, probe

CPU4 = layout.Machine("cpu", ("0", "1", "2", "3"))


def _run(run_id, flops, batch=16):
  return {"run_id": run_id, "spent_flops": flops, "budget_flops": flops, "batch_size": batch}


def test_small_runs_get_one_core_each_largest_first():
  runs = [_run("a", 1e9), _run("b", 3e9), _run("c", 2e9), _run("d", 1e9), _run("e", 2e9)]
  workers = layout.plan_workers(runs, CPU4, workers=0, eval_batch=32)
  assert [w.group for w in workers] == [("0",), ("1",), ("2",), ("3",)]
  assert {w.run_ids for w in workers} == {("b", "c", "e", "a", "d")}


def test_a_run_that_would_outlast_the_rest_gets_more_cores_beside_the_small_ones():
  runs = [_run("big", 13e9)] + [_run(f"s{i}", 1e9) for i in range(3)]
  # fair share = 16e9 / 4 cores = 4e9: alone on one core the big run takes > 2 shares
  workers = layout.plan_workers(runs, CPU4, workers=0, eval_batch=32)
  assert [(w.group, w.run_ids) for w in workers] == [
    (("0", "1"), ("big", "s0", "s1", "s2")),
    (("2",), ("s0", "s1", "s2")),
    (("3",), ("s0", "s1", "s2")),
  ]


def test_group_divides_the_batch():
  runs = [_run("big", 40e9, batch=6)] + [_run(f"s{i}", 1e9) for i in range(4)]
  assert layout.group_size(runs[0], runs, 4, eval_batch=32) == 2
  assert layout.group_size(runs[0], runs, 4, eval_batch=3) == 1


def test_one_worker_on_everything_trains_in_process():
  assert layout.plan_workers([_run("only", 1e9)], CPU4, workers=0, eval_batch=32) == []
  assert layout.plan_workers([_run("a", 1e9)] * 3, CPU4, workers=1, eval_batch=32) == []
  one_core = layout.Machine("cpu", ("0",))
  assert layout.plan_workers([_run("a", 1e9), _run("b", 1e9)], one_core, 0, 32) == []


def test_explicit_worker_count():
  runs = [_run("a", 1e9), _run("b", 2e9)]
  workers = layout.plan_workers(runs, CPU4, workers=2, eval_batch=32)
  assert [(w.group, w.run_ids) for w in workers] == [
    (("0", "1"), ("b", "a")),
    (("2", "3"), ("b", "a")),
  ]
  gpus = layout.Machine("gpu", ("0", "1"))
  with pytest.raises(ConfigError, match="--parallel: 3 workers, but only 2 gpus"):
    layout.plan_workers(runs, gpus, workers=3, eval_batch=32)
  with pytest.raises(ConfigError, match="--parallel: expected 'auto' or a worker count"):
    layout.parse_parallel("two")


def test_greedy_schedule_makespan():
  takes = [("big", "a", "b"), ("a", "b")]
  seconds = [{"big": 10.0, "a": 3.0, "b": 3.0}, {"big": 20.0, "a": 4.0, "b": 4.0}]
  assert probe._greedy_makespan(takes, seconds) == 10.0  # worker 1 runs a then b: 8 s


def test_a_run_planned_with_fsdp_gets_at_least_its_mesh():
  runs = [_run(f"s{i}", 1e9) for i in range(4)]
  runs[0]["mesh"] = {"fsdp": 4, "tensor": 1}  # small in FLOPs, large in memory
  assert layout.group_size(runs[0], runs, 4, eval_batch=32) == 4
  runs[0]["mesh"] = {"fsdp": 4, "tensor": 2}
  with pytest.raises(ConfigError, match="needs 8 devices, this machine offers 4"):
    layout.group_size(runs[0], runs, 4, eval_batch=32)
