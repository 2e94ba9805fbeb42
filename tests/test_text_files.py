import numpy as np
import pytest

from flopsfit.data.text_files import TextFiles
from flopsfit.engine import run as run_lib

TEXT = ("In the beginning was the word, and the word was with the text. " * 40 + "\n") * 30


def test_split_is_deterministic_disjoint_and_byte_level(tmp_path):
  (tmp_path / "a.txt").write_text(TEXT)
  (tmp_path / "b.txt").write_text("ünïcode " * 500)
  data = TextFiles(paths=str(tmp_path / "*.txt"), seq_len=64, chunk_bytes=1024, eval_every=5)
  again = TextFiles(
    paths=[str(tmp_path / "a.txt"), str(tmp_path / "b.txt")],
    seq_len=64,
    chunk_bytes=1024,
    eval_every=5,
  )
  total = len(TEXT.encode()) + len(("ünïcode " * 500).encode()) + 1
  train, eval_ = data.source("train"), data.source("eval")
  assert (len(train) + len(eval_)) * 64 <= total
  assert len(eval_) * 64 >= total // 5 - 2 * 1024
  assert np.array_equal(train[3]["tokens"], again.source("train")[3]["tokens"])
  assert repr(train) == repr(again.source("train"))
  assert train[0]["tokens"].max() < 256
  assert bytes(train[0]["tokens"].astype(np.uint8)) == TEXT.encode()[:64]


def test_bad_files_are_named(tmp_path):
  with pytest.raises(ValueError, match="dataset paths: no file matches"):
    TextFiles(paths=str(tmp_path / "none*.txt"))
  (tmp_path / "bin.txt").write_bytes(b"ok\xff\xfe")
  with pytest.raises(ValueError, match=r"dataset paths: .*bin.txt is not UTF-8"):
    TextFiles(paths=str(tmp_path / "bin.txt"))


def test_trains_on_text(tmp_path, gpt_config):
  (tmp_path / "corpus.txt").write_text(TEXT * 3)
  gpt_config.dataset.factory = "flopsfit.data.text_files:TextFiles"
  gpt_config.dataset.kwargs = {
    "paths": str(tmp_path / "corpus.txt"),
    "seq_len": 32,
    "chunk_bytes": 512,
  }
  gpt_config.vocab_size = 256
  gpt_config.eval.tokens = 2048
  result = run_lib.train_run(gpt_config)
  assert result["status"] == "completed"
  assert result["final_eval_loss"] < np.log(256) - 1.0  # repetitive text is learned quickly


def test_gpt_text_config_names_the_missing_file_and_the_command_to_make_it(tmp_path):
  import importlib.util
  import os

  from flopsfit import plugins

  path = os.path.join(os.path.dirname(__file__), "..", "configs", "gpt_text.py")
  spec = importlib.util.spec_from_file_location("gpt_text", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config("quick")
  config.dataset.kwargs.paths = str(tmp_path / "kjv.txt")
  with pytest.raises(plugins.PluginError) as error:
    plugins.load(config)
  message = str(error.value)
  assert message.startswith("config.dataset.factory: flopsfit.data.text_files:TextFiles raised")
  assert f"no file matches {tmp_path / 'kjv.txt'}; make it with: mkdir -p" in message
  assert "bible -f 'Gen1:1-Rev22:21'" in message and "\n" not in message
