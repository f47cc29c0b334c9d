"""The bundled study files (studies/*.toml): each parses under every profile, its claims name metrics
that the runner and the probes really produce (``ablation.trials.metrics``, itself tested in test_metrics.py)
and grid values that the profile really has, its cpu profile is evidence (5+ seeds; MNIST claims on
MNIST), its full profile is paper-scale, and its published numbers are quoted from the claims
catalogue (docs/claims.md). No training runs here: ``bash reports/regenerate.sh`` (the cpu profiles)
is the end-to-end check.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from ablation.trials import metrics
from ablation import spec

STUDIES = spec.list_studies()
PROFILES = (None, "cpu", "full")
CATALOGUE = Path(__file__).resolve().parents[1] / "docs" / "claims.md"
MIN_SEEDS = 5
# Claims about MNIST (the catalogue's setup names MNIST): their evidence runs on MNIST itself.
MNIST_CLAIMS = ("C1", "C2", "C7", "C8", "B1", "B5", "B6", "D1", "D2", "D3")
MNIST_VALIDATION = 10_000  # the dropout paper's last-10k validation split


def _load(name: str, profile: str | None) -> spec.StudySpec:
    return spec.load(spec.find_study(name), profile=profile)


def _raw(name: str) -> dict:
    return tomllib.loads(spec.find_study(name).read_text(encoding="utf-8"))


def _catalogue_rows() -> dict[str, str]:
    """Catalogue claim id ("A1") -> its table row."""
    rows = {}
    for line in CATALOGUE.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\|\s*([A-D]\d+)\s*\|", line)
        if m:
            rows[m.group(1)] = line
    return rows


# ----------------------------------------------------------------------------- every study x profile


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("name", STUDIES)
def test_study_profile_parses_and_its_claims_can_be_checked(name, profile):
    s = _load(name, profile)
    assert (s.name, s.profile) == (name, profile)
    assert s.description.strip()
    assert s.n_trials == len(s.trials()) >= 2
    # every claim names a column the runs produce ...
    problems = {(c.id, m): (m, metrics.claim_metric_problem(s, m)) for c in s.claims
                for m in (c.metric, c.against_metric) if m}
    assert {k: v for k, v in problems.items() if v[1] is not None} == {}
    # ... and grid values this profile has (else the report finds no trials for it)
    missing = [(c.id, axis, lab) for c in s.claims for part in (c.compare, c.against or {}, c.where)
               for axis, labs in part.items() for lab in (labs if isinstance(labs, tuple) else (labs,))
               if lab not in s.axis(axis).labels]
    assert missing == []
    # MNIST: the user supplies the folder (ABLATION_MNIST_DIR) or Keras downloads; last 10k validate
    assert "data_dir" not in s.data.options
    if s.data.name == "mnist" and s.data.train_size is None:
        assert s.data.validation_size == MNIST_VALIDATION


# ----------------------------------------------------------------------------- profiles


@pytest.mark.parametrize("name", STUDIES)
def test_cpu_profile_is_evidence_and_full_is_paper_scale(name):
    assert {"cpu", "full"} <= set(_raw(name).get("profiles", {}))
    base, cpu, full = _load(name, None), _load(name, "cpu"), _load(name, "full")
    assert len(cpu.seeds) >= MIN_SEEDS and len(full.seeds) >= len(cpu.seeds)
    assert full.train.epochs >= cpu.train.epochs
    ids = [c.id for c in base.claims]
    assert ids, "a bundled study states at least one claim"
    assert [c.id for c in full.claims] == ids
    assert set(c.id for c in cpu.claims) <= set(ids), "a cpu claim restates a claim of the study"
    about_mnist = [c.id for c in cpu.claims if c.id.split("-")[0] in MNIST_CLAIMS]
    if about_mnist:
        assert cpu.data.name == "mnist", f"{about_mnist} are about MNIST: the cpu profile must run on it"


# ----------------------------------------------------------------------------- published numbers


@pytest.mark.parametrize("name", STUDIES)
def test_published_numbers_ids_and_approx_follow_the_catalogue(name):
    numbers = set(re.findall(r"\d+(?:\.\d+)?", CATALOGUE.read_text(encoding="utf-8")))
    claims = _load(name, None).claims
    invented = {c.id: n for c in claims for n in re.findall(r"\d+(?:\.\d+)?", c.published) if n not in numbers}
    assert invented == {}
    if name == "quickstart":  # its claims (Q1-Q4) predate the catalogue ids
        return
    rows = _catalogue_rows()
    for c in claims:
        m = re.match(r"^([A-D]\d+)(?:-|$)", c.id)
        assert m and m.group(1) in rows, f"claim {c.id!r} does not start with a catalogue claim id"
        row_is_approx = "approx" in rows[m.group(1)]
        assert c.approx == (row_is_approx and bool(re.search(r"\d", c.published))), c.id


# ----------------------------------------------------------------------------- committed reports

REPORTS = Path(__file__).resolve().parents[1] / "reports"


@pytest.mark.parametrize("name", STUDIES)
def test_committed_report_is_from_the_current_study(name):
    """reports/<study>.html was rendered from the study as it is now (``bash reports/regenerate.sh``):
    its run folder is the current spec's on the backend it names, and its claims are the current ones."""
    import dataclasses
    import html

    page = REPORTS / f"{name}.html"
    assert page.exists(), f"no committed report; run: bash reports/regenerate.sh {name}"
    text = page.read_text(encoding="utf-8")
    rows = dict(re.findall(r"<tr><td>(profile|backend)</td><td>([^<]*)</td></tr>", text))
    assert set(rows) == {"profile", "backend"}, f"an old report; run: bash reports/regenerate.sh {name}"
    profile = spec.report_profile(name)  # what regenerate.sh runs
    assert rows["profile"] == (profile or "none")
    current = dataclasses.replace(_load(name, profile), backend=rows["backend"])
    rendered = re.search(r"Run folder <code>([^<]+)</code>", text).group(1)
    assert rendered == current.run_name, f"stale report; run: bash reports/regenerate.sh {name}"
    shown = html.unescape(text)
    for claim in current.claims:
        assert claim.statement in shown, (name, claim.id)
