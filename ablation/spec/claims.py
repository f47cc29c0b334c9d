"""Claims: the scientific statements a study's report checks against the measurements.

A claim names a metric (a column of ``records.trials`` or an evaluation column such as
``test_error@mc_dropout:k=50``), the runs it compares (``compare`` vs ``against``, or two metrics of
the same runs with ``against_metric``), and what it expects (lower / higher / near a threshold).
A side of a two-arm claim may name several levels of one axis with ``select``: the level with the
lowest mean validation metric (over seeds) stands for that side, chosen before the test metric is
read (nested selection, as Srivastava et al. 2014 chose Table 9's strengths on the validation set).
``Claim`` holds labels, not values, so it round-trips through JSON; ``ablation.stats`` computes
the verdict. The test a claim stands for is described in words by :func:`test_text`, the one
place that text is generated.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ablation.spec import values as v
from ablation.spec.errors import SpecError, invalid, show
from ablation.spec.axis import Axis, label

EFFECTS = ("difference", "ratio")
EXPECTS = ("lower", "higher", "near")
# What a claim compares, per seed (the unit of replication), before the interval over seeds:
KINDS = {
    "level": "the metric of the selected runs (no baseline)",
    "effect": "compare minus (or over) against, paired by seed and the axes neither fixes",
    "within": "the metric minus (or over) another metric of the same runs",
    "separation": "the worst compare arm minus the best against arm (every arm one grid point)",
    "range": "the largest minus the smallest metric over the levels of one axis",
    "best": "whether the level of one axis with the best metric lies among given levels",
    "interaction": "the effect (compare vs against) at one point minus the same effect at another",
}
KEYS = ("id", "statement", "source", "published", "approx", "metric", "compare", "against",
        "against_metric", "where", "effect", "expect", "threshold", "tolerance", "rule", "kind", "over",
        "levels", "best_in", "at", "versus", "allow_untrained", "margin", "published_effect", "check",
        "paper_scale", "sanity", "weaker_than_paper", "select", "target")
# Labels that say how far a claim counts, not what it tests: adding one after a run does not make the claim
# post hoc (they are left out of a claim's equality, which is what ablation.spec.preregistration compares).
LABELS = ("sanity", "weaker_than_paper")
SIDES = ("compare", "against")
CHECK_KEYS = ("metric", "expect", "by")  # a manipulation check: the treatment must move this metric first
CHECK_EXPECTS = ("lower", "higher")
# What ``select`` may choose a side's level by: validation metrics where lower is better (records.trials columns).
# Selection must never see the test split, or the test it feeds is biased toward the claim.
SELECT_METRICS = ("val_error", "best_val_error", "val_loss")
# Metrics measured against a fixed level the claim names (``target``), from the learning curves (ablation.stats):
# steps until the validation error first reaches it (Ioffe & Szegedy 2015, Fig. 1(a): steps to an accuracy).
TARGET_METRICS = ("steps_to_val_error",)
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
    compare: dict[str, Any] = field(default_factory=dict)   # treatment: axis -> label (with select: a tuple of labels)
    against: dict[str, Any] | None = None     # baseline: axis -> label (the same); None tests the metric itself
    where: dict[str, str] = field(default_factory=dict)     # filter on other axes: axis -> label
    against_metric: str = ""                  # baseline metric of the SAME runs (e.g. MC vs weight scaling)
    effect: str = "difference"                # "difference" (compare - against) or "ratio"
    threshold: float | None = None            # value the CI must exclude; None: 0 (difference), 1 (ratio)
    tolerance: float | None = None            # near: |CI - threshold| within tolerance (required there)
    rule: str = ""                            # optional note on the test, shown beside the generated one
    kind: str = ""                            # one of KINDS; "" = level / effect / within from the fields above
    over: str = ""                            # range, best: the axis whose levels are compared
    levels: tuple[str, ...] = ()              # range, best: the labels of `over` taken into account (all if empty)
    best_in: tuple[str, ...] = ()             # best: the labels among which the best level should lie
    at: dict[str, str] = field(default_factory=dict)      # interaction: the effect here ...
    versus: dict[str, str] = field(default_factory=dict)  # ... minus the effect here
    allow_untrained: tuple[str, ...] = ()     # the ONE side ("compare" or "against") whose arms may fail to train
                                              # because that is the claim (deep sigmoid nets stall, no BN at a high rate)
    margin: float | None = None               # zero spread (every seed the same value): a verdict only when the value
                                              # lies at least this far from the threshold; None: never ("no spread")
    published_effect: float | None = None     # the published effect in the statistic's units (a difference, or a
                                              # ratio): the report gives the seeds that would detect it
    check: dict[str, Any] | None = None       # manipulation check {metric, expect, by}: compare - against of `metric`
                                              # must move by `by` in direction `expect`, else "treatment inert"
    paper_scale: bool = False                 # the published effect depends on width, drop rate or training length:
                                              # a verdict only where the run meets the scale rule (spec.scale.departure_reasons)
    sanity: str = field(default="", compare=False)  # why the claim cannot fail by construction (true by symmetry at
                                              # init, a bound the design imposes): shown as a sanity check, not evidence
    weaker_than_paper: str = field(default="", compare=False)  # how the tested statement is weaker than the
                                              # paper's (shown on the page beside the claim)
    select: str = ""                          # one of SELECT_METRICS: a side naming several levels is the level
                                              # with the lowest mean of it over seeds (nested: never the test split)
    target: float | None = None               # TARGET_METRICS: the level to reach, e.g. a validation error of 0.05

    def __post_init__(self) -> None:
        if not self.kind:
            kind = "effect" if self.against is not None else "within" if self.against_metric else "level"
            object.__setattr__(self, "kind", kind)
        if self.kind not in KINDS:
            raise invalid("claim.kind", f"one of {', '.join(KINDS)}", self.kind)
        object.__setattr__(self, "levels", tuple(self.levels))
        object.__setattr__(self, "best_in", tuple(self.best_in))
        object.__setattr__(self, "allow_untrained", tuple(self.allow_untrained))
        if len(set(self.allow_untrained)) > 1:
            raise invalid("claim.allow_untrained", "one side (compare or against): a claim about two arms that may "
                          "both fail to train compares nothing", list(self.allow_untrained))
        if self.check is not None:
            object.__setattr__(self, "check", dict(self.check))
        if self.effect not in EFFECTS:
            raise invalid("claim.effect", f"one of {', '.join(EFFECTS)}", self.effect)
        if self.expect not in EXPECTS:
            raise invalid("claim.expect", f"one of {', '.join(EXPECTS)}", self.expect)
        if self.expect == "near" and self.tolerance is None:
            raise SpecError("claim.tolerance", f'required when expect = "near" (claim {self.id!r})')
        problem = _target_problem(self.metric, self.target)
        if problem is not None:
            raise SpecError("claim.target", f"{problem} (claim {self.id!r})")
        if self.against is not None and not self.against:
            object.__setattr__(self, "against", None)
        if self.threshold is None:
            baseline = self.against is not None or bool(self.against_metric)
            object.__setattr__(self, "threshold", 1.0 if self.effect == "ratio" and baseline else 0.0)

    @property
    def has_baseline(self) -> bool:
        """Whether the claim's statistic is a comparison (difference or ratio), not a level of the metric."""
        return self.kind in ("effect", "within", "interaction", "separation")

    @property
    def ratio(self) -> bool:
        return self.effect == "ratio" and self.kind in ("effect", "within")

    @property
    def guarded(self) -> bool:
        """Whether the untrained-arm guard applies: not to metrics measured before training (``*_init``)
        nor to the divergence indicator, whose claims are about runs that blow up."""
        return not self.metric.endswith("_init") and self.metric != "diverged"

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-able data (tuples become lists); ``target`` only where set, so that the claims
        registered before it existed hash as they did."""
        from ablation.spec.errors import jsonable

        out = jsonable(dataclasses.asdict(self))
        if self.target is None:
            del out["target"]
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Claim:
        """A claim from a mapping with the field names (missing fields take their defaults)."""
        unknown = [k for k in d if k not in KEYS]
        if unknown:
            raise invalid("claim", f"keys among {', '.join(KEYS)}", unknown)
        out = {k: val for k, val in d.items() if val is not None or k in ("against", "threshold", "tolerance")}
        for key in ("compare", "where", "at", "versus"):
            out[key] = _with_tuples(out.get(key) or {})
        for key in ("levels", "best_in", "allow_untrained"):
            out[key] = tuple(out.get(key) or ())
        if out.get("against") is not None:
            out["against"] = _with_tuples(out["against"])
        return cls(**out)

    def candidates(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        """With ``select``: side -> (axis, the levels it chooses among), for each side naming several."""
        out = {}
        for side in SIDES:
            for axis, lab in (getattr(self, side) or {}).items():
                if isinstance(lab, tuple):
                    out[side] = (axis, lab)
        return out

    def chosen(self, choice: Mapping[str, str]) -> Claim:
        """The claim with each selecting side's levels replaced by the one chosen (side -> label)."""
        changes = {}
        for side, (axis, _) in self.candidates().items():
            changes[side] = {**getattr(self, side), axis: choice[side]}
        return dataclasses.replace(self, **changes)


def arm_selectors(claim: Claim, side: str) -> list[dict[str, str]]:
    """The grid points' selectors of one side of a claim (``compare`` or ``against``) with its ``where``:
    one per level where the side names several (``select``), else one."""
    sel = getattr(claim, side) or {}
    if side not in claim.candidates():
        return [{**sel, **claim.where}]
    axis, labs = claim.candidates()[side]
    return [{**sel, axis: lab, **claim.where} for lab in labs]


def scale_selectors(claim: Claim, selection: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The grid points an arm of ``claim`` takes its runs from, as selectors: ``selection`` (one side's) narrowed
    to an interaction's ``at`` and ``versus``, or to the ``levels`` of a range or best claim's ``over`` axis."""
    if claim.kind == "interaction":
        return [{**selection, **claim.at}, {**selection, **claim.versus}]
    if claim.over and claim.levels:
        return [{**selection, claim.over: lab} for lab in claim.levels]
    return [selection]


def _with_tuples(d: Mapping[str, Any]) -> dict[str, Any]:
    """A claim's selector with list values (several levels, from JSON) as tuples."""
    return {k: tuple(x) if isinstance(x, list) else x for k, x in dict(d).items()}


def coerce(claim: Claim | Mapping[str, Any]) -> Claim:
    """A ``Claim`` from a claim or a mapping of its fields."""
    return claim if isinstance(claim, Claim) else Claim.from_dict(claim)


# ----------------------------------------------------------------------------- parsing

def parse_claims(raw: Any, grid: Sequence[Axis], strict: bool = True,
                 unchecked: Collection[str] = ()) -> tuple[Claim, ...]:
    """The ``[[claims]]`` array of a study file, checked against the grid; ``unchecked``: the grid axes
    whose names are not checked yet (a model function's arguments), so may be the misspelled ones."""
    if not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
        raise invalid("claims", "an array of tables ([[claims]])", raw)
    claims: list[Claim] = []
    for i, t in enumerate(raw):
        claim = _parse_claim(t, f"claims[{i}]", {a.name: a for a in grid}, strict, frozenset(unchecked))
        if any(c.id == claim.id for c in claims):
            raise SpecError(f"claims[{i}].id", f"duplicate claim id {show(claim.id)}")
        claims.append(claim)
    return tuple(claims)


def _parse_claim(t: dict, path: str, axes: dict[str, Axis], strict: bool,
                 unchecked: frozenset = frozenset()) -> Claim:
    v.check_keys(t, path, KEYS)
    v.require(t, path, "id", "statement", "metric", "expect")
    texts = {k: v.text(t[k], f"{path}.{k}") for k in ("id", "statement", "metric")}
    notes = {k: v.optional_text(t, k, path) for k in ("source", "published", "rule")}
    expect = v.choice(t["expect"], f"{path}.expect", EXPECTS)
    effect = v.choice(t.get("effect", "difference"), f"{path}.effect", EFFECTS)
    selecting = "select" in t
    compare = _claim_points(t.get("compare", {}), f"{path}.compare", axes, strict, unchecked, selecting)
    against = (_claim_points(t["against"], f"{path}.against", axes, strict, unchecked, selecting)
               if "against" in t else None)
    where = _claim_points(t.get("where", {}), f"{path}.where", axes, strict, unchecked)
    for axis in where:
        if axis in compare or (against and axis in against):
            raise SpecError(f"{path}.where.{axis}", "axis is already fixed by compare / against")
    against_metric = v.text(t["against_metric"], f"{path}.against_metric") if "against_metric" in t else ""
    if against_metric and against is not None:
        raise SpecError(f"{path}.against_metric", "set either against (other runs) or against_metric "
                        "(another metric of the same runs), not both")
    kind = v.choice(t["kind"], f"{path}.kind", tuple(KINDS)) if "kind" in t else (
        "effect" if against is not None else "within" if against_metric else "level")
    if effect == "ratio" and kind not in ("effect", "within"):
        raise SpecError(f"{path}.effect", '"ratio" needs a baseline of an effect: set against or against_metric')
    extra = _parse_kind(t, path, kind, axes, strict, compare, against, where)
    if "allow_untrained" in t:
        sides = v.items(t["allow_untrained"], f"{path}.allow_untrained", "sides", non_empty=True)
        extra["allow_untrained"] = tuple(v.choice(x, f"{path}.allow_untrained[{i}]", SIDES)
                                         for i, x in enumerate(sides))
    if len(set(extra.get("allow_untrained", ()))) > 1:
        raise invalid(f"{path}.allow_untrained", "one side (compare or against): a claim whose two arms may both "
                      "fail to train compares nothing", list(extra["allow_untrained"]))
    if "margin" in t:
        extra["margin"] = v.positive(t["margin"], f"{path}.margin")
    if "published_effect" in t:
        extra["published_effect"] = v.real(t["published_effect"], f"{path}.published_effect", "a finite float")
    if "check" in t:
        extra["check"] = _parse_check(t["check"], f"{path}.check", kind)
    if "paper_scale" in t:
        extra["paper_scale"] = v.boolean(t["paper_scale"], f"{path}.paper_scale")
    for key in LABELS:
        if key in t:
            extra[key] = v.text(t[key], f"{path}.{key}")
    if selecting:
        extra["select"] = _parse_select(t, path, kind, compare, against)
    threshold = v.real(t["threshold"], f"{path}.threshold", "a finite float") if "threshold" in t else None
    if "target" in t or texts["metric"] in TARGET_METRICS:
        extra["target"] = _parse_target(t, path, texts["metric"])
    tolerance = t.get("tolerance")
    if expect == "near" and tolerance is None:
        raise SpecError(f"{path}.tolerance", 'required when expect = "near"')
    if tolerance is not None:
        tolerance = v.positive(tolerance, f"{path}.tolerance")
    return Claim(**texts, **notes, expect=expect, approx=v.boolean(t.get("approx", False), f"{path}.approx"),
                 compare=compare, against=against, against_metric=against_metric, where=where, effect=effect,
                 threshold=threshold, tolerance=tolerance, kind=kind, **extra)


def _target_problem(metric: str, target: Any) -> str | None:
    """Why a claim's ``target`` does not fit its metric (required with TARGET_METRICS, refused with any other), or
    None."""
    if metric in TARGET_METRICS and target is None:
        return f"required with metric {metric!r}: the validation error to reach, a float in (0, 1)"
    if metric not in TARGET_METRICS and target is not None:
        return f"only with metric {' or '.join(map(repr, TARGET_METRICS))}. Received: metric={metric!r}"
    return None


def _parse_target(t: dict, path: str, metric: str) -> float:
    """A claim's ``target``: required with, and only with, a metric of TARGET_METRICS; an error rate in (0, 1)."""
    problem = _target_problem(metric, t.get("target"))
    if problem is not None:
        raise SpecError(f"{path}.target", problem)
    return v.real(t["target"], f"{path}.target", "a float in (0, 1)", lambda x: 0 < x < 1)


def _parse_kind(t: dict, path: str, kind: str, axes: dict[str, Axis], strict: bool, compare: dict,
                against: dict | None, where: dict) -> dict[str, Any]:
    """The keys of the claim kinds beyond level / effect / within, checked against the grid."""
    extra: dict[str, Any] = {}
    allowed = {"separation": set(), "range": {"over", "levels"}, "best": {"over", "levels", "best_in"},
               "interaction": {"at", "versus"}}.get(kind, set())
    for key in ("over", "levels", "best_in", "at", "versus"):
        if key in t and key not in allowed:
            raise SpecError(f"{path}.{key}", f"not a key of a claim of kind {show(kind)}")
    if kind in ("separation", "interaction") and (not compare or against is None):
        raise SpecError(f"{path}.against" if compare else f"{path}.compare",
                        f"a claim of kind {show(kind)} needs both compare and against")
    if kind in ("range", "best"):
        v.require(t, path, "over")
        over = v.text(t["over"], f"{path}.over")
        if over not in axes:
            raise invalid(f"{path}.over", f"a grid axis ({', '.join(axes)})", over)
        if over in compare or over in where or (against and over in against):
            raise SpecError(f"{path}.over", "axis is already fixed by compare / against / where")
        extra["over"] = over
        for key in ("levels", "best_in"):
            if key not in t:
                continue
            labels = [_claim_points({over: x}, f"{path}.{key}", axes, strict)[over]
                      for x in v.items(t[key], f"{path}.{key}", f"values of {over}", non_empty=True)]
            extra[key] = tuple(labels)
        if kind == "best":
            v.require(t, path, "best_in")
            outside = [lab for lab in extra["best_in"] if extra.get("levels") and lab not in extra["levels"]]
            if outside:
                raise SpecError(f"{path}.best_in", f"values {', '.join(outside)} are not among levels")
    if kind == "interaction":
        v.require(t, path, "at", "versus")
        extra["at"] = _claim_points(t["at"], f"{path}.at", axes, strict)
        extra["versus"] = _claim_points(t["versus"], f"{path}.versus", axes, strict)
        if set(extra["at"]) != set(extra["versus"]) or not extra["at"]:
            raise SpecError(f"{path}.versus", "expected the same axes as at, with other values")
        clash = set(extra["at"]) & (set(compare) | set(against or {}) | set(where))
        if clash:
            raise SpecError(f"{path}.at", f"axis {', '.join(sorted(clash))} is already fixed by compare / against / "
                            "where")
    return extra


def _parse_select(t: dict, path: str, kind: str, compare: dict, against: dict | None) -> str:
    """``select``: a validation metric, on a two-arm claim with at least one side naming several levels."""
    metric = v.choice(t["select"], f"{path}.select", SELECT_METRICS)
    if kind != "effect":
        raise SpecError(f"{path}.select", f"a selection needs a claim comparing two arms (compare and against); "
                        f"this claim is of kind {show(kind)}")
    if not any(isinstance(lab, tuple) for side in (compare, against or {}) for lab in side.values()):
        raise SpecError(f"{path}.select", "expected compare or against to name several levels of one axis to select "
                        "among (e.g. compare = { config = [\"l2_small\", \"l2_large\"] })")
    return metric


def _parse_check(raw: Any, path: str, kind: str) -> dict[str, Any]:
    """A manipulation check: ``{metric, expect, by}`` on a claim that compares two arms."""
    if kind != "effect":
        raise SpecError(path, f"a manipulation check needs a claim comparing two arms (compare and against); "
                              f"this claim is of kind {show(kind)}")
    t = v.table(raw, path)
    v.check_keys(t, path, CHECK_KEYS)
    v.require(t, path, "metric", "expect", "by")
    return {"metric": v.text(t["metric"], f"{path}.metric"),
            "expect": v.choice(t["expect"], f"{path}.expect", CHECK_EXPECTS),
            "by": v.positive(t["by"], f"{path}.by")}


def _claim_points(raw: Any, path: str, axes: dict[str, Axis], strict: bool,
                  unchecked: frozenset = frozenset(), several: bool = False) -> dict[str, Any]:
    """axis -> value (or label) in a claim, checked against the grid; returns axis -> label.

    Not ``strict`` (claims inherited by a profile that shrank an axis), a value the axis lacks is
    kept as its label: the report then finds no trials for it. ``several`` (a claim with ``select``):
    one axis may name a list of two or more of its values, returned as a tuple of labels.
    """
    t = v.table(raw, path)
    for key in t:
        if key not in axes:
            raise _unknown_axis(path, key, axes, unchecked)
    out: dict[str, Any] = {}
    for name, value in t.items():
        axis = axes[name]
        if several and isinstance(value, list) and not _on_axis(axis, value):
            if len(value) < 2 or any(isinstance(x, tuple) for x in out.values()):
                raise invalid(f"{path}.{name}", "a list of two or more levels of one axis to select among",
                              value)
            out[name] = tuple(_one_point(axis, x, f"{path}.{name}[{i}]", strict) for i, x in enumerate(value))
            if len(set(out[name])) != len(out[name]):
                raise invalid(f"{path}.{name}", "distinct levels", value)
            continue
        if isinstance(value, list) and len(value) > 1 and all(_on_axis(axis, x) for x in value):
            raise SpecError(f"{path}.{name}", f"several levels on one side need select (one of "
                            f"{', '.join(SELECT_METRICS)}) to choose among them. Received: {name}={show(value)}")
        out[name] = _one_point(axis, value, f"{path}.{name}", strict)
    return out


def _on_axis(axis: Axis, value: Any) -> bool:
    try:
        axis.label_of(value)
    except SpecError:
        return False
    return True


def _one_point(axis: Axis, value: Any, path: str, strict: bool) -> str:
    try:
        return axis.label_of(value)
    except SpecError:
        if not strict:
            return value if isinstance(value, str) else label(value)
        raise _not_on_axis(path, axis, value) from None


def _unknown_axis(path: str, key: str, axes: Mapping[str, Axis], unchecked: frozenset) -> SpecError:
    """A claim names an axis the grid lacks. An axis whose name was checked (a zoo model's argument, a
    [train] key) is right, so the claim is misspelled; an ``unchecked`` one (a model function's
    argument, checked when the study runs) may be the misspelled one, so the error names both keys
    rather than asking to copy a typo into the claim."""
    close = difflib.get_close_matches(str(key), sorted(axes), n=1, cutoff=0.6)
    if not close:
        return SpecError(f"{path}.{key}", f"unknown grid axis; expected one of {', '.join(sorted(axes)) or '(none)'}")
    if close[0] not in unchecked:
        return SpecError(f"{path}.{key}", f"unknown grid axis; did you mean {path}.{close[0]}?")
    return SpecError(f"{path}.{key}", f"unknown grid axis; the grid has {close[0]!r}: if grid.{close[0]} is "
                     f"misspelled, rename it to {key!r}, else rename this key to {close[0]!r}")


def _not_on_axis(path: str, axis: Axis, value: Any) -> SpecError:
    """A claim's value that is not on its axis; when the axis holds numbers or strings of another type
    than the value, the values are shown quoted as they are and the types named (\"0.3\" is not 0.3)."""
    scalar = (str, int, float, bool)
    kinds = {type(x).__name__ for x in axis.values}
    got = type(value).__name__
    numbers = kinds <= {"int", "float"} and got in ("int", "float")
    if not all(isinstance(x, scalar) for x in axis.values) or got in kinds or numbers:
        return invalid(path, f"one of {', '.join(axis.labels)}", value)
    return SpecError(path, f"expected one of {', '.join(show(x) for x in axis.values)} (grid.{axis.name} holds "
                     f"{' and '.join(sorted(kinds))} values). Received: {axis.name}={show(value)} ({got})")


# ----------------------------------------------------------------------------- the test in words

def _num(value: Any) -> str:
    return f"{value:.4g}".replace("-", _MINUS) if isinstance(value, (float, int)) else str(value)


def _selection(selector: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} \u2208 {{{', '.join(val)}}}" if isinstance(val, tuple) else f"{k}={_num(val)}"
                     for k, val in selector.items())


def free_axes(claim: Claim, axes: Sequence[str]) -> list[str]:
    """The grid axes a claim leaves free: its pairs are matched on them (and on the seed)."""
    fixed = set(claim.compare) | set(claim.where) | set(claim.against or {}) | set(claim.at) | {claim.over}
    return [a for a in axes if a not in fixed]


def test_text(claim: Claim, axes: Sequence[str] = (), level: float = 0.95) -> str:
    """The test the verdict runs, in words, e.g.

    ``test_error(dropout=0.5) − test_error(dropout=0.0) at train_size=5000, paired by seed: 95% CI
    must lie below 0``.
    """
    c = coerce(claim)
    pct = f"{level * 100:g}%"
    m = c.metric if c.target is None else f"{c.metric}<={_num(c.target)}"
    term = f"{m}({_selection(c.compare)})" if c.compare else m
    op = f" {_MINUS} " if c.effect == "difference" else " / "
    per_seed = "per seed"
    if c.kind == "effect":
        text = f"{term}{op}{m}({_selection(c.against)})"
        if c.ratio:
            text = f"geometric mean of {text}"
    elif c.kind == "within":
        text = f"{term}{op}{c.against_metric} of the same run"
        if c.ratio:
            text = f"geometric mean of {text}"
    elif c.kind == "separation":
        text = (f"max over arms of {term} {_MINUS} min over arms of {m}({_selection(c.against)}) "
                f"(arms: the grid points, {per_seed})")
    elif c.kind == "range":
        levels = f" in {{{', '.join(c.levels)}}}" if c.levels else ""
        text = f"max {_MINUS} min over {c.over}{levels} of {term} ({per_seed})"
    elif c.kind == "best":
        levels = f" in {{{', '.join(c.levels)}}}" if c.levels else ""
        best = "lowest" if c.expect == "lower" else "highest"
        text = (f"{term} of each {c.over}{levels} outside {{{', '.join(c.best_in)}}} {_MINUS} the {best} one inside, "
                f"paired by seed")
        where = f" at {_selection(c.where)}" if c.where else ""
        return (f"the {best} {m} of {c.over} lies in {{{', '.join(c.best_in)}}}{where}: {text}: each {pct} CI over "
                f"seeds must lie on the worse side of 0")
    elif c.kind == "interaction":
        effect = f"[{term} {_MINUS} {m}({_selection(c.against)})]"
        text = f"{effect} at {_selection(c.at)} {_MINUS} the same at {_selection(c.versus)}, paired by seed"
    else:
        text = f"mean {term} over seeds"
    if c.where:
        text += f" at {_selection(c.where)}"
    if c.kind in ("effect", "separation", "interaction", "range"):
        free = free_axes(c, axes)
        if c.kind == "effect":
            text += ", paired by seed" + (f" within {', '.join(free)}" if free else "")
        elif free and c.kind != "separation":
            text += f", averaged over {', '.join(free)} within each seed"
    if c.select:
        text += (f", where a side naming several levels takes the one with the lowest mean {c.select} over seeds "
                 f"(chosen on the validation split, before {m} is read)")
    thr = _num(c.threshold)
    criterion = {"lower": f"below {thr}", "higher": f"above {thr}",
                 "near": f"within {thr} \u00b1 {_num(c.tolerance)}"}[c.expect]
    return f"{text}: {pct} CI over seeds must lie {criterion}"
