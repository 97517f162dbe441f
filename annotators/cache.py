"""Response cache for LLM calls, keyed by a content hash of everything that shapes the answer.

Key = sha256 over (model, template key and sha256, rendered messages, parameters such as
temperature and output mode). Only answers that passed validation are stored, so a rerun with the
same inputs pays nothing and one with a changed template re-asks only the prompts it changed.
Entries live in memory and, when ``cache_dir`` is set, as ``<dir>/<k[:2]>/<k>.json`` written
atomically (the content-addressed cache base, ``duplexloom/content_cache.py``), so concurrent
workers never read half a file.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from duplexloom.content_cache import ContentCache


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


class ResponseCache(ContentCache):
    """Answers in memory and, with a ``cache_dir``, as ``<k[:2]>/<k>.json`` files holding
    ``{"content": ...}`` (:class:`~duplexloom.content_cache.ContentCache`)."""

    def __init__(self, cache_dir: str | None = None) -> None:
        super().__init__(cache_dir or None, ".json")
        self._mem: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        if key in self._mem:
            self.hits += 1
            return self._mem[key]
        data = self.read(key)
        if data is not None:
            self._mem[key] = json.loads(data)["content"]
            return self.counted(self._mem[key])
        return self.counted(None)

    def put(self, key: str, content: str) -> None:
        self._mem[key] = content
        self.write(key, json.dumps({"content": content}, ensure_ascii=False).encode("utf-8"))
