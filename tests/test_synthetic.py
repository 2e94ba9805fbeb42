import hashlib
import math

import numpy as np
import pytest

from flopsfit.data import seeded_uniforms
from flopsfit.data.synthetic import ZipfMarkovLanguage


@pytest.fixture(scope="module")
def language():
  return ZipfMarkovLanguage(seq_len=64)


def test_records_are_a_function_of_seed_split_and_index(language):
  again = ZipfMarkovLanguage(seq_len=64)
  train, eval_ = language.source("train"), language.source("eval")
  assert np.array_equal(train[5]["tokens"], again.source("train")[5]["tokens"])
  assert not np.array_equal(train[5]["tokens"], eval_[5]["tokens"])
  other_seed = ZipfMarkovLanguage(seq_len=64, seed=1).source("train")
  assert not np.array_equal(train[5]["tokens"], other_seed[5]["tokens"])
  assert train[0]["tokens"].shape == (64,) and train[0]["tokens"].dtype == np.int32
  assert repr(train) == repr(again.source("train"))


def test_records_are_the_ones_every_documented_sweep_trained_on(language):
  """A faster generator must produce the same windows: README's results were measured on them."""
  digest = hashlib.sha256()
  for split in ("train", "eval"):
    source = language.source(split)
    for index in [*range(100), 10**6]:
      digest.update(source[index]["tokens"].tobytes())
  assert digest.hexdigest()[:16] == "f94983b2735f1a61"


def test_train_and_eval_windows_are_disjoint(language):
  train = {language.source("train")[i]["tokens"].tobytes() for i in range(3000)}
  evals = {language.source("eval")[i]["tokens"].tobytes() for i in range(3000)}
  assert not train & evals


def test_entropy_rate_is_the_zipf_entropy_of_the_successors(language):
  p = np.arange(1, 9) ** -1.0
  p /= p.sum()
  assert language.entropy_rate == pytest.approx(-(p * np.log(p)).sum(), rel=1e-12)
  assert language.entropy_rate == pytest.approx(1.8158, abs=1e-4)


def test_stationary_distribution_is_stationary(language):
  """Empirical context frequencies deep into long chains match the computed distribution."""
  counts = np.zeros(64 * 64)
  source = language.source("train")
  for i in range(3000):
    t = source[i]["tokens"]
    np.add.at(counts, t[:-1].astype(np.int64) * 64 + t[1:], 1)
  empirical = counts / counts.sum()
  assert 0.5 * np.abs(empirical - language.stationary_C).sum() < 0.06  # total variation


def test_reported_floor_matches_independent_monte_carlo_estimate(language):
  """The true model's mean log-loss on held-out windows estimates the floor independently."""
  source = language.source("eval")
  tokens = np.stack([source[i]["tokens"] for i in range(4000)])
  log_loss = -language.log_prob(tokens)
  per_window = log_loss.mean(axis=1)
  standard_error = per_window.std() / math.sqrt(len(per_window))
  assert abs(per_window.mean() - language.loss_floor) < 4 * standard_error + 1e-3
  # Positions with the full order-2 context estimate the entropy rate itself.
  assert log_loss[:, 1:].mean() == pytest.approx(language.entropy_rate, abs=0.01)
  assert language.loss_floor == pytest.approx(
    (language.conditional_entropies()[1] + 62 * language.entropy_rate) / 63
  )


def test_bad_arguments_name_the_field():
  with pytest.raises(ValueError, match="dataset successors"):
    ZipfMarkovLanguage(vocab_size=4, successors=8)
  with pytest.raises(ValueError, match="dataset split"):
    ZipfMarkovLanguage().source("test")


@pytest.mark.parametrize("prefix", [(0, 0), (0, 1), (7,), (), (2**70 + 5, 3, 9, 11, 13)])
def test_seeded_uniforms_equal_numpys_generators(prefix):
  """The windows' uniforms, computed for many records at once, are numpy's draws bit for bit:
  keys of one and two 32-bit words, zero, and entropy shorter and longer than the pool."""
  keys = [*np.random.default_rng(3).integers(0, 2**40, 200), 0, 1, 2**32 - 1, 2**32, 2**64 - 1]
  expected = np.stack([np.random.default_rng([*prefix, int(k)]).random(64) for k in keys])
  assert np.array_equal(seeded_uniforms.uniforms(prefix, keys, 64), expected)
  assert np.array_equal(seeded_uniforms.uniforms(prefix, keys[:3], 5), expected[:3, :5])
