"""Dataset plugin: local UTF-8 text files as byte-level tokens (vocabulary 256)."""

import glob
import hashlib
import os

import numpy as np


class TokenWindowSource:
  """Non-overlapping `seq_len`-token windows of one token stream, as grain records."""

  def __init__(self, tokens: np.ndarray, seq_len: int, name: str):
    self._tokens, self._seq_len, self._name = tokens, seq_len, name

  def __len__(self) -> int:
    return len(self._tokens) // self._seq_len

  def __getitem__(self, index: int) -> dict:
    if not 0 <= index < len(self):
      raise IndexError(f"record {index} out of range ({len(self)} records in {self._name})")
    start = int(index) * self._seq_len
    return {"tokens": self._tokens[start : start + self._seq_len].astype(np.int32)}

  def __repr__(self) -> str:
    return f"TokenWindowSource({self._name}, seq_len={self._seq_len})"


class TextFiles:
  """Every `eval_every`-th chunk of `chunk_bytes` bytes is held out for eval; D counts bytes.

  `prepare`: the command that makes the files, named in the error when none exists.
  """

  unit = "tokens"
  vocab_size = 256

  def __init__(
    self,
    *,
    paths,
    seq_len: int = 128,
    chunk_bytes: int = 8192,
    eval_every: int = 20,
    prepare: str = "",
  ):
    patterns = [paths] if isinstance(paths, str) else list(paths)
    files = sorted({f for p in patterns for f in glob.glob(os.path.expanduser(p))})
    if not files:
      make = f"; make it with: {prepare}" if prepare else ""
      raise ValueError(f"dataset paths: no file matches {', '.join(patterns)}{make}")
    blobs = []
    for f in files:
      with open(f, "rb") as fh:
        data = fh.read()
      try:
        data.decode("utf-8")
      except UnicodeDecodeError as e:
        raise ValueError(
          f"dataset paths: {f} is not UTF-8 text ({e.reason} at byte {e.start})"
        ) from None
      blobs.append(data)
    stream = np.frombuffer(b"\n".join(blobs), dtype=np.uint8)
    n_chunks = -(-len(stream) // chunk_bytes)
    is_eval = (np.arange(n_chunks) % eval_every) == eval_every - 1
    chunks = [stream[i * chunk_bytes : (i + 1) * chunk_bytes] for i in range(n_chunks)]
    self._splits = {
      "train": np.concatenate([c for c, e in zip(chunks, is_eval) if not e] or [stream[:0]]),
      "eval": np.concatenate([c for c, e in zip(chunks, is_eval) if e] or [stream[:0]]),
    }
    for split, tokens in self._splits.items():
      if len(tokens) < seq_len:
        raise ValueError(
          f"dataset paths: {len(stream)} bytes leave fewer than seq_len={seq_len} "
          f"bytes for the {split} split; give more text or a smaller seq_len"
        )
    self.seq_len = seq_len
    self._digest = hashlib.sha256(stream.tobytes()).hexdigest()[:12]
    self._files = files

  @property
  def units_per_record(self) -> int:
    return self.seq_len

  def source(self, split: str) -> TokenWindowSource:
    if split not in self._splits:
      raise ValueError(f"dataset split: expected 'train' or 'eval', got {split!r}")
    return TokenWindowSource(self._splits[split], self.seq_len, f"{split}@{self._digest}")

  def __repr__(self) -> str:
    return f"TextFiles({len(self._files)} files, sha256={self._digest}, seq_len={self.seq_len})"
