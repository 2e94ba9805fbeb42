"""Dataset plugins over TensorFlow Datasets prepared in a local data dir, read without TensorFlow.

`tfds.data_source` reads a split prepared in the `array_record` file format by random access,
so grain shuffles, batches and resumes it like any other source. Nothing is downloaded: the
dataset is prepared once on a machine with network (`tfds build <name> --file_format=array_record
--data_dir=<dir>`) and `<dir>` is copied here (docs/plugins.md, "TFDS datasets").

- `TFDSImages`: records `{"image": float32 [H, W, C] in [0, 1], "label": int32 []}`; D counts
  images.
- `TFDSText`: a text feature of every example, UTF-8 bytes joined by newlines, cut into
  non-overlapping `seq_len`-byte windows `{"tokens": int32 [seq_len]}` (vocabulary 256); D
  counts bytes. The split's text is read into memory once.
"""

import os

import numpy as np

from flopsfit.data.text_files import TokenWindowSource

_SPLITS = ("train", "eval")


def _prepare_command(name: str, data_dir: str) -> str:
  return f"tfds build {name} --file_format=array_record --data_dir={data_dir}"


def load_splits(name: str, data_dir: str, splits: dict) -> tuple[object, dict]:
  """`(dataset info, {"train": source, "eval": source})` of a dataset prepared in `data_dir`,
  with one-line errors naming the dataset kwargs and how to prepare the data."""
  import tensorflow_datasets as tfds  # only configs that use TFDS pay for the import

  data_dir = os.path.expanduser(data_dir)
  if set(splits) != set(_SPLITS):
    raise ValueError(f"dataset splits: expected keys {list(_SPLITS)}, got {sorted(splits)}")
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except Exception as e:
    raise ValueError(
      f"dataset name: no prepared dataset {name!r} in {data_dir} ({type(e).__name__}); "
      f"prepare it on a machine with network: {_prepare_command(name, data_dir)}"
    ) from None
  if not os.path.exists(os.path.join(os.fspath(builder.data_path), "dataset_info.json")):
    raise ValueError(
      f"dataset data_dir: {name!r} is not prepared in {data_dir}; prepare it on a machine with "
      f"network and copy the data dir here: {_prepare_command(name, data_dir)}"
    )
  sources = {}
  for split, tfds_split in splits.items():
    try:
      sources[split] = builder.as_data_source(split=tfds_split)
    except NotImplementedError:  # prepared as tfrecord: sequential reads only
      raise ValueError(
        f"dataset data_dir: {builder.info.full_name} in {data_dir} is prepared as "
        f"{builder.info.file_format.value}, random access needs array_record: "
        f"{_prepare_command(name, data_dir)}"
      ) from None
    except Exception as e:
      raise ValueError(
        f"dataset splits: {split}={tfds_split!r} is not a split of "
        f"{builder.info.full_name} ({type(e).__name__}: {str(e).splitlines()[0]})"
      ) from None
  return builder.info, sources


def _feature(info, key: str, field: str):
  features = info.features
  if key not in features:
    raise ValueError(
      f"dataset {field}: {info.full_name} has no feature {key!r} (features: {sorted(features)})"
    )
  return features[key]


class TFDSImageSource:
  """One split's examples as `{"image": float32 [H, W, C], "label": int32 []}`."""

  def __init__(self, source, image_key: str, label_key: str, name: str):
    self._source, self._image_key, self._label_key, self._name = source, image_key, label_key, name

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int) -> dict:
    if not 0 <= index < len(self):
      raise IndexError(f"record {index} out of range ({len(self)} records in {self._name})")
    example = self._source[int(index)]
    image = np.asarray(example[self._image_key])
    if image.dtype == np.uint8:
      image = image.astype(np.float32) * np.float32(1 / 255)
    return {
      "image": image.astype(np.float32),
      "label": np.asarray(example[self._label_key], np.int32),
    }

  def __repr__(self) -> str:
    return f"TFDSImageSource({self._name})"


class TFDSImages:
  """Dataset plugin: an image classification dataset prepared with TFDS in `data_dir`."""

  unit = "images"
  units_per_record = 1

  def __init__(
    self,
    *,
    name: str,
    data_dir: str,
    splits: dict | None = None,
    image_key: str = "image",
    label_key: str = "label",
  ):
    splits = dict(splits or {"train": "train", "eval": "test"})
    info, sources = load_splits(name, data_dir, splits)
    image = _feature(info, image_key, "image_key")
    label = _feature(info, label_key, "label_key")
    if image.shape is None or None in image.shape:
      raise ValueError(
        f"dataset image_key: {info.full_name}'s {image_key!r} has shape {image.shape}; "
        "expected images of one fixed shape"
      )
    self.image_shape = tuple(image.shape)
    self.num_classes = getattr(label, "num_classes", None)
    self._sources = {
      split: TFDSImageSource(
        sources[split], image_key, label_key, f"{info.full_name}, split={splits[split]!r}"
      )
      for split in _SPLITS
    }
    self._name = info.full_name

  def source(self, split: str) -> TFDSImageSource:
    if split not in self._sources:
      raise ValueError(f"dataset split: expected 'train' or 'eval', got {split!r}")
    return self._sources[split]

  def __repr__(self) -> str:
    return f"TFDSImages({self._name})"


def _text_stream(source, text_key: str, chunk: int = 1024) -> np.ndarray:
  """Every example's text, UTF-8, joined by newlines, as uint8 bytes."""
  pieces = []
  for start in range(0, len(source), chunk):
    for example in source.__getitems__(range(start, min(start + chunk, len(source)))):
      text = example[text_key]
      pieces.append(text if isinstance(text, bytes) else str(text).encode("utf-8"))
  return np.frombuffer(b"\n".join(pieces), dtype=np.uint8)


class TFDSText:
  """Dataset plugin: a text feature of a TFDS dataset in `data_dir`, byte-level; D counts bytes."""

  unit = "tokens"
  vocab_size = 256

  def __init__(
    self,
    *,
    name: str,
    data_dir: str,
    splits: dict | None = None,
    text_key: str = "text",
    seq_len: int = 128,
  ):
    splits = dict(splits or {"train": "train", "eval": "test"})
    info, sources = load_splits(name, data_dir, splits)
    _feature(info, text_key, "text_key")
    self.seq_len = seq_len
    self._sources = {}
    for split in _SPLITS:
      tokens = _text_stream(sources[split], text_key)
      if len(tokens) < seq_len:
        raise ValueError(
          f"dataset splits: {info.full_name}'s {splits[split]!r} split has {len(tokens)} bytes "
          f"of text, fewer than seq_len={seq_len}"
        )
      label = f"{info.full_name}, split={splits[split]!r}, {text_key}"
      self._sources[split] = TokenWindowSource(tokens, seq_len, label)
    self._name = info.full_name

  @property
  def units_per_record(self) -> int:
    return self.seq_len

  def source(self, split: str) -> TokenWindowSource:
    if split not in self._sources:
      raise ValueError(f"dataset split: expected 'train' or 'eval', got {split!r}")
    return self._sources[split]

  def __repr__(self) -> str:
    return f"TFDSText({self._name}, seq_len={self.seq_len})"
