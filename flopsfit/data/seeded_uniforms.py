"""numpy's `default_rng([*prefix, key]).random(n)` for many keys at once, bit for bit.

The synthetic language draws each window from its own generator, seeded by (seed, split,
record index), so a window is a pure function of its index. Building one `Generator` per window
(a `SeedSequence` hash, then `PCG64`) cost ~13 µs, more than the rest of the window; here the
same numbers come from array operations over all the keys:

1. numpy's `SeedSequence` (O'Neill's seed_seq: hash the entropy words into a pool of four,
   mix every pool word into every other, then hash the pool into eight state words) is done
   for every key at once: its hash constants do not depend on the data.
2. `PCG64` seeds a 128-bit LCG state s and increment c from those words; draw t (t = 1..n)
   outputs its state t steps after seeding, M^(t+1)·x + C_(t+1)·c, with x = init + c and
   C_t = 1 + M + ... + M^(t-1) (mod 2^128). With 16-bit limbs every partial product is below
   2^48 and every column sum below 2^53, so one float64 matmul of the keys' limbs by a
   precomputed table gives all n states' 32-bit columns exactly; carries follow.
3. Each state gives PCG64's XSL-RR output (high ^ low 64 bits, rotated by the top 6 bits), and
   `random()`'s double: (output >> 11) · 2^-53.

tests/test_synthetic.py checks equality with numpy's own generators.
"""

import functools

import numpy as np

_MASK32 = 0xFFFFFFFF
# numpy's SeedSequence constants (bit_generator.pyx) and PCG64's 128-bit LCG multiplier.
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_MULT_L, _MIX_MULT_R = 0xCA01F9DD, 0x4973F715
_POOL_SIZE = 4
_PCG_MULTIPLIER = (2549297995355413924 << 64) + 4865540595714422341
_FEW_KEYS = 32


def uniforms(prefix: tuple[int, ...], keys, n: int) -> np.ndarray:
  """float64[len(keys), n]: row i equals `np.random.default_rng([*prefix, keys[i]]).random(n)`.

  `prefix` holds non-negative ints, `keys` non-negative integers below 2^64.
  """
  keys = np.asarray(keys, np.uint64).reshape(-1)
  if len(keys) < _FEW_KEYS:  # the array path's fixed cost (~0.2 ms) exceeds a few generators'
    return np.array([np.random.default_rng([*prefix, int(k)]).random(n) for k in keys]).reshape(
      len(keys), n
    )
  out = np.empty((len(keys), n))
  wide = keys > np.uint64(_MASK32)  # a key of 2^32 or more is two entropy words
  prefix_words = [w for value in prefix for w in _words(int(value))]
  for two_words in (False, True):
    rows = np.flatnonzero(wide == two_words)
    if len(rows):
      key = keys[rows]
      key_words = [key & np.uint64(_MASK32)] + ([key >> np.uint64(32)] if two_words else [])
      entropy = [np.full(len(rows), w, np.uint32) for w in prefix_words]
      entropy += [w.astype(np.uint32) for w in key_words]
      out[rows] = _pcg64_doubles(_seed_sequence_state(entropy), n)
  return out


def _words(value: int) -> list[int]:
  """An int as numpy's SeedSequence reads it: 32-bit words, least significant first."""
  if value < 0:
    raise ValueError(f"seed entropy must be non-negative, got {value}")
  words = [value & _MASK32]
  while value > _MASK32:
    value >>= 32
    words.append(value & _MASK32)
  return words


def _seed_sequence_state(entropy: list[np.ndarray]) -> np.ndarray:
  """uint32[8, rows]: `SeedSequence(words).generate_state(4, np.uint64)` as 32-bit words, for
  rows of entropy words (entropy[j] holds word j of every row)."""
  rows = len(entropy[0])
  hash_const = _INIT_A

  def hashmix(value):
    nonlocal hash_const
    value = value ^ np.uint32(hash_const)
    hash_const = (hash_const * _MULT_A) & _MASK32
    value = value * np.uint32(hash_const)
    return value ^ (value >> np.uint32(16))

  def mix(x, y):
    result = np.uint32(_MIX_MULT_L) * x - np.uint32(_MIX_MULT_R) * y
    return result ^ (result >> np.uint32(16))

  zeros = np.zeros(rows, np.uint32)
  pool = [hashmix(entropy[i] if i < len(entropy) else zeros) for i in range(_POOL_SIZE)]
  for src in range(_POOL_SIZE):
    for dst in range(_POOL_SIZE):
      if src != dst:
        pool[dst] = mix(pool[dst], hashmix(pool[src]))
  for src in range(_POOL_SIZE, len(entropy)):
    for dst in range(_POOL_SIZE):
      pool[dst] = mix(pool[dst], hashmix(entropy[src]))
  constants = [_INIT_B]
  for _ in range(7):
    constants.append((constants[-1] * _MULT_B) & _MASK32)
  xor = np.array(constants, np.uint32)[:, None]
  times = np.array([(c * _MULT_B) & _MASK32 for c in constants], np.uint32)[:, None]
  state = (np.stack(pool * 2) ^ xor) * times
  return state ^ (state >> np.uint32(16))


@functools.lru_cache(maxsize=8)
def _jump_table(n: int) -> np.ndarray:
  """float64[4·n, 16]: row (j, t) maps the 16-bit limbs of x (columns 0-7) and c (8-15) to
  32-bit column j of M^(t+2)·x + C_(t+2)·c, carries not yet propagated (draw t + 1)."""
  table = np.zeros((4, n, 16))
  power, total = 1, 0  # M^t, C_t
  for t in range(n + 1):
    total = (total + power) % 2**128
    power = power * _PCG_MULTIPLIER % 2**128
    if t == 0:
      continue
    for column, factor in ((0, power), (8, total)):
      limbs = [(factor >> (16 * j)) & 0xFFFF for j in range(8)]
      for i in range(8):
        for k in range(i, 8):
          table[k // 2, t - 1, column + i] += limbs[k - i] * (65536 if k % 2 else 1)
  return table.reshape(4 * n, 16)


def _pcg64_doubles(words: np.ndarray, n: int) -> np.ndarray:
  """float64[rows, n]: `Generator(PCG64(...)).random(n)` from each row's 8 seed words."""
  words = words.astype(np.uint64)
  mask, one = np.uint64(_MASK32), np.uint64(1)
  # PCG64 reads the words as uint64s (init high, init low, seq high, seq low); 32-bit limbs,
  # least significant first:
  init = [words[2], words[3], words[0], words[1]]
  seq = [words[6], words[7], words[4], words[5]]
  inc = [((seq[0] << one) | one) & mask]  # c = 2·seq + 1
  inc += [((seq[i] << one) | (seq[i - 1] >> np.uint64(31))) & mask for i in range(1, 4)]
  x, carry = [], np.uint64(0)
  for i in range(4):  # x = init + c
    total = init[i] + inc[i] + carry
    x.append(total & mask)
    carry = total >> np.uint64(32)
  limbs32 = np.stack(x + inc)
  limbs16 = np.empty((16, limbs32.shape[1]))
  limbs16[0::2] = limbs32 & np.uint64(0xFFFF)
  limbs16[1::2] = limbs32 >> np.uint64(16)
  columns = (_jump_table(n) @ limbs16).astype(np.uint64).reshape(4, n, -1)
  state, carry = [], np.uint64(0)
  for j in range(4):
    total = columns[j] + carry
    state.append(total & mask)
    carry = total >> np.uint64(32)
  folded = (state[0] ^ state[2]) | ((state[1] ^ state[3]) << np.uint64(32))
  rotate = state[3] >> np.uint64(26)
  output = (folded >> rotate) | (folded << ((np.uint64(64) - rotate) & np.uint64(63)))
  return ((output >> np.uint64(11)).astype(np.float64) * 2.0**-53).T
