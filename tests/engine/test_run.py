import json
import math
import os

from flopsfit import config_check
from flopsfit import workdir as workdir_lib
from flopsfit.engine import run as run_lib


def _losses(run_dir):
  return [line["loss"] for line in workdir_lib.read_jsonl(os.path.join(run_dir, "metrics.jsonl"))]


def test_run_spends_its_budget_and_learns(gpt_config):
  result = run_lib.train_run(gpt_config)
  run_dir = os.path.join(gpt_config.workdir, "runs", result["run_id"])
  assert result["status"] == "completed"
  assert result["run_id"] == "c2e+09-d16-L2-s0"
  # Exactly floor(budget / flops per step) steps: spent within one step of the budget.
  assert result["steps"] == math.floor(2e9 / result["flops_per_step"])
  assert 2e9 - result["flops_per_step"] < result["flops"]["xla"] <= 2e9
  assert result["tokens"] == result["steps"] * 16 * 32
  losses = _losses(run_dir)
  assert losses[-1] < losses[0] - 0.4, f"training loss did not fall: {losses}"
  # The eval loss is measured on held-out data, below uniform guessing, above the exact floor.
  assert result["loss_floor"] < result["final_eval_loss"] < math.log(64) - 0.3
  assert result["eval_tokens"] == 4096
  assert result["provenance"]["mesh"] == {"data": 2, "fsdp": 1, "tensor": 1}
  for path in ("config.json", "metrics.jsonl", "result.json"):
    assert os.path.exists(os.path.join(run_dir, path))
  assert json.load(open(os.path.join(run_dir, "config.json")))["total_steps"] == result["steps"]


def test_same_seed_same_losses_and_other_seed_differs(gpt_config, tmp_path):
  first = run_lib.train_run(gpt_config)
  gpt_config.workdir = str(tmp_path / "again")
  second = run_lib.train_run(gpt_config)
  assert first["final_eval_loss"] == second["final_eval_loss"]
  assert _losses(os.path.join(tmp_path / "workdir", "runs", first["run_id"])) == _losses(
    os.path.join(tmp_path / "again", "runs", second["run_id"])
  )
  gpt_config.workdir = str(tmp_path / "seed1")
  gpt_config.seed = 1
  assert run_lib.train_run(gpt_config)["final_eval_loss"] != first["final_eval_loss"]


def test_finished_run_is_not_trained_again(gpt_config):
  first = run_lib.train_run(gpt_config)
  assert run_lib.train_run(gpt_config) == json.loads(json.dumps(first))


def test_a_failed_run_is_trained_again(gpt_config):
  path = os.path.join(gpt_config.workdir, "runs", "c2e+09-d16-L2-s0", "result.json")
  workdir_lib.write_json_atomic(
    path, {"run_id": "c2e+09-d16-L2-s0", "status": "failed", "error": "RuntimeError: out of memory"}
  )
  result = run_lib.train_run(gpt_config)
  assert result["status"] == "completed" and result["error"] is None
  assert workdir_lib.read_json(path)["status"] == "completed"


def test_divergence_is_recorded(gpt_config):
  gpt_config.optim.learning_rate = 1e30
  gpt_config.optim.grad_clip = 1e30
  result = run_lib.train_run(gpt_config)
  assert result["status"] == "diverged"
  assert "non-finite" in result["error"]
  assert result["final_eval_loss"] is None


def test_reusing_a_run_dir_with_another_config_is_refused(gpt_config):
  run_lib.train_run(gpt_config)
  os.remove(os.path.join(gpt_config.workdir, "runs", "c2e+09-d16-L2-s0", "result.json"))
  gpt_config.optim.learning_rate = 3e-3
  try:
    run_lib.train_run(gpt_config)
  except config_check.ConfigError as e:
    assert "different config" in str(e)
  else:
    raise AssertionError("a run dir of another config was reused")
