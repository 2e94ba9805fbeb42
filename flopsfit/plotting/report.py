"""report.md: the one page a person reads first, with the figures embedded."""

import json
import os
from collections.abc import Sequence
from typing import Any

from flopsfit import workdir as workdir_lib
from flopsfit.analysis import conventions
from flopsfit.analysis.report import interval_label, noise_lines
from flopsfit.plotting import style
from flopsfit.plotting.inputs import Inputs

NAME = workdir_lib.REPORT
CAPTIONS = {
  "isoflop": (
    "IsoFLOP curves",
    "Final loss against N, one colour per budget (dark: small C). "
    "Lines: Approach 2's parabola in ln N per budget; stars: its minimum. Faded: "
    "budgets left out of the power-law fit, with the reason in the legend.",
  ),
  "frontier": (
    "Compute-optimal frontier",
    "N_opt and D_opt against C. Points: Approach 2's "
    "per-budget minima; lines: the Approach 2 and 3 laws with bootstrap bands, "
    "dashed beyond the largest run; diamonds: the prediction budgets.",
  ),
  "loss_compute": (
    "Loss against compute",
    "Every run; Approach 1's lower envelope; "
    "Approach 3's loss along the compute-optimal frontier (band: bootstrap "
    "interval), tending to the irreducible loss E.",
  ),
  "parametric": (
    "Parametric fit",
    "Contours of Approach 3's L(N, D) with the runs, each "
    "budget's IsoFLOP line and the efficient frontier.",
  ),
  "training_curves": (
    "Training curves",
    "Train loss of every run against compute, coloured by N; dots: final eval loss.",
  ),
  "residuals": ("Residuals", "Approach 3: ln predicted − ln observed loss, against C and N."),
}
_KNOWN_CONFIG = (  # (label, dotted path) shown on the report's config line when present
  ("model", "model.factory"),
  ("dataset", "dataset.factory"),
  ("loss", "loss.factory"),
  ("seq_len", "seq_len"),
  ("batch", "train.batch_size"),
  ("lr", "optim.learning_rate"),
  ("schedule", "optim.schedule"),
)


def write(inputs: Inputs, out_dir: str, figures: dict[str, str], missing: Sequence[str]) -> str:
  """Writes `<out_dir>/report.md` (figures: name -> PNG path); returns its path."""
  path = os.path.join(out_dir, NAME)
  text = render(inputs, figures, missing)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, path)
  return path


def render(inputs: Inputs, figures: dict[str, str], missing: Sequence[str]) -> str:
  a = inputs.analysis
  where = inputs.workdir or (a or {}).get("source", {}).get("path") or inputs.analysis_path
  lines = [f"# Scaling laws: `{where}`", ""]
  lines += _setup(inputs)
  if a is not None:
    lines += _laws(a) + _holdout(a) + _predictions(a) + _noise(a)
  lines += _validation(inputs.workdir)
  warnings = list((a or {}).get("warnings") or [])
  if warnings:
    lines += ["## Warnings", ""] + [f"- {w}" for w in warnings] + [""]
  if missing:
    lines += ["## Missing", ""] + [f"- {m}" for m in missing] + [""]
  lines += ["## Figures", ""]
  for name, png in figures.items():
    title, caption = CAPTIONS.get(name, (name, ""))
    lines += [f"### {title}", "", f"![{title}]({os.path.basename(png)})", "", caption, ""]
  if not figures:
    lines += ["No figure could be drawn (see Missing).", ""]
  if inputs.config:
    lines += [
      "<details><summary>Full config</summary>",
      "",
      "```json",
      json.dumps(inputs.config, indent=1, sort_keys=True, default=str),
      "```",
      "",
      "</details>",
      "",
    ]
  return "\n".join(lines)


def _get(config: dict, dotted: str) -> Any:
  for key in dotted.split("."):
    if not isinstance(config, dict) or key not in config:
      return None
    config = config[key]
  return config


def _per_run_hparams(inputs: Inputs) -> dict[str, str]:
  """Batch size and learning rate as the runs used them (a sweep sets them per run through
  `config.hparams`), overriding the config's single-run values."""
  out = {}
  for label, key in (("batch", "batch_size"), ("lr", "learning_rate")):
    values = sorted({r[key] for r in inputs.results.values() if r.get(key) is not None})
    if values:
      out[label] = (
        f"{values[0]:.3g}"
        if len(values) == 1
        else f"{values[0]:.3g} to {values[-1]:.3g} across runs"
      )
  rule = _get(inputs.config, "hparams.factory")
  if out and rule and _get(inputs.config, "sweep"):
    out["per-run rule"] = rule
  return out


def _setup(inputs: Inputs) -> list[str]:
  a = inputs.analysis
  out = ["## Setup", ""]
  if inputs.config:
    known = dict((label, _get(inputs.config, path)) for label, path in _KNOWN_CONFIG)
    known.update(_per_run_hparams(inputs))
    shown = ", ".join(f"{label} `{v}`" for label, v in known.items() if v not in (None, ""))
    if shown:
      out.append(f"- **Config**: {shown} (full config at the end).")
  if a is None:
    out.append(
      f"- **Runs**: {len(inputs.runs)} with a final loss (from result.json); no analysis yet."
    )
    return out + [""]
  src, conv = a.get("source") or {}, a.get("conventions") or {}
  budgets = [b["budget"] for b in a.get("budgets") or []]
  span = (
    f"{len(budgets)} IsoFLOP budgets, {style.sci(budgets[0])} to {style.sci(budgets[-1])} FLOPs"
    if budgets
    else "no budgets"
  )
  out.append(
    f"- **Runs**: {src.get('runs_used', len(a.get('runs') or []))} used, "
    f"{src.get('runs_excluded', len(a.get('excluded_runs') or []))} excluded, of "
    f"{src.get('runs_found', '?')} found in `{src.get('path', '?')}` "
    f"({src.get('kind', '?')}); {span} (budgets from {src.get('budgets_from', '?')})."
  )
  meaning = conventions.flops_meaning(conv.get("flops"))
  out.append(
    f"- **FLOP convention**: C = `{conv.get('flops')}`{f' ({meaning})' if meaning else ''}; "
    f"N = `{conv.get('params')}` parameters; D = `{conv.get('data')}`."
  )
  fm = a.get("flop_model")
  if fm:
    how = (
      "exactly 6·N·D: closed form"
      if fm.get("exact_6ND")
      else f"fitted to the runs, max error {fm.get('max_rel_error') or 0:.2%}: numerical optimum"
    )
    out.append(f"- **FLOP model** for the frontier: {fm['formula']} ({how}).")
  boot, opts = a.get("bootstrap") or {}, a.get("options") or {}
  if boot.get("samples"):
    out.append(
      f"- **Intervals**: central {interval_label(a)} of "
      f"{boot['samples']} bootstrap resamples "
      f"({'within budgets' if boot.get('by_budget') else 'over all runs'}); "
      f"Approach 3 Huber δ = {opts.get('huber_delta', '?')}."
    )
  else:
    out.append("- **Intervals**: none (no bootstrap).")
  return out + [""]


def _laws(a: dict[str, Any]) -> list[str]:
  out = [
    "## Fitted laws",
    "",
    "| approach | N_opt ∝ C^a: a | D_opt ∝ C^b: b | N_opt coefficient | notes |",
    "|---|---|---|---|---|",
  ]
  for name in ("approach1", "approach2", "approach3"):
    sec = a.get(name) or {}
    label = style.APPROACH_LABELS[name]
    if sec.get("status") != "ok":
      out.append(f"| {label} | - | - | - | not fitted: {sec.get('message', 'missing')} |")
      continue
    note = ""
    if name == "approach1":
      note = f"envelope of {len(sec.get('envelope') or [])} runs"
    elif name == "approach2":
      budgets = sec.get("budgets") or []
      note = f"{sum(bool(b.get('included')) for b in budgets)} of {len(budgets)} budgets used"
    else:
      note = f"frontier: {sec.get('frontier_method', '?')}"
    out.append(
      f"| {label} | {style.estimate(sec['N_opt']['exponent'])} | "
      f"{style.estimate(sec['D_opt']['exponent'])} | "
      f"{style.sci_estimate(sec['N_opt']['coefficient'])} | {note} |"
    )
  sec = a.get("approach3") or {}
  if sec.get("status") == "ok":
    p = sec["params"]
    out += [
      "",
      "Approach 3: **L(N, D) = E + A/N^α + B/D^β** with "
      f"E = {style.estimate(p['E'], '.4g')}, A = {style.estimate(p['A'], '.4g')}, "
      f"B = {style.estimate(p['B'], '.4g')}, α = {style.estimate(p['alpha'], '.4f')}, "
      f"β = {style.estimate(p['beta'], '.4f')} (objective {sec.get('objective', 0):.4g}, "
      f"{sec.get('starts_reaching_optimum', '?')} of "
      f"{(sec.get('grid') or {}).get('starts', '?')} starts reach it).",
    ]
  return out + [""]


def _pct(x: float | None) -> str:
  return "-" if x is None else f"{x:+.1%}"


def _holdout(a: dict[str, Any]) -> list[str]:
  h = a.get("holdout") or {}
  out = ["## Held-out check", ""]
  if h.get("status") != "ok":
    return out + [f"Not run: {h.get('message', 'missing')}.", ""]
  text = (
    f"Refitted without the largest budget ({style.sci(h.get('budget'))} FLOPs, "
    f"{h.get('num_runs')} runs) on {h.get('fitted_on_runs')} runs."
  )
  a3 = h.get("approach3") or {}
  if a3.get("mean_abs_rel_error") is not None:
    text += (
      f" Approach 3 predicts the held-out losses with mean |error| "
      f"{a3['mean_abs_rel_error']:.2%} (max {a3['max_abs_rel_error']:.2%}); best loss "
      f"predicted {a3.get('best_loss_predicted') or float('nan'):.4f}, observed "
      f"{a3.get('best_loss_observed') or float('nan'):.4f}."
    )
  elif a3.get("error"):
    text += f" Approach 3: {a3['error']}."
  errors = [
    f"{style.APPROACH_LABELS[n]} {_pct((h.get(n) or {}).get('N_opt_rel_error'))} / "
    f"{_pct((h.get(n) or {}).get('D_opt_rel_error'))}"
    for n in ("approach1", "approach2", "approach3")
    if (h.get(n) or {}).get("N_opt_rel_error") is not None
  ]
  if errors:
    text += (
      " Predicted vs observed N_opt / D_opt of that budget (its parabola minimum): "
      + "; ".join(errors)
      + "."
    )
  return out + [text, ""]


def _interval_note(a: dict[str, Any]) -> str:
  if not (a.get("bootstrap") or {}).get("samples"):
    return "no intervals: no bootstrap"
  return f"{interval_label(a)} interval in brackets"


def _predictions(a: dict[str, Any]) -> list[str]:
  """One row per budget: the primary approach's N, D, D/N and loss, and Approach 2's N_opt."""
  rows = a.get("predictions") or []
  names = [n for n in ("approach3", "approach2", "approach1") if any(n in r for r in rows)]
  if not names:
    return []
  primary = names[0]
  second = "approach2" if primary == "approach3" and "approach2" in names else None
  label = style.APPROACH_LABELS[primary]
  head = "| C (FLOPs) | N_opt | D_opt | D/N | loss |" + (" N_opt, Approach 2 |" if second else "")
  out = [
    "## Predictions",
    "",
    f"Compute-optimal N, D and loss from {label} ({_interval_note(a)}); \\* = extrapolation "
    "beyond the runs. Approach 1's and the rest of Approach 2's are in "
    f"{workdir_lib.SCALING_LAWS}.",
    "",
    head,
    "|---" * (6 if second else 5) + "|",
  ]
  for row in rows:
    mark = "\\*" if row.get("extrapolation") else ""
    r = row.get(primary) or {}
    cells = [
      f"{style.sci(row['C'])}{mark}",
      style.sci_estimate(r.get("N_opt")),
      style.sci_estimate(r.get("D_opt")),
      style.estimate(r.get("D_per_N"), ".3g"),
      style.estimate(r.get("loss"), ".4f") if r.get("loss") else "-",
    ]
    if second:
      cells.append(style.sci_estimate((row.get(second) or {}).get("N_opt")))
    out.append("| " + " | ".join(cells) + " |")
  return out + [""]


def _validation(workdir: str | None) -> list[str]:
  """The check one decade up (`python -m flopsfit.validate`), when validation.json exists."""
  path = workdir and workdir_lib.validation_result_path(workdir)
  if not path or not os.path.exists(path):
    return []
  try:
    v = workdir_lib.read_json_object(path)
    out = ["## Validation beyond the sweep", ""]
    factor = v.get("factor")
    out.append(
      f"Trained at {style.sci(v['budget'])} FLOPs"
      + (f" ({factor:.3g}× the largest swept budget)" if factor else "")
      + f": the predicted compute-optimal size and one size below and above it. Verdict: "
      f"**{v['verdict']}** ({100 * v['interval']:.4g}% intervals)."
    )
    out += ["", "| run | role | N | D | loss | Approach 3 |", "|---|---|---|---|---|---|"]
    for r in v["runs"]:
      predicted = "-" if r.get("predicted_loss") is None else f"{r['predicted_loss']:.4f}"
      out.append(
        f"| {r['run_id']} | {r['role']} | {style.sci(r['N'])} | {style.sci(r['D'])} | "
        f"{r['loss']:.4f} | {predicted} |"
      )
    out += ["", "| check | observed | predicted | interval | inside |", "|---|---|---|---|---|"]
    for name, c in v["checks"].items():
      band = "-" if c.get("lo") is None else f"[{c['lo']:.4g}, {c['hi']:.4g}]"
      observed = "-" if c.get("observed") is None else f"{c['observed']:.4g}"
      predicted = "-" if c.get("predicted") is None else f"{c['predicted']:.4g}"
      inside = {True: "yes", False: "**no**", None: "-"}[c.get("inside")]
      label = name if c.get("decides", True) else f"{name} (for information)"
      out.append(f"| {label} | {observed} | {predicted} | {band} | {inside} |")
    edge = (v.get("observed") or {}).get("edge")
    notes = [f"the lowest loss is at the {edge} size: the optimum lies beyond the runs"] * bool(
      edge
    )
    return out + [""] + [f"- {p}" for p in notes + (v.get("problems") or [])] + [""]
  except (workdir_lib.WorkdirFileError, KeyError, TypeError, ValueError) as e:
    return ["## Validation beyond the sweep", "", f"{path} unreadable: {e}", ""]


def _noise(a: dict[str, Any]) -> list[str]:
  """Run-to-run noise from seeds (`sweep.seeds` of two or more), when the analysis has it."""
  lines = noise_lines(a.get("noise"))
  if not lines:
    return []
  return (
    ["## Run-to-run noise", "", lines[0] + ".", ""] + [f"- {x.strip()}" for x in lines[1:]] + [""]
  )
