"""configs/vit.py's sweep end to end on tiny sizes: plan, train, analyze, plot, on the
procedural images (no files needed)."""

import importlib.util
import os

from flopsfit import analysis, plotting
from flopsfit.sweep import planner, runner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def vit_config(arg: str):
  spec = importlib.util.spec_from_file_location(
    "vit_config", os.path.join(ROOT, "configs", "vit.py")
  )
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def tiny_vit_sweep(workdir: str):
  """2 budgets × 3 sizes of a ViT on 8×8 blob images in 2×2 patches of 4×4 pixels."""
  config = vit_config("quick,data=blobs")
  config.workdir = workdir
  config.patch_size = 4
  config.head_dim = 4
  config.model.kwargs.image_size = 8
  config.model.size_rule.kwargs.image_size = 8
  config.model.size_rule.kwargs.aspect_ratio = 8
  config.dataset.kwargs.update(dict(image_size=8, num_classes=4, noise=0.2, max_shift=1))
  config.model.kwargs.num_classes = 4
  config.model.size_rule.kwargs.num_classes = 4
  config.sweep.budgets = (1e8, 3e8)
  config.sweep.budget_tolerance = 0.05
  config.sweep.shapes_per_budget = 3
  config.sweep.tokens_per_param = 30.0
  config.sweep.min_steps = 30
  config.hparams.kwargs.batch_size = 16
  config.train.devices = 2
  config.train.steps_per_call = 10
  config.eval.tokens = 256
  config.eval.batch_size = 64
  config.analysis.bootstrap_samples = 20
  return config


def test_vit_sweep_plans_trains_analyzes_and_plots(tmp_path):
  config = tiny_vit_sweep(str(tmp_path / "workdir"))
  plan = planner.load_or_plan(config, probe=False)
  assert {r["budget_flops"] for r in plan["runs"]} == {1e8, 3e8} and len(plan["runs"]) >= 5
  rows = runner.run_sweep(config)
  assert len(rows) == len(plan["runs"])
  results = [runner.finished_result(config.workdir, r["run_id"]) for r in plan["runs"]]
  for run, result in zip(plan["runs"], results):
    assert result["status"] == "completed"
    assert result["unit"] == "images" and result["tokens"] == run["steps"] * run["batch_size"]
    assert result["eval_tokens"] == 256
    assert 0 <= result["final_eval_metrics"]["accuracy"] <= 1
  # Four classes: chance is ln 4 = 1.386 nats; every run learns something, the best a lot.
  assert max(r["final_eval_loss"] for r in results) < 1.3
  assert min(r["final_eval_loss"] for r in results) < 0.9
  laws = analysis.analyze_workdir(config.workdir, analysis.AnalysisOptions(bootstrap_samples=20))
  assert laws["conventions"]["data"] == "images"
  assert len(laws["runs"]) == len(plan["runs"]) and laws["approach1"]["status"] == "ok"
  out = plotting.plot_workdir(config.workdir, keep_figures=True, training_x="tokens")
  assert not out.errors and {"isoflop", "training_curves", "frontier"} <= set(out.pngs)
  assert out.figures["training_curves"].axes[0].get_xlabel() == "images seen (D)"
  assert out.figures["frontier"].axes[1].get_ylabel() == "D: images"
