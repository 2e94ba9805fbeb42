"""configs/gpt.py's optimizer section, for benchmarks that build a train step themselves."""

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "configs", "gpt.py")


def default_optim(learning_rate: float):
  """The default AdamW settings (warmup, cosine, clipping, weight decay) at `learning_rate`."""
  spec = importlib.util.spec_from_file_location("gpt_config", CONFIG)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  optim = module.get_config().optim
  optim.learning_rate = learning_rate
  return optim
