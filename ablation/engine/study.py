"""The same study from Python: ``Study(...)`` builds a validated ``StudySpec``, ``run(study)`` runs it.

```python
import ablation

def build(input_shape, num_classes, dropout=0.0):      # no keras_tuner `hp` needed
    ...
    return keras.Model(...)

study = ablation.Study("mine", model=build, data=(x_train, y_train, x_test, y_test),
                       grid={"dropout": [0.0, 0.5], "train_size": [200, 400]}, seeds=range(5),
                       train={"epochs": 5, "optimizer": "adam", "learning_rate": 0.01})
result = ablation.run(study, out="runs")
result.trials, result.curves, result.probes, result.verdicts   # tidy frames and the claim verdicts
result                                                         # a notebook shows the report inline
```

Every argument is the table of the same name in a study file (``docs/internals.md`` section 2)
and goes through the same checks, so a mistake raises the same one-line ``SpecError``.
``model`` and ``data`` also take Python objects: a function, arrays. Such a study runs in this
process only (a function object and arrays cannot travel to ``ablation worker`` processes:
``run(..., workers=2)`` says so before anything runs); a study that names its function as
``"file.py:function"`` and its data as a file path runs anywhere. The run folder's ``study.toml``
is the study written as a TOML file (absolute paths; objects given from Python appear as comments),
and a study that names everything by text resumes the run of the same study file.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ablation.data import sources
from ablation.spec import SpecError, StudySpec
from ablation.spec.errors import invalid

ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test", "x_val", "y_val")


def Study(name: str, *, model: Any, data: Any, grid: Mapping[str, Any], seeds: Iterable[int] = (0,),  # noqa: N802
          model_args: Mapping[str, Any] | None = None, train: Mapping[str, Any] | None = None,
          evaluate: Mapping[str, Any] | None = None, claims: Iterable[Mapping[str, Any]] = (),
          description: str = "", probes: Iterable[str] = (), task: str | None = None,
          validation_size: int | None = None, train_size: int | None = None,
          **study: Any) -> StudySpec:
    """A study built from Python, validated like a study file.

    Args:
        name: the study's name (``[a-z0-9_-]+``), which names its run folder.
        model: your function returning a ``keras.Model`` (called with keyword arguments: the fixed
            ``model_args``, the trial's axis values, and ``input_shape`` / ``num_classes`` when its
            signature names them); or ``"file.py:function"`` / ``"package.module:function"``; or a
            zoo name (``"mlp"``, ``"cnn"``, a registered variant); or a ``[model]`` table.
        data: arrays ``(x_train, y_train, x_test, y_test[, x_val, y_val])`` or a dict with those keys
            (plus any ``[data]`` keys); a data set name (``"digits"``, ``"cifar10"``); a path to a
            ``.npz`` / ``.csv`` / ``.parquet`` file; or a ``[data]`` table (``{"path": ..., "target": ...}``).
        grid: the axes, as in ``[grid]`` (``train_size`` and ``[train]`` keys included; ``config`` for
            named recipes).
        seeds: the replicates.
        model_args: fixed arguments of the model (the ``[model]`` keys besides name / factory).
        train, evaluate: the ``[train]`` and ``[evaluate]`` tables.
        claims: the ``[[claims]]`` tables.
        description, probes: as in ``[study]``.
        task, validation_size, train_size: as in ``[data]`` (here for convenience).
        **study: other ``[study]`` keys (``probe_every_steps``, ``probe_size``, ``pack``, ``backend``).

    Returns:
        The frozen ``StudySpec`` (run it with :func:`run`).

    Raises:
        SpecError: the first invalid value, as one line naming its key.
    """
    from ablation.spec.parse import parse_document

    doc: dict[str, Any] = {
        "study": {"name": name, "description": description, "seeds": list(seeds), "probes": list(probes), **study},
        "data": _data_table(data, task, validation_size, train_size),
        "model": {**_model_table(model), **dict(model_args or {})},
        "train": dict(train or {}),
        "evaluate": dict(evaluate or {}),
        "grid": dict(grid),
        "claims": [dict(c) for c in claims],
    }
    doc = {k: v for k, v in doc.items() if v or k in ("study", "grid")}
    base_dir = str(Path.cwd())
    doc = _lists(doc)
    spec = parse_document(doc, None, base_dir=base_dir)
    return dataclasses.replace(spec, source_text=to_toml(doc, spec))


def _lists(value: Any) -> Any:
    """Tuples, ranges and NumPy arrays as lists, NumPy scalars as Python numbers (what a study file holds),
    recursively; other objects (wrapped arrays, functions) as given."""
    import numpy as np

    if isinstance(value, Mapping):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, (tuple, list, range, np.ndarray)):
        return [_lists(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _model_table(model: Any) -> dict[str, Any]:
    if isinstance(model, Mapping):
        return dict(model)
    if isinstance(model, str):
        return {"factory": model} if ":" in model else {"name": model}
    if callable(model):
        return {"factory": model}
    raise invalid("model", 'a function returning a keras.Model, "file.py:function", a zoo name or a [model] table',
                  model)


def _data_table(data: Any, task: str | None, validation_size: int | None, train_size: int | None) -> dict[str, Any]:
    if isinstance(data, (tuple, list)):
        if len(data) not in (4, 6):
            raise SpecError("data", f"expected arrays (x_train, y_train, x_test, y_test) or with (x_val, y_val) as "
                            f"well. Received: {len(data)} items")
        table: dict[str, Any] = {"arrays": sources.Arrays.of(*data)}
    elif isinstance(data, Mapping):
        table = {k: v for k, v in data.items() if k not in ARRAY_KEYS}
        given = {k: data[k] for k in ARRAY_KEYS if k in data}
        if given:
            missing = [k for k in ARRAY_KEYS[:4] if k not in given]
            if missing:
                raise SpecError(f"data.{missing[0]}", "required with the other arrays (x_train, y_train, x_test, "
                                "y_test)")
            table["arrays"] = sources.Arrays.of(**given)
    elif isinstance(data, (str, os.PathLike)):
        table = {"path": str(data)} if sources.file_kind(data) else {"name": str(data)}
    else:
        raise invalid("data", "arrays, a data set name, a file path or a [data] table", data)
    for key, value in (("task", task), ("validation_size", validation_size), ("train_size", train_size)):
        if value is not None:
            table[key] = value
    return table


# --------------------------------------------------------------------------- the study as a TOML file

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def to_toml(doc: Mapping[str, Any], spec: StudySpec | None = None) -> str:
    """A study document as study-file text; paths are made absolute and Python objects become comments.

    Args:
        doc: the tables (``study``, ``data``, ``model``, ``train``, ``evaluate``, ``grid``, ``claims``).
        spec: the parsed study (gives the absolute paths of a data file and a model function's file).
    """
    doc = {k: dict(v) if isinstance(v, Mapping) else v for k, v in doc.items()}
    notes = []
    if spec is not None:
        data = doc.get("data", {})
        if spec.data.file:
            data["path"] = spec.data.file
        if spec.data.arrays is not None:
            data.pop("arrays", None)
            notes.append(f"# data: arrays given from Python ({spec.data.arrays!r}); this file cannot run them")
        f = spec.model.factory
        model = doc.get("model", {})
        if f is not None and f.function is not None:
            model.pop("factory", None)
            notes.append(f"# model: the function {f.reference} given from Python (source {f.source or 'unknown'}, "
                         f"sha256 {f.digest[:12]}); this file cannot run it")
        elif f is not None and f.reference.partition(":")[0].endswith(".py"):
            model["factory"] = f"{f.source}:{f.function_name}"
    lines = ["# written by ablation.Study from Python", *notes]
    for section in ("study", "data", "model", "train", "evaluate", "grid"):
        table = doc.get(section)
        if not table:
            continue
        lines += ["", f"[{section}]", *(f"{_key(k)} = {_value(v)}" for k, v in table.items())]
    for claim in doc.get("claims", []):
        lines += ["", "[[claims]]", *(f"{_key(k)} = {_value(v)}" for k, v in claim.items())]
    return "\n".join(lines) + "\n"


def _key(key: Any) -> str:
    key = str(key)
    return key if _BARE.match(key) else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else
                                                           "inf" if value > 0 else "-inf")
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, (list, tuple, range)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", None) == 0:
        return _value(value.item())  # a NumPy scalar
    if value is None:
        return '"none"'
    return json.dumps(repr(value))


# --------------------------------------------------------------------------- running and results


def run(study: StudySpec, out: str | os.PathLike = "runs", *, workers: int = 1, report: bool = True,
        progress: bool | Callable[[str], None] = True, **options: Any) -> Result:
    """Run (or resume) a study and return its :class:`Result`.

    Args:
        study: a ``StudySpec`` (:func:`Study`, or ``ablation.spec.load("file.toml")``).
        out: the folder that holds run folders.
        workers: worker processes; a study holding a function object or arrays runs in this process
            (1) only.
        report: render ``report.html`` into the run folder, as ``ablation run`` does.
        progress: print a line per finished trial (or give a callable that receives the lines).
        **options: more arguments of ``ablation.engine.runner.run`` (``pack_size``, ``overrides``, ...).

    Returns:
        The run's :class:`Result`.
    """
    if not isinstance(study, StudySpec):
        raise invalid("study", "a study (ablation.Study(...) or ablation.spec.load(path))", study)
    start_backend(study.backend)
    from ablation.engine import runner

    run_dir = runner.run(study, out_dir=out, workers=workers, progress=progress, **options)
    result = Result(run_dir)
    if report:
        result.report()
    return result


def start_backend(wanted: str | None = None) -> str:
    """The Keras backend of this process, chosen as the command line chooses it (the study's own
    ``[study] backend``, else ``KERAS_BACKEND``, else JAX when installed) and started quietly, unless
    Keras was already imported (then its backend stays, and a study pinned to another says so)."""
    import sys

    from ablation.base import backend

    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    backend.choose(wanted)
    return backend.start()


class Result:
    """A run folder's records, claim verdicts and report (what ``ablation.run`` returns).

    Args:
        run_dir: a run folder (``runs/<study>-<hash8>``), from Python or from ``ablation run``.
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        from ablation.stats import records

        self.run_dir = Path(run_dir)
        self.records = records.load(self.run_dir)
        self._verdicts: Any = None

    @property
    def spec(self) -> StudySpec:
        return self.records.spec

    @property
    def trials(self) -> Any:
        """One row per trial (``records.trials``)."""
        return self.records.trials

    @property
    def curves(self) -> Any:
        """Trial x epoch x split x metric (``records.curves``)."""
        return self.records.curves

    @property
    def probes(self) -> Any:
        """Trial x step x layer x probe x stat (``records.probes``)."""
        return self.records.probes

    @property
    def evaluations(self) -> Any:
        """Trial x mode x k x metric (``records.evaluations``)."""
        return self.records.evaluations

    @property
    def verdicts(self) -> Any:
        """One row per claim: its verdict (and the Holm-adjusted one), estimate, interval, seeds and reason."""
        if self._verdicts is None:
            import pandas as pd

            from ablation import stats

            from ablation.report import page
            from ablation.spec import scale

            rec = self.records
            axes = [a for a in rec.axes if a in rec.trials.columns]
            family, _, _ = page.standings(rec)  # the claims the run registered, as the report checks them
            claims = [s.claim for s in family]
            rows = stats.claim_verdicts(claims, rec.trials, evaluations=rec.evaluations, curves=rec.curves, axes=axes,
                                        looks=stats.looks_of(rec.meta, claims),
                                        scale_gaps=page.scale_gaps(claims, rec.spec, scale.paper_spec(rec.spec)))
            keep = ("id", "statement", "metric", "verdict", "verdict_holm", "estimate", "ci_lo", "ci_hi", "n",
                    "p_value", "p_holm", "reason", "test")
            self._verdicts = pd.DataFrame([{k: r.get(k) for k in keep} for r in rows], columns=list(keep))
        return self._verdicts

    def report(self, path: str | os.PathLike | None = None) -> Path:
        """Write the HTML report (default ``<run_dir>/report.html``) and return its path."""
        from ablation import report

        return report.render(self.run_dir, path)

    def html(self) -> str:
        """The report as an HTML page."""
        from ablation.report import page

        return page.render_html(self.records)

    def _repr_html_(self) -> str:
        """In a notebook: the verdicts first (one row per claim), then the whole report, folded, in an iframe
        (so its styles stay its own)."""
        from ablation.report import page

        esc = html.escape
        counts = ", ".join(f"{n} {s}" for s, n in self.trials["status"].value_counts().items())
        rows = "".join(f"<tr><td><b>{esc(r['id'])}</b></td><td>{esc(r['holm'])}</td><td>{esc(r['measured'])} "
                       f"{esc(r['ci'])}</td><td>{r['n']}</td><td>{esc(r['statement'])}</td></tr>"
                       for r in page.verdict_rows(self.records))
        table = (f"<table><tr><th>claim</th><th>verdict (Holm)</th><th>measured (95% CI)</th><th>seeds</th>"
                 f"<th>statement</th></tr>{rows}</table>") if rows else "<p>This study states no claims.</p>"
        return (f"<div><p><b>{esc(self.spec.name)}</b>: {len(self.trials)} trials ({esc(counts)}) in "
                f"<code>{esc(str(self.run_dir))}</code></p>{table}<details><summary>the whole report</summary>"
                f'<iframe srcdoc="{esc(self.html(), quote=True)}" style="width: 100%; height: 800px; '
                f'border: 1px solid #ddd"></iframe></details></div>')

    def __repr__(self) -> str:
        counts = self.trials["status"].value_counts().to_dict() if len(self.trials) else {}
        return f"Result({str(self.run_dir)!r}, trials={len(self.trials)}, {counts})"
