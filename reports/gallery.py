"""The gallery of the bundled studies' verdicts, written into ``docs/studies.md`` between its
``gallery`` markers: for every claim of every bundled study, the verdict at CPU scale, the measurement
with its 95% interval and number of seeds, and the paper's number, under a link to the study's report;
and a one-line summary per study (its Holm-adjusted verdicts, counted) into README's ``summary`` markers.
A claim labelled ``sanity`` (it cannot fail by construction) is shown as such and left out of the counts; a
claim labelled ``weaker_than_paper`` says how, beside its statement.

Each study's run is the one ``reports/regenerate.sh`` made (the quickstart as README runs it, every
other study with its ``cpu`` profile), found in ``runs/`` by its spec hash on either backend. The
rows are the report's own claim rows (``ablation.report.page.verdict_rows``), so the gallery and
the pages cannot disagree. ``regenerate.sh`` calls this after re-rendering the pages.

    python reports/gallery.py [--runs runs] [--only STUDY ...]

``--only`` (what ``regenerate.sh STUDY ...`` passes) rewrites those studies' blocks and summary lines and
leaves every other one as it is: a study not re-rendered now is not marked stale merely because its run
folder is not on this machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from pathlib import Path

from ablation.base import backend

backend.start()  # the backends' start-up lines stay off the terminal (records import Keras)

from ablation.stats import records  # noqa: E402
from ablation import spec
from ablation.base.backend import BACKENDS  # noqa: E402
from ablation.report import page  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- gallery:start -->", "<!-- gallery:end -->"
SUMMARY_START, SUMMARY_END = "<!-- summary:start -->", "<!-- summary:end -->"
GALLERY = ROOT / "docs" / "studies.md"


def run_folder(name: str, runs: Path) -> Path | None:
    """The newest finished run folder of the study's regenerated spec, on whichever backend it ran."""
    s = spec.load(spec.find_study(name), profile=spec.report_profile(name))
    hashes = {dataclasses.replace(s, backend=b).hash for b in BACKENDS}
    found = []
    for meta in runs.glob(f"{name}-*/run.json"):
        try:
            doc = json.loads(meta.read_text())
            if doc.get("hash") in hashes and doc.get("finished"):  # a run still going is not a page yet
                found.append(meta.parent)
        except (OSError, ValueError):
            continue
    return max(found, key=lambda p: (p / "run.json").stat().st_mtime) if found else None


def previous_blocks(text: str, mark: bool = True) -> dict[str, list[str]]:
    """The gallery's blocks per study as README has them now, marked (once) as rendered by an earlier run and
    rules when they are kept for a study whose run is not in ``--runs``."""
    if START not in text or END not in text:
        return {}
    body = text.split(START, 1)[1].split(END, 1)[0]
    blocks: dict[str, list[str]] = {}
    name = None
    for line in body.strip("\n").splitlines():
        m = re.match(r"^\*\*\[([a-z0-9_]+)\]\((?:\.\./)?reports/", line)
        if m:
            name = m.group(1)
            blocks[name] = []
        if name is not None:
            blocks[name].append(line)
    for name, block in blocks.items():
        if mark and block and "not run yet" not in block[0] and KEPT not in block[0]:
            block[0] = block[0].rstrip(":") + f" {KEPT}:"
        if block and block[-1] != "":
            block.append("")
    return blocks


def previous_summary(readme: Path) -> dict[str, str]:
    """README's summary line per study, as it is now."""
    text = readme.read_text(encoding="utf-8")
    if SUMMARY_START not in text:
        return {}
    body = text.split(SUMMARY_START, 1)[1].split(SUMMARY_END, 1)[0]
    return {m.group(1): line for line in body.splitlines() if (m := re.match(r"^\| \[([a-z0-9_]+)\]", line))}


KEPT = "(kept from its last rendering, under the verdict rules of that time; not re-run since)"


def _cell(text: object) -> str:
    return re.sub(r"\s+", " ", str(text)).replace("|", "\\|").strip()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, default=ROOT / "runs")
    p.add_argument("--only", nargs="+", default=None, metavar="STUDY",
                   help="rewrite only these studies' blocks; the others stay as they are")
    args = p.parse_args()
    if not args.runs.is_dir():
        p.exit(2, f"error: --runs: expected a folder of run folders. Received: {str(args.runs)!r}\n")
    text = GALLERY.read_text(encoding="utf-8")
    kept = previous_blocks(text)
    as_is, old_summary = previous_blocks(text, mark=False), previous_summary(ROOT / "README.md")
    lines, summary = [], ["| study | claims | verdicts (Holm) |", "|---|---|---|"]
    for name in spec.list_studies():
        if args.only is not None and name not in args.only and name in as_is and name in old_summary:
            lines += as_is[name]
            summary.append(old_summary[name])
            continue
        run_dir = run_folder(name, args.runs)
        link = f"[{name}](reports/{name}.html)"
        if run_dir is None and name in kept:  # no run here: the block rendered from the last run, said as such
            lines += kept[name]
            claim_rows = [line for line in kept[name] if line.startswith("| **")]
            verdicts = [_kept_verdict(line) for line in claim_rows if SANITY not in line]
            checks = len(claim_rows) - len(verdicts)
            counts = "; ".join(p for p in (_count(verdicts), _checks(checks).lstrip("; ")) if p)
            summary.append(f"| {link} | {len(claim_rows)} | {counts} (earlier rules, not re-run) |")
            continue
        if run_dir is None:
            lines += [f"**[{name}](../reports/{name}.html)**: not run yet.", ""]
            summary.append(f"| {link} | | not run yet |")
            continue
        rec = records.load(run_dir)
        backend = page.backends(rec.trials, rec.spec, rec.meta)
        profile = rec.spec.profile or "default"
        lines += [f"**[{name}](../reports/{name}.html)** ({rec.spec.data.label}, {len(rec.spec.seeds)} seeds, "
                  f"{profile} profile, {backend}):", "",
                  "| claim | verdict (Holm) | measured, 95% CI (seeds) | paper |", "|---|---|---|---|"]
        rows = page.verdict_rows(rec, claims=spec.load(spec.find_study(name), profile=rec.spec.profile).claims)
        for r in rows:
            verdict = r["verdict"] if r["holm"] == r["verdict"] else f"{r['verdict']} ({r['holm']})"
            lines.append(f"| **{r['id']}** {_cell(r['statement'])}{_labels(r)} | {verdict} | {_cell(r['measured'])} "
                         f"{_cell(r['ci'])} ({r['n']}) | {_cell(r['published'])} |")
        lines.append("")
        summary.append(f"| {link} | {len(rows)} | {_summary(rows)} |")
    _replace(GALLERY, START, END, lines)
    _replace(ROOT / "README.md", SUMMARY_START, SUMMARY_END, summary)
    print("\n".join(summary))


def _replace(path: Path, start: str, end: str, lines: list[str]) -> None:
    """Write ``lines`` between the markers of a file."""
    text = path.read_text(encoding="utf-8")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(head + start + "\n" + "\n".join(lines) + "\n" + end + tail, encoding="utf-8")


SANITY = "*sanity check, not evidence*"
WEAKER = "*weaker than the paper's claim*"


def _labels(row: dict) -> str:
    """A gallery row's labels (``ablation.spec.claims.LABELS``), after the statement."""
    return (f" {SANITY}: {_cell(row['sanity'])}" if row.get("sanity") else "") + \
        (f" {WEAKER}: {_cell(row['weaker'])}" if row.get("weaker") else "")


def _summary(rows: list[dict]) -> str:
    """The Holm verdicts of the claims that count as evidence, then how many sanity checks were left out."""
    counted = page.evidence(rows)
    parts = [_count([r["holm"] for r in counted]), _checks(len(rows) - len(counted)).lstrip("; ")]
    return "; ".join(p for p in parts if p) or "no claims"


def _checks(n: int) -> str:
    """``; 2 sanity checks (not counted)`` (nothing when there are none)."""
    return f"; {n} sanity check{'s' if n != 1 else ''} (not counted)" if n else ""


def _kept_verdict(row: str) -> str:
    """The Holm verdict of a kept gallery row (``verdict (holm)`` or ``verdict``)."""
    cell = row.split(" | ")[1].strip()
    m = re.match(r"^(.*) \((.*)\)$", cell)
    return m.group(2) if m else cell


def _count(verdicts: list[str]) -> str:
    """``3 supported, 1 inconclusive``, in the order of stats.VERDICTS."""
    from ablation import stats

    order = {v: i for i, v in enumerate(stats.VERDICTS)}
    counts: dict[str, int] = {}
    for v in verdicts:
        counts[v] = counts.get(v, 0) + 1
    return ", ".join(f"{n} {v}" for v, n in sorted(counts.items(), key=lambda kv: order.get(kv[0], 99)))


if __name__ == "__main__":
    main()
