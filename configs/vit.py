"""A vision transformer on Fashion-MNIST (Debian `dataset-fashion-mnist`): an IsoFLOP sweep.

Run:     python -m flopsfit.train --config=configs/vit.py     (plan + train every run)
         python -m flopsfit.analyze --config=configs/vit.py   (scaling_laws.json)
         python -m flopsfit.plot --config=configs/vit.py      (plots/, report.md)
Quick:   --config=configs/vit.py:quick      (budgets 1e10, 3e10 × 4 sizes, d8-d32, 1 layer, batch
                                             32: both budgets with an interior minimum, best
                                             d16-L1 at 0.606 and 0.511 nats; time: see below)
Data:    `apt-get install dataset-fashion-mnist` puts the IDX files in
         /usr/share/datasets/fashion-mnist; any directory with the four IDX files works
         (`--config.dataset.kwargs.directory=...`). `:data=blobs` trains on the built-in
         procedural images instead (no files needed). docs/images.md: model, data, units of D.

Setup: patches of 7×7 pixels (16 per image), D counted in images, lr 0.3/d_model, AdamW with 5%
warmup and cosine decay, batch 32, 64, 128 at 5e10, 2e11, 8e11 FLOPs, 5 sizes per budget
(d_model 8-48, 1-2 layers), at least 400 steps, at most 40 epochs of the 60,000 images. A
prototype outside flopsfit found minima inside every budget with these patches
(../shared/notes/real-data-sweeps.md; patches of 4×4 pixels gave none).

Measured with flopsfit (2026-11-26, 2 quiet CPU cores, AMD EPYC AVX2, jax 0.10.2):
- main: train, analyze and plot in 12 min 33 s (a 3-minute benchmark shared the cores for part
  of it); sweep 730 s: compile 90 s, train 622 s, two one-core workers, efficiency 0.059.
  Every budget has its minimum inside its sizes (eval loss by d_model, all 1 layer unless said):
  5e10: d8 0.529, d16 0.493, d24 0.513, d32 0.560, d40 0.573;
  2e11: d8 0.472, d16 0.409, d24 0.402, d32 0.406, d40 0.445;
  8e11: d16 0.376, d24 0.352 (15 epochs), d32 0.358, d32-L2 0.386, d40-L2 0.377.
  Approach 2 (3 of 3 budgets): N_opt ∝ C^0.37 [0.12, 0.56], the held-out 8e11 N_opt to +8.6%;
  Approach 3: E = 0.18, a = 0.36 [0.18, 0.57], held-out losses to 6.6% (mean). The optimum
  grows slowly with C here: at 8e11 the small models already run 15-30 epochs over the 60,000
  images, so more data per parameter stops paying (the note's overfitting lesson).
- quick: plan, train, analyze and plot in 1 min 31 s (sweep 77 s); both budgets have an interior
  minimum, best d16-L1 at 0.606 (1e10) and 0.511 (3e10) nats.
Overrides: --config.sweep.budgets='(5e10,2e11)' --config.workdir=workdirs/vit-small
"""

import ml_collections

SIZES = {"tiny": (16, 1), "small": (24, 1), "base": (32, 2)}  # name: (d_model, n_layers)
DATASETS = {
  "fashion_mnist": "flopsfit.data.idx_images:IdxImages",
  "blobs": "flopsfit.data.blobs:BlobImages",
}


def parse_arg(arg: str | None) -> dict:
  """'quick,size=small' -> {'quick': True, 'size': 'small'}."""
  out = {}
  for item in (arg or "").split(","):
    if item:
      key, _, value = item.partition("=")
      out[key.strip()] = value.strip() if value else True
  return out


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  options = parse_arg(arg)
  unknown = set(options) - {"quick", "size", "data"}
  if unknown:
    raise ValueError(
      f"configs/vit.py: unknown config argument(s) {sorted(unknown)}; "
      "expected 'quick', 'size=<name>' and/or 'data=<name>'"
    )
  size, data = options.get("size", "small"), options.get("data", "fashion_mnist")
  if size not in SIZES:
    raise ValueError(f"configs/vit.py: size={size!r}; expected one of {sorted(SIZES)}")
  if data not in DATASETS:
    raise ValueError(f"configs/vit.py: data={data!r}; expected one of {sorted(DATASETS)}")
  d_model, n_layers = SIZES[size]

  config = ml_collections.ConfigDict()
  config.workdir = "workdirs/vit" if data == "fashion_mnist" else f"workdirs/vit-{data}"
  config.seed = 0
  config.run = ""  # run id; empty: derived from budget, shape and seed
  config.compilation_cache_dir = ""  # empty: <workdir>/jax_cache
  patch_size = ml_collections.FieldReference(7)  # 4x4 patches of 7x7 pixels
  head_dim = ml_collections.FieldReference(8)
  config.patch_size = patch_size
  config.head_dim = head_dim

  config.model = ml_collections.ConfigDict()
  config.model.factory = "flopsfit.models.vit:ViT"
  config.model.kwargs = ml_collections.ConfigDict(
    dict(
      d_model=d_model,
      n_layers=n_layers,
      patch_size=patch_size,
      head_dim=head_dim,
      image_size=28,
      channels=1,
      num_classes=10,
      pool="mean",  # or "cls": a learned class token
      dtype="float32",
    )
  )
  config.model.shape_fields = ("d_model", "n_layers")
  config.model.size_rule = ml_collections.ConfigDict()  # shape for a target N (all parameters)
  config.model.size_rule.factory = "flopsfit.models.vit:ViTShapeRule"
  config.model.size_rule.kwargs = ml_collections.ConfigDict(
    dict(aspect_ratio=24, head_dim=head_dim, patch_size=patch_size, image_size=28)
  )

  config.dataset = ml_collections.ConfigDict()
  config.dataset.factory = DATASETS[data]
  config.dataset.kwargs = ml_collections.ConfigDict(
    dict(count="images", patch_size=patch_size)  # D counts images ("patches": 16 per image)
  )
  if data == "fashion_mnist":
    config.dataset.kwargs.directory = "/usr/share/datasets/fashion-mnist"
  else:
    config.dataset.kwargs.update(dict(image_size=28, num_classes=10, seed=0))

  config.loss = ml_collections.ConfigDict()
  config.loss.factory = "flopsfit.losses:classification_cross_entropy"
  config.loss.kwargs = ml_collections.ConfigDict(dict(label_smoothing=0.0))

  config.train = ml_collections.ConfigDict()
  config.train.budget_flops = 2e11
  config.train.batch_size = 64
  config.train.steps_per_call = 25  # optimizer steps per jitted call (one loop)
  config.train.log_every = 100
  config.train.devices = 0  # devices per process in the data mesh; 0: all
  config.train.peak_flops = 0.0  # per device; 0: measured on CPU, device table on GPU/TPU
  # With sweep.seeds of two or more: train a shape's seeds together, one vmapped step over
  # their stacked states (docs/performance-sweep.md: on CPU this is slower than packing).
  config.train.vmap_seeds = False

  config.checkpoint = ml_collections.ConfigDict()  # runs/<id>/checkpoints/
  config.checkpoint.every_seconds = 60.0  # 0: never by time
  config.checkpoint.every_steps = 0  # 0: never by step count
  config.checkpoint.keep = 2  # the newest checkpoints kept while the run trains
  config.checkpoint.on_finish = (
    "delete"  # once result.json is written: delete | keep_last | keep_all
  )

  config.optim = ml_collections.ConfigDict()
  config.optim.learning_rate = 1e-2
  config.optim.schedule = "cosine"  # or "wsd"
  config.optim.warmup_fraction = 0.05
  config.optim.decay_fraction = 0.2  # wsd only: the final linear decay
  config.optim.final_lr_fraction = 0.1
  config.optim.weight_decay = 0.1
  config.optim.b1 = 0.9
  config.optim.b2 = 0.95
  config.optim.eps = 1e-8
  config.optim.grad_clip = 1.0

  config.sweep = ml_collections.ConfigDict()
  config.sweep.budgets = (5e10, 2e11, 8e11)
  config.sweep.budget_range = ml_collections.ConfigDict(dict(low=0.0, high=0.0, count=0))
  config.sweep.shapes_per_budget = 5
  config.sweep.decades = 1.0  # span of N around the expected optimum
  # Prior D/N at the optimum in C = 6·N·D terms. D counts images and a ViT spends about
  # 6·N FLOPs per patch, 16 patches an image: 800 "units" is about 50 images per parameter
  # (with 400 the 8e11 budget's sizes all lay above its optimum: minimum at the smallest).
  config.sweep.tokens_per_param = 800.0
  config.sweep.shapes = ()  # explicit shape dicts instead of the size rule
  config.sweep.seeds = (0,)
  config.sweep.min_steps = 400  # fewer steps measure optimisation, not model size
  config.sweep.budget_tolerance = 0.01
  config.sweep.max_epochs = 40.0  # passes over the 60,000 training images, at most
  config.sweep.memory_fraction = 0.9
  config.sweep.probe = False  # True: time a few steps to estimate run times (slower plan)

  config.hparams = ml_collections.ConfigDict()  # lr 0.3/d; batch 64, 128, 256 over the budgets
  config.hparams.factory = "flopsfit.hparams:width_scaled_adamw"
  config.hparams.kwargs = ml_collections.ConfigDict(
    dict(
      lr_constant=0.3,
      lr_max=2e-2,
      width_field="d_model",
      batch_size=64,
      batch_budget_exponent=0.5,
      reference_budget=2e11,
    )
  )

  config.eval = ml_collections.ConfigDict()
  config.eval.tokens = 10_000  # held-out images scored at the end of every run (all of t10k)
  config.eval.batch_size = 1000

  config.analysis = ml_collections.ConfigDict()  # see docs/analysis.md
  config.analysis.flops_convention = "xla"  # 6ND conventions count D in images: see docs/images.md
  config.analysis.params_convention = "non_embedding"  # a ViT has no embedding table: all of N
  config.analysis.huber_delta = 1e-3
  config.analysis.bootstrap_samples = 1000

  if options.get("quick"):  # a complete sweep in little time (see the docstring), for smoke tests
    config.workdir += "-quick"
    config.sweep.budgets = (1e10, 3e10)
    config.sweep.shapes_per_budget = 4
    config.sweep.min_steps = 200
    config.hparams.kwargs.batch_size = 32
    config.hparams.kwargs.batch_budget_exponent = 0.0
    config.eval.tokens = 2000
    config.train.batch_size = 32
    config.train.budget_flops = 1e10
    config.analysis.bootstrap_samples = 200
  return config
