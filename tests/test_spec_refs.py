"""Every "SPEC section N" a source file cites resolves to a section of ``docs/SPEC.md`` (the
contract travels with the code: DESIGN.md rule 12)."""

from __future__ import annotations

import re

from tests.project_files import PACKAGES, ROOT

FOLDERS = (*PACKAGES, "duplexloom")
# "SPEC 8", "SPEC section 7", "SPEC sections 5-7", "SPEC §15" (a range cites its first section)
CITE = re.compile(r"SPEC(?: sections?| §)? ?(\d+)")
HEADING = re.compile(r"^## (\d+)\. ", re.MULTILINE)


def test_every_cited_spec_section_exists() -> None:
    sections = {int(n) for n in HEADING.findall((ROOT / "docs" / "SPEC.md").read_text(encoding="utf-8"))}
    assert sections, "docs/SPEC.md has no numbered sections"
    missing = [
        f"{path.relative_to(ROOT)}: SPEC {n}"
        for folder in FOLDERS
        for path in sorted((ROOT / folder).rglob("*.py"))
        for n in CITE.findall(path.read_text(encoding="utf-8"))
        if int(n) not in sections
    ]
    assert not missing, "citations of sections docs/SPEC.md does not have:\n" + "\n".join(missing)
