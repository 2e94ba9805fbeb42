"""Loading runs: a workdir's result.json files (with exclusions) and CSV tables (with errors)."""

import os

import numpy as np
import pytest

from flopsfit import workdir as workdir_lib
from flopsfit.analysis import AnalysisOptions, InputError, load_csv, load_workdir

from . import synthetic


def _workdir_with_bad_runs(tmp_path):
  workdir = str(tmp_path / "wd")
  runs = synthetic.isoflop_runs(synthetic.EQUAL, budgets=(1e17, 1e18), sizes=5)
  synthetic.write_workdir(workdir, runs)
  base = workdir_lib.read_json(os.path.join(workdir, "runs", "c1e+17-n0-s0", "result.json"))
  for run_id, change in {
    "bad-diverged": {
      "status": "diverged",
      "error": "non-finite training loss by step 7",
      "final_eval_loss": None,
    },
    "bad-failed": {"status": "failed", "error": "OOM"},
    "bad-nullloss": {"final_eval_loss": None},
  }.items():
    workdir_lib.write_json_atomic(
      os.path.join(workdir, "runs", run_id, "result.json"), {**base, **change, "run_id": run_id}
    )
  os.makedirs(os.path.join(workdir, "runs", "bad-incomplete"))
  return workdir, runs


def test_workdir_excludes_diverged_failed_and_incomplete_runs(tmp_path):
  workdir, runs = _workdir_with_bad_runs(tmp_path)
  table = load_workdir(workdir, AnalysisOptions())
  assert table.size == runs["N"].size
  reasons = {e["run_id"]: e["reason"] for e in table.excluded}
  assert set(reasons) == {"bad-diverged", "bad-failed", "bad-nullloss", "bad-incomplete"}
  assert reasons["bad-diverged"].startswith("status 'diverged': non-finite")
  assert reasons["bad-failed"] == "status 'failed': OOM"
  assert "final_eval_loss is None" in reasons["bad-nullloss"]
  assert reasons["bad-incomplete"] == "incomplete: no result.json"
  np.testing.assert_allclose(table.budgets, [1e17, 1e18])


def test_conventions_choose_the_result_fields(tmp_path):
  workdir = str(tmp_path / "wd")
  runs = synthetic.isoflop_runs(synthetic.EQUAL, budgets=(1e17,), sizes=4)
  synthetic.write_workdir(workdir, runs, embedding=1000)
  default = load_workdir(workdir, AnalysisOptions())  # xla, non-embedding
  np.testing.assert_allclose(np.sort(default.N), np.sort(runs["N"]))
  np.testing.assert_allclose(default.C, 6.3 * default.N * default.D)
  assert not default.is_six_nd()
  total = load_workdir(
    workdir, AnalysisOptions(flops_convention="6ND_total", params_convention="total")
  )
  np.testing.assert_allclose(np.sort(total.N), np.sort(runs["N"] + 1000))
  assert total.is_six_nd()
  mixed = load_workdir(workdir, AnalysisOptions(flops_convention="6ND_total"))
  assert not mixed.is_six_nd()  # 6·N_total·D is not 6·N·D with the non-embedding N.


def test_workdir_without_runs_is_an_input_error(tmp_path):
  with pytest.raises(InputError, match="no runs directory"):
    load_workdir(str(tmp_path), AnalysisOptions())


def test_unknown_convention_is_an_input_error():
  with pytest.raises(InputError, match="analysis.flops_convention"):
    AnalysisOptions(flops_convention="6ND")


def _write_csv(path, header, rows):
  with open(path, "w") as f:
    f.write(",".join(header) + "\n")
    for row in rows:
      f.write(",".join(str(v) for v in row) + "\n")


def test_csv_derives_d_from_c_and_clusters_budgets(tmp_path):
  path = str(tmp_path / "runs.csv")
  _write_csv(
    path,
    ["N", "C", "loss"],
    [(1e6, 1e17, 3.0), (2e6, 1.02e17, 2.9), (4e6, 0.99e17, 2.95), (1e7, 1e18, 2.5)],
  )
  table = load_csv(path, AnalysisOptions())
  np.testing.assert_allclose(table.D, table.C / (6 * table.N))
  assert table.num_groups == 2
  assert table.conventions["flops"] == "csv column 'C'"
  assert table.source["budgets_given"] is False


def test_csv_budget_column_groups_runs(tmp_path):
  path = str(tmp_path / "runs.csv")
  _write_csv(
    path,
    ["n", "d", "L", "budget"],
    [(1e6, 1e10, 3.0, 6e16), (2e6, 5e9, 2.9, 6e16), (1e7, 1e10, 2.5, 6e17)],
  )
  table = load_csv(
    path, AnalysisOptions(), n_column="n", d_column="d", loss_column="L", budget_column="budget"
  )
  np.testing.assert_allclose(table.C, 6 * table.N * table.D)
  np.testing.assert_allclose(table.budgets, [6e16, 6e17])


def test_csv_errors_name_the_column_and_flag(tmp_path):
  path = str(tmp_path / "runs.csv")
  _write_csv(path, ["N", "C", "loss"], [(1e6, 1e17, 3.0)])
  with pytest.raises(InputError, match=r"no column 'params' \(--n_column\); columns are"):
    load_csv(path, AnalysisOptions(), n_column="params")
  _write_csv(path, ["N", "loss"], [(1e6, 3.0)])
  with pytest.raises(InputError, match="needs a D or a C column"):
    load_csv(path, AnalysisOptions())
  _write_csv(path, ["N", "C", "loss"], [(1e6, "lots", 3.0)])
  with pytest.raises(InputError, match=r"runs.csv:2: column 'C' has 'lots'"):
    load_csv(path, AnalysisOptions())
  with pytest.raises(InputError, match="no such file"):
    load_csv(str(tmp_path / "missing.csv"), AnalysisOptions())
