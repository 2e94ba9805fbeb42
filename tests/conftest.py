"""Tests run on 8 forced CPU devices so that sharded code is exercised without accelerators."""

import os
import tempfile

import pytest

# Tests compile far more than they run (tiny models, a few steps each), and LLVM's optimisation
# passes are about half of a compile on CPU: at level 0 the same HLO program compiles about 2x
# faster. Numerics are not tested against another level, only against runs made with the same
# flags, and speed is measured by benchmarks/, never here.
TEST_XLA_FLAGS = "--xla_backend_optimization_level=0"

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ["XLA_FLAGS"] = (
  os.environ.get("XLA_FLAGS", "") + f" {TEST_XLA_FLAGS} --xla_force_host_platform_device_count=8"
).strip()


def xla_flags(devices: int) -> str:
  """XLA_FLAGS for a test's subprocess with `devices` forced CPU devices."""
  return f"{TEST_XLA_FLAGS} --xla_force_host_platform_device_count={devices}"


# One compilation cache for the whole session: tests that compile the same step share it.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="flopsfit-jax-cache-"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")


def gpt_config_module():
  """configs/gpt.py as a module (configs/ is not a package)."""
  import importlib.util

  path = os.path.join(os.path.dirname(__file__), "..", "configs", "gpt.py")
  spec = importlib.util.spec_from_file_location("gpt_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def gpt_optim(learning_rate: float = 1e-2):
  """configs/gpt.py's optimizer section at `learning_rate`: for tests that build a step."""
  optim = gpt_config_module().get_config().optim
  optim.learning_rate = learning_rate
  return optim


def tiny_gpt_config(workdir: str):
  """configs/gpt.py shrunk to a run of a few seconds on 2 devices."""
  config = gpt_config_module().get_config("size=tiny")
  config.workdir = workdir
  config.seq_len = 32
  config.train.budget_flops = 2e9
  config.train.batch_size = 16
  config.train.devices = 2
  config.train.log_every = 10
  config.train.steps_per_call = 5
  config.eval.tokens = 4096
  config.eval.batch_size = 32
  config.optim.learning_rate = 1e-2
  return config


@pytest.fixture
def gpt_config(tmp_path):
  return tiny_gpt_config(str(tmp_path / "workdir"))


@pytest.fixture
def sweep_config(gpt_config):
  """A sweep of 2 tiny budgets × 4 sizes, without the timing probe."""
  config = gpt_config
  config.sweep.budgets = (1e9, 3e9)
  config.sweep.shapes_per_budget = 4
  config.sweep.decades = 1.0
  config.sweep.tokens_per_param = 100.0
  config.sweep.min_steps = 20
  config.sweep.probe = False
  config.hparams.kwargs.batch_size = 16
  return config


def write_config_file(path, config) -> str:
  """A config file whose get_config() returns `config`: for tests that run the binaries."""
  flat = {}

  def walk(node, prefix):
    for key, value in node.items():
      if hasattr(value, "items"):
        walk(value, f"{prefix}{key}.")
      else:
        flat[f"{prefix}{key}"] = value

  walk(config.to_dict(), "")
  gpt = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "configs", "gpt.py")
  path.write_text(
    "import importlib.util\n"
    f"spec = importlib.util.spec_from_file_location('gpt', {gpt!r})\n"
    "gpt = importlib.util.module_from_spec(spec)\n"
    "spec.loader.exec_module(gpt)\n\n\n"
    "def get_config():\n"
    "  config = gpt.get_config('size=tiny')\n"
    f"  config.update_from_flattened_dict({flat!r})\n"
    "  return config\n"
  )
  return str(path)
