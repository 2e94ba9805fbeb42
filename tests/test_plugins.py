"""Out-of-tree plugins train; broken plugins fail before training with one line naming the field."""

import os
import sys
import textwrap

import pytest

from flopsfit import plugins
from flopsfit.engine import run as run_lib

USER_PLUGINS = textwrap.dedent('''
    import numpy as np
    import jax
    import jax.numpy as jnp
    from flax import nnx

    class CountingSource:
      """Sequences x, x+1, x+2, ... mod 16: predictable next tokens."""
      def __init__(self, n, offset): self.n, self.offset = n, offset
      def __len__(self): return self.n
      def __getitem__(self, i):
        start = (i * 7 + self.offset) % 16
        return {"tokens": ((start + np.arange(16)) % 16).astype(np.int32)}
      def __repr__(self): return f"CountingSource({self.n}, {self.offset})"

    class Counting:
      unit = "tokens"
      units_per_record = 16
      def source(self, split):
        return {"train": CountingSource(10_000, 0), "eval": CountingSource(64, 3)}[split]

    class Bigram(nnx.Module):
      def __init__(self, vocab: int, rngs: nnx.Rngs):
        self.table = nnx.Linear(vocab, vocab, rngs=rngs)
        self.vocab = vocab
      def __call__(self, batch):
        return {"scores": self.table(jax_one_hot(batch["tokens"], self.vocab))}

    class Branchy(Bigram):
      """Python control flow on a traced value: cannot run under jax.jit."""
      def __call__(self, batch):
        if batch["tokens"].sum() > 0:
          return super().__call__(batch)
        return {"scores": -super().__call__(batch)["scores"]}

    class BranchyAt8(Bigram):
      """Fine at vocab 16; at vocab 8, Python control flow on a traced value."""
      def __call__(self, batch):
        if self.vocab == 8 and batch["tokens"].sum() > 0:
          return {"scores": -super().__call__(batch)["scores"]}
        return super().__call__(batch)

    class Grows(Bigram):
      """Creates a variable when called: the train state would change shape."""
      def __call__(self, batch):
        self.seen = nnx.BatchStat(batch["tokens"].sum())
        return super().__call__(batch)

    class HostNoise(Bigram):
      """Noise from a host callback: runs forward, cannot be differentiated."""
      def __call__(self, batch):
        scores = super().__call__(batch)["scores"]
        noise = jax.pure_callback(lambda x: np.zeros_like(x), scores, scores)
        return {"scores": scores + noise}

    def jax_one_hot(x, n):
      return (x[..., None] == jnp.arange(n)).astype(jnp.float32)

    def xent(scale=1.0):
      import optax
      def loss(outputs, batch):
        value = optax.softmax_cross_entropy_with_integer_labels(
            outputs["scores"][:, :-1], batch["tokens"][:, 1:]).mean() * scale
        return value, {}
      return loss

    def no_splits():
      class D:
        unit = "tokens"
        units_per_record = 16
        def source(self, split):
          if split == "eval": raise KeyError(split)
          return CountingSource(10, 0)
      return D()

    def no_unit():
      class D(Counting):
        unit = None
      return D()

    def bad_batch_rule():
      return lambda shape, budget_flops: {"learning_rate": 0.1, "batch_size": 0.5}

    class NoShapeFor:
      pass

    def not_a_module(vocab, rngs):
      return object()

    def vector_loss():
      return lambda outputs, batch: (outputs["scores"].mean(-1), {})

    NOT_CALLABLE = 3
''')


@pytest.fixture
def user_config(tmp_path, gpt_config, monkeypatch):
  package = tmp_path / "userpkg"
  package.mkdir()
  (package / "__init__.py").write_text("")
  (package / "plugins.py").write_text(USER_PLUGINS)
  monkeypatch.syspath_prepend(str(tmp_path))
  config = gpt_config
  config.model.factory = "userpkg.plugins:Bigram"
  config.model.kwargs = {"vocab": 16}
  config.model.shape_fields = ("vocab",)
  config.dataset.factory = "userpkg.plugins:Counting"
  config.dataset.kwargs = {}
  config.loss.factory = "userpkg.plugins:xent"
  config.loss.kwargs = {"scale": 1.0}
  config.train.budget_flops = 2e8
  config.optim.learning_rate = 0.1
  config.eval.tokens = 512
  config.eval.batch_size = 16
  yield config
  for name in [m for m in sys.modules if m.startswith("userpkg")]:
    del sys.modules[name]


def test_out_of_tree_plugins_train(user_config):
  result = run_lib.train_run(user_config)
  assert result["status"] == "completed"
  assert result["run_id"] == "c2e+08-vocab16-s0"
  assert result["params"] == {
    "total": 16 * 16 + 16,
    "embedding": 0,
    "non_embedding": 272,
    "matmul_active": 256,
  }
  # The counting task is deterministic: a bigram table learns it well below ln(16) = 2.77.
  assert result["final_eval_loss"] < 1.0
  assert result["plugins"]["model"]["factory"] == "userpkg.plugins:Bigram"


@pytest.mark.parametrize(
  "field, value, message",
  [
    (
      "model.factory",
      "nopkg.nomodule:GPT",
      "config.model.factory: cannot import module 'nopkg.nomodule'",
    ),
    (
      "model.factory",
      "userpkg.plugins:Missing",
      "config.model.factory: module 'userpkg.plugins' has no attribute 'Missing'",
    ),
    ("model.factory", "userpkg.plugins", "config.model.factory: expected 'package.module:attr'"),
    (
      "model.factory",
      "userpkg.plugins:NOT_CALLABLE",
      "config.model.factory: userpkg.plugins:NOT_CALLABLE is a int, not a callable",
    ),
    (
      "model.factory",
      "userpkg.plugins:not_a_module",
      "returned a object, expected a flax.nnx.Module",
    ),
    (
      "model.factory",
      "userpkg.plugins:Branchy",
      "config.model.factory: userpkg.plugins:Branchy failed on a batch with keys ['tokens'] "
      "under jax.jit in training mode (TracerBoolConversionError: ",
    ),
    (
      "model.factory",
      "userpkg.plugins:Grows",
      "config.model.factory: userpkg.plugins:Grows creates or changes variables when called "
      "(seen); create every variable in __init__",
    ),
    (
      "model.factory",
      "userpkg.plugins:HostNoise",
      "config.model.factory: userpkg.plugins:HostNoise cannot be differentiated in training "
      "mode (model.train(), as the train step does)",
    ),
    (
      "model.kwargs",
      {"vocab": 16, "width": 3},
      "config.model.kwargs: userpkg.plugins:Bigram does not accept ['rngs', 'vocab', 'width']",
    ),
    (
      "loss.factory",
      "flopsfit.losses:next_token_cross_entropy",
      "config.model.factory: model outputs ['scores'] lack the key 'logits' that config.loss needs",
    ),
    (
      "loss.factory",
      "userpkg.plugins:vector_loss",
      "config.loss.factory: loss must return a scalar, got shape (16, 16)",
    ),
    (
      "dataset.factory",
      "userpkg.plugins:no_splits",
      "config.dataset.factory: userpkg.plugins:no_splits has no usable 'eval' split",
    ),
    (
      "dataset.factory",
      "userpkg.plugins:no_unit",
      "config.dataset.factory: userpkg.plugins:no_unit has no `unit` string",
    ),
  ],
)
def test_broken_plugin_fails_before_training(user_config, field, value, message):
  section, key = field.split(".")
  user_config[section][key] = value
  if field == "loss.factory":
    user_config.loss.kwargs = {}
  with pytest.raises(plugins.PluginError) as error:
    run_lib.train_run(user_config)
  assert message in str(error.value)
  assert "\n" not in str(error.value)
  assert not os.path.exists(os.path.join(user_config.workdir, "runs"))


def test_a_shape_that_breaks_the_model_after_a_good_one_gets_the_one_line_error(user_config):
  """A process checks a config's model and loss once; a later shape whose step cannot be
  built still gets the check's one-line error, and no run directory."""
  user_config.model.factory = "userpkg.plugins:BranchyAt8"
  assert run_lib.train_run(user_config)["status"] == "completed"
  user_config.model.kwargs = {"vocab": 8}
  with pytest.raises(plugins.PluginError) as error:
    run_lib.train_run(user_config)
  assert (
    "config.model.factory: userpkg.plugins:BranchyAt8 failed on a batch with keys ['tokens'] "
    "under jax.jit in training mode (TracerBoolConversionError: " in str(error.value)
  )
  assert "\n" not in str(error.value)
  assert not os.path.exists(run_lib.workdir_lib.run_dir(user_config.workdir, "c2e+08-vocab8-s0"))


@pytest.mark.parametrize(
  "field, value, message",
  [
    (
      "hparams.factory",
      "userpkg.plugins:bad_batch_rule",
      "config.hparams.factory: userpkg.plugins:bad_batch_rule returned {'learning_rate': 0.1, "
      "'batch_size': 0.5} for shape {'vocab': 16} at budget 2e+08; expected",
    ),
    (
      "model.size_rule.factory",
      "userpkg.plugins:NoShapeFor",
      "config.model.size_rule.factory: userpkg.plugins:NoShapeFor returned a NoShapeFor without "
      "a shape_for(target_params) method (flopsfit.contracts.SizeRule)",
    ),
  ],
)
def test_broken_rule_fails_before_planning(user_config, field, value, message):
  """The planner's size and hyperparameter rules are checked against their contracts."""
  from flopsfit.sweep import planner

  user_config.sweep.budgets = (2e8,)
  user_config.sweep.shapes = () if field.startswith("model") else ({"vocab": 16},)
  user_config.model.size_rule.kwargs = {}
  user_config.hparams.kwargs = {}
  section, key = field.rsplit(".", 1)
  node = user_config
  for part in section.split("."):
    node = node[part]
  node[key] = value
  with pytest.raises(plugins.PluginError) as error:
    planner.plan_sweep(user_config, probe=False)
  assert message in str(error.value)
  assert "\n" not in str(error.value)


def test_built_in_plugins_fit_their_contracts(tmp_path):
  from flax import nnx

  from flopsfit import contracts, hparams
  from flopsfit.data.synthetic import ZipfMarkovLanguage
  from flopsfit.data.text_files import TextFiles
  from flopsfit.models.gpt import GPT, GPTShapeRule

  (tmp_path / "a.txt").write_text("text " * 40_000)
  for dataset in (ZipfMarkovLanguage(seq_len=8), TextFiles(paths=str(tmp_path / "a.txt"))):
    assert isinstance(dataset, contracts.Dataset)
    assert isinstance(dataset.source("train"), contracts.Source)
  build = lambda: GPT(vocab_size=16, d_model=8, n_layers=1, head_dim=8, rngs=nnx.Rngs(0))
  model = nnx.eval_shape(build)
  assert isinstance(model, contracts.Model) and isinstance(model, contracts.CountsAttentionFlops)
  assert isinstance(GPTShapeRule(), contracts.SizeRule)
  hp = plugins.hparams_for(hparams.width_scaled_adamw(), "rule", {"d_model": 64}, 1e12)
  assert set(hp) == set(contracts.Hparams.__annotations__)
