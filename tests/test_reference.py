"""Every "REFERENCE §N" cited in the code, tests and docs names a section of docs/REFERENCE.md.

The reference is the project's own record of the facts and decisions the code follows; a
citation of a section it does not have (or of a document outside the repository) cannot be
checked by a reader.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CITATION = re.compile(r"REFERENCE ((?:§\d+)(?:(?:\s*(?:,|and|-)\s*)§\d+)*)")


def cited() -> list[tuple[str, int]]:
    found = []
    for folder in ("python", "rust", "tests", "docs", "benches"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in {".py", ".pyi", ".rs", ".md"} or "target" in path.parts:
                continue
            for m in CITATION.finditer(path.read_text(encoding="utf-8")):
                for n in re.findall(r"§(\d+)", m.group(1)):
                    found.append((str(path.relative_to(ROOT)), int(n)))
    return found


def test_every_reference_citation_names_a_section_of_docs_reference_md() -> None:
    text = (ROOT / "docs" / "REFERENCE.md").read_text(encoding="utf-8")
    sections = {int(n) for n in re.findall(r"^## (\d+)\. ", text, re.MULTILINE)}
    citations = cited()
    assert len(citations) >= 20, citations  # the pattern still finds them
    missing = [(where, n) for where, n in citations if n not in sections]
    assert missing == [], f"sections not in docs/REFERENCE.md: {missing}"
