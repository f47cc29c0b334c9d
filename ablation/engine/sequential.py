"""Add seeds until a study's claims are decided (``ablation run STUDY --until-decided``).

The study runs as usual (look 1: its own seeds). Then, look after look, every claim the run registered
(:mod:`ablation.spec.preregistration`) is judged on the seeds it has, at that look's confidence level
(:func:`ablation.stats.power.look_level`: ``1 - alpha · 6 / (pi^2 k^2)`` at look k, an alpha-spending
rule whose alphas sum to at most alpha over any number of looks, so by the union bound the chance of a
wrong verdict at any look stays at most alpha however the looks are correlated; chosen over a
group-sequential boundary because it needs neither the number of looks nor the per-look sample sizes in
advance and holds for the t intervals at any n, and over a confidence sequence because it reuses the
report's own intervals). A claim is decided when its verdict is final (supported, not supported, or a
verdict more seeds cannot change: an arm that did not train, no spread, an inert treatment, an effect
below the test set's noise floor or one that would need more than ``stats.MAX_POWER_SEEDS`` seeds).
The undecided claims' grid points get ``step`` new seeds, trained as one pack per point in run folders
``<run_dir>/more/<study>-<hash8>`` (the study restricted to that point, the new seeds, no claims), until
every claim is decided or the points have ``max_seeds`` seeds.

``run.json`` keeps the plan under ``sequential``: each look's seeds, points and undecided claims, and the
look that decided each claim. Records (:func:`ablation.stats.records.load`) read the added runs with the
main one; the report judges each claim at the look that decided it, on the seeds it had then. A killed
``--until-decided`` resumes: the look in progress re-runs its (resumable) added runs, then goes on.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ablation.base import checks, files, rundir
from ablation.spec import preregistration
from ablation.stats import records
from ablation import stats
from ablation.spec import StudySpec
from ablation.stats.claims import SEQUENTIAL as KEY  # run.json: the plan and the looks
MAX_SEEDS = 20              # default: the most seeds a grid point gets
STEP = 5                    # default: seeds added per look
UNSETTLED = ("inconclusive", "too few seeds")  # verdicts more seeds may change


def run(spec: StudySpec, out_dir: str | Path = "runs", *, max_seeds: int = MAX_SEEDS, step: int = STEP,
        progress: bool | Callable[[str], None] = False, run_study: Callable[..., Path] | None = None,
        **run_kwargs: Any) -> Path:
    """Run a study, then add seeds to the grid points of its undecided claims until each is decided.

    Args:
        spec: a validated study (overrides applied).
        out_dir: where run folders live.
        max_seeds: the most seeds any grid point gets (>= the study's own seeds).
        step: seeds added per look (>= 1).
        progress: True prints a line per look; a callable receives the lines.
        run_study: the function that runs a study (default ``ablation.engine.runner.run``); ``run_kwargs`` go
            to its first call (the study's own seeds).

    Returns:
        The run folder.
    """
    from ablation.engine import runner

    checks.integer("step", step, 1)
    checks.integer("max_seeds", max_seeds, 1)
    if max_seeds < len(spec.seeds):
        raise checks.invalid("max_seeds", f"at least the study's {len(spec.seeds)} seeds", max_seeds)
    run_study = run_study or runner.run
    say = progress if callable(progress) else (print if progress else (lambda line: None))
    run_dir = run_study(spec, out_dir, progress=progress, **run_kwargs)
    lock = files.FolderLock(run_dir / rundir.UNTIL_LOCK, command="ablation run --until-decided").acquire()
    try:
        _loop(spec, run_dir, max_seeds, step, say, run_study)
    finally:
        lock.release()
    return run_dir


def _loop(spec: StudySpec, run_dir: Path, max_seeds: int, step: int, say: Callable[[str], None],
          run_study: Callable[..., Path]) -> None:
    meta = files.read_json(run_dir / rundir.RUN)
    state = meta.get(KEY) or {"max_seeds": max_seeds, "step": step, "decided": {},
                              "looks": [{"look": 1, "seeds": [int(s) for s in spec.seeds], "points": [],
                                         "undecided": [], "status": "done"}]}
    state.update(max_seeds=max_seeds, step=step)
    while True:
        last = state["looks"][-1]
        if last["status"] != "done":  # a look that was interrupted: its added runs resume
            _add_seeds(spec, run_dir, last, say, run_study)
            last["status"] = "done"
            _save(run_dir, state)
        claims = _claims(run_dir, spec)
        verdicts = decide_look(claims, records.load(run_dir), last["look"], last["seeds"])
        for v in verdicts:  # once decided, a claim keeps the look that decided it (and that look's seeds)
            if v["verdict"] not in UNSETTLED or _hopeless(v):
                state["decided"].setdefault(v["id"], last["look"])
        undecided = [v["id"] for v in verdicts if v["id"] not in state["decided"]]
        n = len(last["seeds"])
        say(f"look {last['look']} ({n} seeds, level {stats.look_level(last['look']):.4f}): "
            + (f"undecided: {', '.join(undecided)}" if undecided else "every claim decided"))
        if not undecided or n >= max_seeds:
            if undecided:
                say(f"stopped at --max-seeds {max_seeds}: {', '.join(undecided)} still undecided")
            state["finished"] = _now()
            _save(run_dir, state)
            return
        new = list(range(max(last["seeds"]) + 1, max(last["seeds"]) + 1 + min(step, max_seeds - n)))
        points = compared_points(spec, [c for c in claims if c.id in undecided])
        look = {"look": last["look"] + 1, "seeds": last["seeds"] + new, "new_seeds": new, "points": points,
                "undecided": undecided, "status": "running", "started": _now()}
        state["looks"].append(look)
        _save(run_dir, state)
        _add_seeds(spec, run_dir, look, say, run_study)
        look["status"] = "done"
        _save(run_dir, state)


def decide_look(claims: Sequence[Any], rec: Any, look: int, seeds: Sequence[int]) -> list[dict[str, Any]]:
    """The claims' verdicts at one look: on the given seeds, at the look's confidence level."""
    trials = rec.trials
    axes = [a for a in rec.axes if a in trials.columns]
    at = {c.id: (look, list(seeds)) for c in claims}
    return stats.claim_verdicts(claims, trials, evaluations=rec.evaluations, curves=rec.curves, axes=axes, looks=at)


def compared_points(spec: StudySpec, claims: Sequence[Any]) -> list[dict[str, str]]:
    """The grid points (axis -> label) that any of the claims compares, in grid order."""
    out = []
    for point in spec.points():
        if any(_compares(c, point) for c in claims):
            out.append(dict(point))
    return out


def _compares(c: Any, point: Mapping[str, str]) -> bool:
    def fits(*selectors: Mapping[str, str] | None) -> bool:
        return all(str(point.get(k)) in ([str(x) for x in v] if isinstance(v, tuple) else [str(v)])
                   for sel in selectors if sel for k, v in sel.items())

    if c.kind in ("range", "best"):
        return fits(c.compare, c.where) and (not c.levels or point.get(c.over) in c.levels)
    if c.kind == "interaction":
        return (fits(c.at, c.where) or fits(c.versus, c.where)) and (fits(c.compare) or fits(c.against))
    return fits(c.compare, c.where) or (c.against is not None and fits(c.against, c.where))


def point_spec(spec: StudySpec, point: Mapping[str, str], seeds: Sequence[int]) -> StudySpec:
    """The study restricted to one grid point (each axis keeps that point's value), with ``seeds``, no claims."""
    grid = tuple(dataclasses.replace(a, values=(a.value_of(point[a.name]),), labels=(point[a.name],))
                 for a in spec.grid)
    return dataclasses.replace(spec, grid=grid, seeds=tuple(int(s) for s in seeds), claims=())


def _add_seeds(spec: StudySpec, run_dir: Path, look: dict[str, Any], say: Callable[[str], None],
               run_study: Callable[..., Path]) -> None:
    new = look["new_seeds"]
    say(f"look {look['look']}: seeds {new[0]}-{new[-1]} for {len(look['points'])} grid point"
        f"{'s' if len(look['points']) != 1 else ''} of {', '.join(look['undecided'])}")
    for point in look["points"]:
        run_study(point_spec(spec, point, new), run_dir / rundir.MORE, in_process=True, progress=False,
            command=f"ablation run --until-decided (look {look['look']})")


def _hopeless(v: Mapping[str, Any]) -> bool:
    """An unsettled verdict that more seeds cannot settle (below the noise floor, or beyond any seed budget)."""
    return v["verdict"] == "inconclusive" and (bool(v.get("below_floor")) or v.get("seeds_needed") == float("inf"))


def _claims(run_dir: Path, spec: StudySpec) -> list[Any]:
    reg = preregistration.registered(files.read_json(run_dir / rundir.RUN))
    return list(reg[0]) if reg is not None else list(spec.claims)


def _save(run_dir: Path, state: dict[str, Any]) -> None:
    meta = files.read_json(run_dir / rundir.RUN)
    meta[KEY] = state
    files.atomic_write_json(run_dir / rundir.RUN, meta)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
