"""The documentation holds together: README is a short front door, the contents page links every page
of docs/, and every relative link in README.md, CHANGELOG.md and docs/*.md points at a file that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move detail into docs/"


def test_the_contents_page_links_every_page():
    contents = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    linked = set(LINK.findall(contents))
    missing = [p.name for p in PAGES if p.name != "README.md" and p.name not in linked]
    assert missing == []


@pytest.mark.parametrize("page", [ROOT / "README.md", ROOT / "CHANGELOG.md", *PAGES], ids=lambda p: p.name)
def test_relative_links_point_at_files(page):
    broken = [target for target in LINK.findall(page.read_text(encoding="utf-8"))
              if not re.match(r"^[a-z]+:", target) and not (page.parent / target).exists()]
    assert broken == [], f"{page.name}: {broken}"


def test_license_and_changelog_exist():
    assert "Apache License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert (ROOT / "CHANGELOG.md").read_text(encoding="utf-8").startswith("# Changelog")


def _shell_lines() -> list[tuple[str, str]]:
    """Every command of the ```bash blocks of README.md and docs/*.md, comments stripped, in page order."""
    out = []
    for page in [ROOT / "README.md", *PAGES]:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(encoding="utf-8"), re.S):
            for line in block.splitlines():
                command = line.split("  #")[0].strip()
                if command and not command.startswith("#"):
                    out.append((page.name, command))
    return out


def test_documented_commands_run_as_written(tmp_path):
    """Each documented command runs from a copy of the repository: ``python`` scripts as they are,
    ``ablation run`` and ``ablation ablate`` as dry runs (the same checks, nothing trained), ``ablation
    components`` and ``ablation list`` as they are; the install and test commands are
    what CI itself runs, and ``ablation report`` needs a finished run (it is tested in test_preregistration)."""
    import shutil
    import subprocess
    import sys

    for folder in ("examples", "studies"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("runs", "*.npz", "__pycache__"))
    env = {**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    ran = 0
    for page, command in _shell_lines():
        words = command.split()
        if words[0] == "python":
            argv = [sys.executable, *words[1:]]
        elif words[:2] in (["ablation", "run"], ["ablation", "ablate"]):
            argv = [sys.executable, "-m", "ablation.cli", *words[1:], "--out", str(tmp_path / "runs")]
            if "--dry-run" not in argv:
                argv.append("--dry-run")
        elif words[:2] in (["ablation", "components"], ["ablation", "list"]):
            argv = [sys.executable, "-m", "ablation.cli", *words[1:]]
        else:
            continue
        proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, f"{page}: {command}\n{proc.stderr[-2000:]}"
        ran += 1
    assert ran >= 5
