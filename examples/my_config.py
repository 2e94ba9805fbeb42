"""An IsoFLOP sweep of the example plugins (examples/my_plugins): a config of a user's own.

Run (from this directory, so that `my_plugins` is importable; or put it on PYTHONPATH):
  python -m flopsfit.train --config=my_config.py      (plan + train every run)
  python -m flopsfit.analyze --config=my_config.py    (scaling_laws.json)
  python -m flopsfit.plot --config=my_config.py       (plots/, report.md)
Quick: --config=my_config.py:quick   (budgets 3e9, 1e10 × widths 8, 16, 28;
                                      tests/test_example_plugin.py runs exactly this, out of tree)
The full sweep is budgets 1e10, 3e10, 1e11 × 6 widths: a few minutes on 2 CPU cores.
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  quick = arg == "quick"
  config = ml_collections.ConfigDict()
  config.workdir = "workdirs/my-plugins" + ("-quick" if quick else "")
  config.seed = 0
  config.run = ""  # run id; empty: derived from budget, shape and seed

  vocab_size = ml_collections.FieldReference(32)
  config.model = ml_collections.ConfigDict()
  config.model.factory = "my_plugins.model:ContextMixer"
  config.model.kwargs = ml_collections.ConfigDict(
    dict(vocab_size=vocab_size, width=16, context=4, dropout=0.1)
  )
  config.model.shape_fields = ("width",)  # the kwargs the sweep varies; they name the runs
  config.model.size_rule = ml_collections.ConfigDict()
  config.model.size_rule.factory = "my_plugins.model:WidthRule"
  config.model.size_rule.kwargs = ml_collections.ConfigDict(dict(vocab_size=vocab_size, context=4))

  config.dataset = ml_collections.ConfigDict()
  config.dataset.factory = "my_plugins.data:NoisyProgressions"
  config.dataset.kwargs = ml_collections.ConfigDict(
    dict(seq_len=32, vocab_size=vocab_size, max_step=4, noise=0.1)
  )

  config.loss = ml_collections.ConfigDict()
  config.loss.factory = "my_plugins.loss:smoothed_next_token_loss"
  config.loss.kwargs = ml_collections.ConfigDict(dict(smoothing=0.0))

  config.train = ml_collections.ConfigDict()
  config.train.budget_flops = 1e10  # a single run (--single); a sweep sets it per run
  config.train.batch_size = 16
  config.train.steps_per_call = 10
  config.train.log_every = 50
  config.train.devices = 0  # 0: all local devices

  config.checkpoint = ml_collections.ConfigDict()
  config.checkpoint.every_seconds = 60.0
  config.checkpoint.every_steps = 0
  config.checkpoint.keep = 2
  config.checkpoint.on_finish = "delete"

  config.optim = ml_collections.ConfigDict()
  config.optim.learning_rate = 1e-2  # a single run; a sweep takes it from config.hparams
  config.optim.schedule = "cosine"
  config.optim.warmup_fraction = 0.05
  config.optim.decay_fraction = 0.2
  config.optim.final_lr_fraction = 0.1
  config.optim.weight_decay = 0.1
  config.optim.b1 = 0.9
  config.optim.b2 = 0.95
  config.optim.eps = 1e-8
  config.optim.grad_clip = 1.0

  config.sweep = ml_collections.ConfigDict()
  config.sweep.budgets = (3e10, 1e11, 3e11)
  config.sweep.shapes_per_budget = 6
  config.sweep.decades = 1.5
  config.sweep.tokens_per_param = 50.0
  config.sweep.shapes = ()
  config.sweep.seeds = (0,)
  config.sweep.min_steps = 200
  config.sweep.budget_tolerance = 0.01
  config.sweep.max_epochs = 1.0
  config.sweep.memory_fraction = 0.9
  config.sweep.probe = True

  config.hparams = ml_collections.ConfigDict()  # each run's learning rate and batch size
  config.hparams.factory = "flopsfit.hparams:width_scaled_adamw"
  config.hparams.kwargs = ml_collections.ConfigDict(
    dict(lr_constant=0.3, lr_max=2e-2, width_field="width", batch_size=16)
  )

  config.eval = ml_collections.ConfigDict()
  config.eval.tokens = 2**15
  config.eval.batch_size = 128

  config.analysis = ml_collections.ConfigDict()
  config.analysis.flops_convention = "xla"
  config.analysis.params_convention = "non_embedding"
  config.analysis.huber_delta = 1e-3
  config.analysis.bootstrap_samples = 200

  if quick:
    config.sweep.budgets = (3e9, 1e10)
    config.sweep.shapes = ({"width": 8}, {"width": 16}, {"width": 28})  # instead of the rule:
    config.sweep.min_steps = 40  # one compiled step per width serves both budgets
    config.sweep.budget_tolerance = 0.02
    config.sweep.probe = False
    config.eval.tokens = 2**12
    config.analysis.bootstrap_samples = 20
  return config
