"""Code cites docs/ to point a reader at the reason (docs/development.md "Layout"): every cited
document exists, and every cited section is a heading of it or the bold lead of one of its items."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIP = {".venv", ".venv-ci", "node_modules", ".git"}
# A document, then maybe an anchor and a quoted section: docs/api.md "Errors", docs/admin.md#searching
CITATION = re.compile(r'docs/(?P<doc>[a-z_]+\.md)(?:#[\w-]+)?(?:[,;]?\s+|\s*,\s*)?(?:"(?P<section>[^"\n]+)")?')


def sections(doc: Path) -> set[str]:
    text = doc.read_text(encoding="utf-8")
    headings = {line.lstrip("#").strip().strip("`").lower() for line in text.splitlines() if line.startswith("#")}
    bold = {match.lower() for match in re.findall(r"^- \*\*(.+?)\*\*", text, flags=re.M)}
    return headings | bold


def test_every_docs_citation_names_an_existing_document_and_section():
    known: dict[str, set[str]] = {}
    stale = []
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        if SKIP & set(relative.parts) or "migrations" in relative.parts:
            continue
        text = path.read_text(encoding="utf-8")
        # Docstrings and comments wrap lines: read a citation across a line break.
        flat = re.sub(r"\s*\n\s*(?:#\s*)?", " ", text)
        for match in CITATION.finditer(flat):
            doc = ROOT / "docs" / match["doc"]
            if not doc.exists():
                stale.append(f"{relative}: docs/{match['doc']} does not exist")
                continue
            section = match["section"]
            if section is None:
                continue
            names = known.setdefault(match["doc"], sections(doc))
            if not any(name.startswith(section.lower()) for name in names):
                stale.append(f'{relative}: docs/{match["doc"]} has no section "{section}"')
    assert stale == [], "\n".join(stale)
