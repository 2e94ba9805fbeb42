"""Looking into saved PNGs and into the artists of a figure."""

import struct

import numpy as np
from matplotlib import colors as mcolors


def png_size(path: str) -> tuple[int, int]:
  """(width, height) from a PNG's IHDR chunk; fails unless the file is a PNG."""
  with open(path, "rb") as f:
    head = f.read(24)
  assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
  assert head[12:16] == b"IHDR", f"{path} has no IHDR chunk first"
  return struct.unpack(">II", head[16:24])


def artists(fig, prefix: str) -> dict[str, object]:
  """gid -> artist, over every axes' lines and collections, for gids starting with prefix."""
  found = {}
  for ax in fig.axes:
    for a in list(ax.lines) + list(ax.collections):
      g = a.get_gid()
      if g and (g == prefix or g.startswith(prefix + ":")):
        found[g] = a
  return found


def one(fig, gid: str, axes_index: int | None = None):
  """The artist with this gid (in one axes if given); fails unless there is exactly one."""
  axes = fig.axes if axes_index is None else [fig.axes[axes_index]]
  hits = [a for ax in axes for a in list(ax.lines) + list(ax.collections) if a.get_gid() == gid]
  assert len(hits) == 1, f"{len(hits)} artists with gid {gid!r}"
  return hits[0]


def xy(line) -> tuple[np.ndarray, np.ndarray]:
  return np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)


def rgba(color) -> tuple:
  return tuple(np.round(mcolors.to_rgba(color), 6))


def legend_text(ax) -> str:
  legends = [ax.get_legend()] + [lg for lg in ax.figure.legends]
  return "\n".join(t.get_text() for lg in legends if lg for t in lg.get_texts())
