"""ablation.spec.preregistration: a run registers its claims when it starts; an edit afterwards shows on the
page as such (apart, with the diff, outside the Holm family), and re-registering is an explicit act."""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import pytest

from ablation import cli, report, spec
from ablation.spec import preregistration
from ablation.stats import records
from ablation.base import rundir
from ablation.report import page

from conftest import TINY_STUDY, edit_study  # noqa: E402  (the shared tiny study)

TINY = edit_study(TINY_STUDY, ('name = "tiny"', 'name = "tiny-prereg"'))
EDITED = edit_study(TINY, ('expect = "lower"', 'expect = "lower"\nthreshold = 0.5'))  # T1's threshold moved
ADDED = TINY + '\n[[claims]]\nid = "T2"\nstatement = "tanh is worse"\nmetric = "test_error"\n' \
               'compare = { activation = "tanh" }\nagainst = { activation = "relu" }\nexpect = "higher"\n'


def _claims(text: str) -> tuple:
    return spec.loads(text).claims


# ----------------------------------------------------------------------------- the registry itself

def test_a_new_run_registers_its_claims_once():
    meta: dict = {}
    assert preregistration.register(meta, _claims(TINY), finished_trials=0)
    entry = meta["claims"]
    assert entry["reason"] == preregistration.AT_START and entry["finished_trials"] == 0
    assert entry["hash"] == preregistration.claims_hash(_claims(TINY)) and len(entry["hash"]) == 64
    assert not preregistration.register(meta, _claims(EDITED), finished_trials=8)  # resuming keeps them
    assert meta["claims"] == entry
    claims, info = preregistration.registered(meta)
    assert list(claims) == list(_claims(TINY)) and "claims" not in info


def test_registering_again_is_explicit_and_keeps_the_history():
    meta: dict = {}
    preregistration.register(meta, _claims(TINY), finished_trials=0)
    first = meta["claims"]
    assert not preregistration.register(meta, _claims(TINY), finished_trials=8, again=True)  # same claims: no-op
    assert preregistration.register(meta, _claims(EDITED), finished_trials=8, again=True)
    assert meta["claims"]["reason"] == preregistration.ON_REQUEST and meta["claims"]["finished_trials"] == 8
    assert meta["claim_registrations"] == [first]


def test_a_run_that_predates_registration_says_so():
    meta: dict = {"name": "old"}
    preregistration.register(meta, _claims(TINY), finished_trials=5)
    assert meta["claims"]["reason"] == preregistration.BEFORE_REGISTRATION


def test_compare_and_diff():
    registered, current = _claims(TINY), _claims(ADDED.replace('expect = "lower"', 'expect = "lower"\nthreshold = 0.5'))
    out = preregistration.compare(registered, current)
    assert [(s.id, s.status) for s in out] == [("T1", "changed after the run"), ("T2", "added after the run")]
    assert out[0].changes == ("threshold: 0.0 \u2192 0.5",) and out[0].post_hoc and out[1].post_hoc
    gone = preregistration.compare(current, registered)
    assert [(s.id, s.status) for s in gone] == [("T1", "changed after the run"), ("T2", "removed from the study file")]
    assert not gone[1].post_hoc
    same = preregistration.compare(registered, _claims(TINY))
    assert [s.status for s in same] == ["registered"]


# ----------------------------------------------------------------------------- a real run, edited afterwards

@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    runner = pytest.importorskip("ablation.engine.runner")
    return runner.run(spec.loads(TINY), out_dir=tmp_path_factory.mktemp("runs"))


def test_the_run_registered_its_claims_at_the_start(run):
    meta = json.loads((run / rundir.RUN).read_text())
    assert meta["claims"]["reason"] == preregistration.AT_START and meta["claims"]["finished_trials"] == 0
    assert meta["invocations"][0]["registered_claims"] == meta["claims"]["hash"]
    text = report.render(run, run / "r.html").read_text()
    assert "when the run started, before any trial had finished" in text and 'id="post-hoc"' not in text


def test_a_claim_edited_after_the_run_is_shown_apart_with_its_diff(run, tmp_path, capsys):
    study = tmp_path / "tiny.toml"
    study.write_text(ADDED.replace('expect = "lower"', 'expect = "lower"\nthreshold = 0.5', 1))
    out = tmp_path / "page.html"
    code = cli.main(["report", str(study), "--out", str(run.parent), "-o", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert printed.count("\n") == 2 and "claims edited after the run: T1 (changed), T2 (added)" in printed
    text = html.unescape(out.read_text())
    assert "Claims changed or added after the run (post hoc)" in text and "threshold: 0.0 \u2192 0.5" in text
    rec = records.load(run)
    family = page.verdict_rows(rec, claims=spec.load(study).claims)
    assert [r["id"] for r in family] == ["T1"] and family[0]["standing"] == "changed after the run"
    assert "must lie below 0:" not in family[0]["test"] and family[0]["test"].endswith("must lie below 0")
    tables = page.claim_tables(rec, claims=spec.load(study).claims)
    assert [(r["id"], r["holm"]) for r in tables["post_hoc"]] == [("T1", "post hoc"), ("T2", "post hoc")]
    assert tables["post_hoc"][0]["test"].endswith("must lie below 0.5")
    # the run folder itself is untouched by a report: the registration stays the original one
    assert json.loads((run / rundir.RUN).read_text())["claims"]["reason"] == preregistration.AT_START


def test_register_claims_makes_the_edit_the_runs_claims_and_the_page_says_when(run, tmp_path):
    runner = pytest.importorskip("ablation.engine.runner")
    copy = tmp_path / run.name
    shutil.copytree(run, copy)
    runner.run(spec.loads(EDITED), out_dir=tmp_path, register_claims=True)
    meta = json.loads((copy / rundir.RUN).read_text())
    assert meta["claims"]["reason"] == preregistration.ON_REQUEST and meta["claims"]["finished_trials"] == 8
    assert len(meta["claim_registrations"]) == 1
    text = html.unescape(report.render(copy, tmp_path / "p.html").read_text())
    assert re.search(r"registered again on request \(--register-claims\) after 8 trials had finished", text)
    assert 'id="post-hoc"' not in text
    rec = records.load(copy)
    assert page.registration_line(rec).startswith("claims registered after 8 trials had finished")
