"""Planning: exact budgets, determinism, dropped candidates, one sweep per workdir, shards."""

import json
import os
import subprocess
import sys

import pytest
from conftest import write_config_file, xla_flags

from flopsfit import hparams
from flopsfit import plugins as plugins_lib
from flopsfit import workdir as workdir_lib
from flopsfit.engine import step as step_lib
from flopsfit.sweep import planner, runner
from flopsfit.sweep.run_config import run_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_plan_is_deterministic_and_spends_each_budget(sweep_config):
  first = planner.load_or_plan(sweep_config, probe=False)
  text = open(os.path.join(sweep_config.workdir, "sweep.json")).read()
  second = planner.load_or_plan(sweep_config, probe=False)
  assert open(os.path.join(sweep_config.workdir, "sweep.json")).read() == text
  assert first == second
  budgets = sorted({r["budget_flops"] for r in first["runs"]})
  assert budgets == [1e9, 3e9]
  for run in first["runs"]:
    assert run["steps"] == int(run["budget_flops"] // run["flops_per_step"])
    assert 0.99 * run["budget_flops"] <= run["spent_flops"] <= run["budget_flops"]
    assert run["steps"] >= 20
    assert run["learning_rate"] == min(2e-2, 0.8 / run["shape"]["d_model"])
  for budget in budgets:
    sizes = [r["params"]["non_embedding"] for r in first["runs"] if r["budget_flops"] == budget]
    dropped = [d for d in first["dropped"] if d["budget_flops"] == budget]
    # The prior's 4 shapes were tried, and more when some failed (the window search).
    assert len(sizes) + len(dropped) >= 4 and len(set(sizes)) == len(sizes)
    assert all(d["reason"] for d in dropped)


def test_probe_estimates_every_run_without_changing_the_plan(sweep_config):
  """The timing probe runs the real loop for the smallest and largest run; sweep.json stays the
  same with or without it (timings are printed, not stored)."""
  plan = planner.load_or_plan(sweep_config, probe=True)
  text = open(os.path.join(sweep_config.workdir, "sweep.json")).read()
  estimate = plan["estimate"]
  assert set(estimate["seconds"]) == {r["run_id"] for r in plan["runs"]}
  assert all(s > 0 for s in estimate["seconds"].values())
  assert estimate["total_seconds"] == pytest.approx(sum(estimate["seconds"].values()))
  assert estimate["step_overhead_seconds"] >= 0 and len(estimate["step_seconds"]) == 2
  table = planner.format_plan(plan)
  assert f"total: {len(plan['runs'])} runs, about" in table and "min on this machine" in table
  assert "estimate" not in json.loads(text)
  planner.load_or_plan(sweep_config, probe=False)
  assert open(os.path.join(sweep_config.workdir, "sweep.json")).read() == text


def test_probe_of_a_packed_sweep_times_a_worker_and_schedules_the_runs(sweep_config, monkeypatch):
  """With two one-core workers the estimate is the greedy schedule's makespan: at least the
  longest run, at most all runs one after another. The probe's worker compiles into the
  workdir's cache, where training the probed runs finds their executables."""
  monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)  # the tests' shared cache
  plan = planner.load_or_plan(sweep_config, probe=True, parallel="2")
  assert os.listdir(workdir_lib.jax_cache_dir(sweep_config.workdir))
  estimate = plan["estimate"]
  seconds = estimate["seconds"]
  assert set(seconds) == {r["run_id"] for r in plan["runs"]} and estimate["workers"] == 2
  assert max(seconds.values()) <= estimate["total_seconds"] < sum(seconds.values())
  assert "(2 runs at a time)" in planner.format_plan(plan)


def test_infeasible_candidates_are_dropped_with_reasons(sweep_config):
  sweep_config.sweep.min_steps = 150
  plan = planner.plan_sweep(sweep_config, probe=False)
  reasons = {d["run_id"]: d["reason"] for d in plan["dropped"]}
  assert reasons and all(
    "too few steps" in r and "< sweep.min_steps=150" in r for r in reasons.values()
  )
  assert all(r["steps"] >= 150 for r in plan["runs"])
  sweep_config.sweep.min_steps = 20
  sweep_config.sweep.memory_fraction = 1e-9
  sweep_config.train.mesh.fsdp = 1  # no FSDP to fall back on
  with pytest.raises(
    planner.PlanError,
    match="every candidate run was dropped:.*needs 0.00 GiB per device with fsdp=1, tensor=1, "
    "more than sweep.memory_fraction",
  ):
    planner.plan_sweep(sweep_config, probe=False)


def test_finite_dataset_limits_tokens(sweep_config, tmp_path):
  (tmp_path / "text.txt").write_text("a small corpus of words. " * 2000)
  sweep_config.dataset.factory = "flopsfit.data.text_files:TextFiles"
  sweep_config.dataset.kwargs = {
    "paths": str(tmp_path / "text.txt"),
    "seq_len": 32,
    "chunk_bytes": 1024,
  }
  sweep_config.vocab_size = 256
  sweep_config.eval.tokens = 512
  plan = planner.plan_sweep(sweep_config, probe=False)
  assert any("the train split offers" in d["reason"] for d in plan["dropped"])
  assert all(r["tokens"] <= 50_000 for r in plan["runs"])


def test_a_workdir_holds_one_sweep(sweep_config):
  plan = planner.load_or_plan(sweep_config, probe=False)
  first = plan["runs"][0]["run_id"]
  rows = runner.run_sweep(sweep_config, run_ids=[first])
  assert [r["action"] for r in rows] == ["trained"]
  assert runner.run_sweep(sweep_config, run_ids=[first])[0]["action"] == "skipped"
  sweep_config.optim.weight_decay = 0.0
  with pytest.raises(
    planner.PlanError, match=r"results of a different sweep \(differs in optim.weight_decay\)"
  ):
    planner.load_or_plan(sweep_config, probe=False)
  with pytest.raises(planner.PlanError, match="planned from a different config"):
    runner.run_sweep(sweep_config)
  planner.load_or_plan(sweep_config, force=True, probe=False)
  archived = os.listdir(os.path.join(sweep_config.workdir, "archive"))
  assert len(archived) == 1
  assert os.path.exists(
    os.path.join(sweep_config.workdir, "archive", archived[0], "runs", first, "result.json")
  )
  assert not os.path.exists(os.path.join(sweep_config.workdir, "runs"))


def test_second_round_centres_on_the_earlier_analysis(sweep_config):
  centre, source = planner.optimum_centre(sweep_config, 1e12)
  assert source.startswith("prior") and centre == pytest.approx((1e12 / 600) ** 0.5)
  os.makedirs(sweep_config.workdir)
  workdir_lib.write_json_atomic(
    os.path.join(sweep_config.workdir, "scaling_laws.json"),
    {
      "approach3": {
        "status": "ok",
        "N_opt": {"coefficient": {"value": 2.0}, "exponent": {"value": 0.5}},
      }
    },
  )
  centre, source = planner.optimum_centre(sweep_config, 1e12)
  assert source == "scaling_laws.json approach3" and centre == pytest.approx(2e6)


def test_batch_rule_is_fixed_within_a_budget_and_grows_across():
  rule = hparams.width_scaled_adamw(
    lr_constant=0.2, lr_max=1e-2, batch_size=32, batch_budget_exponent=0.5, reference_budget=1e12
  )
  small, large = rule({"d_model": 16}, 1e12), rule({"d_model": 64}, 1e12)
  assert small["batch_size"] == large["batch_size"] == 32
  assert small["learning_rate"] == 1e-2 and large["learning_rate"] == 0.2 / 64
  assert rule({"d_model": 64}, 1e14)["batch_size"] == 256
  with pytest.raises(ValueError, match="width_field"):
    rule({"width": 3}, 1e12)


@pytest.mark.slow  # tests/sweep/test_packing.py runs a shard process beside packed workers
def test_two_processes_split_a_sweep_and_train_each_run_once(sweep_config, tmp_path):
  """Two shard processes started together on one workdir: every run trained exactly once."""
  config_path = write_config_file(tmp_path / "config.py", sweep_config)
  planner.load_or_plan(sweep_config, probe=False)
  env = {**os.environ, "XLA_FLAGS": xla_flags(2)}
  procs = [
    subprocess.Popen(
      [
        sys.executable,
        "-m",
        "flopsfit.train",
        f"--config={config_path}",
        f"--shard_index={i}",
        "--num_shards=2",
      ],
      cwd=ROOT,
      env=env,
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )
    for i in range(2)
  ]
  outputs = [p.communicate(timeout=600) for p in procs]
  assert [p.returncode for p in procs] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
  trained = [
    {line.split()[0] for line in out.splitlines() if line.endswith(" trained")}
    for out, _ in outputs
  ]
  plan = json.load(open(os.path.join(sweep_config.workdir, "sweep.json")))
  assert not trained[0] & trained[1]
  assert trained[0] | trained[1] == {r["run_id"] for r in plan["runs"]}
  rows = runner.run_sweep(sweep_config)
  assert {r["action"] for r in rows} == {"skipped"} and {r["status"] for r in rows} == {"completed"}


def _compiled_memory(config, run) -> int:
  """XLA's memory analysis of the run's one-device step, compiled."""
  plugins = plugins_lib.load(config)
  example = {k: v[None] for k, v in plugins.dataset.source("train")[0].items()}
  build = lambda: plugins.model(run["shape"], run["seed"])
  optim = run_config(config, run).optim
  return step_lib.step_flops_and_memory(build, plugins.loss, optim, example, run["batch_size"])[1]


def test_fsdp_only_for_runs_whose_data_parallel_step_does_not_fit(sweep_config):
  """The per-device memory limit splits the sizes: the small run stays data-parallel, the
  large one gets the smallest FSDP mesh that fits, measured on that mesh; run_config applies
  it."""
  sweep_config.sweep.budgets = (1e9,)
  sweep_config.sweep.shapes = ({"d_model": 16, "n_layers": 1}, {"d_model": 64, "n_layers": 2})
  sweep_config.sweep.min_steps = 1
  sweep_config.sweep.budget_tolerance = 1.0
  roomy = planner.plan_sweep(sweep_config, probe=False)
  assert [r["mesh"] for r in roomy["runs"]] == [{"fsdp": 1, "tensor": 1}] * 2
  # Roomy memory_bytes are upper bounds found without compiling; the limit is set between the
  # two runs' compiled figures.
  small, large = (_compiled_memory(sweep_config, r) for r in roomy["runs"])
  assert all(r["memory_bytes"] >= m for r, m in zip(roomy["runs"], (small, large)))
  sweep_config.sweep.memory_fraction = 1.0
  sweep_config.sweep.device_memory_bytes = (small + large) // 2
  tight = planner.plan_sweep(sweep_config, probe=False)
  assert tight["runs"][0]["mesh"] == {"fsdp": 1, "tensor": 1}
  big = tight["runs"][1]
  assert big["mesh"]["fsdp"] > 1 and big["mesh"]["tensor"] == 1
  assert big["memory_bytes"] <= (small + large) // 2 < large
  assert big["flops_per_step"] == roomy["runs"][1]["flops_per_step"]
  assert run_config(sweep_config, big).train.mesh.to_dict() == big["mesh"]
