"""What the image datasets share: a grain source over image and label arrays, and what one
image counts as in D (one image, or its patches)."""

import numpy as np

COUNTS = ("images", "patches")


def units_per_image(count: str, image_hw: tuple[int, int], patch_size: int) -> int:
  """1 when D counts images; (H / p)·(W / p) when it counts the model's patches."""
  if count not in COUNTS:
    raise ValueError(f"dataset count: expected 'images' or 'patches', got {count!r}")
  if count == "images":
    return 1
  h, w = image_hw
  if patch_size < 1 or h % patch_size or w % patch_size:
    raise ValueError(
      f"dataset patch_size: {patch_size} does not divide the {h}x{w} images into patches"
    )
  return (h // patch_size) * (w // patch_size)


class ImageSource:
  """Records `{"image": float32 [H, W, C] in [0, 1], "label": int32 []}` of uint8 arrays."""

  def __init__(self, images_NxHxWxC: np.ndarray, labels_N: np.ndarray, name: str):
    self._images, self._labels, self._name = images_NxHxWxC, labels_N, name

  def __len__(self) -> int:
    return len(self._labels)

  def __getitem__(self, index: int) -> dict:
    if not 0 <= index < len(self):
      raise IndexError(f"record {index} out of range ({len(self)} records in {self._name})")
    image = self._images[int(index)].astype(np.float32) * np.float32(1 / 255)
    return {"image": image, "label": np.asarray(self._labels[int(index)], np.int32)}

  def __repr__(self) -> str:
    return f"ImageSource({self._name})"
