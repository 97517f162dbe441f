"""Versioned prompt templates and data banks in ``prompts/templates/`` and their hashes.

File names carry the version: ``<name>.v<N>.txt`` (an LLM prompt) or ``<name>.json`` (a data bank
with a ``"version"`` field). Changing a prompt means adding ``<name>.v<N+1>.txt``, so the sha256 of
every template used goes into provenance and the response cache key, and a rerun re-asks only what
a changed template touches.

Prompt files hold a system part and a user part split by a line ``---user---``; placeholders are
``{{name}}`` (plain replacement, so JSON braces in prompts and values need no escaping).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

_PKG = "duplexloom.prompts"
_DIR = "templates"
_VERSIONED = re.compile(r"^(?P<name>[a-z_]+)\.v(?P<version>\d+)\.txt$")
_SPLIT = "\n---user---\n"
_PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")


def _read(fname: str) -> bytes:
    return resources.files(_PKG).joinpath(_DIR, fname).read_bytes()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    version: int
    system: str
    user: str
    sha256: str

    @property
    def key(self) -> str:
        """Name used in provenance: ``dialogue.v1``."""
        return f"{self.name}.v{self.version}"

    def render(self, **values: str) -> list[dict[str, str]]:
        """Chat messages with every ``{{name}}`` filled; a missing or unused value is a bug."""
        parts = (self.system, self.user)
        wanted = {m for p in parts for m in _PLACEHOLDER.findall(p)}
        if wanted != set(values):
            raise ValueError(f"template {self.key}: needs {sorted(wanted)}, got {sorted(values)}")

        def fill(text: str) -> str:
            return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)

        return [
            {"role": "system", "content": fill(self.system)},
            {"role": "user", "content": fill(self.user)},
        ]


@lru_cache(maxsize=1)
def _prompt_index() -> dict[str, dict[int, PromptTemplate]]:
    """name -> version -> template, for every ``<name>.v<N>.txt`` (old versions stay usable)."""
    index: dict[str, dict[int, PromptTemplate]] = {}
    for entry in resources.files(_PKG).joinpath(_DIR).iterdir():
        m = _VERSIONED.match(entry.name)
        if not m:
            continue
        data = entry.read_bytes()
        system, sep, user = data.decode("utf-8").partition(_SPLIT)
        if not sep:
            raise ValueError(f"template {entry.name} lacks the '---user---' separator line")
        t = PromptTemplate(
            m["name"], int(m["version"]), system.strip() + "\n", user.strip() + "\n", _sha(data)
        )
        index.setdefault(m["name"], {})[t.version] = t
    return index


def prompt(name: str, version: int | None = None) -> PromptTemplate:
    """Prompt template ``name``: its highest version, or with ``version`` the highest one not above
    it (so ``version=1`` reproduces a v1 run for every template, also those that never got a v2)."""
    versions = _prompt_index().get(name)
    if not versions:
        raise KeyError(f"no prompt template {name!r} in prompts/templates/")
    usable = [v for v in versions if version is None or v <= version]
    if not usable:
        raise KeyError(f"prompt template {name!r} has no version <= {version} (have {sorted(versions)})")
    return versions[max(usable)]


@cache
def bank(name: str) -> dict[str, Any]:
    """A JSON data bank (``phrase_banks``, ``tool_requests``)."""
    return json.loads(_read(f"{name}.json"))


@cache
def bank_key(name: str) -> str:
    """``phrase_banks.v1`` — provenance name of a bank."""
    return f"{name}.v{bank(name)['version']}"


def bank_hash(name: str) -> str:
    return _sha(_read(f"{name}.json"))


def all_hashes() -> dict[str, str]:
    """sha256 of every template file (for the run summary)."""
    out = {t.key: t.sha256 for versions in _prompt_index().values() for t in versions.values()}
    for name in ("phrase_banks", "tool_requests"):
        out[bank_key(name)] = bank_hash(name)
    return out
