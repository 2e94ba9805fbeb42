"""Fits scaling laws to finished runs and writes scaling_laws.json.

  python -m flopsfit.analyze --config=configs/gpt.py            # <workdir>/runs/*/result.json
  python -m flopsfit.analyze --results=runs.csv --n_column=N --c_column=C --loss_column=loss \
      --out=scaling_laws.json                                    # any table of runs

Options come from the config's optional `analysis` section (see flopsfit.analysis.options) and
can be overridden by the flags below. The binary only parses flags; the work is in
flopsfit.analysis.
"""

import os

# The fits make many small BLAS calls, for which OpenBLAS threads only add wake-up latency (twice
# as slow on two busy cores). Set before numpy loads; an explicit setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from flopsfit import analysis, cli  # noqa: E402
from flopsfit import workdir as workdir_lib  # noqa: E402
from flopsfit.analysis import report  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Overrides config.workdir.")
_RESULTS = flags.DEFINE_string("results", None, "CSV of runs to fit instead of a workdir.")
_N_COLUMN = flags.DEFINE_string("n_column", "N", "CSV column of parameter counts.")
_D_COLUMN = flags.DEFINE_string("d_column", None, "CSV column of tokens (default: D if present).")
_C_COLUMN = flags.DEFINE_string("c_column", None, "CSV column of compute (default: C if present).")
_LOSS_COLUMN = flags.DEFINE_string("loss_column", "loss", "CSV column of final losses.")
_BUDGET_COLUMN = flags.DEFINE_string(
  "budget_column", None, "CSV column of IsoFLOP budgets (default: group runs by C)."
)
_RUN_ID_COLUMN = flags.DEFINE_string("run_id_column", None, "CSV column naming each run.")
_OUT = flags.DEFINE_string(
  "out",
  None,
  "Output path (default: <workdir>/scaling_laws.json, or "
  "scaling_laws.json in the current directory for --results).",
)
_PREDICT = flags.DEFINE_list("predict", None, "Budgets to predict, e.g. 1e20,1e21.")
_FLOPS = flags.DEFINE_enum(
  "flops_convention",
  None,
  list(analysis.conventions.FLOPS_CONVENTIONS),
  "Overrides analysis.flops_convention.",
)
_PARAMS = flags.DEFINE_enum(
  "params_convention",
  None,
  list(analysis.conventions.PARAMS_CONVENTIONS),
  "Overrides analysis.params_convention.",
)
_HUBER = flags.DEFINE_float("huber_delta", None, "Overrides analysis.huber_delta.")
_SAMPLES = flags.DEFINE_integer("bootstrap_samples", None, "Overrides analysis.bootstrap_samples.")
_SEED = flags.DEFINE_integer("seed", None, "Overrides analysis.seed.")
_MAX_LOSS = flags.DEFINE_float("max_loss", None, "Exclude runs with loss >= this.")
_BUDGET_RTOL = flags.DEFINE_float("budget_rtol", None, "Overrides analysis.budget_rtol.")


def _predict_budgets() -> list[float] | None:
  if not _PREDICT.value:
    return None
  try:
    return [float(v) for v in _PREDICT.value]
  except ValueError:
    raise analysis.InputError(
      f"--predict: expected numbers like 1e20,1e21, found {','.join(_PREDICT.value)!r}"
    ) from None


APPROACHES = ("approach1", "approach2", "approach3")


def run() -> str:
  """Does the analysis the flags ask for; returns the path written.

  Nothing is written when no approach could be fitted (an earlier scaling_laws.json stays).
  """
  config = _CONFIG.value
  section = config.get("analysis") if config is not None else None
  options = analysis.from_config(
    section,
    predict=_predict_budgets(),
    flops_convention=_FLOPS.value,
    params_convention=_PARAMS.value,
    huber_delta=_HUBER.value,
    bootstrap_samples=_SAMPLES.value,
    seed=_SEED.value,
    max_loss=_MAX_LOSS.value,
    budget_rtol=_BUDGET_RTOL.value,
  )
  if _RESULTS.value:
    out_path = _OUT.value or workdir_lib.SCALING_LAWS
    out = analysis.analyze_csv(
      _RESULTS.value,
      options,
      n_column=_N_COLUMN.value,
      loss_column=_LOSS_COLUMN.value,
      d_column=_D_COLUMN.value,
      c_column=_C_COLUMN.value,
      budget_column=_BUDGET_COLUMN.value,
      run_id_column=_RUN_ID_COLUMN.value,
    )
  else:
    workdir = _WORKDIR.value or (config.get("workdir") if config is not None else None)
    if not workdir:
      raise analysis.InputError("give --config (with config.workdir), --workdir, or --results")
    workdir_lib.check_workdir(workdir, "--workdir" if _WORKDIR.value else "config.workdir")
    out = analysis.analyze_workdir(workdir, options, write=False)
    out_path = _OUT.value or workdir_lib.scaling_laws_path(workdir)
  print(report.summary(out))
  failed = [f"{name}: {out[name].get('message')}" for name in APPROACHES]
  if all(out[name].get("status") != "ok" for name in APPROACHES):
    cli.fail(f"no approach could be fitted, {out_path} not written ({'; '.join(failed)})", 1)
  analysis.pipeline.write_json(out_path, out)
  return out_path


def main(argv):
  del argv  # cli.run refuses positional arguments
  path = run()
  print(f"wrote {path}")


if __name__ == "__main__":
  cli.run(main, (analysis.InputError,))
