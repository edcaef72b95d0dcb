"""The repository explains itself: README is the user guide, docs/ holds the rest, every link
between them resolves, and the headings that code comments cite stay where they are."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]

FENCE = re.compile(r"^```.*?^```[^\n]*$", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
CITATION = re.compile(r"\b((?:README|docs/[\w-]+)\.md)#([\w-]+)")

FIRST_COMMANDS = [
    # Installs, puts `cronctl` on PATH (~/.local/bin) and starts serve (issue 14, item 12).
    "python3 -m venv ~/.cronctl && ~/.cronctl/bin/pip install . && mkdir -p ~/.local/bin"
    " && ln -sf ~/.cronctl/bin/cronctl ~/.local/bin/ && ~/.cronctl/bin/cronctl serve",
    "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest",
]

# The sections code comments cite for a rule (README.md#... or docs/NAME.md#...). Renaming
# one of these headings means updating the comments that cite it.
CITED = [
    "README.md#day-of-month-and-day-of-week",
    "README.md#daylight-saving-time",
    "README.md#schedules",
    "README.md#the-task-file",
    "README.md#exit-codes",
    "README.md#json",
    "README.md#run-statuses",
    "README.md#runs",
    "README.md#what-serve-guarantees",
    "README.md#exit-status-of-serve",
    "README.md#when-a-notification-is-sent",
    "README.md#channels",
    "README.md#health-status-prune-metrics",
    "README.md#files",
    "docs/architecture.md#rules-that-keep-it-so",
    "docs/architecture.md#start-up-lazy-imports",
    "docs/architecture.md#how-a-scheduled-run-flows",
    "docs/reliability.md#decisions",
    "docs/performance.md#targets",
    "docs/performance.md#measured-choices-in-serve",
]


def prose(path: Path) -> str:
    """The page without its fenced code blocks (a `# comment` there is no heading)."""
    return FENCE.sub("", path.read_text(encoding="utf-8"))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for heading in HEADING.findall(prose(path)):
        base = slug(heading)
        anchor, count = base, 0
        while anchor in found:  # GitHub numbers repeated headings: x, x-1, x-2
            count += 1
            anchor = f"{base}-{count}"
        found.add(anchor)
    return found


def links(path: Path) -> list[str]:
    return LINK.findall(prose(path))


def is_external(target: str) -> bool:
    return re.match(r"^[a-z][a-z0-9+.-]*:", target) is not None


def test_the_pages_exist():
    names = {page.name for page in PAGES}
    assert {"README.md", "architecture.md", "reliability.md", "performance.md"} <= names


def test_readme_links_every_page_of_docs():
    linked = {target.partition("#")[0] for target in links(README)}
    pages = {f"docs/{page.name}" for page in DOCS.glob("*.md")}
    assert pages - linked == set(), "pages of docs/ the README does not link"
    assert {"docs/architecture.md", "docs/reliability.md", "docs/performance.md"} <= linked


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_resolves(page):
    broken = []
    for target in links(page):
        if is_external(target):
            continue
        path_part, _, anchor = target.partition("#")
        destination = (page.parent / path_part).resolve() if path_part else page
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{target}: no heading with that anchor")
    assert broken == [], f"broken links in {page.name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_no_page_mentions_a_spec_that_does_not_exist(page):
    text = page.read_text(encoding="utf-8")
    assert re.search(r"\bSPEC\b", text) is None


def test_the_readme_opens_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    first = re.search(r"^```[^\n]*\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert first is not None
    assert first.group(1).splitlines() == FIRST_COMMANDS
    assert not re.search(r"^#{2,} ", text[: first.start()], re.MULTILINE), "the commands come first"


@pytest.mark.parametrize("citation", CITED)
def test_the_sections_code_cites_exist(citation):
    page, _, anchor = citation.partition("#")
    assert anchor in anchors(ROOT / page)


def test_citations_in_the_code_resolve():
    """A comment or docstring that cites a section of README or docs/ by its anchor names a
    heading that exists."""
    broken = []
    for folder in ("cronctl", "tests", "man", ".ci"):
        for path in sorted((ROOT / folder).rglob("*")):
            if not path.is_file() or path.suffix in (".pyc", ".db"):
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            for page, anchor in CITATION.findall(text):
                target = ROOT / page
                if not target.exists() or anchor not in anchors(target):
                    broken.append(f"{path.relative_to(ROOT)}: {page}#{anchor}")
    assert broken == []
