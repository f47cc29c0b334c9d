"""Render a run folder into one self-contained HTML report.

``render(run_dir)`` loads the run (:func:`ablation.stats.records.load`), computes every table with
:mod:`ablation.stats`, draws the figures :func:`ablation.report.figures.plan` picks, and fills the
Jinja2 template ``templates/report.html``. The page has inline CSS and every figure as a PNG
``data:`` URI: no scripts, fonts or other files are fetched, so it opens offline and can be
mailed around. Sections: header, claim verdicts, results per grid point, effects, figures,
failed trials, reproduce.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from ablation.base import backend as backend_module
from ablation.base import files
from ablation.base.phases import PACK_PHASES
from ablation.spec import preregistration
from ablation import stats
from ablation.stats import records as records_module
from ablation.spec import scale
from ablation.spec.claims import SIDES, arm_selectors, scale_selectors
from ablation.report import figures as figures_module
from ablation.report import importance as importance_module

TEMPLATES = Path(__file__).resolve().parent / "templates"
METRIC = "test_error"  # classification; a regression study's tables use test_rmse (primary_metric)
_MINUS = "\u2212"
_STATUS_ORDER = ("completed", "diverged", "failed", "running", "pending")
_MEASURED = ("supported", "not supported", "inconclusive", "too few seeds", "no spread")  # verdicts that show power


def render(run_dir: str | os.PathLike, out_html: str | os.PathLike | None = None, *,
           n_boot: int = stats.N_BOOT, claims: Sequence[Any] | None = None,
           say: Callable[[str], None] | None = None) -> Path:
    """Write the HTML report of a run.

    Args:
        run_dir: a run folder written by ``runner.run``.
        out_html: where to write; default ``<run_dir>/report.html``.
        n_boot: bootstrap resamples of intervals over 30+ seeds (percentile bootstrap, seed 0).
        claims: the study's current claims (default: those of the run's ``spec.json``, as the last
            ``ablation run`` found them); set against the claims the run registered.
        say: receives one line when claims changed after the run (or were registered late).

    Returns:
        The path of the written report (written atomically: a temporary file, then a rename).
    """
    run_dir = Path(run_dir)
    rec = records_module.load(run_dir)
    out = Path(out_html) if out_html is not None else run_dir / "report.html"
    html = render_html(rec, n_boot=n_boot, claims=claims)
    files.atomic_write_text(out, html)
    line = registration_line(rec, claims)
    if say is not None and line:
        say(line)
    return out


def render_html(rec: Any, *, n_boot: int = stats.N_BOOT, claims: Sequence[Any] | None = None) -> str:
    """The report of loaded records (a ``records.Records``) as an HTML string."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("report.html").render(**context(rec, n_boot=n_boot, claims=claims))


def primary_metric(rec: Any) -> str:
    """The metric of the results and effects tables: test_error, or test_rmse for a regression study."""
    from ablation.data import tasks

    task = getattr(getattr(rec, "spec", None), "task", tasks.CLASSIFICATION)
    return f"test_{tasks.primary(task)}"


def context(rec: Any, *, n_boot: int = stats.N_BOOT, claims: Sequence[Any] | None = None) -> dict[str, Any]:
    """Everything the template shows, as plain strings, lists and dicts."""
    trials = rec.trials
    axes = [a for a in rec.axes if a in trials.columns]
    planned = figures_module.plan(rec, metric=primary_metric(rec), n_boot=n_boot)
    drawn = [_draw(f) for f in planned]
    tables = claim_tables(rec, n_boot=n_boot, claims=claims)
    return {
        "header": _header(rec),
        "verdicts": tables["family"],
        "post_hoc": tables["post_hoc"],
        "registration": tables["registration"],
        "sequential": tables["sequential"],
        "rules": _rules(),
        "components": _components(rec, n_boot),
        "results": _results(rec, axes, n_boot),
        "effects": _effects(rec, axes, n_boot),
        "importance": importance_module.section(rec, primary_metric(rec), n_boot=n_boot, fmt_p=_p),
        "effect_figures": [f for f in drawn if f["section"] == "effects"],
        "figures": [f for f in drawn if f["section"] == "figures"],
        "failures": _failures(trials),
        "reproduce": _reproduce(rec),
        "method": (f"95% confidence intervals are over seeds, one value per seed (the unit of replication): "
                   f"Student's t intervals below {stats.BOOTSTRAP_MIN_N} seeds, percentile bootstrap intervals "
                   f"({n_boot:,} resamples, seed 0) from there; effects pair runs by seed."),
    }


def verdict_rows(rec: Any, *, n_boot: int = stats.N_BOOT, claims: Sequence[Any] | None = None) -> list[dict[str, Any]]:
    """One row per claim of the study's Holm family (the claims the run registered), as the report's
    claim table shows it (formatted strings)."""
    return claim_tables(rec, n_boot=n_boot, claims=claims)["family"]


def standings(rec: Any, claims: Sequence[Any] | None = None) -> tuple[list[Any], list[Any], dict[str, Any] | None]:
    """The claims of the Holm family (those the run registered), the post-hoc ones (changed or added
    after the run: ``preregistration.ClaimStatus``), and the registration entry (None: the run registered none,
    and the family is the current claims)."""
    current = list(claims) if claims is not None else list(rec.spec.claims)
    reg = preregistration.registered(getattr(rec, "meta", None))
    if reg is None:
        return [preregistration.ClaimStatus(c.id, "registered", c, c) for c in current], [], None
    registered, entry = reg
    status = {s.id: s for s in preregistration.compare(registered, current)}
    family = [dataclasses.replace(status[c.id], claim=c) for c in registered]
    return family, [s for s in status.values() if s.post_hoc], entry


def claim_tables(rec: Any, *, n_boot: int = stats.N_BOOT, claims: Sequence[Any] | None = None) -> dict[str, Any]:
    """The claim table (the registered claims, Holm-adjusted), the post-hoc claims (unadjusted, each with
    what changed) and a note on the registration."""
    trials = rec.trials
    axes = [a for a in rec.axes if a in trials.columns]
    family, post_hoc, entry = standings(rec, claims)
    paper = scale.paper_spec(rec.spec)
    kw = dict(evaluations=rec.evaluations, curves=rec.curves, axes=axes, n_boot=n_boot)
    looks = stats.looks_of(getattr(rec, "meta", None), [s.claim for s in family])
    gaps = scale_gaps([s.claim for s in family + post_hoc], rec.spec, paper)
    verdicts = stats.claim_verdicts([s.claim for s in family], trials, looks=looks, scale_gaps=gaps, **kw)
    rows = [_verdict_row(s.claim, v, rec, paper, s) for s, v in zip(family, verdicts)]
    apart = stats.claim_verdicts([s.claim for s in post_hoc], trials, scale_gaps=gaps, **kw)
    for v in apart:  # outside the study's family: no Holm adjustment
        v.update(verdict_holm="post hoc", p_holm=float("nan"))
    current = {c.id: c for c in (claims if claims is not None else rec.spec.claims)}
    return {"family": _labelled(rows, current),
            "post_hoc": _labelled([_verdict_row(s.claim, v, rec, paper, s) for s, v in zip(post_hoc, apart)], current),
            "registration": _registration_note(entry, post_hoc), "sequential": _sequential_note(rec, looks)}


def _labelled(rows: list[dict[str, Any]], current: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each claim row with the study file's labels of that claim (``spec.claims.LABELS``): ``sanity`` (why it
    cannot fail: shown as a sanity check and left out of the evidence counts) and ``weaker`` (how it is
    weaker than the paper's claim). Labels say how far a claim counts, not what it tests, so they come
    from the current study file even for a claim the run registered without them."""
    for r in rows:
        c = current.get(r["id"])
        r["sanity"] = getattr(c, "sanity", "") or ""
        r["weaker"] = getattr(c, "weaker_than_paper", "") or ""
    return rows


def evidence(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The claim rows that count as evidence: all but the sanity checks."""
    return [r for r in rows if not r.get("sanity")]


def _sequential_note(rec: Any, looks: dict[str, tuple[int, list[int]]] | None) -> str | None:
    """What the page says about a run that added seeds until its claims were decided."""
    if not looks:
        return None
    state = rec.meta.get(stats.claims.SEQUENTIAL, {})
    done = [lk for lk in state.get("looks", []) if lk.get("status") == "done"]
    per_claim = "; ".join(f"{cid} at look {k} ({len(seeds)} seeds)" for cid, (k, seeds) in looks.items())
    undecided = [cid for cid in looks if cid not in (state.get("decided") or {})]
    text = (f"Seeds were added until the claims were decided (--until-decided, at most {state.get('max_seeds')} "
            f"seeds, {state.get('step')} per look): {len(done)} look{'s' if len(done) != 1 else ''}. Each claim is "
            f"judged on the seeds it had at the look that decided it, at that look's confidence level "
            f"1 \u2212 0.05\u00b76/(\u03c0\u00b2k\u00b2) (look 1: {stats.look_level(1):.4f}), so that the "
            f"repeated looks keep the error rate at 5%: {per_claim}.")
    if undecided:
        text += f" Still undecided at the last look: {', '.join(undecided)}."
    return text


def scale_gaps(claims: Sequence[Any], spec: Any, paper: Any) -> dict[str, str]:
    """For each claim marked ``paper_scale``: why its arms depart from the paper's scale (none if they do not)."""
    out = {}
    for c in claims:
        if not getattr(c, "paper_scale", False):
            continue
        sides = [scale_selectors(c, sel) for side in SIDES if getattr(c, side) is not None
                 for sel in arm_selectors(c, side)]
        gaps = list(dict.fromkeys(r for sels in sides for r in scale.departure_reasons(spec, sels, paper)))
        if gaps:
            out[c.id] = "; ".join(gaps)
    return out


def registration_line(rec: Any, claims: Sequence[Any] | None = None) -> str | None:
    """One line for the command line when the claims the report checks are not simply those the run
    registered when it started; None otherwise."""
    _, post_hoc, entry = standings(rec, claims)
    if post_hoc:
        ids = ", ".join(f"{s.id} ({s.status.removesuffix(' after the run')})" for s in post_hoc)
        return (f"claims edited after the run: {ids}; the report shows them apart, outside the Holm family "
                f"(re-register with 'ablation run ... --register-claims', which the report then records)")
    if entry is None:
        return "this run registered no claims: the report checks the study file's current ones"
    if entry.get("reason") != preregistration.AT_START:
        return f"claims registered after {entry.get('finished_trials', 0)} trials had finished ({entry.get('reason')})"
    return None


def _registration_note(entry: dict[str, Any] | None, post_hoc: Sequence[Any]) -> dict[str, Any]:
    """What the page says about when the claims were fixed."""
    if entry is None:
        return {"late": True, "text": "This run registered no claims (it predates registration): the claims below "
                                      "are the study file's current ones, which could have been written after the "
                                      "results were seen."}
    when, n, digest = entry.get("registered", "?"), int(entry.get("finished_trials") or 0), str(entry.get("hash", ""))
    text = f"Claims registered {when} (sha256 {digest[:12]})"
    late = entry.get("reason") != preregistration.AT_START
    if entry.get("reason") == preregistration.AT_START:
        text += ", when the run started, before any trial had finished."
    elif entry.get("reason") == preregistration.ON_REQUEST:
        text += f", registered again on request (--register-claims) after {n} trials had finished."
    else:
        text += f", after {n} trials had finished: the run predates registration."
    if post_hoc:
        text += (f" {len(post_hoc)} claim{'s were' if len(post_hoc) > 1 else ' was'} changed or added after the run: "
                 f"shown apart below, outside the Holm family.")
    return {"late": late or bool(post_hoc), "text": text}


# --------------------------------------------------------------------------- formatting

def _is_rate(metric: str) -> bool:
    return "error" in metric or "accuracy" in metric


def fmt_value(value: Any, metric: str = METRIC) -> str:
    """A metric value: errors and accuracies in percent, anything else with 4 significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "\u2014"
    text = f"{100 * value:.2f}%" if _is_rate(metric) else f"{value:.4g}"
    return text.replace("-", _MINUS)


def fmt_effect(value: Any, metric: str, effect: str) -> str:
    """An effect: differences of rates in percentage points, ratios as ×r."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "\u2014"
    if effect == "ratio":  # three decimals, or three significant digits below 0.1 (a ratio of 2e-4 is not 0)
        return f"\u00d7{value:.3f}" if abs(value) >= 0.1 or value == 0 else f"\u00d7{value:.3g}".replace("-", _MINUS)
    text = f"{100 * value:+.2f} pp" if _is_rate(metric) else f"{value:+.4g}"
    return text.replace("-", _MINUS)


def _ci(lo: Any, hi: Any, fmt: Any) -> str:
    if lo is None or hi is None or not (np.isfinite(lo) and np.isfinite(hi)):
        return "(no CI: fewer than 2 seeds)"
    return f"[{fmt(lo)}, {fmt(hi)}]"


def _items(obj: Any) -> list[tuple[str, str]]:
    """(key, text) pairs of a dataclass or mapping, leaving out empty values."""
    data = dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else dict(obj or {})
    return [(str(k), _show(v)) for k, v in data.items() if v not in (None, {}, (), [], "")]


def _show(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_show(v)}" for k, v in value.items()) or "{}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# --------------------------------------------------------------------------- sections

def _header(rec: Any) -> dict[str, Any]:
    spec, meta, trials = rec.spec, rec.meta or {}, rec.trials
    counts = trials["status"].astype(str).value_counts() if len(trials) else pd.Series(dtype=int)
    order = [s for s in _STATUS_ORDER if s in counts] + [s for s in counts.index if s not in _STATUS_ORDER]
    data = [("name", spec.data.label), *_items({**spec.data.options, "validation_size": spec.data.validation_size,
                                               "train_size": spec.data.train_size or "all"})]
    if spec.data.task != "classification":
        data.append(("task", spec.data.task))
    wall = meta.get("wall_time_s")
    return {
        "name": spec.name, "description": spec.description,
        "claims": [(c.id, c.statement) for c in spec.claims],
        "data": data, "model": [("name", spec.model.name), *_items(spec.model.args)],
        "train": _items(spec.train), "evaluate": _items(spec.evaluate),
        "grid": [(a.name, a.section, ", ".join(a.labels)) for a in spec.grid],
        "seeds": ", ".join(str(s) for s in spec.seeds), "probes": ", ".join(spec.probes) or "none",
        "profile": spec.profile or meta.get("profile") or "none",
        "backend": backends(trials, spec, meta), "backend_choice": backend_chosen(meta),
        "hardware": _items(meta.get("hardware")), "versions": _items(meta.get("versions")),
        "wall_time": _wall_text(wall, meta.get("invocations")),
        "created": meta.get("created") or "\u2014", "finished": meta.get("finished") or "\u2014",
        "counts": [(s, int(counts[s])) for s in order], "n_trials": len(trials),
        "penalty": _penalty_note(spec), "time": time_breakdown(meta, trials),
    }


# "Where the time went" in words for the packs' phases (ablation.base.phases), shown in PACK_PHASES' order.
_PHASE_WORDS = {"worker_start": "workers' start-up (imports, joining the chief)", "data": "loading the data",
                "build": "building the models", "compile": "compiling (first epochs beyond the later ones)",
                "train": "training steps", "evaluate": "validation and test evaluation", "probes": "probes",
                "writes": "writing the records"}


def time_breakdown(meta: Mapping[str, Any], trials: pd.DataFrame) -> list[tuple[str, str]]:
    """Where a run's time went, summed over its invocations (run.json): start-up and imports, the checks, the
    trials, split by the packs' phases (:mod:`ablation.base.phases`: the workers' start-up, data, build,
    compile, train, evaluate, probes, writes), and reading the records back. Runs recorded before phases
    existed split the trials' time from their first epochs (compilation) and the others."""
    totals: dict[str, float] = {}
    for inv in meta.get("invocations") or []:
        for key, value in ((inv or {}).get("phases") or {}).items():
            if isinstance(value, (int, float)):
                totals[key] = totals.get(key, 0.0) + float(value)
    if not totals:
        return []
    out = [("start-up and imports", totals.get("start_s")), ("checks before the first trial", totals.get("checks_s")),
           ("trials (all packs, until the last ended)", totals.get("trials_s"))]
    packed = [(f"  of which {_PHASE_WORDS[name]}", totals[f"{name}_s"]) for name in ("worker_start", *PACK_PHASES)
              if f"{name}_s" in totals]
    if packed:
        out += packed
    elif {"pack_id", "first_epoch_time_s", "time_per_epoch_s", "epochs_run"} <= set(trials.columns) and len(trials):
        packs = trials.dropna(subset=["pack_id"]).groupby("pack_id").first()
        first = pd.to_numeric(packs["first_epoch_time_s"], errors="coerce")
        per = pd.to_numeric(packs["time_per_epoch_s"], errors="coerce")
        epochs = pd.to_numeric(packs["epochs_run"], errors="coerce")
        out += [("  of which first epochs beyond the others (compilation)", float((first - per).clip(lower=0).sum())),
                ("  of which the other epochs", float((per * (epochs - 1).clip(lower=0)).sum()))]
    out.append(("reading the records back (CSV)", totals.get("records_s")))
    return [(k, f"{v:.1f} s") for k, v in out if isinstance(v, (int, float))]


def _wall_text(wall: Any, invocations: Any) -> str:
    """The run's own time: the sum of its invocations (``ablation run`` commands), not the calendar span."""
    if not isinstance(wall, (int, float)):
        return "running time \u2014"
    n = len(invocations) if isinstance(invocations, list) else 0
    return f"running time {wall:.1f} s" + (f" over {n} invocations" if n > 1 else "")


def backends(trials: pd.DataFrame, spec: Any = None, meta: dict | None = None) -> str:
    """The Keras backend(s) the trials ran on (their own rows first, then the run's spec)."""
    ran = sorted(str(b) for b in trials["backend"].dropna().unique()) if "backend" in trials else []
    return ", ".join(ran) or getattr(spec, "backend", None) or ((meta or {}).get("overrides") or {}).get("backend") \
        or "\u2014"


def backend_chosen(meta: Mapping[str, Any] | None) -> str:
    """Who chose the run's backend and why (run.json ``backend_choice``), as ``chosen by ...: reason``; ""
    when run.json does not say (runs from before it was recorded)."""
    choice = (meta or {}).get("backend_choice")
    if not isinstance(choice, Mapping) or not choice.get("chosen_by"):
        return ""
    return backend_module.chosen_text(choice["chosen_by"], choice.get("reason"))


def _penalty_note(spec: Any) -> str | None:
    """The L1/L2 penalty formula, when the study uses weight penalties anywhere."""
    used = {k for k, v in spec.model.args.items() if k in ("l1", "l2") and v}
    for axis in spec.grid:
        if axis.name in ("l1", "l2"):
            used.add(axis.name)
        if axis.section == "config":
            used |= {k for v in axis.values for k in v if k in ("l1", "l2")}
    if not used:
        return None
    return ("Weight penalties (Keras L1L2 on every kernel): loss + l1\u00b7\u03a3|w| + l2\u00b7\u03a3w\u00b2, "
            "with no factor 1/2 on the L2 term (so l2 here is half the \u03bb of texts that write "
            "\u03bb/2\u00b7\u03a3w\u00b2).")


def _rules() -> list[str]:
    """The verdict rules, as the page states them (the numbers come from ``stats``)."""
    return [
        f"One value per seed: runs that share a seed are averaged over the grid points the claim leaves free, "
        f"then the interval is taken over seeds (Student's t below {stats.BOOTSTRAP_MIN_N} seeds).",
        "supported: the whole 95% interval lies on the claimed side of the threshold (inside threshold \u00b1 "
        "tolerance for \u201cnear\u201d); not supported: wholly on the other side; inconclusive: anything else.",
        f"too few seeds: fewer than {stats.MIN_SEEDS} seeds have every run the claim compares (a seed missing a run, or "
        "whose run diverged or failed, is left out and named); the numbers are shown, no verdict is given.",
        "no spread: every seed gives the same value (often a bound of the measurement, such as the budget's floor or no "
        "events at all), so there is no interval and no p-value; a verdict only where the claim declared a margin and "
        "the value lies at least that far from the threshold.",
        "treatment inert: the claim declares a manipulation check (a metric the treatment must move, e.g. a weight "
        "norm) and the treatment did not move it by the declared amount, so the comparison says nothing about it.",
        f"What it would take: from the per-seed standard deviation, the smallest distance from the threshold these "
        f"seeds detect with power {stats.POWER:.0%}, and the seeds that would detect the published effect (where the "
        f"claim gives one) or the observed one; for test error, the test set's binomial noise floor "
        f"(1.96·sqrt(e(1−e)/N), ×√2 for a difference), which no number of seeds removes.",
        "P(compare better): the share of (compare, against) seed pairs in which the compare arm is better, ties "
        "counting one half (Agarwal et al. 2021), with a stratified bootstrap interval.",
        "Pre-registration: the claims checked here are the ones the run registered when it started; a claim changed or "
        "added in the study file afterwards is shown apart, outside the Holm family.",
        f"arm did not train: a compared grid point's mean test error is within {stats.CHANCE_MARGIN:.0%} of chance "
        f"(1 \u2212 1/classes), its training error is at least {stats.TRAIN_FRACTION:.0%} of chance, or none of its "
        "runs completed (every one diverged or failed); claims about "
        "the network at initialization or about divergence are exempt, and a claim may allow a side not to train "
        "when that is what it says. For regression, an arm did not train when its mean test or training RMSE is at "
        f"least {stats.REGRESSION_FRACTION:.0%} of the RMSE of predicting the training set's mean.",
        "p: two-sided (twice the one-sided t test's p on the side the interval points to; two one-sided tests for "
        "\u201cnear\u201d), so p < 0.05 exactly when the 95% interval excludes the threshold. Holm: the verdicts of "
        "the study's registered claims taken together, with Holm's step-down adjustment of their p-values, keep the "
        "family-wise error at 5%.",
    ]


def _verdict_row(claim: Any, v: dict[str, Any], rec: Any, paper: Any, standing: Any = None) -> dict[str, Any]:
    metric, kind = v["metric"], claim.kind
    effect = ("ratio" if claim.ratio else "difference") if claim.has_baseline or kind == "range" else "value"
    if kind == "best":
        effect = "difference"
    fmt = (lambda x: fmt_value(x, metric)) if effect == "value" else (lambda x: fmt_effect(x, metric, effect))
    if effect == "value" and _is_rate(metric):  # a rate's interval stays inside [0, 1]
        v = {**v, "ci_lo": _clip01(v["ci_lo"]), "ci_hi": _clip01(v["ci_hi"])}
    what = {"level": f"mean {metric}", "effect": f"\u0394 {metric}", "within": f"\u0394 {metric}",
            "separation": f"worst compare arm \u2212 best against arm, {metric}",
            "range": f"max \u2212 min of {metric}", "best": "smallest margin over the best level inside",
            "interaction": f"\u0394\u0394 {metric}"}[kind]
    if effect == "ratio":
        what = f"{metric} ratio"
    chosen = claim.chosen({side: pick["chosen"] for side, pick in (v.get("selected") or {}).items()})
    arms = {side: arm_selectors(chosen, side)[0] for side in SIDES if getattr(chosen, side) is not None}
    seeds = v["n"] or len(rec.spec.seeds)
    lines = [(side, scale.scale_line(rec.spec, scale_selectors(claim, sel), seeds, paper))
             for side, sel in arms.items()]
    lines = [(side, text) for side, text in lines if text]
    if len(lines) == 2 and lines[0][1] == lines[1][1]:
        lines = [("both arms", lines[0][1])]
    measured = f"{what} = {fmt(v['estimate'])}"
    if v.get("best_level") is not None:
        measured = f"best {claim.over} = {v['best_level']}; {measured}"
    return {"id": v["id"], "statement": v["statement"], "source": v["source"], "published": v["published"] or "\u2014",
            "approx": bool(v["approx"]), "measured": measured,
            "ci": _ci(v["ci_lo"], v["ci_hi"], fmt) + (f" ({100 * v['level']:.2f}% CI at look {v['look']})"
                                                       if v.get("look") is not None else ""),
            "ci_short": _ci(v["ci_lo"], v["ci_hi"], fmt) if np.isfinite(v["ci_lo"]) else "",
            "method": v["method"] or "", "n": v["n"], "verdict": v["verdict"], "reason": v["reason"],
            "holm": v["verdict_holm"], "p": _p(v["p_value"]), "p_holm": _p(v["p_holm"]), "test": v["test"],
            "note": v.get("rule") or None, "scale": lines, "poi": _poi(v),
            "power": _power(v, metric, claim) if v["verdict"] in _MEASURED else None,
            "floor": _floor(v, metric) if v["verdict"] in _MEASURED else None, "left_out": _left_out(v), "check": _check(v, claim),
            "selected": _selected(v, metric),
            "standing": standing.status if standing is not None else "registered",
            "changes": list(standing.changes) if standing is not None else []}


def _selected(v: dict[str, Any], metric: str) -> str | None:
    """Which level each selecting side took, by its mean validation metric (``select``), in words."""
    if not v.get("selected"):
        return None
    parts = []
    for side, pick in v["selected"].items():
        means = ", ".join(f"{lab} {fmt_value(m, pick['by'])}" for lab, m in pick["means"].items())
        parts.append(f"{side}: {pick['axis']}={pick['chosen']} (of {means})")
    return f"selected on the validation split by mean {v['select']}, before {metric} was read: " + "; ".join(parts)


def _poi(v: dict[str, Any]) -> str | None:
    """The probability of improvement with its interval (rliable), for claims comparing two arms."""
    poi = v.get("poi")
    if not poi or not np.isfinite(poi[0]):
        return None
    ci = f" [{poi[1]:.2f}, {poi[2]:.2f}]" if np.isfinite(poi[1]) else ""
    return f"P(compare better) = {poi[0]:.2f}{ci}"


def _power(v: dict[str, Any], metric: str, claim: Any) -> str | None:
    """Power at this n and the seeds that would settle the claim, in words."""
    if not np.isfinite(v.get("detectable", np.nan)):
        return None
    ratio = getattr(claim, "ratio", False)
    detectable = (f"×{np.exp(v['detectable']):.3g}" if ratio
                  else fmt_effect(v["detectable"], metric, "difference").lstrip("+"))
    text = f"detectable at {v['n']} seeds (power {stats.POWER:.0%}): {detectable} from the threshold"
    needed = v.get("seeds_needed", np.nan)
    what = "the published effect" if v.get("target_from") == "published" else "the observed effect"
    if np.isfinite(needed):
        text += f"; {int(needed)} seeds would detect {what}"
    elif needed == np.inf:
        text += f"; more than {stats.MAX_POWER_SEEDS:,} seeds would be needed for {what}"
    return text


def _floor(v: dict[str, Any], metric: str) -> str | None:
    if not np.isfinite(v.get("noise_floor", np.nan)):
        return None
    text = (f"test-set noise floor ±{fmt_effect(v['noise_floor'], metric, 'difference').lstrip('+')} "
            f"({v['test_size']:,} examples)")
    return text + ": the effect lies below it" if v.get("below_floor") else text


def _left_out(v: dict[str, Any]) -> str | None:
    left = v.get("left_out") or {}
    if not left:
        return None
    return "seeds left out: " + "; ".join(f"{seed} ({why})" for seed, why in left.items())


def _check(v: dict[str, Any], claim: Any) -> str | None:
    check = getattr(claim, "check", None)
    if not check or not np.isfinite(v.get("check_delta", np.nan)):
        return None
    return f"manipulation check: mean Δ {check['metric']} = {v['check_delta']:.4g} (needs {check['expect']} by {check['by']:g})"


def _clip01(x: Any) -> Any:
    """A bound of a rate's interval, kept inside [0, 1] (a t interval of errors near 0 can reach below)."""
    return min(max(float(x), 0.0), 1.0) if x is not None and np.isfinite(x) else x


def _p(p: Any) -> str:
    return "\u2014" if p is None or not np.isfinite(p) else (f"{p:.2g}" if p >= 0.001 else "<0.001")


def _ordered(frame: pd.DataFrame, rec: Any, columns: Sequence[str]) -> pd.DataFrame:
    """Rows sorted by the study file's order of each axis's levels."""
    orders = rec.level_orders(list(columns))
    if frame.empty or not columns:
        return frame
    keys = [frame[c].map(lambda v, o=orders[c]: o.index(v) if v in o else len(o)) for c in columns]
    return frame.iloc[np.lexsort([k.to_numpy() for k in reversed(keys)])].reset_index(drop=True)


def _results(rec: Any, axes: Sequence[str], n_boot: int) -> dict[str, Any]:
    metric = primary_metric(rec)
    trials = rec.trials if metric in rec.trials.columns else rec.trials.assign(**{metric: np.nan})
    table = _ordered(stats.summarize(trials, axes, metric, n_boot=n_boot), rec, axes)
    fmt = lambda x: fmt_value(x, metric)  # noqa: E731
    rows = [{"axes": [stats.axis_label(r[a]) for a in axes], "mean": fmt(r["mean"]),
             "ci": _ci(_clip01(r["ci_lo"]), _clip01(r["ci_hi"]), fmt) if _is_rate(metric) else
             _ci(r["ci_lo"], r["ci_hi"], fmt), "n": int(r["n"]), "failed": int(r["n_failed"]),
             "diverged": int(r["n_diverged"])} for _, r in table.iterrows()]
    return {"axes": list(axes), "metric": metric, "rows": rows}


def _components(rec: Any, n_boot: int) -> dict[str, Any] | None:
    """A generated ablation study (an ``ablate`` axis): its components ranked by their paired effect."""
    metric = primary_metric(rec)
    table = stats.component_effects(rec.trials, metric, lower_is_better=True, n_boot=n_boot)
    if table.empty:
        return None
    fmt = lambda x: fmt_effect(x, metric, "difference")  # noqa: E731
    pct = lambda x: "\u2014" if not np.isfinite(x) else f"{100 * x:.0f}%"  # noqa: E731
    rows = [{"rank": i + 1, "component": r["component"], "change": r["change"], "estimate": fmt(r["estimate"]),
             "ci": _ci(r["ci_lo"], r["ci_hi"], fmt), "poi": pct(r["poi"]), "poi_ci": _ci(r["poi_lo"], r["poi_hi"], pct),
             "n": int(r["n_pairs"]), "sign": _sign(r["ci_lo"], r["ci_hi"]),
             "sentence": stats.components.sentence(r, metric, fmt)} for i, (_, r) in enumerate(table.iterrows())]
    return {"metric": metric, "reference": str(table["reference"].iloc[0]), "rows": rows}


def _effects(rec: Any, axes: Sequence[str], n_boot: int) -> list[dict[str, Any]]:
    """Paired deltas of every varying axis against its first level in the study file."""
    metric = primary_metric(rec)
    if metric not in rec.trials.columns:
        return []
    out = []
    for axis in rec.spec.grid:
        column = rec.trials[axis.name] if axis.name in axes else None
        baseline = records_module.axis_column_value(axis, axis.labels[0])
        if column is None or column.map(str).nunique() < 2 or not stats.matches(column, baseline).any():
            continue
        table = stats.paired_deltas(rec.trials, axis.name, baseline, metric, axes=axes, n_boot=n_boot)
        others = [a for a in axes if a != axis.name]
        table = _ordered(table.rename(columns={"level": axis.name}), rec, [*others, axis.name])
        out.append({"axis": axis.name, "baseline": axis.labels[0],
                    "rows": _effect_rows(table, axis.name, others, metric),
                    "speed": _speed_rows(rec, axis, baseline, others, n_boot)})
    return out


def _speed_rows(rec: Any, axis: Any, baseline: Any, others: Sequence[str], n_boot: int) -> list[dict[str, Any]]:
    """Epochs each level needs to reach its same-seed baseline's best validation error (C6).

    One row per (other-axes combination, level): the geometric mean of the ratios target / baseline
    epochs over the seeds that got there, its confidence interval, and how many seeds got there at all.
    """
    curves = rec.curves
    if curves.empty or not ((curves["split"] == "val") & (curves["metric"] == "error")).any():
        return []
    fmt = lambda x: "\u2014" if not np.isfinite(x) else f"{x:.2f}x"  # noqa: E731
    rows = []
    for label in axis.labels[1:]:
        level = records_module.axis_column_value(axis, label)
        table = stats.epochs_to_reach(curves, {axis.name: level}, {axis.name: baseline}, within=list(others))
        if table.empty:
            continue
        for key, group in table.groupby(list(others), sort=False) if others else [((), table)]:
            key = key if isinstance(key, tuple) else (key,)
            ratios = group["ratio"].to_numpy(dtype=float)
            reached = ratios[np.isfinite(ratios) & (ratios > 0)]
            est, lo, hi, _, _ = stats.effect_interval(reached, np.ones(len(reached)), "ratio", n_boot=n_boot)
            rows.append({"at": ", ".join(f"{a}={stats.axis_label(v)}" for a, v in zip(others, key)) or "\u2014",
                         "level": label, "ratio": fmt(est), "ci": _ci(lo, hi, fmt),
                         "reached": f"{len(reached)} of {len(ratios)}"})
    return rows


def _effect_rows(table: pd.DataFrame, axis: str, others: Sequence[str], metric: str = METRIC) -> list[dict[str, Any]]:
    fmt = lambda x: fmt_effect(x, metric, "difference")  # noqa: E731
    return [{"at": ", ".join(f"{a}={stats.axis_label(r[a])}" for a in others) or "\u2014",
             "level": stats.axis_label(r[axis]), "estimate": fmt(r["estimate"]),
             "ci": _ci(r["ci_lo"], r["ci_hi"], fmt), "n": int(r["n_pairs"]), "sign": _sign(r["ci_lo"], r["ci_hi"])}
            for _, r in table.iterrows()]


def _sign(lo: float, hi: float) -> str:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "no CI"
    return "lower" if hi < 0 else "higher" if lo > 0 else "CI contains 0"


def _draw(figure: figures_module.Figure) -> dict[str, Any]:
    """Draw one planned figure as a PNG data URI; a failure becomes a visible note, not a crash."""
    out = {"key": figure.key, "title": figure.title, "caption": figure.caption, "section": figure.section,
           "uri": None, "error": None}
    try:
        out["uri"] = figures_module.to_data_uri(figure.draw())
    except Exception as exc:  # noqa: BLE001 - a broken figure must not lose the rest of the report
        warnings.warn(f"figure {figure.key!r} could not be drawn: {exc}", RuntimeWarning, stacklevel=2)
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


def _failures(trials: pd.DataFrame) -> list[dict[str, Any]]:
    bad = trials[trials["status"].astype(str) != "completed"]
    columns = ("trial_id", "point", "seed", "status", "failed_epoch", "reason")
    return [{c: _blank(r.get(c)) for c in columns} for _, r in bad.iterrows()]


def _blank(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _reproduce(rec: Any) -> dict[str, Any]:
    meta, spec = rec.meta or {}, rec.spec
    run_dir = getattr(rec, "run_dir", None)
    text = spec.source_text
    if not text and run_dir is not None and (Path(run_dir) / "study.toml").exists():
        text = (Path(run_dir) / "study.toml").read_text(encoding="utf-8")
    return {"command": meta.get("command") or f"ablation run {spec.name}.toml", "hash": meta.get("hash") or spec.hash,
            "run_name": Path(run_dir).name if run_dir is not None else spec.run_name, "study_text": text}
