"""ablation.engine.sequential (``ablation run --until-decided``): seeds are added, look after look, only to the
grid points of undecided claims; each claim is judged at the look that decided it, at that look's level;
a run stopped in the middle of a look resumes with the exact trial set. (The error rate of the spending
rule under repeated looks is simulated in test_stats_power.py.)"""

from __future__ import annotations

import functools
import json

import pytest

from ablation.stats import records
from ablation import report, spec, stats
from ablation.base import rundir
from ablation.engine import sequential

from conftest import TINY_STUDY, edit_study  # noqa: E402  (the shared tiny study)

TINY = edit_study(TINY_STUDY, ('name = "tiny"', 'name = "tiny-seq"'))
TWO_CLAIMS = edit_study(TINY, ('expect = "lower"', 'expect = "lower"\nwhere = { activation = "tanh" }')) + '\n[[claims]]\nid = "T2"\nstatement = "relu at dropout 0 errs below 99%"\n' \
                    'metric = "test_error"\ncompare = { activation = "relu", dropout = 0.0 }\nexpect = "lower"\n' \
                    'threshold = 0.99\n'


def test_compared_points_are_the_grid_points_a_claim_selects():
    s = spec.loads(TWO_CLAIMS)
    by_id = {c.id: c for c in s.claims}
    assert sequential.compared_points(s, [by_id["T2"]]) == [{"activation": "relu", "dropout": "0.0"}]
    assert len(sequential.compared_points(s, [by_id["T1"]])) == 2  # dropout 0.5 vs 0.0 at tanh
    assert len(sequential.compared_points(spec.loads(TINY), spec.loads(TINY).claims)) == 4  # ... within each activation
    narrow = spec.loads(edit_study(TINY, ('expect = "lower"', 'expect = "lower"\nwhere = { activation = "tanh" }')))
    assert sequential.compared_points(narrow, narrow.claims) == [{"activation": "tanh", "dropout": "0.0"},
                                                                 {"activation": "tanh", "dropout": "0.5"}]


def test_a_claim_selecting_among_levels_compares_every_level_it_may_choose():
    doc = """
[study]
name = "sel"
[model]
hidden = [8]
[data]
validation_size = 100
[grid.config]
mn2 = { max_norm = 2.0 }
mn3 = { max_norm = 3.0 }
l2a = { l2 = 1e-4 }
plain = {}
[[claims]]
id = "B1"
statement = "s"
metric = "test_error"
expect = "lower"
compare = { config = ["mn2", "mn3"] }
against = { config = "l2a" }
select = "val_error"
"""
    s = spec.loads(doc)
    assert sequential.compared_points(s, s.claims) == [{"config": "mn2"}, {"config": "mn3"}, {"config": "l2a"}]


def test_point_spec_keeps_one_value_per_axis_with_its_label():
    s = spec.loads(TINY)
    one = sequential.point_spec(s, {"activation": "tanh", "dropout": "0.5"}, [7, 8])
    assert [(a.name, a.labels, a.values) for a in one.grid] == [("activation", ("tanh",), ("tanh",)),
                                                                ("dropout", ("0.5",), (0.5,))]
    assert one.seeds == (7, 8) and one.claims == () and one.hash != s.hash and one.n_trials == 2


class _Stop(Exception):
    pass


def test_until_decided_adds_seeds_only_where_needed_and_resumes(tmp_path):
    runner = pytest.importorskip("ablation.engine.runner")
    s = spec.loads(TWO_CLAIMS)
    calls = []

    def flaky(spec_, out_dir, **kw):  # the first added run is interrupted, as a kill would
        calls.append(spec_)
        if len(calls) == 2:
            raise _Stop()
        return runner.run(spec_, out_dir, **kw)

    with pytest.raises(_Stop):
        sequential.run(s, tmp_path, max_seeds=5, step=3, run_study=flaky, in_process=True)
    run_dir = runner.run_dir_of(s, tmp_path)
    state = json.loads((run_dir / rundir.RUN).read_text())["sequential"]
    assert state["looks"][-1]["status"] == "running"  # look 2 was planned, then interrupted
    sequential.run(s, tmp_path, max_seeds=5, step=3, run_study=functools.partial(runner.run), in_process=True)
    rec = records.load(run_dir)
    trials = rec.trials
    got = sorted(zip(trials["activation"], trials["dropout"], trials["seed"]))
    assert len(got) == len(set(got))  # no duplicates after the resume
    state = json.loads((run_dir / rundir.RUN).read_text())["sequential"]
    assert [lk["seeds"] for lk in state["looks"]] == [[0, 1], [0, 1, 2, 3, 4]]
    assert all(lk["status"] == "done" for lk in state["looks"]) and state["finished"]
    # seeds 2-4 went to the points of the undecided claims only (T2 stays "too few seeds" at look 1 too)
    added = {(a, str(d)) for a, d, seed in got if seed >= 2}
    assert added == {(p["activation"], p["dropout"]) for p in state["looks"][1]["points"]}
    assert ("relu", "0.5") not in added and len(trials) == 8 + 3 * len(added) == 17
    looks = stats.looks_of(rec.meta, rec.spec.claims)
    assert set(looks) == {"T1", "T2"} and all(k in (1, 2) for k, _ in looks.values())
    rows = report.page.verdict_rows(rec)
    assert all(f"CI at look {looks[r['id']][0]}" in r["ci"] for r in rows)
    text = report.render(run_dir, tmp_path / "r.html").read_text()
    assert "Seeds were added until the claims were decided" in text


def test_a_claim_is_judged_on_the_seeds_and_level_of_its_look():
    import pandas as pd

    rows = []
    for seed in range(8):
        for d, err in ((0.0, 0.30), (0.5, 0.25 + 0.01 * (seed % 3))):
            rows.append({"trial_id": f"{seed}-{d}", "status": "completed", "seed": seed, "point": f"dropout={d}",
                         "dropout": d, "test_error": err, "train_error": err / 2, "num_classes": 10})
    trials = pd.DataFrame(rows)
    claim = {"id": "C", "statement": "s", "metric": "test_error", "compare": {"dropout": "0.5"},
             "against": {"dropout": "0.0"}, "expect": "lower"}
    (v,) = stats.claim_verdicts([claim], trials, axes=["dropout"], looks={"C": (2, [0, 1, 2, 3, 4, 5])})
    assert v["n"] == 6 and v["look"] == 2 and v["level"] == pytest.approx(stats.look_level(2))
    plain = stats.claim_verdict(claim, trials[trials.seed < 6], axes=["dropout"], level=stats.look_level(2))
    assert (v["ci_lo"], v["ci_hi"]) == pytest.approx((plain["ci_lo"], plain["ci_hi"]))


def test_bad_budgets_are_one_line_errors():
    s = spec.loads(TINY)
    with pytest.raises(ValueError, match=r"Invalid value for argument 'max_seeds': expected at least the study's 2 "
                                         r"seeds\. Received: max_seeds=1"):
        sequential.run(s, "unused", max_seeds=1)
    with pytest.raises(ValueError, match=r"argument 'step'"):
        sequential.run(s, "unused", step=0)
