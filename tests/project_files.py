"""The project's own source folders, for the tests that read every source file (layering, SPEC
references): one list, so a new package is checked by both."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# folders installed as duplexloom.<folder> (pyproject.toml), lowest layer first
PACKAGES = (
    "schemas",
    "prompts",
    "timeline",
    "tts_adapters",
    "aligners",
    "annotators",
    "qa",
    "trainer",
    "pipelines",
)
