"""Dataset plugin: procedurally generated 'blob' images, seed-deterministic, no files needed.

Each of `num_classes` classes is a fixed pattern of `blobs` Gaussian blobs, bright or dark, at
random places (drawn once from `seed`). An image is its class's pattern shifted by up to
`max_shift` pixels, scaled by a random contrast, with Gaussian pixel noise, mapped to [0, 1]:
a model must learn the patterns and that a shift does not change the class, so loss falls with
both model size and data. Every record is a pure function of (seed, split, index).
"""

import numpy as np

from flopsfit.data.images import units_per_image

TRAIN_RECORDS = 2**40  # effectively infinite: no image is ever repeated in a sweep
EVAL_RECORDS = 2**16
_SPLITS = {"train": 1, "eval": 2}


class BlobSource:
  """A grain random-access source of `{"image": float32 [S, S, 1], "label": int32 []}`."""

  def __init__(self, blobs: "BlobImages", split: str, num_records: int):
    self._blobs, self._split, self._num_records = blobs, split, num_records

  def __len__(self) -> int:
    return self._num_records

  def __getitem__(self, index: int) -> dict:
    if not 0 <= index < self._num_records:
      raise IndexError(f"record {index} out of range for split {self._split!r}")
    return self._blobs.record(_SPLITS[self._split], int(index))

  def __repr__(self) -> str:
    return f"BlobSource({self._blobs!r}, split={self._split!r})"


class BlobImages:
  """The procedural image set. D counts images, or patches of `patch_size` (`count`)."""

  def __init__(
    self,
    *,
    image_size: int = 28,
    num_classes: int = 10,
    blobs: int = 3,
    max_shift: int = 3,
    noise: float = 0.3,
    seed: int = 0,
    count: str = "images",
    patch_size: int = 7,
  ):
    if image_size < 4 or not 0 <= max_shift < image_size // 4:
      raise ValueError(
        f"dataset max_shift: expected 0 <= max_shift < image_size / 4 = {image_size // 4}, "
        f"got {max_shift} (image_size {image_size})"
      )
    if num_classes < 2 or blobs < 1 or noise < 0:
      raise ValueError(
        f"dataset num_classes, blobs, noise: expected >= 2, >= 1, >= 0; got {num_classes}, "
        f"{blobs}, {noise}"
      )
    self.image_size, self.num_classes, self.noise, self.max_shift = (
      image_size,
      num_classes,
      noise,
      max_shift,
    )
    self.image_shape = (image_size, image_size, 1)
    self.unit = count
    self._units = units_per_image(count, (image_size, image_size), patch_size)
    self._params = (image_size, num_classes, blobs, max_shift, noise, seed, count, patch_size)
    self.seed = seed
    rng = np.random.default_rng([seed, 0xB10B5])
    margin = max_shift + 1
    self._centre_KxBx2 = rng.uniform(margin, image_size - 1 - margin, (num_classes, blobs, 2))
    self._sigma_KxB = rng.uniform(0.06, 0.14, (num_classes, blobs)) * image_size
    self._sign_KxB = rng.choice([-1.0, 1.0], (num_classes, blobs))

  @property
  def units_per_record(self) -> int:
    return self._units

  def source(self, split: str) -> BlobSource:
    if split not in _SPLITS:
      raise ValueError(f"dataset split: expected 'train' or 'eval', got {split!r}")
    return BlobSource(self, split, TRAIN_RECORDS if split == "train" else EVAL_RECORDS)

  def record(self, split_id: int, index: int) -> dict:
    """Record `index` of a split: a pure function of (seed, split, index)."""
    rng = np.random.default_rng([self.seed, split_id, index])
    label = int(rng.integers(self.num_classes))
    shift_2 = rng.integers(-self.max_shift, self.max_shift + 1, 2)
    contrast = rng.uniform(0.5, 1.0)
    grid_S = np.arange(self.image_size, dtype=np.float64)
    centre_Bx2 = self._centre_KxBx2[label] + shift_2
    sigma_B = self._sigma_KxB[label][:, None]
    rows_BxS = np.exp(-0.5 * ((grid_S[None] - centre_Bx2[:, :1]) / sigma_B) ** 2)
    cols_BxS = np.exp(-0.5 * ((grid_S[None] - centre_Bx2[:, 1:]) / sigma_B) ** 2)
    pattern_SxS = np.einsum("b,bi,bj->ij", self._sign_KxB[label], rows_BxS, cols_BxS)
    pixels_SxS = contrast * pattern_SxS + self.noise * rng.standard_normal(pattern_SxS.shape)
    image = np.clip(0.5 + 0.5 * pixels_SxS, 0.0, 1.0).astype(np.float32)[..., None]
    return {"image": image, "label": np.asarray(label, np.int32)}

  def __repr__(self) -> str:
    return (
      "BlobImages(image_size={}, num_classes={}, blobs={}, max_shift={}, noise={}, seed={}, "
      "count={}, patch_size={})".format(*self._params)
    )
