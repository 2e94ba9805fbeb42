"""Dataset plugin: noisy arithmetic progressions modulo the vocabulary size."""

import numpy as np

_SPLITS = {"train": 0, "eval": 1}


class ProgressionSource:
  """A grain random-access source of `{"tokens": int32 [seq_len]}` records for one split."""

  def __init__(self, dataset: "NoisyProgressions", split: str, num_records: int):
    self._dataset, self._split, self._num_records = dataset, split, num_records

  def __len__(self) -> int:
    return self._num_records

  def __getitem__(self, index: int) -> dict:
    if not 0 <= index < self._num_records:
      raise IndexError(f"record {index} out of range for split {self._split!r}")
    return {"tokens": self._dataset.record(_SPLITS[self._split], int(index))}

  def __repr__(self) -> str:  # the same for the same data: grain checks it on resume
    return f"ProgressionSource({self._dataset!r}, split={self._split!r})"


class NoisyProgressions:
  """Sequences x, x+s, x+2s, ... mod vocab_size with a random start x and step s in
  1..max_step; each token is replaced by a uniform one with probability `noise`.

  Contract (flopsfit.contracts.Dataset): `source(split)` for "train" and "eval", `unit` (what
  D counts) and `units_per_record` (how many of them one record holds).
  """

  unit = "tokens"

  def __init__(
    self,
    *,
    seq_len: int = 32,
    vocab_size: int = 32,
    max_step: int = 4,
    noise: float = 0.1,
    train_records: int = 1_000_000,
    eval_records: int = 4096,
    seed: int = 0,
  ):
    self.seq_len, self.vocab_size, self.max_step = seq_len, vocab_size, max_step
    self.noise, self.seed = noise, seed
    self._sizes = {"train": train_records, "eval": eval_records}

  @property
  def units_per_record(self) -> int:
    return self.seq_len

  def source(self, split: str) -> ProgressionSource:
    if split not in _SPLITS:
      raise ValueError(f"dataset split: expected 'train' or 'eval', got {split!r}")
    return ProgressionSource(self, split, self._sizes[split])

  def record(self, split_id: int, index: int) -> np.ndarray:
    """Record `index` of a split: a pure function of (seed, split, index)."""
    rng = np.random.default_rng([self.seed, split_id, index])
    start, step = rng.integers(self.vocab_size), rng.integers(1, self.max_step + 1)
    tokens = (start + step * np.arange(self.seq_len)) % self.vocab_size
    noisy = rng.random(self.seq_len) < self.noise
    tokens[noisy] = rng.integers(self.vocab_size, size=int(noisy.sum()))
    return tokens.astype(np.int32)

  def __repr__(self) -> str:
    return (
      f"NoisyProgressions(seq_len={self.seq_len}, vocab_size={self.vocab_size}, "
      f"max_step={self.max_step}, noise={self.noise}, seed={self.seed})"
    )
