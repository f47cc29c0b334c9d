"""Heartbeats: a worker silent past the grace period is presumed dead, its trials handed back, its late
reports ignored and logged; a worker's side asks before it writes (the end-to-end run is in test_cluster.py)."""

from __future__ import annotations

import re
import time
from types import SimpleNamespace

import pytest

from ablation.engine import auth, cluster, heartbeat


class Oracle:
    """The part of the study's oracle heartbeats use: who holds which trial, and ``release``."""

    def __init__(self, held: dict[str, str]) -> None:
        self.ongoing_trials = {slot: SimpleNamespace(trial_id=tid) for slot, tid in held.items()}
        self.trials = {}
        self.released: list[str] = []

    def release(self, worker: str) -> list[str]:
        mine = [slot for slot in self.ongoing_trials if heartbeat.worker_of(slot) == worker]
        self.released.append(worker)
        return [self.ongoing_trials.pop(slot).trial_id for slot in mine]


@pytest.mark.parametrize("grace, every", [(120, 5.0), (4, 0.8), (0.1, 0.2)])
def test_workers_beat_five_times_per_grace_period_between_bounds(grace, every):
    assert heartbeat.interval(grace) == pytest.approx(every)


def test_a_silent_worker_is_presumed_dead_and_its_trials_handed_back():
    oracle = Oracle({"a/0": "3", "a/1": "4", "b": "5"})
    lines: list[str] = []
    beats = heartbeat.Heartbeats(oracle, grace=1.0, say=lines.append)
    assert beats.check() == []              # never heard from: the silence starts now
    for _ in range(3):                      # the chief checks often (every 0.5 s in a run); b keeps beating
        time.sleep(0.2)
        beats.touch("b")
        assert beats.check() == []
    dead = []
    for _ in range(4):
        time.sleep(0.2)
        beats.touch("b")
        dead += beats.check()
    assert dead == ["a"] and oracle.released == ["a"]
    assert len(lines) == 1 and re.fullmatch(r"a has been silent for \d+ s \(grace 1 s\): presumed dead; "
                                            r"trial\(s\) 3, 4 run again", lines[0]), lines
    assert beats.presumed_dead == {"a": ["3", "4"]} and set(oracle.ongoing_trials) == {"b"}
    assert beats.beat("a", ["3"]) == {"grace": 1.0, "held": [], "lost": ["3"], "presumed_dead": True}
    assert beats.beat("b", ["5"]) == {"grace": 1.0, "held": ["5"], "lost": [], "presumed_dead": False}


def test_a_paused_chief_counts_its_workers_silence_from_when_it_runs_again():
    """SIGSTOP on a whole run (to take a timing) stops the chief's checks too: after a gap of more than half
    the grace period, silence is counted from the chief's return, so no worker is presumed dead for it."""
    oracle = Oracle({"a": "3"})
    beats = heartbeat.Heartbeats(oracle, grace=0.5)
    beats.touch("a")
    assert beats.check() == []
    time.sleep(0.7)                         # the chief did not run for longer than the grace period
    assert beats.check() == [] and oracle.released == []
    dead = []
    for _ in range(8):                      # checked often from now on, a stays silent: presumed dead in time
        time.sleep(0.1)
        dead += beats.check()
    assert dead == ["a"] and oracle.released == ["a"]


def test_a_late_report_is_ignored_and_logged_once():
    oracle = Oracle({"b/0": "5"})
    lines: list[str] = []
    beats = heartbeat.Heartbeats(oracle, grace=60, say=lines.append)
    beats.presumed_dead["a"] = ["3"]
    assert not beats.late("b", "5", "result")            # its holder
    assert not beats.late(None, "5", "result")           # a caller that names no worker: trusted as before
    assert beats.late("a", "3", "result") and beats.late("a", "3", "result") and beats.late("a", "3", "end")
    assert beats.late("c", "5", "result")                # never presumed dead, but not the holder either
    assert lines == ["late result of trial 3 from a ignored: it was handed back when the worker was presumed dead",
                     "late end of trial 3 from a ignored: it was handed back when the worker was presumed dead",
                     "late result of trial 5 from c ignored: the worker does not hold it"]


def test_a_worker_writes_only_the_trials_its_chief_still_gives_it():
    oracle = Oracle({"w/0": "1", "w/1": "2"})
    said: list[str] = []
    chief = cluster.Chief(oracle, "127.0.0.1", 0, grace=3.0)
    try:
        beat = heartbeat.Beat(auth.channel(f"127.0.0.1:{chief.port}", None, "w"), "w", lambda: ["1", "2"], said.append)
        reply = beat.send(timeout=10).result()
        beat.heard(reply)
        assert reply["held"] == ["1", "2"] and beat.every == pytest.approx(0.6) and said == []
        chief.heartbeats.presumed_dead["w"] = ["2"]
        del oracle.ongoing_trials["w/1"]                 # trial 2 was handed back meanwhile
        assert beat.keep(["1", "2"], timeout=10) == {"1"}
        assert beat.keep(["2"], timeout=10) == set()
        assert said == ["the chief presumed this worker dead (silent for more than 3 s): trial(s) 2 run elsewhere, "
                        "and their results here are not written"]   # said once
    finally:
        chief.stop()
    assert beat.keep(["1"], timeout=2) == set()          # a chief that does not answer confirms nothing
    assert said[-1].startswith("the chief did not confirm trial(s) 1 (UNAVAILABLE")
