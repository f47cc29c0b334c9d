"""The metrics a study records: the columns of ``records.trials`` that a claim may name.

A trial's row holds three kinds of metric:

- the runner's own, by task (:func:`always`; :func:`needs_validation` when the study has a
  validation set; :func:`needs_early_stopping` when some trial stops early),
- the probes' per-trial summaries (``ablation.train.probes.SUMMARY_KEYS``; :data:`PROBE_OF` says which
  probe records each one), when that probe is on,
- evaluation columns ``<metric>@<mode>`` / ``<metric>@<mode>:k=<k>`` (``test_error@mc_dropout:k=50``,
  named as ``ablation.stats.evaluation_metrics`` names them), when ``[evaluate]`` asks for them.

:func:`claim_metric_problem` says why a study's runs would not produce a column (None when they
would); the runner checks every claim's ``metric`` and ``against_metric`` with it before the
first trial (:func:`check_claims`), so a typo fails in a second, not after the last trial.
"""

from __future__ import annotations

import difflib
import re

from ablation.data import tasks
from ablation.train.probes import NEEDS_TARGET, SUMMARIES
from ablation.spec import SpecError, StudySpec
from ablation.spec.claims import TARGET_METRICS

PROBE_OF: dict[str, str] = {key: probe for probe, keys in SUMMARIES.items() for key in keys}

TIMINGS = ("first_epoch_time_s", "time_per_epoch_s", "train_size", "wall_time_s", "epochs_run", "steps_run")
ALWAYS_DERIVED = ("diverged",)  # 1 for a diverged trial, 0 for a completed one (ablation.stats)
# classification: from the validation error curves (ablation.stats), per pair or per run with the claim's target
NEEDS_CURVES = ("epochs_to_baseline_best", *TARGET_METRICS)
EVALUATED = ("test_error", "test_loss")  # the metrics every evaluation mode records (classification)
EVALUATION_RE = re.compile(r"^(test_error|test_loss)@(weight_scaling|mc_dropout|dropconnect_scaling|"
                           r"dropconnect_gaussian|dropconnect_mc)(?::k=(\d+))?$")


def always(task: str = tasks.CLASSIFICATION) -> tuple[str, ...]:
    """The runner's metrics of every completed trial: test and training scores of the task, timings;
    for regression also the RMSE of predicting the training mean (``baseline_test_rmse``, ...)."""
    scores = tasks.SCORES[tasks.check(task)]
    out = [f"test_{k}" for k in scores] + [f"train_{k}" for k in scores if k != "accuracy"]
    if task == tasks.REGRESSION:
        out += ["baseline_test_rmse", "baseline_train_rmse"]
    return tuple(out) + TIMINGS


def needs_validation(task: str = tasks.CLASSIFICATION) -> tuple[str, ...]:
    """The metrics a trial records when the study has a validation set."""
    primary = tasks.primary(task)
    return ("val_loss", f"val_{primary}", f"best_val_{primary}", "best_val_epoch")


def needs_early_stopping(task: str = tasks.CLASSIFICATION) -> tuple[str, ...]:
    """The metrics a trial records when it may stop early (test scores at the stop, when it stopped)."""
    return tuple(f"test_{k}_at_stop" for k in tasks.SCORES[tasks.check(task)]) + (
        "early_stopped", "stopped_epoch", "best_epoch")


ALWAYS = always()
NEEDS_VALIDATION = needs_validation()
NEEDS_EARLY_STOPPING = needs_early_stopping()


def early_stopping_used(spec: StudySpec) -> bool:
    """Some trial of the study stops early (``train.early_stopping``, an axis or a recipe sets it)."""
    if spec.train.early_stopping:
        return True
    for axis in spec.grid:
        if axis.name == "early_stopping" and any(v is not None for v in axis.values):
            return True
        if axis.section == "config" and any(isinstance(v, dict) and v.get("early_stopping") for v in axis.values):
            return True
    return False


def _dropconnect_samples() -> int:
    import inspect

    from ablation.data import evaluation

    return int(inspect.signature(evaluation.dropconnect).parameters["num_samples"].default)


def evaluation_columns(spec: StudySpec) -> list[str]:
    """The evaluation columns the study records (from ``[evaluate]``)."""
    ev = spec.evaluate
    modes: list[tuple[str, int | None]] = []
    if ev.mc_dropout_k:
        modes.append(("weight_scaling", None))
        modes += [("mc_dropout", int(k)) for k in ev.mc_dropout_k]
    if ev.dropconnect_inference:
        samples = _dropconnect_samples()
        modes += [(f"dropconnect_{m}", None if m == "scaling" else samples) for m in ev.dropconnect_inference]
    return [f"{metric}@{mode}" + (f":k={k}" if k else "") for mode, k in modes for metric in EVALUATED]


def recorded(spec: StudySpec) -> list[str]:
    """Every metric column the study's trials record."""
    task, validation = spec.task, spec.data.has_validation
    out = list(always(task)) + list(ALWAYS_DERIVED)
    if validation:
        out += list(needs_validation(task)) + (list(NEEDS_CURVES) if task == tasks.CLASSIFICATION else [])
    if early_stopping_used(spec):
        out += needs_early_stopping(task)
    out += [k for k, probe in PROBE_OF.items() if probe in spec.probes
            and (k not in NEEDS_TARGET or spec.evaluate.target_train_error is not None)]
    return out + evaluation_columns(spec)


def claim_metric_problem(spec: StudySpec, metric: str) -> str | None:
    """Why the runs of ``spec`` would not produce the column ``metric`` (None if they would)."""
    task = spec.task
    if metric in always(task) or metric in ALWAYS_DERIVED:
        return None
    if metric in needs_validation(task) or (metric in NEEDS_CURVES and task == tasks.CLASSIFICATION):
        return None if spec.data.has_validation else "needs data.validation_size > 0"
    if metric in needs_early_stopping(task):
        return None if early_stopping_used(spec) else "needs train.early_stopping"
    if metric in PROBE_OF:
        if PROBE_OF[metric] not in spec.probes:
            return f"needs the {PROBE_OF[metric]!r} probe"
        if metric in NEEDS_TARGET and spec.evaluate.target_train_error is None:
            return "needs evaluate.target_train_error"
        return None
    m = EVALUATION_RE.match(metric)
    if m is None:
        return "is neither a runner metric, a probe summary key nor an evaluation column"
    if metric in evaluation_columns(spec):
        return None
    mode = m.group(2)
    if mode in ("weight_scaling", "mc_dropout"):
        if not spec.evaluate.mc_dropout_k:
            return "needs evaluate.mc_dropout_k"
        return None if mode == "weight_scaling" else "needs k in evaluate.mc_dropout_k"
    kind = mode.removeprefix("dropconnect_")
    if kind not in spec.evaluate.dropconnect_inference:
        return f"needs {kind!r} in evaluate.dropconnect_inference"
    expected = None if kind == "scaling" else str(_dropconnect_samples())
    return f"the {mode} column has " + (f"k={expected}" if expected else "no k")


def check_claims(spec: StudySpec) -> None:
    """Raise a one-line ``SpecError`` for the first claim that names a metric the study does not record."""
    for i, claim in enumerate(spec.claims):
        check = getattr(claim, "check", None) or {}
        for key, metric in (("metric", claim.metric), ("against_metric", claim.against_metric),
                            ("check.metric", check.get("metric"))):
            if not metric:
                continue
            problem = claim_metric_problem(spec, metric)
            if problem is None:
                continue
            if problem.startswith("is neither"):
                close = difflib.get_close_matches(metric, recorded(spec), n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                problem = (f"{metric!r} is not a metric this study records; {hint}"
                           f"it records: {', '.join(recorded(spec))}")
            else:
                problem = f"{metric!r} {problem}"
            raise SpecError(f"claims[{i}].{key}", f"claim {claim.id}: {problem}")
