"""The built-in GPT sweep with a small per-device memory limit: its largest runs need FSDP.

Run (8 CPU devices in one process; the planner sees 8 devices, so it can pick FSDP meshes):
  export XLA_FLAGS=--xla_force_host_platform_device_count=8
  python -m flopsfit.train --config=configs/gpt_fsdp.py --parallel=1
  python -m flopsfit.analyze --config=configs/gpt_fsdp.py
  python -m flopsfit.plot --config=configs/gpt_fsdp.py
On an 8-GPU node: python -m flopsfit.train --config=configs/gpt_fsdp.py --parallel=auto
Quick:   --config=configs/gpt_fsdp.py:quick (the same sizes at budgets 3e10 and 1e11)

What it shows: `plan` keeps the small models data-parallel and gives the largest ones the
smallest FSDP mesh whose per-device step fits sweep.device_memory_bytes (a pretend 10 MiB
device, so that tiny models need FSDP; set it to 0 on real accelerators to use their memory):
sweep.json's `mesh` field, and each result.json's provenance.mesh. The FLOPs per step, step
counts and losses do not depend on the mesh (docs/sharding.md).

Measured (2026-11-26, 2 quiet CPU cores as 8 forced devices, jax 0.10.2): `:quick` trained,
analyzed and plotted in 2 min 57 s. Its 7 runs got the meshes d16-L1 data 8, d32-L2 data 4 ×
fsdp 2, d48-L2 and d64-L2 data 2 × fsdp 4 (memory per device 0.5, 2.1, 3.7 and 5.1 MB against
the pretend 10 MiB); sweep 173 s: plan 45, compile 38, train 75, checkpoint 14. Only the mesh is
the point here: on CPU the smallest model wins both budgets (no valley at these budgets and
min_steps). XLA warns "Involuntary full rematerialization" for the mixed data × fsdp meshes (a
resharding it does by gathering; correct, slower). The full config was not run here.
"""

import importlib.util
import os

_spec = importlib.util.spec_from_file_location(
  "gpt_config", os.path.join(os.path.dirname(os.path.abspath(__file__)), "gpt.py")
)
_gpt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_gpt)


def get_config(arg: str | None = None):
  options = _gpt.parse_arg(arg)
  config = _gpt.get_config("quick" if options.get("quick") else None)
  config.workdir = "workdirs/gpt-fsdp-quick" if options.get("quick") else "workdirs/gpt-fsdp"
  if not options.get("quick"):
    config.sweep.budgets = (1e11, 3e11, 1e12)
  config.sweep.shapes = (
    {"d_model": 16, "n_layers": 1},
    {"d_model": 32, "n_layers": 2},
    {"d_model": 48, "n_layers": 2},
    {"d_model": 64, "n_layers": 2},
  )
  config.sweep.shapes_per_budget = len(config.sweep.shapes)
  config.sweep.min_steps = 50
  config.sweep.device_memory_bytes = 10.0 * 2**20
  config.sweep.memory_fraction = 1.0
  config.sweep.probe = False
  return config
