"""TFDS datasets prepared in a local data dir, read by random access without TensorFlow.

The data dir is prepared here, offline, by a small builder over local arrays and text, in the
array_record format that `tfds build --file_format=array_record` writes.
"""

import sys

import numpy as np
import pytest

from flopsfit.data import pipeline
from flopsfit.data.tfds_data import TFDSImages, TFDSText
from flopsfit.engine import run as run_lib

tfds = pytest.importorskip("tensorflow_datasets")
PIL_Image = pytest.importorskip("PIL.Image")

TEXT = "And God said, Let there be light: and there was light. " * 3


def _images(n: int, seed: int) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, 256, (n, 6, 6), dtype=np.uint8)


class LocalCorpus(tfds.core.GeneratorBasedBuilder):
  """6×6 grey images with labels 0-2 and a line of text per example (train 30, test 12)."""

  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    features = {
      "image": tfds.features.Image(shape=(6, 6, 1)),
      "label": tfds.features.ClassLabel(num_classes=3),
      "text": tfds.features.Text(),
    }
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features))

  def _split_generators(self, dl_manager):
    return {"train": self._generate_examples(30, 0), "test": self._generate_examples(12, 1)}

  def _generate_examples(self, n, seed):
    for i, pixels in enumerate(_images(n, seed)):  # PIL images: encoded without TensorFlow
      yield i, {"image": PIL_Image.fromarray(pixels), "label": i % 3, "text": f"{i}: {TEXT}"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("tfds"))
  LocalCorpus(data_dir=path, file_format="array_record").download_and_prepare()
  return path


def test_images_are_read_by_index_without_tensorflow(data_dir):
  data = TFDSImages(name="local_corpus", data_dir=data_dir)
  train, eval_ = data.source("train"), data.source("eval")
  assert (len(train), len(eval_)) == (30, 12)
  assert (data.unit, data.units_per_record, data.num_classes) == ("images", 1, 3)
  record = train[7]
  assert record["image"].shape == (6, 6, 1) and record["image"].dtype == np.float32
  # The examples are stored shuffled: find record 7 among the images written.
  written = _images(30, 0).astype(np.float32)[..., None] / 255
  match = [i for i in range(30) if np.allclose(written[i], record["image"])]
  assert len(match) == 1 and record["label"] == match[0] % 3 and record["label"].dtype == np.int32
  assert repr(train) == repr(TFDSImages(name="local_corpus", data_dir=data_dir).source("train"))
  assert "tensorflow" not in sys.modules


def test_grain_shuffles_and_resumes_the_source(data_dir):
  source = TFDSImages(name="local_corpus", data_dir=data_dir).source("train")
  batches = pipeline.train_dataset(source, batch_size=8, seed=3)
  labels = [batches[s]["label"].tolist() for s in range(6)]
  resumed = pipeline.train_iterator(source, batch_size=8, seed=3, start_step=4)
  assert [next(resumed)["label"].tolist() for _ in range(2)] == labels[4:]
  first_epoch = np.concatenate([batches[s]["image"] for s in range(3)])[:24]
  assert len({x.tobytes() for x in first_epoch}) == 24  # no example twice within an epoch


def test_text_trains_a_gpt(data_dir, gpt_config):
  data = TFDSText(name="local_corpus", data_dir=data_dir, seq_len=32)
  window = bytes(data.source("train")[0]["tokens"].astype(np.uint8)).decode()
  assert TEXT[:20] in window + window  # windows are slices of the examples' text
  gpt_config.dataset.factory = "flopsfit.data.tfds_data:TFDSText"
  gpt_config.dataset.kwargs = {"name": "local_corpus", "data_dir": data_dir, "seq_len": 32}
  gpt_config.vocab_size = 256
  gpt_config.eval.tokens = 512
  gpt_config.eval.batch_size = 16
  result = run_lib.train_run(gpt_config)
  assert result["status"] == "completed" and result["unit"] == "tokens"
  assert result["final_eval_loss"] < np.log(256) - 1.0  # repeated text is learned quickly


def test_missing_or_wrong_data_is_one_line(data_dir, tmp_path):
  with pytest.raises(ValueError, match="tfds build local_corpus --file_format=array_record"):
    TFDSImages(name="local_corpus", data_dir=str(tmp_path / "empty"))
  with pytest.raises(ValueError, match=r"dataset splits: eval='validation' is not a split"):
    TFDSImages(
      name="local_corpus", data_dir=data_dir, splits={"train": "train", "eval": "validation"}
    )
  with pytest.raises(
    ValueError, match="dataset text_key: local_corpus/1.0.0 has no feature 'body'"
  ):
    TFDSText(name="local_corpus", data_dir=data_dir, text_key="body")
