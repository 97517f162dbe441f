"""The package layering of /work/shared/DESIGN.md, checked on the source (no imports are run).

Every ``import`` of every module counts, at module level, inside functions and under
``TYPE_CHECKING`` alike: a function-level import is as real a dependency as a top-level one, it
only runs later. The rules:

- ``schemas`` imports nothing of ours; ``prompts`` (data) only ``schemas``;
- ``timeline`` only ``schemas`` and ``prompts``;
- ``tts_adapters`` and ``aligners`` do not import each other (both may use ``schemas``, the one
  resampler ``duplexloom.audio`` and the one local atomic writer ``duplexloom.localfs``);
- ``duplexloom/tools/`` (commands that drive several packages, such as the aligner model's
  training, whose corpus the TTS backend synthesizes) may import ``tts_adapters`` and ``aligners``
  both; nothing imports a tool;
- the content-addressed cache base ``duplexloom.content_cache`` uses only ``localfs``, so the
  caches of ``tts_adapters``, ``annotators`` and ``pipelines`` can all be built on it;
- Apache Beam is imported only in ``pipelines/`` and in the one storage module,
  ``duplexloom.storage`` (Beam's FileSystems, so ``qa/`` and ``trainer/`` reach ``gs://`` too);
- torch is imported nowhere in ``schemas``, ``prompts`` or ``timeline``.

An edge that breaks a rule and is not in :data:`ALLOWED` fails the test, with the file and line.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from tests.project_files import PACKAGES, ROOT

# Modules of the ``duplexloom`` folder itself, each its own layer.
ROOT_MODULES = ("storage", "shardio", "audio", "localfs", "content_cache", "cli")

# What each layer may import of ours. ``cli`` is the command dispatcher (imports every command).
MAY_IMPORT: dict[str, frozenset[str]] = {
    "schemas": frozenset(),
    "prompts": frozenset({"schemas"}),
    "timeline": frozenset({"schemas", "prompts"}),
    "tts_adapters": frozenset({"schemas", "audio", "localfs", "content_cache"}),
    "aligners": frozenset({"schemas", "audio", "localfs"}),
    "annotators": frozenset({"schemas", "prompts", "timeline", "localfs", "content_cache"}),
    "qa": frozenset({"schemas", "prompts", "timeline", "storage", "shardio", "localfs"}),
    "trainer": frozenset({"schemas", "prompts", "timeline", "storage", "shardio", "localfs"}),
    "pipelines": frozenset(PACKAGES) | frozenset({"storage", "shardio", "audio", "localfs", "content_cache"}),
    "storage": frozenset(),
    "shardio": frozenset({"storage", "schemas", "timeline"}),  # the one shard reader
    "audio": frozenset(),
    "localfs": frozenset(),
    # The one cache base (layout, atomic write, counters): local files only, no Beam, so that
    # tts_adapters/ and annotators/ may build their caches on it.
    "content_cache": frozenset({"localfs"}),
    # duplexloom/tools/: above tts_adapters and aligners, which may not import each other.
    "tools": frozenset({"schemas", "audio", "localfs", "tts_adapters", "aligners"}),
    "cli": frozenset(PACKAGES) | frozenset(ROOT_MODULES),
    "root": frozenset(),  # duplexloom/__init__.py
}
BEAM_LAYERS = frozenset({"pipelines", "storage"})
NO_TORCH_LAYERS = frozenset({"schemas", "prompts", "timeline"})
THIRD_PARTY = {"apache_beam": "beam", "torch": "torch", "torchaudio": "torch"}

# Known edges against the rules, each with why it is still there. (importing module, imported
# layer). The test fails on any edge not listed here, and on a listed edge that is gone (so the
# list shrinks as they are fixed).
ALLOWED: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Edge:
    module: str  # importing module, dotted (duplexloom.timeline.merge)
    layer: str  # its layer
    target: str  # imported layer, or "beam"/"torch" for a third-party rule
    where: str  # file:line


def _module_name(path: Path) -> tuple[str, str]:
    """(dotted module name, layer) of a source file under ROOT."""
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[0] == "duplexloom":  # a root module, or a package under duplexloom/ (tools)
        parts = parts[1:]
        if parts == ["__init__"]:
            return "duplexloom", "root"
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return "duplexloom." + ".".join(parts), parts[0]


def _layer_of(dotted: str) -> str | None:
    """Layer of an absolute ``duplexloom.*`` name (None for ``duplexloom`` itself)."""
    parts = dotted.split(".")
    if parts[0] != "duplexloom" or len(parts) < 2:
        return None
    return parts[1]


def _source_files() -> list[Path]:
    files = [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]
    return files + sorted((ROOT / "duplexloom").rglob("*.py"))


def _edges(path: Path, name: tuple[str, str] | None = None) -> list[Edge]:
    """Import edges of one file (``name``: its (module, layer) when it is not under ROOT)."""
    module, layer = name or _module_name(path)
    is_pkg = path.name == "__init__.py"
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: list[Edge] = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            # ``from duplexloom import storage`` names the layer in the imported names
            targets = [f"{name}.{a.name}" for a in node.names] if name == "duplexloom" else [name]
        where = f"{shown}:{getattr(node, 'lineno', 0)}"
        for name in targets:
            top = name.split(".")[0]
            if top in THIRD_PARTY:
                out.append(Edge(module, layer, THIRD_PARTY[top], where))
                continue
            target = _layer_of(name)
            if target is not None and target != layer:
                out.append(Edge(module, layer, target, where))
    return out


def _is_forbidden(edge: Edge) -> bool:
    if edge.target == "beam":
        return edge.layer not in BEAM_LAYERS
    if edge.target == "torch":
        return edge.layer in NO_TORCH_LAYERS
    return edge.target not in MAY_IMPORT[edge.layer]


def test_every_source_file_has_a_layer() -> None:
    # A new top-level folder or root module must be given a place in the rules above.
    for path in _source_files():
        _, layer = _module_name(path)
        assert layer in MAY_IMPORT, f"{path.relative_to(ROOT)}: layer {layer!r} has no rules"
    folders = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    unknown = folders - set(PACKAGES) - {"duplexloom", "tests"}
    assert not unknown, f"packages without layering rules: {sorted(unknown)}"


def test_no_forbidden_import_edges() -> None:
    bad = [
        e
        for path in _source_files()
        for e in _edges(path)
        if _is_forbidden(e) and (e.module, e.target) not in ALLOWED
    ]
    assert not bad, "imports against the layering (DESIGN.md):\n" + "\n".join(
        f"  {e.where}: {e.module} ({e.layer}) imports {e.target}" for e in bad
    )


def test_allow_list_has_no_stale_entries() -> None:
    seen = {(e.module, e.target) for path in _source_files() for e in _edges(path) if _is_forbidden(e)}
    stale = sorted(set(ALLOWED) - seen)
    assert not stale, f"allow-list entries whose edge is gone (remove them): {stale}"


def test_the_checker_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    # The rules are only as good as the edge finder: check it on the shapes the code uses.
    src = (
        "from __future__ import annotations\n"
        "from .energy import coverage\n"
        "from duplexloom import storage\n"
        "def f():\n"
        "    import apache_beam as beam\n"
        "    from duplexloom.tts_adapters.base import X\n"
    )
    probe = tmp_path / "probe.py"
    probe.write_text(src, encoding="utf-8")
    edges = {(e.target, _is_forbidden(e)) for e in _edges(probe, ("duplexloom.aligners.probe", "aligners"))}
    assert edges == {("storage", True), ("beam", True), ("tts_adapters", True)}
