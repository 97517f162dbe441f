"""Sample keys and shard assignment: pure functions of the seed id (SPEC section 13, DESIGN 7).

A key is the seed id made safe for WebDataset (no ``.`` or ``/``; those and anything outside
``[A-Za-z0-9_-]`` become ``_``, and then a short hash of the original id is appended so two ids
never collide). ``shard_of(key) = int(sha256(key)[:8], 16) % num_shards``.
No reject codes.
"""

from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
MAX_KEY_CHARS = 80


def sample_key(record_id: str) -> str:
    safe = _UNSAFE.sub("_", record_id)
    if safe == record_id and len(safe) <= MAX_KEY_CHARS:
        return safe
    digest = hashlib.sha256(record_id.encode("utf-8")).hexdigest()[:10]
    return f"{safe[:MAX_KEY_CHARS]}-{digest}"


def shard_of(key: str, num_shards: int) -> int:
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16) % num_shards


def shard_name(shard: int) -> str:
    return f"{shard:06d}.tar"
