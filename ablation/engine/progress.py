"""What a run prints while it goes: an opening line (the study, its trials, the backend, the workers,
the run folder), a line per finished trial (i of N, elapsed, time left, best so far) read from the
trial folders, between them one line about the trials in training (their epoch and best validation
error, from the workers' progress notes), rewritten in place on a terminal, and at the end a line
about the trials that failed (:func:`failure_line`).
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ablation.stats import records
from ablation.base import rundir
from ablation.engine.cluster import RunFailed
from ablation.engine.preflight import one_line
from ablation.spec import StudySpec

TTY_EVERY_S = 2.0     # the in-trial progress line on a terminal is rewritten at most this often
PLAIN_EVERY_S = 10.0  # elsewhere (a log file, a notebook's callable) a line at least and at most this often


class Console:
    """Where progress goes: whole lines, plus one line about the trials in training that a terminal
    rewrites in place (elsewhere, a plain line every ``PLAIN_EVERY_S``). Silent when off."""

    def __init__(self, progress: bool | Callable[[str], None]) -> None:
        self.sink = progress if callable(progress) else None
        self.on = bool(progress)
        self.tty = self.on and self.sink is None and sys.stdout.isatty()
        self.every = TTY_EVERY_S if self.tty else PLAIN_EVERY_S
        self._shown = False  # a transient line is on the terminal
        self.last = time.monotonic()  # when a line was last shown

    def __call__(self, line: str) -> None:
        if not self.on:
            return
        self.last = time.monotonic()
        if self.sink is not None:
            self.sink(line)
            return
        self.clear()
        print(line, flush=True)

    def transient(self, line: str) -> None:
        if not self.tty:
            self(line)
            return
        self.last = time.monotonic()
        width = shutil.get_terminal_size((100, 20)).columns
        sys.stdout.write("\r\033[K" + line[: max(width - 1, 20)])
        sys.stdout.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            sys.stdout.write("\r\033[K")
            sys.stdout.flush()
            self._shown = False


class Progress:
    """Progress lines: an opening line (the study, its trials, the backend, the workers, the run
    folder), one line per finished trial (i of N, elapsed, time left, best so far) from the trial
    folders, and between them the epoch the trials in training have reached, from the workers' notes
    (at least every ``PLAIN_EVERY_S`` when not on a terminal).

    The time left is the work left over the pace measured since the first sign of progress (a
    finished epoch or trial), so that start-up and compilation do not inflate it; it is shown once
    there is a pace to measure. A resumed run starts "best so far" from the trials already finished.
    """

    def __init__(self, spec: StudySpec, run_dir: Path, say: Console, *, workers: int | None = None,
                 pack_size: int | None = None, backend: str | None = None) -> None:
        self.total, self.run_dir, self.say = spec.n_trials, run_dir, say
        self.start = time.perf_counter()
        self.since = time.time()  # notes older than this invocation are a dead run's
        self.metric = spec.objective
        self.best: tuple[float, str] | None = None
        self.seen: set[str] = set()
        for path in sorted(run_dir.glob(f"trial_*/{rundir.RESULT}")):
            self.seen.add(path.parent.name)
            self._consider(rundir.read_trial(path.parent).result or {})
        self.already = len(self.seen)
        self._paced: tuple[float, float] | None = None  # (time, work done) at the first sign of progress
        self._last_note = time.monotonic()
        self._running: list[tuple[dict, list[dict]]] = []
        say(self.opening(spec, workers, pack_size, backend))

    def opening(self, spec: StudySpec, workers: int | None, pack_size: int | None, backend: str | None = None) -> str:
        """The line a run starts with: what runs, on what (``backend``: the backend and who chose it, e.g.
        ``BackendChoice.text()``), and where."""
        seeds = f"{len(spec.seeds)} seed{'s' if len(spec.seeds) != 1 else ''}"
        done = f", {self.already} already done, {self.total - self.already} to run" if self.already else ""
        how = [f"backend {backend or spec.backend}"] if backend or spec.backend else []
        if workers is not None:
            how.append(f"{workers} worker{'s' if workers != 1 else ''}" if workers else "remote workers only")
        if pack_size is not None:
            how.append("no packs" if pack_size == 1 else f"packs of up to {pack_size}")
        best = f"; best so far: {self._best_text()}" if self.best else ""
        return (f"study {spec.name}: {self.total} trials ({seeds}{done}), {', '.join(how)}; run folder "
                f"{self.run_dir}{best}")

    def _consider(self, result: dict) -> str:
        """Take a finished trial's result into "best so far"; returns its label."""
        value = (result.get("metrics") or {}).get(self.metric)
        label = trial_label(result)
        if isinstance(value, (int, float)) and value == value and (self.best is None or value < self.best[0]):
            self.best = (float(value), label)
        return label

    def _best_text(self) -> str:
        return f"{self.metric} {self.best[0]:.4f} ({self.best[1]})" if self.best else "none yet"

    def update(self, *_: Any) -> None:
        self.poll()

    def poll(self) -> None:
        for path in sorted(self.run_dir.glob(f"trial_*/{rundir.RESULT}")):
            if path.parent.name in self.seen:
                continue
            self.seen.add(path.parent.name)
            result = rundir.read_trial(path.parent).result or {}
            label = self._consider(result)
            self._read_notes()
            status = result.get("status", "?")
            self.say(f"trial {len(self.seen)}/{self.total} [{status}: {label}]  elapsed {hms(self._elapsed())}  "
                     f"left {self._left_text()}  best so far: {self._best_text()}")
        now = time.monotonic()
        if now - self._last_note >= self.say.every and now - self.say.last >= self.say.every:
            self._last_note = now
            self._read_notes()
            if self._running:
                self.say.transient(self._note_line())
            elif not self.say.tty:  # a log file hears from the run at least every PLAIN_EVERY_S
                self.say(f"  waiting: {self._status()}")

    def _read_notes(self) -> None:
        """The packs in training, from the workers' notes (in the workers' order). A trial counts once, from its
        newest note: a worker presumed dead leaves its note behind while another worker trains its trial again."""
        notes = [n for n in rundir.read_progress(self.run_dir)
                 if isinstance(n.get("time"), (int, float)) and n["time"] >= self.since
                 and isinstance(n.get("epoch"), int) and isinstance(n.get("epochs"), int)]
        newest: dict[str, int] = {}  # trial id -> the index of its newest note
        for i in sorted(range(len(notes)), key=lambda i: notes[i]["time"]):
            for m in notes[i].get("members") or []:
                if isinstance(m, dict):
                    newest[str(m.get("trial"))] = i
        self._running = []
        for i, note in enumerate(notes):
            members = [m for m in note.get("members") or [] if isinstance(m, dict) and m.get("status") == "running"
                       and f"trial_{m.get('trial')}" not in self.seen and newest.get(str(m.get("trial"))) == i]
            if members:
                self._running.append((note, members))

    def _in_flight(self) -> float:
        """The trials in training, counted by the fraction of their work done: a trial's work is its
        epochs and its final evaluation (counted as one more epoch), so none counts as done before its
        record is written."""
        return sum(len(m) * min(n["epoch"] / (max(n["epochs"], 1) + 1), 1.0) for n, m in self._running)

    def _elapsed(self) -> float:
        return time.perf_counter() - self.start

    def _left(self) -> float:
        """Seconds left at the pace since the first sign of progress (NaN until there is a pace)."""
        done = len(self.seen) - self.already + self._in_flight()
        now = time.perf_counter()
        if done <= 0:
            return float("nan")
        if self._paced is None:
            self._paced = (now, done)
        t0, d0 = self._paced
        if done <= d0 or now <= t0:
            return float("nan")
        left = max(self.total - len(self.seen) - self._in_flight(), 0.0)
        return left * (now - t0) / (done - d0)

    def _left_text(self) -> str:
        left = self._left()
        if left != left:
            return "~? (measuring the pace)" if len(self.seen) < self.total else "~0:00:00"
        return f"~{hms(left)}"

    def _status(self) -> str:
        return f"{len(self.seen)}/{self.total} done, elapsed {hms(self._elapsed())}, left {self._left_text()}"

    def _note_line(self) -> str:
        parts = []
        for note, members in self._running:
            vals = [m["val"] for m in members if isinstance(m.get("val"), (int, float))]
            losses = [m["loss"] for m in members if isinstance(m.get("loss"), (int, float))]
            how = (f"{note.get('metric', 'val')} {min(vals):.4f}" if vals else f"loss {min(losses):.4f}" if losses
                   else "")
            what = f"{len(members)} trial{'s' if len(members) > 1 else ''}"
            parts.append(f"{what} at epoch {note['epoch']}/{note['epochs']}" + (f" (best {how})" if how else ""))
        return f"  training: {'; '.join(parts)}  [{self._status()}]"


class StudyFailed(RunFailed):
    """Every trial of a study failed (raised): the message is one line about the first failure, and
    ``ablation run`` exits with status 1."""


def failures(run_dir: str | Path) -> tuple[int, int, dict[str, Any] | None, Path | None]:
    """``(failed, finished, first failed result, its folder)`` over a run folder's trial records."""
    failed, finished, first, where = 0, 0, None, None
    for folder in rundir.trial_dirs(run_dir):
        result = rundir.read_trial(folder).result
        if result is None:
            continue
        finished += 1
        if result.get("status") == "failed":
            failed += 1
            if first is None:
                first, where = result, folder
    return failed, finished, first, where


def failure_line(run_dir: str | Path) -> str | None:
    """One line about the failed trials of a run (None when none failed): how many, and the first one's
    trial, point, exception and the file that holds its traceback."""
    failed, finished, first, where = failures(run_dir)
    if not failed:
        return None
    label = trial_label(first)
    reason = one_line(str(first.get("reason") or "").strip(), limit=200) or "an error"
    how_many = f"all {finished} trials failed" if failed == finished else f"{failed} of {finished} trials failed"
    return f"{how_many}; the first, {where.name} ({label}), raised {reason} (traceback in {where / rundir.RESULT})"


def trial_label(result: dict[str, Any]) -> str:
    """A finished trial's grid point and seed, as the progress lines name it."""
    point = records.point_label(result.get("point") or {})
    return f"{point}, seed={result.get('seed')}" if point else f"seed={result.get('seed')}"


def hms(seconds: float) -> str:
    """``h:mm:ss`` (``?`` for NaN)."""
    if seconds != seconds:  # NaN
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"

