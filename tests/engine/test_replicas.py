"""Seeds of one shape trained together in one vmapped step (flopsfit/engine/replicas.py)."""

import os

import numpy as np
import pytest
import user_models
from flax import nnx

from flopsfit import config_check, run_ids
from flopsfit import plugins as plugins_lib
from flopsfit import workdir as workdir_lib
from flopsfit.engine import checkpoints, replicas
from flopsfit.engine import params as params_lib
from flopsfit.engine import run as run_lib
from flopsfit.sweep import claims, runner


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


def test_seeds_trained_together_equal_each_trained_alone_through_a_preemption(
  gpt_config, tmp_path, monkeypatch
):
  alone_dir, together_dir = str(tmp_path / "alone"), str(tmp_path / "together")
  alone = [run_lib.train_run(_seed(gpt_config, s, alone_dir)) for s in (0, 1)]
  configs = [_seed(gpt_config, s, together_dir) for s in (0, 1)]

  # Preempted (SIGTERM) in the 3rd call of the group: every replica saves and the call stops.
  monkeypatch.setenv("FLOPSFIT_FAILPOINT", "train_call:5:TERM")  # 2 replicas per call
  with pytest.raises(checkpoints.Preempted):
    replicas.train_replicas(configs)
  monkeypatch.delenv("FLOPSFIT_FAILPOINT")
  together = replicas.train_replicas(configs)  # resumed together from the runs' checkpoints

  for a, t in zip(alone, together):
    assert t["status"] == "completed"
    assert t["resumed_from_steps"] == [15]
    assert t["steps"] == a["steps"] and t["flops"]["xla"] == a["flops"]["xla"]
    assert t["flops_per_step"] == a["flops_per_step"]
    np.testing.assert_allclose(_losses(t, together_dir), _losses(a, alone_dir), rtol=2e-5)
    assert t["final_eval_loss"] == pytest.approx(a["final_eval_loss"], rel=2e-5)
    assert t["trained_with"] == [run_lib.run_id_of(c) for c in configs]
  assert alone[0]["trained_with"] == []
  assert together[0]["final_eval_loss"] != together[1]["final_eval_loss"]  # seeds differ
  assert replicas.train_replicas(configs) == together  # finished: not trained again


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


def test_a_sweep_with_vmap_seeds_trains_each_shapes_seeds_together(gpt_config):
  """Runs as sweep.json lists them: the two seeds of one shape are claimed and trained as one
  group (on 2 devices); the other shape's run is trained alone."""
  config = gpt_config
  config.train.vmap_seeds = True
  plugins = plugins_lib.load(config)
  runs = []
  for d_model, seed in ((16, 0), (8, 0), (16, 1)):
    shape = {"d_model": d_model, "n_layers": 2}
    runs.append(
      {
        "run_id": run_ids.format_run_id(5e8, shape, seed),
        "budget_flops": 5e8,
        "shape": shape,
        "seed": seed,
        "batch_size": 16,
        "learning_rate": 1e-2,
        "params": params_lib.count_params(plugins.abstract_model(shape)),
      }
    )
  owner = claims.identity(sweep="test")
  rows, timings = runner.train_claimed(config, runs, owner, claim_timeout=60)
  assert [r["status"] for r in rows] == ["completed"] * 3 and len(timings) == 3
  results = [
    workdir_lib.read_json(workdir_lib.result_path(config.workdir, r["run_id"])) for r in runs
  ]
  assert (
    results[0]["trained_with"]
    == results[2]["trained_with"]
    == [runs[0]["run_id"], runs[2]["run_id"]]
  )
  assert results[1]["trained_with"] == []
  assert results[0]["provenance"]["mesh"]["data"] == 2


def test_vmap_seeds_may_be_left_out_of_a_config_and_must_be_a_bool(gpt_config):
  config_check.check_fields(gpt_config)
  del gpt_config.train["vmap_seeds"]  # a config written before the field: off
  config_check.check_fields(gpt_config)
  gpt_config.train.vmap_seeds = "yes"
  with pytest.raises(config_check.ConfigError, match=r"config.train.vmap_seeds: expected a bool"):
    config_check.check_fields(gpt_config)
