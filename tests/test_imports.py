"""Function-level imports are the exception, and each one says why (issue 19), checked on the
source (no imports are run).

An import inside a function hides an edge of the import graph until the function runs, so the
package sources import at module level unless one of these reasons holds, named in a comment that
starts with ``# lazy:`` (docs/DECISIONS.md, "Function-level imports"):

- an import cycle (name the modules);
- the start-up of a command that must stay fast (the dispatcher and the CLI modules it imports);
- an optional dependency, or a plugin registry that loads its backends on demand;
- a heavy third-party import (torch, torchaudio, apache_beam, matplotlib, openai, ...) in a module
  that light code paths import without calling the function.

The comment is on the import's line or on the line above it; imports that directly follow a
covered one (blank lines between them allowed) share its comment, so a block of lazy imports needs
one. The failure lists every uncovered import as file:line.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.project_files import PACKAGES, ROOT

MARK = "# lazy:"


def _source_files() -> list[Path]:
    files = [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]
    return files + sorted((ROOT / "duplexloom").rglob("*.py"))


def _has_reason(line: str) -> bool:
    """``line`` carries a ``# lazy:`` comment that names something."""
    at = line.find(MARK)
    return at >= 0 and len(line[at + len(MARK) :].strip()) >= 3


def uncovered_imports(source: str) -> list[int]:
    """Line numbers of the function-level imports in ``source`` that no ``# lazy:`` comment covers."""
    lines = source.splitlines()
    tree = ast.parse(source)
    found: dict[int, ast.Import | ast.ImportFrom] = {}
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(fn):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    found[node.lineno] = node
    covered_ends: set[int] = set()  # last line of each covered import
    bad: list[int] = []
    for lineno in sorted(found):
        node = found[lineno]
        end = node.end_lineno or lineno
        above = lineno - 1
        while above >= 1 and not lines[above - 1].strip():
            above -= 1
        own = any(_has_reason(lines[i - 1]) for i in range(lineno, end + 1))
        line_above = above == lineno - 1 and above >= 1 and _has_reason(lines[above - 1])
        # a comment line directly above, or the ``try:  # lazy: ...`` line the import opens
        if own or line_above or above in covered_ends:
            covered_ends.add(end)
        else:
            bad.append(lineno)
    return bad


def test_every_function_level_import_says_why_it_is_lazy() -> None:
    bad = []
    for path in _source_files():
        rel = path.relative_to(ROOT).as_posix()
        bad += [f"  {rel}:{n}" for n in uncovered_imports(path.read_text(encoding="utf-8"))]
    assert not bad, (
        f"function-level imports without a `{MARK} <reason>` comment (hoist them to module level, "
        "or name the reason: cycle, CLI start-up, optional dependency/registry, heavy import):\n"
        + "\n".join(bad)
    )


def test_the_checker_flags_and_accepts_the_shapes_the_code_uses() -> None:
    src = (
        "import json\n"  # module level: not checked
        "def plain():\n"
        "    import os\n"  # 3: no reason
        "    return os\n"
        "def own_line():\n"
        "    import torch  # lazy: torch, heavy\n"
        "def line_above():\n"
        "    # lazy: cycle a <-> b\n"
        "    from a import b\n"
        "\n"
        "    from a import c\n"  # follows a covered import: shares its comment
        "def opened_by_try():\n"
        "    try:  # lazy: lhotse, optional dependency\n"
        "        import lhotse\n"
        "    except ImportError:\n"
        "        raise\n"
        "    from x import y\n"  # 17: the try line is not directly above any more
        "def empty_reason():\n"
        "    import z  # lazy:\n"  # 19: names nothing
        "def comment_too_far():\n"
        "    # lazy: heavy\n"
        "    x = 1\n"
        "    import w\n"  # 23: code between comment and import
        "def nested():\n"
        "    def inner():\n"
        "        from . import v\n"  # 26: nested functions count
        "    return inner\n"
    )
    assert uncovered_imports(src) == [3, 17, 19, 23, 26]
