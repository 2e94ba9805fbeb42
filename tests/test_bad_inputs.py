"""A catalogue of inputs a user can get wrong: each gives one `error:` line naming the file or
field, a documented exit status (docs/exit-statuses.md), and leaves the workdir unchanged.

Corrupt workdir files are generated: every file kind truncated at several offsets and fields
changed to the wrong type. Most cases call the library function a binary calls, under the
binaries' own error policy (`cli.call`); a few run the binaries to prove the wiring.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import tiny_gpt_config, write_config_file

from flopsfit import cli, config_check, identity, plugins
from flopsfit import workdir as workdir_lib
from flopsfit.analysis import AnalysisOptions, InputError, analyze_workdir, load_csv
from flopsfit.analysis import load_workdir as analysis_load_workdir
from flopsfit.engine import checkpoints
from flopsfit.engine import loop as loop_lib
from flopsfit.engine import run as run_lib
from flopsfit.plotting import PlotInputError
from flopsfit.plotting import load_workdir as plotting_load_workdir
from flopsfit.sweep import planner, runner
from flopsfit.sweep.run_config import run_config
from tests.analysis import synthetic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The user errors each binary catches (as in flopsfit/{plan,train,analyze,plot}.py).
ERRORS = {
  "plan": (planner.PlanError, plugins.PluginError, config_check.ConfigError),
  "train": (
    plugins.PluginError,
    config_check.ConfigError,
    planner.PlanError,
    checkpoints.CheckpointMismatch,
  ),
  "analyze": (InputError,),
  "plot": (PlotInputError,),
}
OFFSETS = (0, 1, 0.5, -2)  # truncation points: bytes, or a fraction of the file


def _sweep_config(workdir: str):
  config = tiny_gpt_config(workdir)
  config.sweep.budgets = (1e9,)
  config.sweep.probe = False
  return config


@pytest.fixture(scope="module")
def base(tmp_path_factory):
  """A complete workdir: sweep.json whose one run is finished, every run's result.json, the
  run's config.json and metrics.jsonl, and scaling_laws.json."""
  workdir = str(tmp_path_factory.mktemp("base") / "wd")
  ids = synthetic.write_workdir(
    workdir, synthetic.isoflop_runs(synthetic.EQUAL, budgets=(1e17, 1e18, 1e19), sizes=5)
  )
  analyze_workdir(workdir, AnalysisOptions(bootstrap_samples=0))
  config = _sweep_config(workdir)
  run = {
    "run_id": ids[0],
    "budget_flops": 1e9,
    "shape": {"d_model": 16, "n_layers": 2},
    "seed": 0,
    "batch_size": 16,
    "learning_rate": 0.01,
    "params": {"non_embedding": 6000, "total": 7000},
  }
  plan = {"version": 1, "identity": identity.identity(config), "runs": [run], "dropped": []}
  workdir_lib.write_json_atomic(os.path.join(workdir, "sweep.json"), plan)
  run_dir = workdir_lib.run_dir(workdir, ids[0])
  workdir_lib.write_json_atomic(
    os.path.join(run_dir, "config.json"),
    {"config": run_config(config, run).to_dict(), "run_id": ids[0]},
  )
  with open(os.path.join(run_dir, "metrics.jsonl"), "w") as f:
    for step in (10, 20, 30):
      f.write(
        json.dumps({"step": step, "tokens": 512 * step, "flops": 1e6 * step, "loss": 3.0}) + "\n"
      )
  runs = analysis_load_workdir(workdir, AnalysisOptions())
  with open(os.path.join(workdir, "results.csv"), "w") as f:
    f.write("N,D,loss\n" + "".join(f"{n},{d},{l}\n" for n, d, l in zip(runs.N, runs.D, runs.loss)))
  return workdir, ids[0]


def _files(workdir: str) -> dict[str, str]:
  """sha256 of every file (the JAX compilation cache aside: it only ever gains entries)."""
  out = {}
  for root, _, names in os.walk(workdir):
    for name in names:
      path = os.path.join(root, name)
      if "jax_cache" not in os.path.relpath(path, workdir):
        with open(path, "rb") as f:
          out[os.path.relpath(path, workdir)] = hashlib.sha256(f.read()).hexdigest()
  return out


# --- generated corruptions -------------------------------------------------------------------


def _truncate(rel: str, offset):
  def apply(workdir):
    path = os.path.join(workdir, rel)
    data = open(path, "rb").read()
    cut = int(len(data) * offset) if isinstance(offset, float) else offset % len(data)
    open(path, "wb").write(data[:cut])

  return f"{os.path.basename(rel)} truncated at {offset}", apply


def _set_field(rel: str, dotted: str, value):
  def apply(workdir):
    path = os.path.join(workdir, rel)
    obj = json.load(open(path))
    node = obj
    *parents, leaf = dotted.split(".")
    for p in parents:
      node = node[int(p)] if isinstance(node, list) else node[p]
    node[leaf] = value
    open(path, "w").write(json.dumps(obj))

  return f"{os.path.basename(rel)} {dotted}={value!r}", apply


def _remove(rel: str):
  def apply(workdir):
    os.remove(os.path.join(workdir, rel))

  return apply


def _catalogue(run_id: str):
  """(name, corrupt(workdir), binary, call(workdir), words in the error line)."""
  run = f"runs/{run_id}"
  plan = lambda wd: planner.load_or_plan(_sweep_config(wd), probe=False)  # noqa: E731
  train = lambda wd: runner.run_sweep(_sweep_config(wd))  # noqa: E731
  analyze = lambda wd: analysis_load_workdir(wd, AnalysisOptions())  # noqa: E731
  plot = lambda wd: plotting_load_workdir(wd)  # noqa: E731

  def train_single(wd):
    run_lib.train_run(
      run_config(_sweep_config(wd), planner.read_plan(f"{wd}/sweep.json")["runs"][0])
    )

  def resume(wd):
    loop_lib.resume_metrics(os.path.join(wd, run, "metrics.jsonl"), 20)

  cases = []
  for offset in OFFSETS:
    name, cut = _truncate("sweep.json", offset)
    cases += [(name, cut, "train", train, "sweep.json"), (name, cut, "plan", plan, "sweep.json")]
    name, cut = _truncate(f"{run}/result.json", offset)
    cases += [(name, cut, b, f, "result.json") for b, f in (("train", train), ("analyze", analyze))]
    cases += [(name, cut, "plot", plot, "result.json")] if offset in (0, 0.5) else []
    name, cut = _truncate("scaling_laws.json", offset)
    cases += [(name, cut, "plan", plan, "scaling_laws.json"), (name, cut, "plot", plot, "scaling")]
    name, cut = _truncate(f"{run}/config.json", offset)

    def no_result_then(cut=cut):
      return lambda wd: (_remove(f"{run}/result.json")(wd), cut(wd))

    cases.append((name, no_result_then(), "train", train_single, "config.json"))
  for dotted, value in (("runs.0.seed", "0"), ("runs.0.shape", [16]), ("runs", {}), ("runs", [])):
    name, change = _set_field("sweep.json", dotted, value)
    cases.append((name, change, "train", train, "sweep.json"))
  for dotted, value, binaries in (
    ("status", 3, (("train", train), ("analyze", analyze), ("plot", plot))),
    ("final_eval_loss", "2.5", (("analyze", analyze), ("plot", plot))),
    ("params", [1, 2], (("analyze", analyze), ("plot", plot))),
    ("flops.xla", {"a": 1}, (("analyze", analyze),)),
  ):
    name, change = _set_field(f"{run}/result.json", dotted, value)
    cases += [(name, change, b, f, dotted.split(".")[0]) for b, f in binaries]
  for dotted, value in (("approach3", [1]), ("approach3.N_opt.exponent.value", "0.5")):
    name, change = _set_field("scaling_laws.json", dotted, value)
    cases.append((name, change, "plan", plan, "scaling_laws.json"))
  for dotted, value in (("runs", {}), ("runs.0.N", "big"), ("approach2", "ok")):
    name, change = _set_field("scaling_laws.json", dotted, value)
    cases.append((name, change, "plot", plot, "scaling_laws.json"))
  name, change = _set_field(f"{run}/config.json", "config", "gpt")
  cases.append(
    (
      name,
      lambda wd: (_remove(f"{run}/result.json")(wd), change(wd)),
      "train",
      train_single,
      "'config'",
    )
  )

  def metrics_line(text):
    def apply(wd):
      with open(os.path.join(wd, run, "metrics.jsonl"), "a") as f:
        f.write(text + "\n")

    return apply

  for text, words in (
    ("{not json", "not a JSON line"),
    ("[1, 2]", "JSON object"),
    ('{"step": "40"}', "'step'"),
  ):
    cases += [
      (f"metrics.jsonl + {text}", metrics_line(text), b, f, words)
      for b, f in (("train", resume), ("plot", plot))
    ]
  csv = lambda wd: load_csv(os.path.join(wd, "results.csv"), AnalysisOptions())  # noqa: E731
  for offset, words in ((0, "no column 'N'"), (5, "no column 'loss'")):
    name, cut = _truncate("results.csv", offset)
    cases.append((name, cut, "analyze", csv, words))

  def csv_text(data: bytes):
    def apply(wd):
      with open(os.path.join(wd, "results.csv"), "ab") as f:
        f.write(data)

    return apply

  cases.append(("results.csv + a word", csv_text(b"1e4,2e5,abc\n"), "analyze", csv, "'abc'"))
  cases.append(("results.csv + binary", csv_text(b"\xff\xfe\x00\n"), "analyze", csv, "not a CSV"))

  def csv_dir(wd):
    os.remove(os.path.join(wd, "results.csv"))
    os.mkdir(os.path.join(wd, "results.csv"))

  cases.append(("results.csv a directory", csv_dir, "analyze", csv, "not a file"))
  return cases


def test_the_base_workdir_is_usable(base):
  """The cases fail because of their corruption: unchanged, every entry point accepts it."""
  workdir, run_id = base
  assert runner.run_sweep(_sweep_config(workdir))[0]["action"] == "skipped"
  assert analysis_load_workdir(workdir, AnalysisOptions()).size == 15
  assert load_csv(os.path.join(workdir, "results.csv"), AnalysisOptions()).size == 15
  assert plotting_load_workdir(workdir).curves[run_id]
  assert (
    len(loop_lib.resume_metrics(os.path.join(workdir, "runs", run_id, "metrics.jsonl"), 20)) == 2
  )
  centre, source = planner.optimum_centre(_sweep_config(workdir), 1e9)
  assert centre > 0 and source.startswith("scaling_laws.json")


def test_catalogue_of_corrupt_workdir_files(base, tmp_path, capsys):
  workdir, run_id = base
  cases = _catalogue(run_id)
  assert len(cases) >= 30 and {c[2] for c in cases} == set(ERRORS)
  failures = []
  for i, (name, corrupt, binary, call, words) in enumerate(cases):
    wd = str(tmp_path / f"case{i}")
    shutil.copytree(workdir, wd)
    corrupt(wd)
    before = _files(wd)
    capsys.readouterr()
    try:
      cli.call(lambda: call(wd), ERRORS[binary])
      status = 0
    except SystemExit as e:
      status = e.code
    stderr = capsys.readouterr().err.strip().splitlines()
    problems = []
    if status != cli.USER_ERROR:
      problems.append(f"exit {status}")
    if len(stderr) != 1 or not stderr[0].startswith("error: ") or words not in stderr[0]:
      problems.append(f"stderr {stderr}")
    if _files(wd) != before:
      problems.append("workdir changed")
    if problems:
      failures.append(f"{binary}: {name}: {'; '.join(problems)}")
  assert not failures, "\n".join(failures)


def test_non_finite_csv_values_are_excluded_by_row(tmp_path):
  path = tmp_path / "runs.csv"
  rows = ["N,D,loss"] + [f"{n},{20 * n},{2 + 100 / n}" for n in (1e3, 2e3, 4e3, 8e3)]
  rows += ["1e4,2e5,nan", "2e4,inf,2.1", "3e4,4e5,-inf", "4e4,,2.0"]
  path.write_text("\n".join(rows) + "\n")
  table = load_csv(str(path), AnalysisOptions())
  assert table.size == 4
  reasons = {e["run_id"]: e["reason"] for e in table.excluded}
  assert reasons == {
    "row6": "non-finite loss",
    "row7": "non-finite D, C, budget",
    "row8": "non-finite loss",
    "row9": "missing D, C, budget",
  }


# --- the binaries: one run per binary and exit path ------------------------------------------


def _binary(module: str, *args: str, cwd: str = ROOT) -> subprocess.CompletedProcess:
  env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
  return subprocess.run(
    [sys.executable, "-m", f"flopsfit.{module}", *args],
    cwd=cwd,
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
  )


def _one_error_line(proc, status: int, *words: str) -> None:
  lines = [line for line in proc.stderr.splitlines() if line.strip()]
  assert proc.returncode == status, proc.stderr[-2000:]
  assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
  for word in words:
    assert word in lines[0], lines[0]


def test_binaries_report_bad_configs_and_flags_in_one_line(base, tmp_path):
  workdir, _ = base
  wd = str(tmp_path / "wd")
  shutil.copytree(workdir, wd)
  config_path = tmp_path / "config.py"
  write_config_file(config_path, _sweep_config(wd))
  truncated = tmp_path / "truncated.py"
  text = config_path.read_text()
  truncated.write_text(text[: text.index("'") + 5])  # inside a string: a SyntaxError
  before = _files(wd)
  _one_error_line(_binary("plan", f"--config={tmp_path}/nope.py"), 2, "nope.py", "No such file")
  _one_error_line(_binary("train", f"--config={truncated}"), 2, "SyntaxError")
  _one_error_line(
    _binary("plan", f"--config={config_path}", "--config.model.kwargs.d_modl=32"),
    2,
    "--config.model.kwargs.d_modl",
    '"d_model"',
  )
  _one_error_line(
    _binary("train", f"--config={config_path}", f"--config.workdir={config_path}"),
    2,
    "config.workdir",
    "is a file",
  )
  _one_error_line(_binary("analyze", f"--workdir={wd}", "--bootstrap_samples=-1"), 2, "bootstrap")
  _one_error_line(_binary("plot", f"--workdir={wd}", "--training_x=steps"), 2, "--training_x")
  assert _files(wd) == before


def test_binaries_report_corrupt_workdir_files_and_nothing_to_fit(base, tmp_path):
  workdir, run_id = base
  wd = str(tmp_path / "wd")
  shutil.copytree(workdir, wd)
  config_path = tmp_path / "config.py"
  write_config_file(config_path, _sweep_config(wd))
  _truncate("sweep.json", 0.5)[1](wd)
  _truncate(f"runs/{run_id}/result.json", 0.5)[1](wd)
  _truncate("scaling_laws.json", 0.5)[1](wd)
  before = _files(wd)
  _one_error_line(_binary("train", f"--config={config_path}"), 2, "sweep.json", "not valid JSON")
  _one_error_line(_binary("plan", f"--config={config_path}"), 2, "sweep.json", "--force")
  _one_error_line(_binary("analyze", f"--workdir={wd}"), 2, "result.json", "not valid JSON")
  _one_error_line(_binary("plot", f"--workdir={wd}"), 2, "scaling_laws.json", "not valid JSON")
  assert _files(wd) == before

  csv = tmp_path / "runs.csv"
  csv.write_text("N,D,loss\n1e3,2e4,nan\n2e3,4e4,inf\n")
  out = tmp_path / "out.json"
  out.write_text("{}")
  proc = _binary("analyze", f"--results={csv}", f"--out={out}")
  _one_error_line(proc, 1, "no approach could be fitted", "not written")
  assert "row2 (non-finite loss)" in proc.stdout and out.read_text() == "{}"


# --- checkpoints -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpointed(tmp_path_factory):
  """A run directory with two checkpoints of a small state: steps 1 and 2."""
  import grain
  import numpy as np

  run_dir = str(tmp_path_factory.mktemp("ckpt") / "run")
  iterator = iter(grain.MapDataset.range(10).to_iter_dataset())
  ckpt = checkpoints.RunCheckpoints(run_dir, "fp", keep=2)
  for step in (1, 2):
    next(iterator)
    progress = {"step": step, "elapsed_seconds": 1.0, "window": {}, "resumed_from": []}
    ckpt.save(step, {"w": np.arange(3.0) * step}, iterator, progress)
    ckpt.wait()
  return run_dir


def _restore(run_dir: str, fingerprint: str = "fp"):
  import grain
  import jax
  import numpy as np

  abstract = {"w": jax.ShapeDtypeStruct((3,), np.float64)}
  iterator = iter(grain.MapDataset.range(10).to_iter_dataset())
  return checkpoints.RunCheckpoints(run_dir, fingerprint, keep=2).restore_latest(abstract, iterator)


def test_an_unreadable_checkpoint_is_skipped_for_the_one_before(checkpointed, tmp_path, caplog):
  """A corrupt or retyped progress record is not an error: the run resumes from step 1."""
  progress = os.path.join("checkpoints", "2", "progress", "metadata")
  corruptions = [_truncate(progress, offset) for offset in OFFSETS]
  corruptions += [
    _set_field(progress, name, value)
    for name, value in (("step", "2"), ("window", []), ("resumed_from", None))
  ]
  for i, (name, corrupt) in enumerate(corruptions):
    run_dir = str(tmp_path / f"case{i}")
    shutil.copytree(checkpointed, run_dir)
    corrupt(run_dir)
    before = _files(run_dir)
    caplog.clear()
    state, restored = _restore(run_dir)
    assert restored["step"] == 1 and list(state["w"]) == [0.0, 1.0, 2.0], name
    assert any("checkpoints/2 is unreadable" in r.getMessage() for r in caplog.records), name
    assert _files(run_dir) == before, name


def test_a_checkpoint_of_another_config_is_a_user_error(checkpointed, tmp_path, capsys):
  run_dir = str(tmp_path / "run")
  shutil.copytree(checkpointed, run_dir)
  before = _files(run_dir)
  with pytest.raises(SystemExit) as exit:
    cli.call(lambda: _restore(run_dir, fingerprint="other"), ERRORS["train"])
  assert exit.value.code == cli.USER_ERROR
  lines = capsys.readouterr().err.strip().splitlines()
  assert len(lines) == 1 and "checkpoint of another config" in lines[0]
  assert _files(run_dir) == before
