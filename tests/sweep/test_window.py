"""The feasible window: shapes spread over the sizes a budget can train, and a plain warning,
before training, for a budget whose runs cannot bracket an optimum."""

import json
import os

import numpy as np
import pytest
from conftest import gpt_config_module

from flopsfit.sweep import planner


def _text(path, size: int) -> str:
  """`size` bytes of generated words: a finite dataset that limits the tokens of small models."""
  words = np.array(["the", "and", "of", "lord", "unto", "he", "shall", "in", "that", "him"])
  path.write_text(" ".join(np.random.default_rng(0).choice(words, size // 3))[:size])
  return str(path)


def _on_text(config, path: str, seq_len: int, chunk_bytes: int = 8192):
  config.dataset.factory = "flopsfit.data.text_files:TextFiles"
  config.dataset.kwargs = {"paths": path, "seq_len": seq_len, "chunk_bytes": chunk_bytes}
  config.vocab_size = 256
  config.seq_len = seq_len
  return config


def test_a_mostly_infeasible_prior_is_recentred_and_an_unbracketed_budget_is_named(
  sweep_config, tmp_path
):
  """At 4e10 FLOPs on 305k bytes of text the prior's two smaller shapes need more data than
  there is: the shapes move into the feasible window (every one trainable), and since the
  expected optimum lies below that window the plan says so, in sweep.json and in its table."""
  config = _on_text(sweep_config, _text(tmp_path / "text.txt", 320_000), 32, 1024)
  config.sweep.budgets = (4e10,)
  config.sweep.min_steps = 100
  config.eval.tokens = 512
  plan = planner.load_or_plan(config, probe=False)
  stored = json.load(open(os.path.join(config.workdir, "sweep.json")))
  window = stored["windows"]["4e+10"]
  sizes = [r["params"]["non_embedding"] for r in plan["runs"]]
  assert len(sizes) == 4 and sizes == sorted(sizes)
  assert all(r["steps"] >= 100 and r["tokens"] <= 305_000 for r in plan["runs"])
  assert window["searched"] and window["recentred"]
  assert window["limits"] == {"below": "data", "above": "min_steps"}
  assert window["N"][0] == sizes[0] and window["N"][1] >= sizes[-1]
  assert {d["limit"] for d in plan["dropped"]} == {"data"}
  assert not window["brackets"] and not window["centre_inside"]
  centre = stored["centres"]["4e+10"]["N"]
  assert centre < sizes[0]
  assert "more data, a larger sweep.max_epochs, or a smaller budget" in window["advice"]
  assert stored["warnings"] == [f"budget 4e+10 cannot bracket an optimum: {window['advice']}"]
  table = planner.format_plan(plan)
  assert f"WARNING: budget 4e+10 cannot bracket an optimum: {window['advice']}" in table
  assert "feasible N 13,944-" in table and "shapes spread over it" in table


@pytest.mark.slow
def test_the_issue_case_text_seq128_batch16(tmp_path):
  """Issue 15: a GPT on 2.6 MB of text, seq 128, batch 16, budgets 3e11 and 1.2e12. The prior
  kept 2 and 3 of 7 shapes (min_steps above, one epoch below); now both budgets plan 3 or more
  trainable shapes, 3e11 brackets its expected optimum, and 1.2e12 is named with its fix."""
  config = _on_text(gpt_config_module().get_config(), _text(tmp_path / "t.txt", 2_630_000), 128)
  config.workdir = str(tmp_path / "workdir")
  config.sweep.budgets = (3e11, 1.2e12)
  config.sweep.probe = False
  plan = planner.plan_sweep(config, probe=False)
  by_budget = {b: [r for r in plan["runs"] if r["budget_flops"] == b] for b in (3e11, 1.2e12)}
  prior_kept = {  # the prior's shapes that were trainable: what the planner used to keep
    b: 7 - sum(1 for d in plan["dropped"] if d["budget_flops"] == b) for b in (3e11, 1.2e12)
  }
  assert prior_kept[3e11] <= 2 and prior_kept[1.2e12] <= 3
  assert len(by_budget[3e11]) >= 3 and len(by_budget[1.2e12]) >= 3
  assert plan["windows"]["3e+11"]["brackets"]
  assert not plan["windows"]["1.2e+12"]["brackets"]
  assert [w.split(":")[0] for w in plan["warnings"]] == ["budget 1.2e+12 cannot bracket an optimum"]
