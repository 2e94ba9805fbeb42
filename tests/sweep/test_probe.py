"""The plan's time estimate from two probed step times (sweep/probe.py)."""

import pytest

from flopsfit.sweep import probe


def _run(run_id, flops_per_step, steps=100, shape=None, lr=0.01):
  return {
    "run_id": run_id,
    "shape": shape or {"d": flops_per_step},
    "batch_size": 16,
    "learning_rate": lr,
    "steps": steps,
    "flops_per_step": flops_per_step,
    "spent_flops": steps * flops_per_step,
  }


def test_a_step_costs_a_fixed_overhead_plus_time_in_proportion_to_its_flops():
  """Probed: 2 ms at 1e6 FLOPs, 101 ms at 1e8: 1 ms of overhead and 1 ns a FLOP. A shape in
  between costs their sum, 11 ms (a power law through the same points: 14 ms)."""
  points = [(1e6, 0.002, 3.0), (1e8, 0.101, 4.0)]
  estimate = probe._per_run(points, [_run("small", 1e6), _run("mid", 1e7), _run("big", 1e8)])
  assert estimate["step_overhead_seconds"] == pytest.approx(0.001)
  assert estimate["seconds"] == pytest.approx({"small": 4.2, "mid": 5.1, "big": 14.1})


def test_start_time_is_paid_once_per_compiled_step_by_the_run_trained_first():
  """Runs of one shape, batch size and learning rate share an executable: the one packed
  workers take first (the most FLOPs) compiles it, the others load it from the compilation
  cache. Another learning rate is another program."""
  runs = [
    _run("c1-a", 1e6, shape={"d": 1}),
    _run("c3-a", 1e6, steps=300, shape={"d": 1}),
    _run("c1-a-lr", 1e6, shape={"d": 1}, lr=0.02),
  ]
  seconds = probe._per_run([(1e6, 0.01, 2.0)], runs)["seconds"]
  assert seconds == pytest.approx({"c1-a": 1.0, "c3-a": 5.0, "c1-a-lr": 3.0})


def test_the_final_eval_costs_a_forward_pass_per_record():
  """1,600 eval records at batch 16: 100 batches' forward passes, a third of a step's FLOPs
  each, at the probed rate (10 ns a FLOP: 10 ms a step, no overhead from one point)."""
  with_eval = probe._per_run([(1e6, 0.01, 0.0)], [_run("a", 1e6)], eval_records=1600)
  assert with_eval["seconds"]["a"] == pytest.approx(1.0 + 100 * 0.01 / 3)


def test_without_a_slower_large_shape_steps_cost_in_proportion_to_flops():
  """A noisy probe where the larger shape was not slower: no overhead is inferred."""
  estimate = probe._per_run([(1e6, 0.01, 0.0), (1e8, 0.009, 0.0)], [_run("mid", 1e7)])
  assert estimate["step_overhead_seconds"] == 0.0
  assert estimate["seconds"]["mid"] == pytest.approx(100 * 0.1)
