"""Seeds of one shape trained together in one vmapped step (flopsfit/engine/replicas.py)."""

import os

import numpy as np
import pytest
import user_models
from flax import nnx

from flopsfit import config_check
from flopsfit import workdir as workdir_lib
from flopsfit.engine import checkpoints, replicas
from flopsfit.engine import run as run_lib
from flopsfit.sweep import runner


def _seed(config, seed: int, workdir: str):
  out = config.copy_and_resolve_references()
  out.seed, out.workdir = seed, workdir
  out.train.budget_flops = 1e9  # 30 steps
  out.train.devices = 1  # 2 devices: the sweep test below
  out.train.log_every = 5
  return out


def _losses(result: dict, workdir: str) -> np.ndarray:
  path = os.path.join(workdir_lib.run_dir(workdir, result["run_id"]), "metrics.jsonl")
  return np.array([line["loss"] for line in workdir_lib.read_jsonl(path)])


def test_seeds_trained_together_equal_each_trained_alone_and_resume_either_way(
  gpt_config, tmp_path, monkeypatch
):
  alone_dir, together_dir = str(tmp_path / "alone"), str(tmp_path / "together")
  alone = {s: run_lib.train_run(_seed(gpt_config, s, alone_dir)) for s in (0, 2)}
  configs = [_seed(gpt_config, s, together_dir) for s in range(3)]

  # Preempted (SIGTERM) in the 3rd call of the group: every replica saves and the call stops.
  monkeypatch.setenv("FLOPSFIT_FAILPOINT", "train_call:7:TERM")  # 3 replicas per call
  with pytest.raises(checkpoints.Preempted):
    replicas.train_replicas(configs)
  monkeypatch.delenv("FLOPSFIT_FAILPOINT")
  # Seed 2 resumes alone from the group's checkpoint; seeds 0 and 1 resume together.
  resumed_alone = run_lib.train_run(configs[2])
  together = replicas.train_replicas(configs)
  assert together[2] == resumed_alone  # finished: not trained again

  for seed, a in alone.items():  # seed 0 resumed in the group, seed 2 alone
    t = together[seed]
    assert t["status"] == "completed"
    assert t["resumed_from_steps"] == [15]
    assert t["steps"] == a["steps"] and t["flops"]["xla"] == a["flops"]["xla"]
    assert t["flops_per_step"] == a["flops_per_step"]
    np.testing.assert_allclose(_losses(t, together_dir), _losses(a, alone_dir), rtol=2e-5)
    assert t["final_eval_loss"] == pytest.approx(a["final_eval_loss"], rel=2e-5)
  assert together[0]["trained_with"] == [run_lib.run_id_of(c) for c in configs[:2]]
  assert resumed_alone["trained_with"] == []
  assert len({t["final_eval_loss"] for t in together}) == 3  # seeds differ


def test_a_diverging_seed_stops_and_the_others_train_as_alone(gpt_config, tmp_path):
  gpt_config.model.factory = "user_models:PoisonedMLP"  # dropout: RNG streams per replica too
  gpt_config.model.kwargs = {"vocab_size": 64, "d_model": 8, "dropout": 0.1}
  gpt_config.model.shape_fields = ("d_model",)
  gpt_config.train.budget_flops = 2e8
  poisoned = {
    s: float(user_models.PoisonedMLP(vocab_size=64, d_model=8, rngs=nnx.Rngs(s)).poison[...]) > 0.5
    for s in range(8)
  }
  clean = next(s for s, p in poisoned.items() if not p)
  bad = next(s for s, p in poisoned.items() if p)
  alone_dir, together_dir = str(tmp_path / "alone"), str(tmp_path / "together")
  alone = run_lib.train_run(_seed(gpt_config, clean, alone_dir))
  together = replicas.train_replicas([_seed(gpt_config, s, together_dir) for s in (clean, bad)])
  assert together[1]["status"] == "diverged" and together[1]["steps"] < alone["steps"]
  assert together[0]["status"] == "completed" and together[0]["steps"] == alone["steps"]
  np.testing.assert_allclose(
    _losses(together[0], together_dir), _losses(alone, alone_dir), rtol=2e-5
  )
  assert together[0]["final_eval_loss"] == pytest.approx(alone["final_eval_loss"], rel=2e-5)


def test_only_seeds_of_one_run_are_trained_together(gpt_config, tmp_path):
  configs = [_seed(gpt_config, s, str(tmp_path)) for s in range(2)]
  configs[1].optim.learning_rate = 3e-3
  with pytest.raises(config_check.ConfigError, match="train.vmap_seeds.*optim.learning_rate"):
    replicas.train_replicas(configs)


def test_a_sweep_with_vmap_seeds_trains_each_shapes_seeds_together(sweep_config):
  config = sweep_config
  config.sweep.budgets = (1e9,)
  config.sweep.shapes_per_budget = 2
  config.sweep.seeds = (0, 1)
  config.train.vmap_seeds = True
  rows = runner.run_sweep(config)
  assert [r["status"] for r in rows] == ["completed"] * 4
  results = [
    workdir_lib.read_json(workdir_lib.result_path(config.workdir, r["run_id"])) for r in rows
  ]
  groups = {tuple(r["trained_with"]) for r in results}
  assert len(groups) == 2 and all(len(g) == 2 for g in groups)
  by_id = {r["run_id"]: r for r in results}
  for group in groups:  # the two seeds of one shape
    assert by_id[group[0]]["shape"] == by_id[group[1]]["shape"]
    assert {by_id[i]["seed"] for i in group} == {0, 1}


def test_vmap_seeds_may_be_left_out_of_a_config_and_must_be_a_bool(gpt_config):
  config_check.check_fields(gpt_config)
  del gpt_config.train["vmap_seeds"]  # a config written before the field: off
  config_check.check_fields(gpt_config)
  gpt_config.train.vmap_seeds = "yes"
  with pytest.raises(config_check.ConfigError, match=r"config.train.vmap_seeds: expected a bool"):
    config_check.check_fields(gpt_config)
