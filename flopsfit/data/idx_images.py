"""Dataset plugin: an image classification set in MNIST's IDX format, e.g. Fashion-MNIST.

A directory holds `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`
and `t10k-labels-idx1-ubyte` (each plain or `.gz`); the t10k files are the eval split. The
default is where Debian's `dataset-fashion-mnist` package installs Fashion-MNIST.
"""

import hashlib

import numpy as np

from flopsfit.data import idx
from flopsfit.data.images import ImageSource, units_per_image

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "eval": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}  # fmt: skip


def _split(directory: str, split: str) -> tuple[np.ndarray, np.ndarray]:
  image_path, label_path = (idx.find(directory, stem) for stem in _FILES[split])
  images, labels = idx.read_idx(image_path), idx.read_idx(label_path)
  if images.dtype != np.uint8 or images.ndim not in (3, 4):
    raise idx.IdxError(
      f"{image_path}: expected uint8 images [N, H, W] or [N, H, W, C], got {images.dtype} "
      f"{list(images.shape)}"
    )
  if labels.ndim != 1 or len(labels) != len(images):
    raise idx.IdxError(
      f"{label_path}: expected {len(images)} labels (one per image of {image_path}), got "
      f"shape {list(labels.shape)}"
    )
  return (images[..., None] if images.ndim == 3 else images), labels.astype(np.int32)


class IdxImages:
  """Images and labels from IDX files. D counts images, or patches of `patch_size` (`count`)."""

  def __init__(self, *, directory: str = FASHION_MNIST, count: str = "images", patch_size: int = 7):
    self._data = {split: _split(directory, split) for split in _FILES}
    train_images, train_labels = self._data["train"]
    if self._data["eval"][0].shape[1:] != train_images.shape[1:]:
      raise idx.IdxError(
        f"{directory}: eval images {list(self._data['eval'][0].shape[1:])} differ in shape "
        f"from train images {list(train_images.shape[1:])}"
      )
    self.image_shape = train_images.shape[1:]
    self.num_classes = int(max(train_labels.max(), self._data["eval"][1].max())) + 1
    self.unit = count
    self._units = units_per_image(count, self.image_shape[:2], patch_size)
    digest = hashlib.sha256()
    for images, labels in self._data.values():
      digest.update(images.tobytes())
      digest.update(labels.tobytes())
    self._digest = digest.hexdigest()[:12]

  @property
  def units_per_record(self) -> int:
    return self._units

  def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
    """`(images uint8 [N, H, W, C], labels int32 [N])` of a split."""
    if split not in self._data:
      raise ValueError(f"dataset split: expected 'train' or 'eval', got {split!r}")
    return self._data[split]

  def source(self, split: str) -> ImageSource:
    images, labels = self.arrays(split)
    return ImageSource(images, labels, f"{split}@{self._digest}")

  def __repr__(self) -> str:
    return f"IdxImages(sha256={self._digest}, unit={self.unit})"
