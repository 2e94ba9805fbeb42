"""A synthetic 'Zipf-Markov' language: infinite, seed-deterministic, with an exact entropy floor.

Tokens follow an order-k Markov chain. Every token id gets a global Zipf weight (rank^-b over a
random permutation of the ids); every context (the previous k tokens) draws `successors`
distinct next tokens with those weights (Gumbel top-s), and gives them probabilities ∝ i^-a in
draw order. Common tokens thus appear in many contexts, so contexts are Zipf-frequent too: a
model learns frequent contexts from few tokens and rare ones only from many (data scaling), and
storing the whole table takes capacity (model scaling). Each record is an independent window
started from the chain's exact stationary distribution.
"""

import numpy as np

from flopsfit.data import seeded_uniforms

TRAIN_RECORDS = 2**40  # effectively infinite: no window is ever repeated in a sweep
EVAL_RECORDS = 2**20
_SPLITS = {"train": 0, "eval": 1}


class ZipfMarkovSource:
  """A grain random-access source of windows `{"tokens": int32[seq_len]}` for one split."""

  def __init__(self, language: "ZipfMarkovLanguage", split: str, num_records: int):
    self._language = language
    self._split = split
    self._split_id = _SPLITS[split]
    self._num_records = num_records

  def __len__(self) -> int:
    return self._num_records

  def __getitem__(self, index: int) -> dict:
    return self.__getitems__([int(index)])[0]

  def __getitems__(self, indices) -> list[dict]:
    """Records at `indices` (grain's batch-read protocol): their windows drawn together."""
    for index in indices:
      if not 0 <= index < self._num_records:
        raise IndexError(f"record {index} out of range for split {self._split!r}")
    return [{"tokens": row} for row in self._language.windows(self._split_id, indices)]

  def __repr__(self) -> str:
    return f"ZipfMarkovSource({self._language!r}, split={self._split!r})"


class ZipfMarkovLanguage:
  """Dataset plugin: the synthetic language. D counts tokens (`seq_len` per record)."""

  unit = "tokens"

  def __init__(
    self,
    *,
    seq_len: int = 64,
    vocab_size: int = 64,
    order: int = 2,
    successors: int = 8,
    zipf_tokens: float = 1.0,
    zipf_successors: float = 1.0,
    seed: int = 0,
  ):
    if successors > vocab_size:
      raise ValueError(f"dataset successors: {successors} exceeds vocab_size {vocab_size}")
    if seq_len < order + 1:
      raise ValueError(f"dataset seq_len: must exceed order {order}, got {seq_len}")
    self.seq_len, self.vocab_size, self.order = seq_len, vocab_size, order
    self.successors, self.seed = successors, seed
    self._params = (seq_len, vocab_size, order, successors, zipf_tokens, zipf_successors, seed)
    rng = np.random.default_rng([seed, 0xF10F5])
    weight_V = np.empty(vocab_size)
    weight_V[rng.permutation(vocab_size)] = np.arange(1, vocab_size + 1) ** -zipf_tokens
    n_contexts = vocab_size**order
    gumbel_CxV = np.log(weight_V)[None, :] + rng.gumbel(size=(n_contexts, vocab_size))
    self.next_CxS = np.argsort(-gumbel_CxV, axis=1)[:, :successors].astype(np.int64)
    prob_S = np.arange(1, successors + 1) ** -zipf_successors
    self.prob_S = prob_S / prob_S.sum()
    self._cdf = np.cumsum(self.prob_S)
    self._cdf[-1] = 1.0
    # Context c's successor of rank r is context ((c mod V^(k-1))·V + token); stored times S,
    # so a walk step is one add and one lookup: state' = table[state + rank], state = c·S.
    shifted_C = (np.arange(vocab_size**order) % vocab_size ** (order - 1)) * vocab_size
    self._step_table = ((shifted_C[:, None] + self.next_CxS) * successors).ravel()
    self.stationary_C = self._stationary()
    self._stationary_cdf = np.cumsum(self.stationary_C)

  @property
  def units_per_record(self) -> int:
    return self.seq_len

  def source(self, split: str) -> ZipfMarkovSource:
    if split not in _SPLITS:
      raise ValueError(f"dataset split: expected 'train' or 'eval', got {split!r}")
    return ZipfMarkovSource(self, split, TRAIN_RECORDS if split == "train" else EVAL_RECORDS)

  def __repr__(self) -> str:
    return (
      "ZipfMarkovLanguage(seq_len={}, vocab_size={}, order={}, successors={}, "
      "zipf_tokens={}, zipf_successors={}, seed={})".format(*self._params)
    )

  def _stationary(self) -> np.ndarray:
    """Stationary distribution over contexts, by power iteration on the context chain."""
    v, n_contexts = self.vocab_size, self.vocab_size**self.order
    shifted_C = (np.arange(n_contexts) % (v ** (self.order - 1))) * v  # drop oldest token
    target_CxS = shifted_C[:, None] + self.next_CxS
    pi_C = np.full(n_contexts, 1.0 / n_contexts)
    for _ in range(10_000):
      new_C = np.bincount(
        target_CxS.ravel(), weights=(pi_C[:, None] * self.prob_S).ravel(), minlength=n_contexts
      )
      done = np.abs(new_C - pi_C).sum() < 1e-13
      pi_C = new_C
      if done:
        break
    return pi_C / pi_C.sum()

  def windows(self, split_id: int, indices) -> np.ndarray:
    """Records `indices` of a split, int32[len(indices), seq_len]: row i is a pure function of
    (seed, split, indices[i]), the same whatever records it is drawn with."""
    # Row i: np.random.default_rng([seed, split_id, indices[i]]).random(seq_len), computed
    # for all rows at once (a generator per window cost more than the rest of the window).
    u_BxT = seeded_uniforms.uniforms((self.seed, split_id), indices, self.seq_len)
    v, k, s = self.vocab_size, self.order, self.successors
    context_B = np.searchsorted(self._stationary_cdf, u_BxT[:, 0], side="right")
    context_B = np.minimum(context_B, v**k - 1)
    rank_PxB = np.searchsorted(self._cdf, u_BxT[:, k:].T, side="right")  # successor ranks
    # Every context shares one successor CDF, so the ranks are drawn at once; only the
    # context walk is sequential, one step for all rows (this runs for every record read).
    state_TxB = np.empty((self.seq_len, len(indices)), np.int64)
    state_TxB[k - 1] = context_B * s
    for t in range(k, self.seq_len):
      state_TxB[t] = self._step_table[state_TxB[t - 1] + rank_PxB[t - k]]
    tokens_BxT = np.empty((len(indices), self.seq_len), np.int32)
    for j in range(k):  # the start context's own tokens, oldest first
      tokens_BxT[:, j] = (context_B // v ** (k - 1 - j)) % v
    tokens_BxT[:, k:] = (state_TxB[k:] // s % v).T  # each step's newest token
    return tokens_BxT

  # --- exact information-theoretic quantities -------------------------------------------

  @property
  def entropy_rate(self) -> float:
    """h = Σ_c π(c)·H(next | c) in nats: the loss of the true model given full context."""
    per_context = -np.sum(self.prob_S * np.log(self.prob_S))  # same for every context
    return float(per_context)

  def conditional_entropies(self) -> list[float]:
    """[H(x_0), H(x_1 | x_0), ..., H(x_{k-1} | x_<k-1)] under the stationary law (nats)."""
    v, k = self.vocab_size, self.order
    joint = self.stationary_C.reshape((v,) * k)
    out = []
    for j in range(1, k + 1):
      marg_j = joint.sum(axis=tuple(range(j, k))) if j < k else joint
      marg_prev = marg_j.sum(axis=-1)
      out.append(_entropy(marg_j) - _entropy(marg_prev))
    return out

  @property
  def loss_floor(self) -> float:
    """The lowest mean next-token loss any model can reach on a `seq_len` window.

    A window has seq_len - 1 predictions; the first `order - 1` see a truncated context.
    """
    first = self.conditional_entropies()[1:]
    n_pred = self.seq_len - 1
    return float((sum(first) + (n_pred - len(first)) * self.entropy_rate) / n_pred)

  def log_prob(self, tokens_BxT: np.ndarray) -> np.ndarray:
    """Exact log P(x_j | x_<j) of the true model for positions 1..T-1 (the loss's targets)."""
    v, k = self.vocab_size, self.order
    tokens_BxT = np.asarray(tokens_BxT, dtype=np.int64)
    b, t = tokens_BxT.shape
    out_BxP = np.empty((b, t - 1))
    joint = self.stationary_C.reshape((v,) * k)
    for j in range(1, min(k, t)):  # truncated contexts: marginals of the stationary law
      marg = joint.sum(axis=tuple(range(j + 1, k))) if j + 1 < k else joint
      idx = tuple(tokens_BxT[:, i] for i in range(j + 1))
      out_BxP[:, j - 1] = np.log(marg[idx]) - np.log(marg.sum(axis=-1)[idx[:-1]])
    prob_table = np.zeros((v**k, v))
    np.put_along_axis(prob_table, self.next_CxS, self.prob_S[None, :].repeat(v**k, 0), axis=1)
    for pos in range(k, t):
      context = np.zeros(b, dtype=np.int64)
      for i in range(pos - k, pos):
        context = context * v + tokens_BxT[:, i]
      out_BxP[:, pos - 1] = np.log(prob_table[context, tokens_BxT[:, pos]])
    return out_BxP


def _entropy(p: np.ndarray) -> float:
  p = p[p > 0]
  return float(-np.sum(p * np.log(p)))


def make(**kwargs) -> ZipfMarkovLanguage:
  return ZipfMarkovLanguage(**kwargs)
