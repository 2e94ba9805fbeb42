"""Reads the IDX format of MNIST and Fashion-MNIST (plain or gzip-compressed) into numpy."""

import gzip
import os

import numpy as np

# The third byte of the magic number: the element type, stored big-endian.
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class IdxError(ValueError):
  """An IDX file is missing, corrupt or not of the expected shape; the message names it."""


def _read_bytes(path: str) -> bytes:
  try:
    with open(path, "rb") as fh:
      raw = fh.read()
  except OSError as e:
    raise IdxError(f"{path}: cannot read ({e.strerror or e})") from None
  if raw[:2] != b"\x1f\x8b":
    return raw
  try:
    return gzip.decompress(raw)
  except (OSError, EOFError) as e:
    raise IdxError(f"{path}: corrupt or truncated gzip data ({e})") from None


def read_idx(path: str) -> np.ndarray:
  """The array stored in an IDX file, in native byte order; IdxError names the file otherwise."""
  data = _read_bytes(path)
  if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] not in _DTYPES or data[3] == 0:
    raise IdxError(
      f"{path}: not an IDX file (magic {data[:4].hex() or 'missing'}; expected 0000, a type "
      "byte 08/09/0b/0c/0d/0e and a dimension count)"
    )
  dtype, ndim = np.dtype(_DTYPES[data[2]]), data[3]
  header = 4 + 4 * ndim
  if len(data) < header:
    raise IdxError(f"{path}: truncated IDX header ({len(data)} bytes, need {header})")
  shape = tuple(int(n) for n in np.frombuffer(data, ">u4", count=ndim, offset=4))
  expected = int(np.prod(shape)) * dtype.itemsize
  if len(data) - header != expected:
    raise IdxError(
      f"{path}: {'truncated' if len(data) - header < expected else 'trailing bytes'}: shape "
      f"{shape} needs {expected} data bytes, the file has {len(data) - header}"
    )
  return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def find(directory: str, stem: str) -> str:
  """`<directory>/<stem>` or `<stem>.gz`, whichever exists; IdxError names both otherwise."""
  for name in (stem, stem + ".gz"):
    path = os.path.join(directory, name)
    if os.path.isfile(path):
      return path
  raise IdxError(f"{os.path.join(directory, stem)}[.gz]: no such file")
