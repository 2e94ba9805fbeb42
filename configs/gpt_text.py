"""The built-in GPT on real text: the King James Bible, byte-level (vocabulary 256), a sweep.

Data:    the text file at config.dataset.kwargs.paths (default /tmp/flopsfit/kjv.txt), made from
         Debian's bible-kjv package (public domain; `apt-get install -y bible-kjv`) by
           mkdir -p /tmp/flopsfit && bible -f "Gen1:1-Rev22:21" | sed -E 's/^[^ ]+ //' \\
             > /tmp/flopsfit/kjv.txt
         (4.1 MB with the verse references stripped; every 20th 8 KB chunk, 207 KB, is the eval
         split). Any UTF-8 text works: --config.dataset.kwargs.paths='/data/*.txt'.
Run:     python -m flopsfit.train --config=configs/gpt_text.py     (plan + train every run)
         python -m flopsfit.analyze --config=configs/gpt_text.py   (scaling_laws.json)
         python -m flopsfit.plot --config=configs/gpt_text.py      (plots/, report.md)
Quick:   --config=configs/gpt_text.py:quick   (budgets 1e11, 3e11 × 4 sizes)

Setup: 128-byte windows; AdamW, lr 0.3 / d_model (capped at 0.02), 5% warmup and cosine to
0.1x; the batch grows with the budget (16, 32, 64 sequences at 3e11, 1.2e12, 5e12) and is fixed
within a budget; sizes from the GPT's shape rule (d_model / n_layers about 24) around
sqrt(C / (6 · 300)) non-embedding parameters. Epochs per run (passes over the 3.9 MB train
split) are in sweep.json, the plan and summary tables and every result.json (`epochs`); runs
needing more than sweep.max_epochs = 8 are dropped.

Measured (2-core CPU shared with 4 other jobs, load average about 20, so the time is an upper
bound; one seed): the quick variant trained its 8 runs in 21 min (1,271 s of sweep; 7.7 min of
CPU time), with an interior minimum at both budgets:

| budget | batch | best d/L | N (non-embedding) | D bytes | epochs | eval loss (others) |
|---|---|---|---|---|---|---|
| 1e11 | 8 | 24/1 | 6,984 | 0.78M | 0.20 | 1.726 (d16/L1 1.750, d40/L1 1.928, d32/L2 1.890) |
| 3e11 | 16 | 32/1 | 12,640 | 1.59M | 0.40 | 1.606 (d16/L1 1.662, d40/L1 1.658, d40/L2 1.776) |

analyze: Approach 2 N_opt ∝ C^0.57 [0.30, 0.59] from those two budgets (Approach 3 is not
determined by 8 runs). The full sweep (14 runs up to d72/L3, at most 6.8 epochs) was planned
here but not run: its probe estimated 91 min under that load. A prototype of the same setup
outside this repository (../shared/notes/real-data-sweeps.md) found an interior minimum at
3e11, 1.2e12 and 5e12 in about 9 minutes (best eval loss 1.680, 1.469, 1.305).
"""

import importlib.util
import os

import ml_collections

TEXT = "/tmp/flopsfit/kjv.txt"
PREPARE = "mkdir -p /tmp/flopsfit && bible -f 'Gen1:1-Rev22:21' | sed -E 's/^[^ ]+ //' > " + TEXT


def _gpt_config(arg: str | None) -> ml_collections.ConfigDict:
  """configs/gpt.py's config: every field, with its comments there."""
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gpt.py")
  spec = importlib.util.spec_from_file_location("gpt_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = _gpt_config(arg)
  quick = "quick" in (arg or "").split(",")
  config.workdir = "workdirs/gpt-text-quick" if quick else "workdirs/gpt-text"
  config.seq_len = 128  # FieldReferences: the model and dataset read them
  config.vocab_size = 256

  config.model.kwargs.d_model = 32
  config.model.kwargs.n_layers = 2
  config.model.size_rule.kwargs = ml_collections.ConfigDict(dict(aspect_ratio=24, head_dim=8))

  config.dataset.factory = "flopsfit.data.text_files:TextFiles"
  config.dataset.kwargs = ml_collections.ConfigDict(
    dict(paths=TEXT, seq_len=config.get_ref("seq_len"), chunk_bytes=8192, eval_every=20)
  )
  config.dataset.kwargs.prepare = PREPARE  # named in the error when the file is missing

  config.train.budget_flops = 3e11
  config.train.batch_size = 32
  config.train.steps_per_call = 25

  config.sweep.budgets = (3e11, 1.2e12, 5e12)
  config.sweep.shapes_per_budget = 5
  config.sweep.decades = 1.2
  config.sweep.tokens_per_param = 300.0  # non-embedding N: the tied head is not counted
  config.sweep.min_steps = 300
  config.sweep.max_epochs = 8.0

  config.hparams.kwargs = ml_collections.ConfigDict(
    dict(
      lr_constant=0.3,
      lr_max=2e-2,
      width_field="d_model",
      batch_size=32,
      batch_budget_exponent=0.5,  # 16, 32, 64 sequences at 3e11, 1.2e12, 5e12
      reference_budget=1.2e12,
    )
  )

  config.eval.tokens = 2**17  # 1024 of the eval split's 1,617 windows
  config.eval.batch_size = 256

  if quick:
    config.sweep.budgets = (1e11, 3e11)
    config.sweep.shapes_per_budget = 4
    config.sweep.decades = 1.0
    config.sweep.min_steps = 200
    config.eval.tokens = 2**15
    config.train.budget_flops = 1e11
  return config
