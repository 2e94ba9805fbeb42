"""A cooldown branch restored from its trunk trains exactly as one uninterrupted run would."""

import json
import os

import pytest

from flopsfit import workdir as workdir_lib
from flopsfit.config_check import ConfigError
from flopsfit.engine import run as run_lib

WARMUP, FRACTION = 4, 0.25


def _metrics(workdir: str, run_id: str) -> list[dict]:
  return list(workdir_lib.read_jsonl(workdir_lib.metrics_path(workdir, run_id)))


def _schedule(config, schedule: str, steps: int, fps: float, run_id: str):
  out = config.copy_and_resolve_references()
  out.run = run_id
  out.train.budget_flops = (steps + 0.5) * fps
  out.optim.schedule = schedule
  out.optim.warmup_steps = WARMUP
  out.optim.decay_fraction = FRACTION
  return out


def test_branch_from_trunk_equals_one_run(gpt_config):
  # steps_per_call stays 5: the branch starts mid-call (36 steps, cooldown 7) as in a sweep.
  one_config = _schedule(gpt_config, "wsd", 0, 0.0, "one")
  one_config.train.budget_flops = 1.2e9  # 36 steps of the tiny GPT
  one = run_lib.train_run(one_config)
  fps, total = one["flops_per_step"], one["steps"]
  cooldown = round(FRACTION * total)  # the wsd schedule's decay
  branch_step = total - cooldown

  trunk_config = _schedule(gpt_config, "constant", branch_step, fps, "trunk")
  trunk_config.train.cooldown = {"role": "trunk", "branch_steps": [branch_step]}
  trunk = run_lib.train_run(trunk_config)
  kept = os.listdir(os.path.join(workdir_lib.run_dir(gpt_config.workdir, "trunk"), "checkpoints"))
  assert kept == [str(branch_step)], "the trunk keeps its branch point's checkpoint"

  branch_config = _schedule(gpt_config, "wsd", total, fps, "branch")
  branch_config.train.cooldown = {"role": "branch", "trunk": "trunk", "branch_step": branch_step}
  branch = run_lib.train_run(branch_config)

  assert branch["steps"] == one["steps"] == total
  assert branch["flops"]["xla"] == total * fps, "a point spends its trunk share plus its cooldown"
  assert branch["cooldown"] == {
    "role": "branch",
    "trunk": "trunk",
    "branch_step": branch_step,
    "cooldown_steps": cooldown,
  }
  assert trunk["cooldown"] == {"role": "trunk", "branch_steps": [branch_step]}
  assert branch["resumed_from_steps"] == [branch_step]
  after = [m for m in _metrics(gpt_config.workdir, "one") if m["step"] > branch_step]
  mine = _metrics(gpt_config.workdir, "branch")
  assert [m["step"] for m in mine] == [m["step"] for m in after]
  for a, b in zip(after, mine):
    assert a["last_loss"] == pytest.approx(b["last_loss"], rel=1e-5), (a, b)
  assert branch["final_eval_loss"] == pytest.approx(one["final_eval_loss"], rel=1e-6)
  assert mine[-1]["learning_rate"] < mine[0]["learning_rate"], "the branch cools down"
  assert json.dumps(branch)  # result.json is plain JSON


def test_branch_without_its_trunk_names_the_file(gpt_config):
  gpt_config.train.cooldown = {"role": "branch", "trunk": "nowhere", "branch_step": 5}
  with pytest.raises(Exception, match="nowhere.*config.json: missing"):
    run_lib.train_run(gpt_config)


def test_bad_cooldown_role_is_a_one_line_config_error(gpt_config):
  gpt_config.train.cooldown = {"role": "twig"}
  with pytest.raises(ConfigError, match=r"config\.train\.cooldown\.role: expected one of"):
    run_lib.train_run(gpt_config)
