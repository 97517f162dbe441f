"""Sample keys and shard assignment: pure functions of the seed id (SPEC section 13, DESIGN 7).

A key names a sample's members (``<key>.assistant.flac``, ...) in a tar, an object on GCS/S3 and a
file on any OS, so it is bounded and plain:

* an id made only of ``[a-z0-9_-]``, at most :data:`MAX_KEY_CHARS` long, not a Windows device
  name (``con``, ``nul``, ``com1``, ...) and not itself shaped like an escaped key (ending in
  ``-`` + 16 hex digits) is its own key;
* every other id becomes ``<prefix>-<sha256(id)[:16]>``: the prefix is the id lower-cased with
  anything outside ``[a-z0-9_-]`` turned into ``_``, cut so the key has at most
  :data:`MAX_KEY_CHARS` characters.

So a verbatim key never looks like an escaped one, two ids that differ only in case never share a
key (case-insensitive filesystems), and the longest member name (``<key>.assistant.flac``) stays
well inside tar's 100-character USTAR name field. Two different ids share a key only on a 64-bit
hash collision between ids with the same prefix; the seeds stage rejects the later one
(``key_collision``) rather than trusting that it cannot happen.
``shard_of(key) = int(sha256(key)[:8], 16) % num_shards``.
No reject codes.
"""

from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[^a-z0-9_-]")
_VERBATIM = re.compile(r"[a-z0-9_-]+")
_ESCAPED_SHAPE = re.compile(r".*-[0-9a-f]{16}")
# 64 + len(".assistant.flac") = 79 < 100 (USTAR name field), with room for longer layout members.
MAX_KEY_CHARS = 64
HASH_CHARS = 16
# Device names that Windows refuses as a file's base name, whatever the extension.
_WINDOWS_DEVICES = frozenset(
    ["con", "prn", "aux", "nul"] + [f"com{i}" for i in range(10)] + [f"lpt{i}" for i in range(10)]
)


def sample_key(record_id: str) -> str:
    if (
        len(record_id) <= MAX_KEY_CHARS
        and _VERBATIM.fullmatch(record_id)
        and not _ESCAPED_SHAPE.fullmatch(record_id)
        and record_id not in _WINDOWS_DEVICES
    ):
        return record_id
    # surrogatepass: a key must exist for any str (a lone surrogate in an id is rejected later).
    digest = hashlib.sha256(record_id.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_CHARS]
    prefix = _UNSAFE.sub("_", record_id.lower())[: MAX_KEY_CHARS - HASH_CHARS - 1]
    return f"{prefix}-{digest}"


def shard_of(key: str, num_shards: int) -> int:
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16) % num_shards


def shard_name(shard: int) -> str:
    return f"{shard:06d}.tar"
