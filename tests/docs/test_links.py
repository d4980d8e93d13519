"""Every relative link of README.md and docs/ resolves, anchors included, and every docs page is
listed by README.md or docs/README.md."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]

#: ``[text](target)``, not an image; the target ends at the first space or closing bracket.
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _prose(text: str) -> str:
    """The text outside fenced code blocks and inline code spans."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, inline code kept as text, punctuation dropped
    (but ``-`` and ``_``), each space a ``-``."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.M | re.S)
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6} (.+?)\s*#*$", text, re.M):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[str]:
    return LINK.findall(_prose(path.read_text(encoding="utf-8")))


def test_slugs_are_githubs() -> None:
    heading = "3. What each mode keeps (`consent.policy`)"
    assert slug(heading) == "3-what-each-mode-keeps-consentpolicy"
    assert slug("Privacy officer's tools") == "privacy-officers-tools"
    assert slug("Accounts, sessions and tokens") == "accounts-sessions-and-tokens"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: …
            continue
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / unquote(file_part)).resolve() if file_part else page
        missing = not linked.is_file()
        if missing or (anchor and linked.suffix == ".md" and anchor not in anchors(linked)):
            broken.append(target)
    assert broken == []


def test_every_docs_page_is_listed() -> None:
    listed = {
        (index.parent / target.partition("#")[0]).resolve()
        for index in (ROOT / "README.md", DOCS / "README.md")
        for target in links(index)
    }
    pages = [page for page in sorted(DOCS.glob("*.md")) if page.name != "README.md"]
    unlisted = [page.name for page in pages if page not in listed]
    assert unlisted == []
    assert DOCS / "README.md" in listed


#: A repository path in inline code: ``collector/web/app.py``, ``tests/setup.sh``, ``docs/``.
REPO_PATH = re.compile(
    r"`((?:collector|consent|tests|examples|sdk_snippet|requirements|docs)/[\w./-]*)`"
)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_repository_path_named_in_code_exists(page: Path) -> None:
    """A module or file the docs name in inline code exists: a module moved or renamed without
    its docs fails here (the layout section of the design names every package)."""
    named = set(REPO_PATH.findall(page.read_text(encoding="utf-8")))
    missing = sorted(path for path in named if not (ROOT / path.rstrip("/")).exists())
    assert not missing, f"{page.name} names paths that do not exist: {missing}"
