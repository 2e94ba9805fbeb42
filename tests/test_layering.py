"""Imports run one way: binaries -> sweep -> engine -> leaves; analysis and plotting read files.

Every `import` in the package (module level or inside functions) is read from the source, so a
new module that imports upward fails here with the offending line.
"""

import ast
import os

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "flopsfit")
BINARIES = {"flopsfit.plan", "flopsfit.train", "flopsfit.analyze", "flopsfit.plot"}
BINARIES |= {"flopsfit.validate"}

# room -> rooms it must not import
FORBIDDEN = {
  "leaf": {"binary", "sweep", "engine", "analysis", "plotting"},
  "engine": {"binary", "sweep", "analysis", "plotting"},
  "sweep": {"binary", "analysis", "plotting"},
  "analysis": {"binary", "sweep", "engine", "plotting"},
  "plotting": {"binary", "sweep", "engine"},
  "binary": set(),
}


def room(module: str) -> str:
  if module in BINARIES:
    return "binary"
  parts = module.split(".")
  if len(parts) > 1 and parts[1] in ("sweep", "engine", "analysis", "plotting"):
    return parts[1]
  return "leaf"


def modules():
  for root, _, files in os.walk(PACKAGE):
    for name in files:
      if name.endswith(".py"):
        path = os.path.join(root, name)
        rel = os.path.relpath(path, os.path.dirname(PACKAGE))[: -len(".py")]
        module = rel.replace(os.sep, ".").removesuffix(".__init__")
        yield module, path


def imported(path: str):
  """(line, module) of every flopsfit module that `path` imports."""
  tree = ast.parse(open(path).read(), path)
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        yield node.lineno, alias.name
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      for alias in node.names:  # `from flopsfit import engine` names a room too
        yield node.lineno, f"{node.module}.{alias.name}"


def test_rooms_exist():
  names = {m for m, _ in modules()}
  assert {"flopsfit.engine.step", "flopsfit.engine.run", "flopsfit.sweep.planner"} <= names
  assert BINARIES <= names


@pytest.mark.parametrize("module,path", sorted(modules()))
def test_imports_run_one_way(module, path):
  bad = []
  for line, target in imported(path):
    if not target.startswith("flopsfit."):
      continue
    # `from flopsfit import workdir` -> flopsfit.workdir; strip attribute names of modules
    if room(target) in FORBIDDEN[room(module)]:
      bad.append(f"{os.path.relpath(path)}:{line} imports {target} ({room(target)})")
  assert not bad, f"{module} ({room(module)}) imports against the direction:\n" + "\n".join(bad)


def test_the_check_catches_an_upward_import(tmp_path):
  """The rule itself: an engine module importing the sweep is reported."""
  path = tmp_path / "bad.py"
  path.write_text("def f():\n  from flopsfit.sweep import planner\n")
  found = [(line, t) for line, t in imported(str(path)) if room(t) in FORBIDDEN["engine"]]
  assert found == [(2, "flopsfit.sweep.planner")]
