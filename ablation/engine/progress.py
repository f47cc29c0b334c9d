"""What a run prints while it goes: a line per finished trial (i of N, elapsed, time left, best so far)
read from the trial folders, and between them one line about the trials in training (their epoch and
best validation error, from the workers' progress notes), rewritten in place on a terminal.
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
from ablation.spec import StudySpec

TTY_EVERY_S = 2.0     # the in-trial progress line on a terminal is rewritten at most this often
PLAIN_EVERY_S = 30.0  # elsewhere (a log file, a notebook's callable) a plain line at most this often


class Console:
    """Where progress goes: whole lines, plus one line about the trials in training that a terminal
    rewrites in place (elsewhere, a plain line at most every ``PLAIN_EVERY_S``). Silent when off."""

    def __init__(self, progress: bool | Callable[[str], None]) -> None:
        self.sink = progress if callable(progress) else None
        self.on = bool(progress)
        self.tty = self.on and self.sink is None and sys.stdout.isatty()
        self.every = TTY_EVERY_S if self.tty else PLAIN_EVERY_S
        self._shown = False  # a transient line is on the terminal

    def __call__(self, line: str) -> None:
        if not self.on:
            return
        if self.sink is not None:
            self.sink(line)
            return
        self.clear()
        print(line, flush=True)

    def transient(self, line: str) -> None:
        if not self.tty:
            self(line)
            return
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
    """Progress lines: one per finished trial (i of N, elapsed, time left, best so far) from the trial
    folders, and between them the epoch the trials in training have reached, from the workers' notes."""

    def __init__(self, spec: StudySpec, run_dir: Path, say: Console) -> None:
        self.total, self.run_dir, self.say = spec.n_trials, run_dir, say
        self.start = time.perf_counter()
        self.since = time.time()  # notes older than this invocation are a dead run's
        self.seen: set[str] = {p.parent.name for p in run_dir.glob(f"trial_*/{rundir.RESULT}")}
        self.already = len(self.seen)
        self.best: tuple[float, str] | None = None
        self.metric = spec.objective
        self._last_note = time.monotonic()
        self._running: list[tuple[dict, list[dict]]] = []

    def update(self, *_: Any) -> None:
        self.poll()

    def poll(self) -> None:
        for path in sorted(self.run_dir.glob(f"trial_*/{rundir.RESULT}")):
            if path.parent.name in self.seen:
                continue
            self.seen.add(path.parent.name)
            result = rundir.read_trial(path.parent).result or {}
            value = (result.get("metrics") or {}).get(self.metric)
            label = records.point_label(result.get("point", {})) + f", seed={result.get('seed')}"
            if value is not None and (self.best is None or value < self.best[0]):
                self.best = (value, label)
            best = f"{self.metric} {self.best[0]:.4f} ({self.best[1]})" if self.best else "none yet"
            status = result.get("status", "?")
            self.say(f"trial {len(self.seen)}/{self.total} [{status}: {label}]  elapsed {hms(self._elapsed())}  "
                     f"left ~{hms(self._left())}  best so far: {best}")
        if time.monotonic() - self._last_note >= self.say.every:
            self._read_notes()
            if self._running:
                self._last_note = time.monotonic()
                self.say.transient(self._note_line())

    def _read_notes(self) -> None:
        self._running = []
        for note in rundir.read_progress(self.run_dir):
            if not isinstance(note.get("time"), (int, float)) or note["time"] < self.since:
                continue
            members = [m for m in note.get("members") or [] if isinstance(m, dict) and m.get("status") == "running"
                       and f"trial_{m.get('trial')}" not in self.seen]
            if members and isinstance(note.get("epoch"), int) and isinstance(note.get("epochs"), int):
                self._running.append((note, members))

    def _in_flight(self) -> float:
        """The trials in training, counted by the fraction of their epochs they have run."""
        return sum(len(m) * min(n["epoch"] / max(n["epochs"], 1), 1.0) for n, m in self._running)

    def _elapsed(self) -> float:
        return time.perf_counter() - self.start

    def _left(self) -> float:
        done = len(self.seen) - self.already + self._in_flight()
        if done <= 0:
            return float("nan")
        return self._elapsed() / done * max(self.total - len(self.seen) - self._in_flight(), 0.0)

    def _note_line(self) -> str:
        parts = []
        for note, members in self._running:
            vals = [m["val"] for m in members if isinstance(m.get("val"), (int, float))]
            losses = [m["loss"] for m in members if isinstance(m.get("loss"), (int, float))]
            how = (f"{note.get('metric', 'val')} {min(vals):.4f}" if vals else f"loss {min(losses):.4f}" if losses
                   else "")
            what = f"{len(members)} trial{'s' if len(members) > 1 else ''}"
            parts.append(f"{what} at epoch {note['epoch']}/{note['epochs']}" + (f" (best {how})" if how else ""))
        return (f"  training: {'; '.join(parts)}  [{len(self.seen)}/{self.total} done, elapsed "
                f"{hms(self._elapsed())}, left ~{hms(self._left())}]")


def hms(seconds: float) -> str:
    """``h:mm:ss`` (``?`` for NaN)."""
    if seconds != seconds:  # NaN
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"

