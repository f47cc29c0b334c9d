"""End-to-end tests of ablation.report: a tiny real run (digits, 2x2 grid, 2 seeds, 2 epochs) rendered to HTML."""

from __future__ import annotations

import html
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from ablation.stats import records
from ablation import report, spec, stats
from ablation.report import page

from conftest import TINY_STUDY, edit_study  # noqa: E402  (the shared tiny study)

TINY = edit_study(TINY_STUDY, ('name = "tiny"', 'name = "tiny-report"'),
                  ("seeds = [0, 1]", 'seeds = [0, 1]\nprobes = ["gradients", "activations", "timing"]'),
                  ("validation_size = 100", "validation_size = 100\ntrain_size = 300"))
PROBE_FIGURES = {"gradients": "gradient_norms", "activations": "unit_fractions", "weights": "weight_quantiles",
                 "covariate_shift": "covariate_shift", "speed": "speed"}
N_BOOT = 2000


class _Page(HTMLParser):
    """Collects what the tests look at: tags, image sources, links, table rows, <pre> texts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.closed: list[str] = []
        self.attrs: list[tuple[str, dict]] = []
        self.pre: list[str] = []
        self.rows: list[list[str]] = []
        self._in_pre = self._in_cell = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.append((tag, dict(attrs)))
        if tag == "pre":
            self._in_pre = True
            self.pre.append("")
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._in_cell = True
            self.rows[-1].append("")

    def handle_endtag(self, tag):
        self.closed.append(tag)
        self._in_pre = self._in_pre and tag != "pre"
        self._in_cell = self._in_cell and tag not in ("td", "th")

    def handle_data(self, data):
        if self._in_pre:
            self.pre[-1] += data
        if self._in_cell:
            self.rows[-1][-1] += data

    def srcs(self, tag: str, attr: str) -> list[str]:
        return [a[attr] for t, a in self.attrs if t == tag and attr in a]

    def ids(self) -> set[str]:
        return {a["id"] for _, a in self.attrs if "id" in a}


def _parse(text: str) -> _Page:
    parsed = _Page()
    parsed.feed(text)
    parsed.close()
    return parsed


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    runner = pytest.importorskip("ablation.engine.runner")
    return runner.run(spec.loads(TINY), out_dir=tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def clean(run_dir) -> tuple[Path, str]:
    path = report.render(run_dir, n_boot=N_BOOT)
    return path, path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def broken(run_dir, tmp_path_factory) -> tuple[Path, str, list[dict]]:
    """A copy of the run with one trial turned into a failure and one into a divergence."""
    copy = tmp_path_factory.mktemp("broken") / run_dir.name
    shutil.copytree(run_dir, copy)
    edited = []
    for trial_dir, status, reason in zip(sorted(copy.glob("trial_*"))[:2], ("failed", "diverged"),
                                         ("RuntimeError: fabricated <failure>", "loss is nan at epoch 2")):
        path = trial_dir / "result.json"
        result = json.loads(path.read_text())
        result.update(status=status, reason=reason, failed_epoch=2 if status == "diverged" else None,
                      metrics={}, evaluations=[])
        path.write_text(json.dumps(result))
        edited.append(result)
    out = report.render(copy, copy / "elsewhere" / "broken.html", n_boot=N_BOOT)
    return out, out.read_text(encoding="utf-8"), edited


def test_render_writes_the_default_path_atomically(run_dir, clean):
    path, text = clean
    assert path == run_dir / "report.html"
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert not list(run_dir.glob(".report.html.*"))                # no temporary file left behind


def test_report_is_self_contained(clean):
    _, text = clean
    page_ = _parse(text)
    assert page_.tags.count("section") == page_.closed.count("section") == 8  # the answer, then sections 1-7
    imgs = page_.srcs("img", "src")
    assert imgs and all(src.startswith("data:image/png;base64,") for src in imgs)
    assert "http://" not in text and "https://" not in text
    assert not {"script", "link", "iframe"} & set(page_.tags)
    assert all(href.startswith("#") for href in page_.srcs("a", "href"))
    assert "could not be drawn" not in text


def test_sections_in_order(clean):
    _, text = clean
    positions = [text.index(f'id="{s}"') for s in ("summary", "claims", "results", "effects", "figures",
                                                     "study", "failures", "reproduce")]
    assert positions == sorted(positions)


def test_one_figure_per_recorded_quantity(run_dir, clean):
    _, text = clean
    s = records.load(run_dir).spec
    expected = {"learning_curves", "interaction", "epoch_time", "importance"} | {PROBE_FIGURES[p] for p in s.probes
                                                                                  if p in PROBE_FIGURES}
    if "activations" in s.probes and "tanh" in s.axis("activation").labels:  # tanh units saturate: per layer
        expected.add("layer_saturation")
    page_ = _parse(text)
    shown = {i.removeprefix("fig-") for i in page_.ids() if i.startswith("fig-")}
    assert shown == expected
    assert len(page_.srcs("img", "src")) == len(expected)


def test_claim_table_matches_stats(run_dir, clean):
    _, text = clean
    rec = records.load(run_dir)
    verdict = stats.claim_verdict(rec.spec.claims[0], rec.trials, axes=rec.axes, n_boot=N_BOOT)
    row = next(r for r in _parse(text).rows if r and r[0].startswith("T1"))
    assert verdict["verdict"] in ("arm did not train", "too few seeds")    # 2 seeds: never a verdict
    assert row[4].startswith(verdict["verdict"])
    assert page.fmt_effect(verdict["estimate"], "test_error", "difference") in row[2]
    assert "approx." in row[1] and "1.25% vs 1.60%" in row[1]
    assert row[3] == str(verdict["n"]) == "2"       # one value per seed (the activations averaged within it)
    assert "digits (8x8) (300 train), 2 x 16, 2 epochs, 2 seeds" in row[6]   # the scale line


def test_results_table_has_one_row_per_grid_point(run_dir, clean):
    _, text = clean
    trials = records.load(run_dir).trials
    rows = [r for r in _parse(text).rows if len(r) == 7 and r[0] in ("relu", "tanh")]
    assert [r[:2] for r in rows] == [["relu", "0.0"], ["relu", "0.5"], ["tanh", "0.0"], ["tanh", "0.5"]]
    mean = trials[(trials.activation == "tanh") & (trials.dropout == 0.5)].test_error.mean()
    assert rows[3][2] == page.fmt_value(mean) and rows[3][4:] == ["2", "0", "0"]


def test_reproduce_shows_command_hash_and_escaped_study_text(run_dir, clean):
    _, text = clean
    meta = json.loads((run_dir / "run.json").read_text())
    pre = _parse(text).pre
    assert pre[0] == meta["command"]
    assert pre[1] == TINY                                                 # escaped in the page, exact when parsed
    assert "&#34;digits&#34;" in text or "&quot;digits&quot;" in text
    assert meta["hash"] in text
    assert "no factor 1/2" not in text                                    # no L1/L2 in this study
    backend = records.load(run_dir).trials["backend"].iloc[0]
    assert ["backend", backend] in _parse(text).rows                      # the run table names the backend
    assert any(r[:1] == ["backend choice"] and r[1].startswith("chosen by the user: ") for r in _parse(text).rows)


def test_failed_and_diverged_trials_are_listed(broken):
    path, text, edited = broken
    assert path.name == "broken.html" and path.parent.name == "elsewhere"
    rows = _parse(text).rows
    listed = {r[0]: r for r in rows if r and r[0] in {e["trial_id"] for e in edited}}
    for result in edited:
        row = listed[result["trial_id"]]
        assert row[3] == result["status"] and row[5] == result["reason"]
    assert "fabricated &lt;failure&gt;" in text                           # reasons are escaped
    for r in (r for r in rows if len(r) == 7 and r[0] in ("relu", "tanh")):
        here = [e["status"] for e in edited if e["point"] == {"activation": r[0], "dropout": r[1]}]
        assert r[4:] == [str(2 - len(here)), str(here.count("failed")), str(here.count("diverged"))]
        if len(here) == 2:
            assert r[2] == "\u2014" and r[3].startswith("(no CI")


def test_penalty_formula_shown_when_l2_is_used():
    s = spec.loads(TINY.replace('activation = ["relu", "tanh"]', "l2 = [0.0, 1e-4]"))
    assert "l2\u00b7\u03a3w\u00b2" in page._penalty_note(s) and "no factor 1/2" in page._penalty_note(s)
    assert page._penalty_note(spec.loads(TINY)) is None


def test_number_formats():
    assert page.fmt_value(0.1234) == "12.34%"
    assert page.fmt_value(1.5, "epoch_time_s") == "1.5"
    assert page.fmt_effect(-0.0123, "test_error", "difference") == "\u22121.23 pp"
    assert page.fmt_effect(0.8, "test_error", "ratio") == "\u00d70.800"
    assert page.fmt_effect(2.104e-4, "grad_first_over_last_init", "ratio") == "\u00d70.00021"  # not 0.000
    assert page.fmt_effect(0.05, "test_error", "ratio") == "\u00d70.05"
    assert page.fmt_value(float("nan")) == "\u2014"


def _chromium() -> str | None:
    return shutil.which("chromium") or (("/usr/bin/chromium") if Path("/usr/bin/chromium").exists() else None)


def test_headless_chromium_renders_without_console_errors(clean, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium not installed; .ci/run installs Debian's chromium")
    path, _ = clean
    shot = tmp_path / "shot.png"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
           f"--screenshot={shot}", "--window-size=1200,3000", f"file://{path}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000, done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []


def test_training_speed_table_matches_stats(run_dir):
    rec = records.load(run_dir)
    effects = {e["axis"]: e for e in page.context(rec, n_boot=200)["effects"]}
    speed = effects["dropout"]["speed"]
    assert [r["at"] for r in speed] == ["activation=relu", "activation=tanh"]
    table = stats.epochs_to_reach(rec.curves, {"dropout": 0.5}, {"dropout": 0.0}, within=["activation"])
    relu = table[table["activation"] == "relu"]["ratio"].to_numpy(dtype=float)
    reached = relu[np.isfinite(relu)]
    assert speed[0]["reached"] == f"{len(reached)} of 2"
    if len(reached):
        assert speed[0]["ratio"] == f"{reached.mean():.2f}x"


def test_the_page_leads_with_the_answer_and_labels_its_times(clean):
    """The first section after the title is one line per claim (its Holm verdict, the measurement and its
    interval); the header's time is the run's own, not the span between creation and the last finish."""
    _, text = clean
    shown = html.unescape(text)
    summary = shown[shown.index('id="summary"'):shown.index('id="claims"')]
    assert "T1" in summary and "dropout lowers test error" in summary and "seeds)" in summary
    assert "running time" in shown and "run created" in shown and "wall time" not in shown


def test_a_rate_interval_stays_inside_0_and_100_percent():
    assert (page._clip01(-0.02), page._clip01(1.3), page._clip01(0.4)) == (0.0, 1.0, 0.4)
    assert np.isnan(page._clip01(float("nan")))


def test_an_untestable_claim_says_why_in_the_users_terms():
    import pandas as pd

    trials = pd.DataFrame([{"trial_id": "0", "status": "completed", "seed": 0, "point": "a=1", "a": 1,
                            "test_error": 0.1}])
    claim = {"id": "X", "statement": "s", "metric": "test_acc", "expect": "lower"}
    (v,) = stats.claim_verdicts([claim], trials, axes=["a"])
    assert v["verdict"] == "cannot be tested" and "Invalid value" not in v["reason"]
    assert v["reason"] == "cannot be tested: these runs recorded no 'test_acc' (a probe or evaluation of the " \
                          "study would produce it)"


def test_the_page_says_where_the_time_went(run_dir, clean):
    from ablation.base.phases import PACK_PHASES

    meta = json.loads((run_dir / "run.json").read_text())
    phases = meta["invocations"][-1]["phases"]
    packed = {f"{name}_s" for name in PACK_PHASES} | {"worker_start_s"}
    assert set(phases) == {"start_s", "checks_s", "trials_s", "records_s"} | packed
    assert all(v >= 0 for v in phases.values()) and min(phases["build_s"], phases["train_s"], phases["writes_s"]) > 0
    # one worker: its start-up and its packs, one after another, fit in the chief's time for the trials
    assert sum(phases[k] for k in packed) <= phases["trials_s"]
    shown = html.unescape(clean[1])
    assert "Where the time went" in shown and "checks before the first trial" in shown
    rows = dict(page.time_breakdown(meta, records.load(run_dir).trials))
    assert rows["trials (all packs, until the last ended)"] == f"{phases['trials_s']:.1f} s"
    assert rows["  of which training steps"] == f"{phases['train_s']:.1f} s"
    assert rows["  of which workers' start-up (imports, joining the chief)"] == f"{phases['worker_start_s']:.1f} s"
    # every member of a pack holds the pack's phases; build to evaluate cover the pack's whole training call
    # (wall_time_s: from the pack's build to its final evaluation), the members' builds before it and the
    # final evaluation after it
    results = [json.loads(p.read_text()) for p in sorted(run_dir.glob("trial_*/result.json"))]
    for pack_id in {r["pack_id"] for r in results}:
        pack = [r for r in results if r["pack_id"] == pack_id]
        assert all(r["phases"] == pack[0]["phases"] for r in pack)
        own = pack[0]["phases"]
        timed = sum(own[f"{name}_s"] for name in ("build", "compile", "train", "evaluate", "probes"))
        assert pack[0]["wall_time_s"] - 0.005 <= timed <= pack[0]["wall_time_s"] + own["evaluate_s"] + own["build_s"]
    first = min(results, key=lambda r: r["trial_id"])
    assert sum("worker_start_s" in r["phases"] for r in results if r["pack_id"] == first["pack_id"]) == \
        len([r for r in results if r["pack_id"] == first["pack_id"]])  # the worker's start: with its first pack
    assert all("worker_start_s" not in r["phases"] for r in results if r["pack_id"] != first["pack_id"])


def _synthetic(grid_line: str, effect) -> records.Records:
    """Records of a study with TINY's grid replaced by ``grid_line``: one completed trial per (point, seed)
    whose test error is ``effect(point)`` plus small noise (no training)."""
    import itertools

    import pandas as pd

    s = spec.loads(TINY.replace('activation = ["relu", "tanh"]\ndropout = [0.0, 0.5]', grid_line))
    rng = np.random.default_rng(0)
    rows = []
    for values in itertools.product(*(a.values for a in s.grid)):
        point = dict(zip(s.axis_names, values))
        for seed in range(4):
            rows.append({"trial_id": str(len(rows)), "status": "completed", "seed": seed, **point,
                         "point": ", ".join(f"{k}={v}" for k, v in point.items()),
                         "test_error": effect(point) + rng.normal(0, 0.002)})
    empty = pd.DataFrame()
    return records.Records(trials=pd.DataFrame(rows), curves=empty, probes=empty, evaluations=empty, spec=s,
                           axes=s.axis_names)


def test_factor_importance_is_shown_for_two_axes_only(clean):
    """A 2-axis grid's page has "Which factors matter" (a ranked chart and the stats table); a 1-axis one not."""
    two = _synthetic('activation = ["relu", "tanh"]\ndropout = [0.0, 0.5]',
                     lambda p: 0.10 + (0.05 if p["activation"] == "tanh" else 0.0))
    text = page.render_html(two, n_boot=300)
    parsed = _parse(text)
    assert "Which factors matter" in text and "fig-importance" in parsed.ids() and "could not be drawn" not in text
    imp = stats.factor_importance(two.trials, ["activation", "dropout"], "test_error", n_boot=300)
    rows = [r for r in parsed.rows if len(r) == 8 and r[0] in set(imp.table["term"])]
    assert [r[0] for r in rows] == list(imp.table["term"]) and rows[0][0] == "activation"  # ranked, as stats
    top = imp.table.iloc[0]
    assert rows[0][2] == f"{100 * top['eta_sq']:.1f}%" and rows[0][3] == \
        f"[{100 * top['ci_lo']:.1f}%, {100 * top['ci_hi']:.1f}%]" and top["eta_sq"] > 0.95
    one = _synthetic("dropout = [0.0, 0.5]", lambda p: 0.10 + p["dropout"] / 10)
    assert "Which factors matter" not in page.render_html(one, n_boot=300)
    assert "Which factors matter" in clean[1]                            # the real 2 x 2 run has it too


def test_labelled_claims_say_so_on_the_page_and_sanity_checks_are_not_counted(run_dir, tmp_path):
    import importlib.util
    import re

    labelled = spec.loads(TINY.replace('expect = "lower"', 'expect = "lower"\nsanity = "true by construction here."\n'
                                       'weaker_than_paper = "tests lower, not how much."', 1)).claims
    out = report.render(run_dir, tmp_path / "labelled.html", n_boot=N_BOOT, claims=labelled)
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", "", out.read_text(encoding="utf-8"))).split())
    assert "Sanity check, not evidence: true by construction here." in text
    assert "Weaker than the paper's claim: tests lower, not how much." in text
    assert "changed after the run" not in text                           # a label is not a change of the test
    plain = html.unescape(report.render(run_dir, tmp_path / "plain.html", n_boot=N_BOOT).read_text(encoding="utf-8"))
    assert "Sanity check" not in plain and "Weaker than the paper" not in plain
    rows = page.verdict_rows(records.load(run_dir), n_boot=N_BOOT, claims=labelled)
    assert [r["sanity"] for r in rows] == ["true by construction here."] and page.evidence(rows) == []
    path = Path(__file__).resolve().parents[1] / "reports" / "gallery.py"
    loader = importlib.util.spec_from_file_location("gallery", path)
    gallery = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(gallery)
    counted = dict(rows[0], sanity="", holm="supported")
    assert gallery._summary([counted, rows[0]]) == "1 supported; 1 sanity check (not counted)"
    assert gallery._summary([rows[0]]) == "1 sanity check (not counted)"
    assert gallery.SANITY in gallery._labels(rows[0]) and gallery.WEAKER in gallery._labels(rows[0])


def test_gallery_keeps_blocks_it_does_not_rewrite_as_they_are(tmp_path):
    """``regenerate.sh STUDY`` rewrites that study's gallery block only (``--only``): the others are taken as they
    are, unmarked, with their README summary lines; without --only a block whose run is absent is marked kept."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "reports" / "gallery.py"
    loader = importlib.util.spec_from_file_location("gallery", path)
    gallery = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(gallery)
    text = (f"x\n{gallery.START}\n**[alpha](../reports/alpha.html)** (mnist, 5 seeds, cpu profile, jax):\n\n"
            f"| claim | verdict |\n| **A** s | supported |\n\n{gallery.END}\n")
    as_is = gallery.previous_blocks(text, mark=False)
    assert as_is["alpha"][0] == "**[alpha](../reports/alpha.html)** (mnist, 5 seeds, cpu profile, jax):"
    assert gallery.KEPT in gallery.previous_blocks(text)["alpha"][0]
    readme = tmp_path / "README.md"
    readme.write_text(f"{gallery.SUMMARY_START}\n| study | claims | verdicts (Holm) |\n|---|---|---|\n"
                      f"| [alpha](reports/alpha.html) | 1 | 1 supported |\n{gallery.SUMMARY_END}\n", encoding="utf-8")
    assert gallery.previous_summary(readme) == {"alpha": "| [alpha](reports/alpha.html) | 1 | 1 supported |"}


def test_the_run_section_says_who_chose_the_backend():
    from ablation.report import page

    rule = {"backend": "tensorflow", "chosen_by": "rule", "reason": "convolution layers on a CPU-only machine"}
    assert page.backend_chosen({"backend_choice": rule}) == "chosen by the rule: convolution layers on a CPU-only machine"
    assert page.backend_chosen({"backend_choice": {**rule, "chosen_by": "user", "reason": "--backend"}}) == \
        "chosen by the user: --backend"
    assert page.backend_chosen({}) == ""  # a run from before the choice was recorded
