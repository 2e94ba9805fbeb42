"""Crash recovery with real subprocesses and real signals: a resumed run ends bitwise equal.

Crashes are SIGKILLs at named points (`flopsfit/engine/failpoints.py`): mid-step, mid-eval, and
while a checkpoint is being written; preemption is a real SIGTERM. Models that draw random numbers
(dropout, an LSTM's carry) resume bitwise too: their random streams are checkpointed.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import tiny_gpt_config, write_config_file, xla_flags

from flopsfit import workdir as workdir_lib
from flopsfit.engine import checkpoints

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(TESTS)
RUN_ID = "c2e+10-d16-L2-s0"


def _train(
  config_path, workdir, *flags, failpoint=None, cache=None, popen=False, module="flopsfit.train"
):
  env = {k: v for k, v in os.environ.items() if k != "FLOPSFIT_FAILPOINT"}
  env["XLA_FLAGS"] = xla_flags(2)
  env["PYTHONPATH"] = os.pathsep.join([TESTS, env.get("PYTHONPATH", "")])  # tests/user_models.py
  env.pop("JAX_COMPILATION_CACHE_DIR", None)
  if failpoint:
    env["FLOPSFIT_FAILPOINT"] = failpoint
  args = [
    sys.executable,
    "-m",
    module,
    f"--config={config_path}",
    f"--config.workdir={workdir}",
    *flags,
  ]
  if cache:
    args.append(f"--config.compilation_cache_dir={cache}")
  if popen:
    return subprocess.Popen(
      args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
  return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _result(workdir, run_id=RUN_ID):
  return workdir_lib.read_json(os.path.join(workdir, "runs", run_id, "result.json"))


def _metrics(workdir, run_id=RUN_ID):
  return list(workdir_lib.read_jsonl(os.path.join(workdir, "runs", run_id, "metrics.jsonl")))


def _same_training(resumed_dir, reference_dir, run_id=RUN_ID):
  """Bitwise equal eval loss; metrics lines for the same steps, none duplicated."""
  resumed, reference = _result(resumed_dir, run_id), _result(reference_dir, run_id)
  assert resumed["status"] == "completed"
  assert resumed["final_eval_loss"] == reference["final_eval_loss"]
  assert resumed["final_eval_metrics"] == reference["final_eval_metrics"]
  got, want = _metrics(resumed_dir, run_id), _metrics(reference_dir, run_id)
  assert [m["step"] for m in got] == [m["step"] for m in want]
  for g, w in zip(got, want):
    assert (g["loss"], g["last_loss"], g["grad_norm"]) == (
      w["loss"],
      w["last_loss"],
      w["grad_norm"],
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
  """A run of ~600 steps with a checkpoint every 100, and its uninterrupted reference."""
  base = tmp_path_factory.mktemp("checkpoints")
  config = tiny_gpt_config(str(base / "workdir"))  # each test passes its own workdir
  config.train.budget_flops = 2e10
  config.eval.tokens = 8192
  config.checkpoint.every_steps = 100
  config.checkpoint.every_seconds = 0.0
  config.checkpoint.keep = 3
  path = write_config_file(base / "config.py", config)
  reference = str(base / "reference")
  proc = _train(path, reference, "--single")
  assert proc.returncode == 0, proc.stderr[-3000:]
  # The compilation cache lives in the workdir by default and is reused on re-runs.
  assert os.listdir(os.path.join(reference, "jax_cache"))
  # Checkpoints are deleted once the result is written (checkpoint.on_finish="delete").
  assert not os.path.exists(os.path.join(reference, "runs", RUN_ID, "checkpoints"))
  return {
    "config": path,
    "reference": reference,
    "base": base,
    "cache": os.path.join(reference, "jax_cache"),
  }


@pytest.mark.parametrize(
  "failpoint, resumed_from",
  [
    ("train_call:50", 100),  # killed mid-step at step 250: back to the checkpoint at 200 (or
    # 100 if 200 was still being written: a save waits for the last)
    ("checkpoint_save:3", None),  # killed while writing the 3rd checkpoint (step 300)
    ("eval_batch:2", "end"),  # killed inside the final eval: no step is trained again
  ],
)
def test_killed_run_resumes_bitwise(setup, failpoint, resumed_from, tmp_path):
  workdir = str(tmp_path / "run")
  crashed = _train(setup["config"], workdir, "--single", failpoint=failpoint, cache=setup["cache"])
  assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
  assert not os.path.exists(os.path.join(workdir, "runs", RUN_ID, "result.json"))
  resumed = _train(setup["config"], workdir, "--single", cache=setup["cache"])
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  _same_training(workdir, setup["reference"])
  steps = _result(workdir)["resumed_from_steps"]
  total = _result(workdir)["steps"]
  if resumed_from == "end":
    assert steps == [total]
  elif resumed_from is None:
    assert steps and steps[0] in (200, 300)
  else:
    assert steps and steps[0] in (resumed_from, resumed_from + 100)


def test_run_killed_data_parallel_resumes_under_fsdp(setup, tmp_path):
  """The same run crashes on a data-parallel mesh and resumes, by re-running with another
  `train.mesh` (an execution-only field), sharded over FSDP: it continues from the checkpoint
  and ends where the uninterrupted run ends (not bitwise: the sums run in another order)."""
  workdir = str(tmp_path / "run")
  cache = setup["cache"]  # the data-parallel step is the reference's; the FSDP one compiles
  crashed = _train(setup["config"], workdir, "--single", failpoint="train_call:50", cache=cache)
  assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
  resumed = _train(setup["config"], workdir, "--single", "--config.train.mesh.fsdp=2", cache=cache)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  result, reference = _result(workdir), _result(setup["reference"])
  assert result["status"] == "completed" and result["resumed_from_steps"]
  assert result["provenance"]["mesh"] == {"data": 1, "fsdp": 2, "tensor": 1}
  assert reference["provenance"]["mesh"] == {"data": 2, "fsdp": 1, "tensor": 1}
  assert result["steps"] == reference["steps"] and result["flops"] == reference["flops"]
  assert result["final_eval_loss"] == pytest.approx(reference["final_eval_loss"], rel=1e-5)


@pytest.mark.parametrize(
  "signum",
  # SIGINT goes through the same handler as SIGTERM (checkpoints.StopSignals): slow only.
  [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)],
)
def test_stop_signal_saves_a_checkpoint_and_exits_resumable(setup, tmp_path, signum):
  workdir = str(tmp_path / "run")
  proc = _train(setup["config"], workdir, "--single", cache=setup["cache"], popen=True)
  metrics = os.path.join(workdir, "runs", RUN_ID, "metrics.jsonl")
  deadline = time.time() + 120
  while not (os.path.exists(metrics) and os.path.getsize(metrics)) and time.time() < deadline:
    time.sleep(0.05)
  sent = time.time()
  proc.send_signal(signum)
  _, stderr = proc.communicate(timeout=60)
  assert proc.returncode == checkpoints.PREEMPTED_EXIT_CODE, stderr[-2000:]
  assert time.time() - sent < 20, "a preempted run must stop within a bounded time"
  assert "re-run the same command to resume" in stderr
  assert os.listdir(os.path.join(workdir, "runs", RUN_ID, "checkpoints"))
  resumed = _train(setup["config"], workdir, "--single", cache=setup["cache"])
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  _same_training(workdir, setup["reference"])
  assert _result(workdir)["resumed_from_steps"]


def test_corrupted_latest_checkpoint_falls_back_to_the_previous(setup, tmp_path):
  workdir = str(tmp_path / "run")
  crashed = _train(
    setup["config"], workdir, "--single", failpoint="train_call:70", cache=setup["cache"]
  )
  assert crashed.returncode == -signal.SIGKILL
  run_dir = os.path.join(workdir, "runs", RUN_ID)
  saved = sorted(int(s) for s in os.listdir(os.path.join(run_dir, "checkpoints")) if s.isdigit())
  assert len(saved) >= 2, saved
  for root, _, files in os.walk(os.path.join(run_dir, "checkpoints", str(saved[-1]), "state")):
    for name in files:
      with open(os.path.join(root, name), "r+b") as f:
        f.truncate(max(0, os.path.getsize(f.name) // 3))
  with open(os.path.join(run_dir, "metrics.jsonl"), "a") as f:
    f.write('{"step": 999, "loss": 1.')  # a line cut short by the crash
  resumed = _train(setup["config"], workdir, "--single", cache=setup["cache"])
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert "checkpoint" in resumed.stderr and "unreadable" in resumed.stderr
  assert _result(workdir)["resumed_from_steps"] == [saved[-2]]
  _same_training(workdir, setup["reference"])


def test_checkpoint_of_another_config_is_refused(setup, tmp_path):
  source = str(tmp_path / "source")
  # Killed at step 350: the saves at 100 and 200 are complete (a save waits for the one before),
  # however slow the machine; an earlier kill can leave only a half-written one, which is ignored.
  crashed = _train(
    setup["config"], source, "--single", failpoint="train_call:70", cache=setup["cache"]
  )
  assert crashed.returncode == -signal.SIGKILL
  saved = os.listdir(os.path.join(source, "runs", RUN_ID, "checkpoints"))
  assert any(s.isdigit() for s in saved), saved
  other = str(tmp_path / "other")
  os.makedirs(os.path.join(other, "runs", RUN_ID))
  shutil.copytree(
    os.path.join(source, "runs", RUN_ID, "checkpoints"),
    os.path.join(other, "runs", RUN_ID, "checkpoints"),
  )
  proc = _train(
    setup["config"], other, "--single", "--config.optim.weight_decay=0.0", cache=setup["cache"]
  )
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert "checkpoint of another config or shape" in proc.stderr
  assert not os.path.exists(os.path.join(other, "runs", RUN_ID, "result.json"))


@pytest.mark.slow  # tests/sweep/test_packing.py kills a whole (packed) sweep and re-runs it too
def test_sweep_killed_halfway_finishes_on_rerun_training_each_run_once(setup, tmp_path):
  workdir = str(tmp_path / "sweep")
  flags = [
    "--config.sweep.budgets=(4e9,8e9)",
    "--config.sweep.shapes_per_budget=2",
    "--config.sweep.decades=0.6",
    "--config.sweep.min_steps=20",
    "--config.sweep.probe=False",
    "--config.checkpoint.every_steps=20",
    "--parallel=1",  # one process: the failpoint kills it (packed: tests/sweep/test_packing.py)
  ]
  planned = _train(setup["config"], workdir, *flags, cache=setup["cache"], module="flopsfit.plan")
  assert planned.returncode == 0, planned.stderr[-3000:]
  plan = json.load(open(os.path.join(workdir, "sweep.json")))
  first = plan["runs"][0]["steps"]
  calls_in_first_run = -(-first // 5)  # steps_per_call = 5, the last call shorter
  # Killed 25 calls (125 steps) into the second run: its checkpoints every 20 steps are behind it.
  assert plan["runs"][1]["steps"] > 150
  crashed = _train(
    setup["config"],
    workdir,
    *flags,
    failpoint=f"train_call:{calls_in_first_run + 25}",
    cache=setup["cache"],
  )
  assert crashed.returncode == -signal.SIGKILL
  done = [
    r["run_id"]
    for r in plan["runs"]
    if os.path.exists(os.path.join(workdir, "runs", r["run_id"], "result.json"))
  ]
  assert 0 < len(done) < len(plan["runs"])
  stamps = {r: os.path.getmtime(os.path.join(workdir, "runs", r, "result.json")) for r in done}
  rerun = _train(setup["config"], workdir, *flags, cache=setup["cache"])
  assert rerun.returncode == 0, rerun.stderr[-3000:]
  for run in plan["runs"]:
    result = _result(workdir, run["run_id"])
    assert result["status"] == "completed"
    steps = [m["step"] for m in _metrics(workdir, run["run_id"])]
    assert steps == sorted(set(steps)) and steps[-1] == result["steps"]
  assert stamps == {
    r: os.path.getmtime(os.path.join(workdir, "runs", r, "result.json")) for r in done
  }
  trained = [line.split()[0] for line in rerun.stdout.splitlines() if line.endswith(" trained")]
  assert set(trained) == {r["run_id"] for r in plan["runs"]} - set(done)
  assert any(_result(workdir, r)["resumed_from_steps"] for r in trained)


RANDOM_MODELS = {  # config.model of a model drawing random numbers, a budget, the sweep's shape
  "gpt_dropout": (
    {
      "factory": "flopsfit.models.gpt:GPT",
      "kwargs": {"vocab_size": 64, "d_model": 8, "n_layers": 1, "head_dim": 8, "dropout": 0.1},
      "shape_fields": ("d_model", "n_layers"),
    },
    8e8,
    "({'d_model': 8, 'n_layers': 1},)",
  ),
  "dropout_mlp": (
    {
      "factory": "user_models:DropoutMLP",
      "kwargs": {"vocab_size": 64, "d_model": 8, "dropout": 0.1},
      "shape_fields": ("d_model",),
    },
    5e8,
    "({'d_model': 8},)",
  ),
  "lstm": (
    {
      "factory": "user_models:LSTM",
      "kwargs": {"vocab_size": 64, "d_model": 8},
      "shape_fields": ("d_model",),
    },
    2.5e8,
    "({'d_model': 8},)",
  ),
}


# One model in the default run; the other two exercise the same checkpointed streams (slow).
@pytest.mark.parametrize(
  "name",
  [
    n if n == "dropout_mlp" else pytest.param(n, marks=pytest.mark.slow)
    for n in sorted(RANDOM_MODELS)
  ],
)
def test_sweep_of_a_model_drawing_random_numbers_resumes_bitwise(name, tmp_path):
  """Plan and train a sweep (one ~100-step run: compiles dominate); killed at step 50, the
  resumed sweep ends bitwise equal to an uninterrupted one."""
  model, budget, shapes = RANDOM_MODELS[name]
  config = tiny_gpt_config(str(tmp_path / "unused"))
  config.train.devices = 1  # one compile fewer (test_step: data parallelism is exact)
  config.checkpoint.every_steps = 20
  config.checkpoint.every_seconds = 0.0
  config.eval.tokens = 1024
  path = tmp_path / "config.py"
  write_config_file(path, config)
  text = path.read_text().replace(
    "  return config\n", f"  config.model = ml_collections.ConfigDict({model!r})\n  return config\n"
  )
  path.write_text("import ml_collections\n" + text)
  flags = [f"--config.sweep.shapes={shapes}", f"--config.sweep.budgets=({budget},)"]
  flags += ["--config.sweep.min_steps=60", "--config.sweep.probe=False"]
  reference = str(tmp_path / "reference")
  done = _train(str(path), reference, *flags)
  assert done.returncode == 0, done.stderr[-3000:]
  plan = json.load(open(os.path.join(reference, "sweep.json")))
  assert len(plan["runs"]) == 1, plan["dropped"]
  run_id = plan["runs"][0]["run_id"]
  cache = os.path.join(reference, "jax_cache")
  workdir = str(tmp_path / "run")
  crashed = _train(str(path), workdir, *flags, failpoint="train_call:10", cache=cache)
  assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
  resumed = _train(str(path), workdir, *flags, cache=cache)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  _same_training(workdir, reference, run_id)
  assert _result(workdir, run_id)["resumed_from_steps"] in ([20], [40])
