"""The IDX reader on the real Fashion-MNIST files and on broken ones."""

import gzip
import os

import numpy as np
import pytest

from flopsfit import plugins
from flopsfit.data import idx
from flopsfit.data.idx_images import FASHION_MNIST, IdxImages

needs_fashion_mnist = pytest.mark.skipif(
  not os.path.isdir(FASHION_MNIST),
  reason=f"{FASHION_MNIST} absent: install Debian's dataset-fashion-mnist (.ci/run does)",
)


def write_idx(path, array: np.ndarray, compress: bool = False) -> str:
  codes = {np.dtype("uint8"): 0x08, np.dtype("int32"): 0x0C}
  header = bytes([0, 0, codes[array.dtype], array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
  data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
  with open(path, "wb") as fh:
    fh.write(gzip.compress(data) if compress else data)
  return str(path)


def write_set(directory, n_train=6, n_eval=4, size=5) -> None:
  rng = np.random.default_rng(0)
  for prefix, n in (("train", n_train), ("t10k", n_eval)):
    write_idx(
      directory / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, size, size), np.uint8)
    )
    write_idx(directory / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n, dtype=np.uint8) % 3, True)


@needs_fashion_mnist
def test_reads_the_real_fashion_mnist():
  data = IdxImages()
  train_images, train_labels = data.arrays("train")
  eval_images, eval_labels = data.arrays("eval")
  assert train_images.shape == (60000, 28, 28, 1) and eval_images.shape == (10000, 28, 28, 1)
  assert np.bincount(train_labels).tolist() == [6000] * 10
  assert np.bincount(eval_labels).tolist() == [1000] * 10
  assert train_labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
  assert eval_labels[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
  # Pixel sums of the files as released (computed once from Debian's package).
  assert int(train_images.sum(dtype=np.int64)) == 3_431_114_169
  assert int(eval_images.sum(dtype=np.int64)) == 573_469_082
  assert int(train_images[0].sum()) == 76_247 and int(eval_images[-1].sum()) == 24_390
  assert int(train_images[:, 14, 14].sum(dtype=np.int64)) == 8_349_612
  record = data.source("eval")[0]
  assert record["image"].dtype == np.float32 and record["image"].shape == (28, 28, 1)
  assert record["image"].max() <= 1.0 and int(record["label"]) == 9
  assert data.units_per_record == 1 and data.unit == "images" and data.num_classes == 10


def test_reads_any_directory_plain_or_gzip_and_counts_patches(tmp_path):
  write_set(tmp_path, size=4)
  data = IdxImages(directory=str(tmp_path), count="patches", patch_size=2)
  assert data.units_per_record == 4 and data.unit == "patches" and data.num_classes == 3
  assert len(data.source("train")) == 6 and len(data.source("eval")) == 4
  assert repr(data.source("train")) == repr(IdxImages(directory=str(tmp_path)).source("train"))
  with pytest.raises(ValueError, match="dataset patch_size: 3 does not divide the 4x4 images"):
    IdxImages(directory=str(tmp_path), count="patches", patch_size=3)


@pytest.mark.parametrize(
  "damage, message",
  [
    (lambda raw: b"\x08\x03" + raw[2:], "not an IDX file"),  # wrong magic
    (lambda raw: raw[:-7], "truncated: shape \\(6, 5, 5\\) needs 150 data bytes, the file has 143"),
    (lambda raw: raw[:9], "truncated IDX header"),
    (lambda raw: gzip.compress(raw)[:-9], "corrupt or truncated gzip"),
  ],
)
def test_a_bad_file_is_one_line_naming_it(tmp_path, damage, message):
  write_set(tmp_path)
  path = tmp_path / "train-images-idx3-ubyte"
  path.write_bytes(damage(path.read_bytes()))
  with pytest.raises(idx.IdxError, match=message) as error:
    IdxImages(directory=str(tmp_path))
  assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


def test_missing_files_and_mismatched_labels_are_named(tmp_path):
  write_set(tmp_path)
  write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(3, np.uint8), True)
  with pytest.raises(idx.IdxError, match="t10k-labels-idx1-ubyte.gz: expected 4 labels"):
    IdxImages(directory=str(tmp_path))
  os.remove(tmp_path / "t10k-labels-idx1-ubyte.gz")
  with pytest.raises(plugins.PluginError) as error:
    config = {
      "factory": "flopsfit.data.idx_images:IdxImages",
      "kwargs": {"directory": str(tmp_path)},
    }
    plugins.call("dataset", config["factory"], IdxImages, config["kwargs"])
  assert "config.dataset.factory" in str(error.value)
  assert f"{tmp_path}/t10k-labels-idx1-ubyte[.gz]: no such file" in str(error.value)
