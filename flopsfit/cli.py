"""How the four binaries end: a user's mistake is one `error:` line and a documented exit status.

`cli.run(main, user_errors)` replaces `absl.app.run(main)`: flag parsing (including a config
file that cannot be loaded and a `--config.x=y` override of a field that does not exist) and
the errors in `user_errors`, a WorkdirFileError and an OSError naming a path print
`error: <one line>` on stderr and exit `USER_ERROR`; anything else is a bug and keeps its
traceback. The statuses are listed in docs/exit-statuses.md.
"""

import re
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

from absl import app, flags

from flopsfit import workdir as workdir_lib

OK = 0
INCOMPLETE = 1  # train: a run did not complete; analyze: no approach could be fitted
USER_ERROR = 2  # a flag, config field or input file is wrong; nothing was written
PREEMPTED = 75  # train: stopped by a signal after saving a checkpoint (EX_TEMPFAIL)

T = TypeVar("T")


def one_line(message: str) -> str:
  """`message` on one line: its lines joined with '; ', surrounding blanks dropped."""
  return "; ".join(line.strip() for line in str(message).splitlines() if line.strip())


def fail(message: str, status: int = USER_ERROR) -> None:
  """Prints `error: <message>` on one line to stderr and exits with `status`."""
  print(f"error: {one_line(message)}", file=sys.stderr)
  sys.exit(status)


def _unknown_field(error: Exception, argv: Sequence[str]) -> str | None:
  """The message for an override of a config field that does not exist (ml_collections raises
  a KeyError, or an AttributeError holding one), else None."""
  if not (isinstance(error, KeyError) or (error.args and isinstance(error.args[0], KeyError))):
    return None
  cause = error.args[0] if error.args and isinstance(error.args[0], KeyError) else error
  text = cause.args[0] if cause.args and isinstance(cause.args[0], str) else str(cause)
  name, _, hint = text.partition("\n")
  name = name.strip("'\"")
  overrides = [a.lstrip("-").split("=", 1)[0] for a in argv if re.match(r"--?\w+\.", a)]
  matches = [o for o in overrides if name in o.split(".")[1:]]
  if not matches:
    return None
  flag = f"--{matches[0]}"
  hint = f" ({hint.strip().rstrip('?')}?)" if hint.strip() else ""
  return f"{flag}: the config has no field {name!r}{hint}"


def _config_load_error(value) -> str | None:
  """The load error of a config flag whose file could not be read (ml_collections defers it
  to the first access of the config), else None."""
  try:
    getattr(value, "_flopsfit_probe_", None)
  except OSError as e:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return (lines[-1] if lines else str(e)).split("earlier failure to load: ")[-1]
  return None


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing with every failure reported as one line and exit USER_ERROR."""
  try:
    remaining = flags.FLAGS(argv)
  except flags.Error as e:
    fail(_last_meaningful(str(e)))
  except Exception as e:  # a config file that does not import or whose get_config raises
    fail(_unknown_field(e, argv) or f"--config: {type(e).__name__}: {_last_meaningful(str(e))}")
  for name in flags.FLAGS:
    error = _config_load_error(flags.FLAGS[name].value)
    if error:
      fail(f"--{name}={flags.FLAGS[name].config_filename}: cannot load: {error}")
  return remaining


def _last_meaningful(message: str) -> str:
  """The useful part of a message that may embed a traceback (ml_collections adds one to a
  config file's own error): the exception line at its end, else the whole message."""
  if "Traceback (most recent call last)" not in message:
    return one_line(message)
  head = message.split("\n", 1)[0].strip().removesuffix(" Error whilst parsing config file:")
  last = [line.strip() for line in message.splitlines() if line.strip()][-1]
  return f"{head} {last}" if head.startswith("flag --") else last


def call(fn: Callable[[], T], user_errors: tuple[type[Exception], ...] = ()) -> T:
  """`fn()`, with the errors in `user_errors`, a WorkdirFileError, a UsageError and an OSError
  naming a path turned into one `error:` line and exit USER_ERROR."""
  try:
    return fn()
  except (*user_errors, workdir_lib.WorkdirFileError, app.UsageError) as e:
    fail(str(e))
  except OSError as e:  # a path given by the user that cannot be read or written
    if e.filename is None:
      raise
    fail(f"{e.filename}: {e.strerror or e}")


def run(main: Callable[[list[str]], None], user_errors: tuple[type[Exception], ...] = ()) -> None:
  """`absl.app.run(main)` under the error policy above."""

  def guarded(argv: list[str]) -> None:
    if len(argv) > 1:
      fail(f"unexpected arguments: {' '.join(argv[1:])} (flags are --name=value)")
    call(lambda: main(argv), user_errors)

  app.run(guarded, flags_parser=parse_flags)
