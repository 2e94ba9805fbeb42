"""The procedural image set: deterministic records, a deterministic repr, learnable classes."""

import numpy as np
import pytest

from flopsfit.data.blobs import BlobImages


def test_records_are_a_function_of_seed_split_and_index():
  data, again = BlobImages(image_size=16), BlobImages(image_size=16)
  train, eval_ = data.source("train"), data.source("eval")
  for index in (0, 7, 2**39):
    a, b = train[index], again.source("train")[index]
    assert np.array_equal(a["image"], b["image"]) and a["label"] == b["label"]
  assert not np.array_equal(train[0]["image"], eval_[0]["image"])
  assert not np.array_equal(
    train[0]["image"], BlobImages(image_size=16, seed=1).source("train")[0]["image"]
  )
  assert (
    repr(train)
    == repr(again.source("train"))
    != repr(BlobImages(image_size=16, seed=1).source("train"))
  )
  record = train[3]
  assert record["image"].shape == (16, 16, 1) and record["image"].dtype == np.float32
  assert 0.0 <= record["image"].min() and record["image"].max() <= 1.0
  assert record["label"].dtype == np.int32 and record["label"].shape == ()


def test_classes_are_balanced_and_separable_by_their_mean_image():
  data = BlobImages(image_size=16, num_classes=4)
  train = [data.source("train")[i] for i in range(800)]
  labels = np.array([r["label"] for r in train])
  assert np.bincount(labels, minlength=4).min() > 150
  images = np.stack([r["image"].ravel() for r in train])
  means = np.stack([images[labels == k].mean(0) for k in range(4)])
  held_out = [data.source("eval")[i] for i in range(200)]
  guess = [np.argmin(((means - r["image"].ravel()) ** 2).sum(1)) for r in held_out]
  accuracy = np.mean(np.array(guess) == [r["label"] for r in held_out])
  assert 0.5 < accuracy < 1.0  # structure to learn, and not trivially


def test_units_and_bad_arguments():
  assert BlobImages(count="patches", patch_size=7).units_per_record == 16
  assert BlobImages().units_per_record == 1 and BlobImages().unit == "images"
  with pytest.raises(ValueError, match="dataset count: expected 'images' or 'patches'"):
    BlobImages(count="pixels")
  with pytest.raises(ValueError, match="dataset max_shift"):
    BlobImages(image_size=8, max_shift=2)
