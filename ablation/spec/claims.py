"""Claims: the scientific statements a study's report checks against the measurements.

A claim names a metric (a column of ``records.trials`` or an evaluation column such as
``test_error@mc_dropout:k=50``), the runs it compares (``compare`` vs ``against``, or two metrics of
the same runs with ``against_metric``), and what it expects (lower / higher / near a threshold).
``Claim`` holds labels, not values, so it round-trips through JSON; ``ablation.stats`` computes
the verdict. The test a claim stands for is described in words by :func:`test_text`, the one
place that text is generated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ablation.spec import values as v
from ablation.spec.errors import SpecError, invalid, show
from ablation.spec.schema import Axis, label

EFFECTS = ("difference", "ratio")
EXPECTS = ("lower", "higher", "near")
KEYS = ("id", "statement", "source", "published", "approx", "metric", "compare", "against",
        "against_metric", "where", "effect", "expect", "threshold", "tolerance", "rule")
_MINUS = "\u2212"


@dataclass(frozen=True)
class Claim:
    """One scientific claim the report checks against the measurements (labels, not values)."""

    id: str                                   # short unique id, e.g. "C1"
    statement: str                            # the claim in words
    metric: str = "test_error"                # a column of records.trials, e.g. "test_error"
    expect: str = "lower"                     # "lower" | "higher" | "near"
    source: str = ""                          # citation
    published: str = ""                       # the published number, free text shown verbatim
    approx: bool = False                      # True: the published number was read off a figure
    compare: dict[str, str] = field(default_factory=dict)   # treatment: axis -> label
    against: dict[str, str] | None = None     # baseline: axis -> label; None tests the metric itself
    where: dict[str, str] = field(default_factory=dict)     # filter on other axes: axis -> label
    against_metric: str = ""                  # baseline metric of the SAME runs (e.g. MC vs weight scaling)
    effect: str = "difference"                # "difference" (compare - against) or "ratio"
    threshold: float | None = None            # value the CI must exclude; None: 0 (difference), 1 (ratio)
    tolerance: float | None = None            # near: |CI - threshold| within tolerance (required there)
    rule: str = ""                            # optional note on the test, shown beside the generated one

    def __post_init__(self) -> None:
        if self.effect not in EFFECTS:
            raise invalid("claim.effect", f"one of {', '.join(EFFECTS)}", self.effect)
        if self.expect not in EXPECTS:
            raise invalid("claim.expect", f"one of {', '.join(EXPECTS)}", self.expect)
        if self.expect == "near" and self.tolerance is None:
            raise SpecError("claim.tolerance", f'required when expect = "near" (claim {self.id!r})')
        if self.against is not None and not self.against:
            object.__setattr__(self, "against", None)
        if self.threshold is None:
            baseline = self.against is not None or bool(self.against_metric)
            object.__setattr__(self, "threshold", 1.0 if self.effect == "ratio" and baseline else 0.0)

    @property
    def has_baseline(self) -> bool:
        """Whether the claim compares against other runs or another metric (an effect), not a level."""
        return self.against is not None or bool(self.against_metric)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Claim:
        """A claim from a mapping with the field names (missing fields take their defaults)."""
        unknown = [k for k in d if k not in KEYS]
        if unknown:
            raise invalid("claim", f"keys among {', '.join(KEYS)}", unknown)
        out = {k: val for k, val in d.items() if val is not None or k in ("against", "threshold", "tolerance")}
        for key in ("compare", "where"):
            out[key] = dict(out.get(key) or {})
        if out.get("against") is not None:
            out["against"] = dict(out["against"])
        return cls(**out)


def coerce(claim: Claim | Mapping[str, Any]) -> Claim:
    """A ``Claim`` from a claim or a mapping of its fields."""
    return claim if isinstance(claim, Claim) else Claim.from_dict(claim)


# ----------------------------------------------------------------------------- parsing

def parse_claims(raw: Any, grid: Sequence[Axis], strict: bool = True) -> tuple[Claim, ...]:
    """The ``[[claims]]`` array of a study file, checked against the grid."""
    if not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
        raise invalid("claims", "an array of tables ([[claims]])", raw)
    claims: list[Claim] = []
    for i, t in enumerate(raw):
        claim = _parse_claim(t, f"claims[{i}]", {a.name: a for a in grid}, strict)
        if any(c.id == claim.id for c in claims):
            raise SpecError(f"claims[{i}].id", f"duplicate claim id {show(claim.id)}")
        claims.append(claim)
    return tuple(claims)


def _parse_claim(t: dict, path: str, axes: dict[str, Axis], strict: bool) -> Claim:
    v.check_keys(t, path, KEYS)
    v.require(t, path, "id", "statement", "metric", "expect")
    texts = {k: v.text(t[k], f"{path}.{k}") for k in ("id", "statement", "metric")}
    notes = {k: v.optional_text(t, k, path) for k in ("source", "published", "rule")}
    expect = v.choice(t["expect"], f"{path}.expect", EXPECTS)
    effect = v.choice(t.get("effect", "difference"), f"{path}.effect", EFFECTS)
    compare = _claim_points(t.get("compare", {}), f"{path}.compare", axes, strict)
    against = _claim_points(t["against"], f"{path}.against", axes, strict) if "against" in t else None
    where = _claim_points(t.get("where", {}), f"{path}.where", axes, strict)
    for axis in where:
        if axis in compare or (against and axis in against):
            raise SpecError(f"{path}.where.{axis}", "axis is already fixed by compare / against")
    against_metric = v.text(t["against_metric"], f"{path}.against_metric") if "against_metric" in t else ""
    if against_metric and against is not None:
        raise SpecError(f"{path}.against_metric", "set either against (other runs) or against_metric "
                        "(another metric of the same runs), not both")
    if effect == "ratio" and against is None and not against_metric:
        raise SpecError(f"{path}.effect", '"ratio" needs a baseline: set against or against_metric')
    threshold = v.real(t["threshold"], f"{path}.threshold", "a finite float") if "threshold" in t else None
    tolerance = t.get("tolerance")
    if expect == "near" and tolerance is None:
        raise SpecError(f"{path}.tolerance", 'required when expect = "near"')
    if tolerance is not None:
        tolerance = v.positive(tolerance, f"{path}.tolerance")
    return Claim(**texts, **notes, expect=expect, approx=v.boolean(t.get("approx", False), f"{path}.approx"),
                 compare=compare, against=against, against_metric=against_metric, where=where, effect=effect,
                 threshold=threshold, tolerance=tolerance)


def _claim_points(raw: Any, path: str, axes: dict[str, Axis], strict: bool) -> dict[str, str]:
    """axis -> value (or label) in a claim, checked against the grid; returns axis -> label.

    Not ``strict`` (claims inherited by a profile that shrank an axis), a value the axis lacks is
    kept as its label: the report then finds no trials for it.
    """
    t = v.table(raw, path)
    v.check_keys(t, path, axes, noun="grid axis")
    out = {}
    for name, value in t.items():
        axis = axes[name]
        try:
            out[name] = axis.label_of(value)
        except SpecError:
            if not strict:
                out[name] = value if isinstance(value, str) else label(value)
                continue
            raise invalid(f"{path}.{name}", f"one of {', '.join(axis.labels)}", value) from None
    return out


# ----------------------------------------------------------------------------- the test in words

def _num(value: Any) -> str:
    return f"{value:.4g}".replace("-", _MINUS) if isinstance(value, (float, int)) else str(value)


def _selection(selector: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={_num(val)}" for k, val in selector.items())


def free_axes(claim: Claim, axes: Sequence[str]) -> list[str]:
    """The grid axes a claim leaves free: its pairs are matched on them (and on the seed)."""
    fixed = set(claim.compare) | set(claim.where) | set(claim.against or {})
    return [a for a in axes if a not in fixed]


def test_text(claim: Claim, axes: Sequence[str] = (), level: float = 0.95) -> str:
    """The test the verdict runs, in words, e.g.

    ``test_error(dropout=0.5) − test_error(dropout=0.0) at train_size=5000, paired by seed: 95% CI
    must lie below 0``.
    """
    c = coerce(claim)
    pct = f"{level * 100:g}%"
    term = f"{c.metric}({_selection(c.compare)})" if c.compare else c.metric
    op = f" {_MINUS} " if c.effect == "difference" else " / "
    if c.against is not None:
        text = f"{term}{op}{c.metric}({_selection(c.against)})"
    elif c.against_metric:
        text = f"{term}{op}{c.against_metric} of the same run, over seeds"
    else:
        text = f"mean {term} over seeds"
    if c.where:
        text += f" at {_selection(c.where)}"
    if c.against is not None:
        free = free_axes(c, axes)
        text += ", paired by seed" + (f" within {', '.join(free)}" if free else "")
    thr = _num(c.threshold)
    criterion = {"lower": f"below {thr}", "higher": f"above {thr}",
                 "near": f"within {thr} \u00b1 {_num(c.tolerance)}"}[c.expect]
    return f"{text}: {pct} CI must lie {criterion}"
