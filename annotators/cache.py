"""Response cache for LLM calls, keyed by a content hash of everything that shapes the answer.

Key = sha256 over (model, template key and sha256, rendered messages, parameters such as
temperature and output mode). Only answers that passed validation are stored, so a rerun with the
same inputs pays nothing and one with a changed template re-asks only the prompts it changed.
Entries live in memory and, when ``cache_dir`` is set, as ``<dir>/<k[:2]>/<k>.json`` written
atomically (temp file + rename), so concurrent workers never read half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def cache_key(
    model: str, template_key: str, template_sha256: str, messages: Any, params: dict[str, Any]
) -> str:
    payload = json.dumps(
        {
            "model": model,
            "template": template_key,
            "template_sha256": template_sha256,
            "messages": messages,
            "params": params,
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ResponseCache:
    def __init__(self, cache_dir: str | None = None) -> None:
        self._mem: dict[str, str] = {}
        self._dir = Path(cache_dir) if cache_dir else None
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        assert self._dir is not None
        return self._dir / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        if key in self._mem:
            self.hits += 1
            return self._mem[key]
        if self._dir is not None:
            p = self._path(key)
            if p.is_file():
                content = json.loads(p.read_text(encoding="utf-8"))["content"]
                self._mem[key] = content
                self.hits += 1
                return content
        self.misses += 1
        return None

    def put(self, key: str, content: str) -> None:
        self._mem[key] = content
        if self._dir is None:
            return
        p = self._path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"content": content}, f, ensure_ascii=False)
        os.replace(tmp, p)
