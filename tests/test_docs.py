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
