"""The workdir's file and folder names are written out once, in flopsfit/workdir.py."""

import ast
import os

from flopsfit import workdir

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "flopsfit")
FILES = {workdir.SWEEP, workdir.SCALING_LAWS, workdir.CONFIG, workdir.METRICS, workdir.RESULT}
FILES |= {workdir.REPORT, workdir.VALIDATION_RESULT}
# Folder names are also ordinary words ("runs" is a key of sweep.json): only a path made of one
# (an argument of os.path.join) counts.
FOLDERS = {workdir.RUNS, workdir.PLOTS, workdir.CHECKPOINTS, workdir.JAX_CACHE, workdir.ARCHIVE}
FOLDERS |= {workdir.VALIDATION}


def literal_names(source: str) -> list[tuple[int, str]]:
  """(line, name) of every workdir name written out as a literal in `source`."""
  found = []
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Constant) and node.value in FILES:
      found.append((node.lineno, node.value))
    elif isinstance(node, ast.Call) and ast.unparse(node.func) == "os.path.join":
      found += [
        (a.lineno, a.value) for a in node.args if isinstance(a, ast.Constant) and a.value in FOLDERS
      ]
  return found


def test_no_workdir_name_is_written_out_twice():
  bad = []
  for root, _, names in os.walk(PACKAGE):
    for name in names:
      path = os.path.join(root, name)
      if name.endswith(".py") and os.path.relpath(path, PACKAGE) != "workdir.py":
        bad += [f"{os.path.relpath(path)}:{n}: {v!r}" for n, v in literal_names(open(path).read())]
  assert not bad, "use the names in flopsfit/workdir.py:\n" + "\n".join(bad)


def test_the_scan_catches_a_literal():
  source = 'import os\np = os.path.join(w, "runs", r, "result.json")\nkey = "runs"\n'
  assert sorted(literal_names(source)) == [(2, "result.json"), (2, "runs")]
