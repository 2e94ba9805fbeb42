"""The final eval of a model that draws random numbers: no dropout, the same for any batching."""

import jax
import numpy as np
import pytest
import user_models
from conftest import tiny_gpt_config
from flax import nnx

from flopsfit import losses, model_calls
from flopsfit.data.synthetic import ZipfMarkovLanguage
from flopsfit.engine import evaluate, mesh
from flopsfit.engine import step as step_lib
from flopsfit.models.gpt import GPT

MODELS = {  # name: model factory taking a dropout rate (ignored by the LSTM, which has none)
  "gpt_dropout": lambda rate: GPT(
    vocab_size=64, d_model=16, n_layers=1, head_dim=8, dropout=rate, rngs=nnx.Rngs(0)
  ),
  "dropout_mlp": lambda rate: user_models.DropoutMLP(
    vocab_size=64, d_model=16, dropout=rate, rngs=nnx.Rngs(0)
  ),
  "lstm": lambda rate: user_models.LSTM(vocab_size=64, d_model=16, rngs=nnx.Rngs(0)),
}


def _records(split: str, n: int) -> dict:
  source = ZipfMarkovLanguage(seq_len=32).source(split)
  return {"tokens": np.stack([source[i]["tokens"] for i in range(n)])}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_eval_runs_without_dropout_whatever_the_eval_batch_size(name):
  build, loss_fn = MODELS[name], losses.next_token_cross_entropy()
  data_mesh = mesh.data_mesh(jax.devices()[:1])  # one compile fewer than a sharded step
  train = _records("train", 16)
  compiled = step_lib.compile_step(
    lambda: build(0.5), loss_fn, tiny_gpt_config("").optim, data_mesh, train, 16, 1, 8
  )
  state = compiled.init(50)
  for _ in range(3):  # a few steps, drawing dropout masks from the model's streams
    state, _ = compiled.single(state, step_lib.global_batch(data_mesh, train, 0))
  eval_records = _records("eval", 64)
  in_batches_of_8 = [{"tokens": eval_records["tokens"][i : i + 8]} for i in range(0, 64, 8)]
  by_8 = evaluate.evaluate(compiled, state, data_mesh, in_batches_of_8)
  graphdef = nnx.graphdef(nnx.eval_shape(lambda: build(0.5)))
  by_64 = jax.jit(step_lib.make_eval_step(graphdef, loss_fn))(state, eval_records)
  assert float(by_64["loss"]) == pytest.approx(by_8["loss"], rel=1e-6)
  again = evaluate.evaluate(compiled, state, data_mesh, in_batches_of_8)
  assert again == by_8, "the eval does not advance the model's random streams"

  # Equal to the same parameters in a model built without dropout, called eagerly.
  no_dropout = build(0.0)
  nnx.update(no_dropout, jax.device_get(state["params"]))
  outputs = no_dropout(eval_records)
  assert float(loss_fn(outputs, eval_records)[0]) == pytest.approx(by_8["loss"], rel=1e-5)

  # Training mode draws from the streams: a function of the state, advancing it.
  train_loss = jax.jit(model_calls.loss_of(graphdef, loss_fn, train=True))
  first, (_, advanced) = train_loss(state["params"], state["model_state"], eval_records)
  assert float(train_loss(state["params"], state["model_state"], eval_records)[0]) == first
  if name != "lstm":  # its carry is drawn from zeros_init: the same values whatever the key
    drawn = []  # two more draws: one pair of masks may give losses equal to 1e-4 by chance
    for _ in range(2):
      loss, (_, advanced) = train_loss(state["params"], advanced, eval_records)
      drawn.append(abs(float(loss) - float(first)))
    assert max(drawn) > 1e-4, drawn
    assert abs(float(first) - by_8["loss"]) > 1e-4
