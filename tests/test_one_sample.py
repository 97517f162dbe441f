"""docs/ONE_SAMPLE.md stays true: every module, class, record and Beam step it names exists, and
every stable step label of the job (pipelines/run.py) has its row."""

from __future__ import annotations

import ast
import importlib
import re

from tests.project_files import ROOT

DOC = (ROOT / "docs" / "ONE_SAMPLE.md").read_text(encoding="utf-8")
TABLE = [line for line in DOC.splitlines() if re.match(r"\| \d+ \|", line)]
RUN = (ROOT / "pipelines" / "run.py").read_text(encoding="utf-8")


def _module_file(path: str):
    return ROOT / path


def test_every_module_and_stage_class_named_exists() -> None:
    rows = 0
    for line in TABLE:
        cells = [c.strip() for c in line.strip("|").split("|")]
        m = re.fullmatch(r"`([\w/]+\.py)` \(`(\w+)`\)", cells[2])
        if m is None:
            assert cells[2].startswith("Beam "), line
            continue
        path, name = m.groups()
        assert _module_file(path).is_file(), path
        tree = ast.parse(_module_file(path).read_text(encoding="utf-8"))
        defined = {n.name for n in tree.body if isinstance(n, ast.ClassDef | ast.FunctionDef)}
        assert name in defined, f"{path} defines no {name}"
        rows += 1
    assert rows >= 12


def test_every_dotted_record_resolves() -> None:
    dotted = set(re.findall(r"`((?:schemas|pipelines|timeline|tts_adapters)\.[\w.]+)", DOC))
    assert len(dotted) >= 15
    for name in sorted(dotted):
        module, _, attr = name.rpartition(".")
        mod = importlib.import_module(f"duplexloom.{module}")
        assert hasattr(mod, attr), f"duplexloom.{name} does not exist"


def test_every_stable_step_label_has_its_row_and_exists() -> None:
    header = ast.get_docstring(ast.parse(RUN)) or ""
    stable = re.findall(r"``(\w+)``", header.split("Stable step labels", 1)[1].split("so a Dataflow", 1)[0])
    documented = [re.search(r"`(\w+)`", line.split("|")[2]).group(1) for line in TABLE]
    assert stable and sorted(stable) == sorted(documented)
    for label in documented:
        assert re.search(rf'"{label}"\s*>>', RUN), f"no step labelled {label} in pipelines/run.py"
