"""How long the analysis takes: 250 runs, 1,000 bootstrap resamples (target: under a minute on
2 CPU cores). Prints one table row per stage, for a synthetic 250-run IsoFLOP sweep and, when
present, the 240 usable published Chinchilla runs (../shared/data/chinchilla-epoch).

  python benchmarks/analysis_speed.py                 # about 15 s on 2 cores
  python benchmarks/analysis_speed.py --check_scipy   # + scipy L-BFGS-B from all 4,500 starts,
                                                      #   one by one, summed and averaged Huber
"""

import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # As flopsfit/analyze.py does.

import numpy as np  # noqa: E402
from absl import (
  app,  # noqa: E402
  flags,  # noqa: E402
)
from scipy import optimize  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from flopsfit.analysis import (
  AnalysisOptions,
  FitError,
  analyze_table,
  approach1,  # noqa
  approach2,
  approach3,
  bootstrap,
  holdout,
  load_csv,
  results,
)

_SAMPLES = flags.DEFINE_integer("bootstrap_samples", 1000, "Bootstrap resamples.")
_CHECK = flags.DEFINE_bool("check_scipy", False, "Also run scipy L-BFGS-B from every start.")
_CHINCHILLA = flags.DEFINE_string(
  "chinchilla",
  os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "..",
    "..",
    "shared",
    "data",
    "chinchilla-epoch",
    "svg_extracted_data.csv",
  ),
  "Published runs to time as well (skipped if absent).",
)


def synthetic_sweep(num_budgets: int = 10, sizes: int = 25, seed: int = 0) -> results.RunTable:
  """250 runs of L = 1.8 + 250/N^0.3 + 2000/D^0.4 (0.5% noise) on 10 IsoFLOP budgets."""
  rng = np.random.default_rng(seed)
  E, A, B, alpha, beta = 1.8, 250.0, 2000.0, 0.30, 0.40
  budgets = np.logspace(17, 21, num_budgets)
  g = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
  n = np.concatenate(
    [g * (c / 6) ** (beta / (alpha + beta)) * np.logspace(-1, 1, sizes) for c in budgets]
  )
  c = np.repeat(budgets, sizes)
  d = c / (6 * n)
  loss = (E + A / n**alpha + B / d**beta) * np.exp(0.005 * rng.standard_normal(n.size))
  return results.RunTable(
    run_id=np.array([f"r{i}" for i in range(n.size)], dtype=object),
    N=n,
    D=d,
    C=c,
    loss=loss,
    group=np.repeat(np.arange(num_budgets), sizes),
    budgets=budgets,
    excluded=[],
    conventions={"flops": "6ND", "params": "N", "data": "tokens"},
    source={"kind": "benchmark", "budgets_given": True, "budgets_from": "synthetic"},
  )


def _timed(fn):
  start = time.perf_counter()
  out = fn()
  return out, time.perf_counter() - start


def stages(name: str, table: results.RunTable, samples: int) -> list[tuple[str, str, float]]:
  rows = []
  data = approach3.Data.from_arrays(table.N, table.D, table.loss)
  fits = {}
  for stage, fn in (
    ("approach1", lambda: approach1.fit(table)),
    ("approach2", lambda: approach2.fit(table)),
    ("approach3: 4,500 starts", lambda: approach3.fit_grid(data, 1e-3)),
  ):
    try:
      fit, seconds = _timed(fn)
      fits[stage.split(":")[0]] = fit
    except FitError:
      fit, seconds = None, float("nan")
    rows.append((name, stage, seconds))
  counts = bootstrap.counts(table, samples, 0, table.source["budgets_given"])
  _, seconds = _timed(lambda: bootstrap.refit(table, counts, fits, 1e-3))
  rows.append((name, f"bootstrap: {samples} resamples, all approaches", seconds))
  _, seconds = _timed(lambda: holdout.check(table, fits.get("approach2"), 1e-3))
  rows.append((name, "held-out check", seconds))
  _, seconds = _timed(lambda: analyze_table(table, AnalysisOptions(bootstrap_samples=samples)))
  rows.append((name, "analyze_table, everything", seconds))
  return rows


def scipy_check(name: str, table: results.RunTable) -> None:
  """scipy L-BFGS-B (default tolerances) from each of the 4,500 starts, sum and mean."""
  data = approach3.Data.from_arrays(table.N, table.D, table.loss)
  ours, ours_seconds = _timed(lambda: approach3.fit_grid(data, 1e-3))
  n = table.size
  print(f"\n{name}: scipy L-BFGS-B from every start vs flopsfit ({n} runs)")
  print(
    f"{'objective':>10} {'best sum objective':>20} {'E':>8} {'alpha':>8} {'beta':>8} "
    f"{'a':>7} {'seconds':>8}"
  )
  for reduction in ("sum", "mean"):
    scale = 1.0 if reduction == "sum" else 1.0 / n

    def fun(x):
      f, g = approach3.objective(x[None], data, 1e-3)
      return f[0] * scale, g[0] * scale

    best, seconds = _timed(
      lambda: min(
        (optimize.minimize(fun, s, jac=True, method="L-BFGS-B") for s in approach3.grid()),
        key=lambda o: o.fun,
      )
    )
    p = approach3.named(best.x)
    print(
      f"{'scipy ' + reduction:>10} {best.fun / scale:>20.10g} {p['E']:>8.4f} "
      f"{p['alpha']:>8.4f} {p['beta']:>8.4f} {p['a']:>7.3f} {seconds:>8.1f}"
    )
  p = approach3.named(ours.theta)
  print(
    f"{'flopsfit':>10} {ours.objective:>20.10g} {p['E']:>8.4f} {p['alpha']:>8.4f} "
    f"{p['beta']:>8.4f} {p['a']:>7.3f} {ours_seconds:>8.1f}"
  )


def main(argv):
  del argv
  tables = [("synthetic 250", synthetic_sweep())]
  if os.path.exists(_CHINCHILLA.value):
    tables.append(
      (
        "chinchilla 240",
        load_csv(
          _CHINCHILLA.value,
          AnalysisOptions(max_loss=3.40593),
          n_column="Model Size",
          c_column="Training FLOP",
          loss_column="loss",
        ),
      )
    )
  print(f"cpus: {os.cpu_count()}, OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}")
  print(f"{'data':<16} {'stage':<44} {'seconds':>8}")
  for name, table in tables:
    for data_name, stage, seconds in stages(name, table, _SAMPLES.value):
      print(f"{data_name:<16} {stage:<44} {seconds:>8.2f}")
  if _CHECK.value:
    for name, table in tables:
      scipy_check(name, table)


if __name__ == "__main__":
  app.run(main)
