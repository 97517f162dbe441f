"""Shard access for the QA tools through :mod:`duplexloom.storage` (Beam's ``FileSystems``), so
``gs://``, ``s3://`` and local paths all work the same; ``qa/`` itself imports no Beam.

Input: a shard spec — a ``.tar`` path, a glob (``out/shards/*.tar``), a WebDataset brace range
(``out/shards/{000000..000003}.tar``), a directory (``out/shards`` or the job's output dir, which
holds ``shards/``), or several of these joined by commas.
Output: sorted shard paths; ``(shard, key, members)`` triples; whole files as bytes; file writes.
No reject codes: an unmatched spec raises ``FileNotFoundError`` (a usage error, not a bad record).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from duplexloom import storage
from duplexloom.timeline.sample_codec import iter_shard

_BRACE_RE = re.compile(r"\{(\d+)\.\.(\d+)\}")
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class ShardSample:
    """One sample's raw members as read from a shard (not decoded: QA must see broken ones too)."""

    shard: str
    key: str
    members: dict[str, bytes]


def _expand_braces(spec: str) -> list[str]:
    """``a/{000000..000002}.tar`` -> three paths; zero padding follows the lower bound's width."""
    m = _BRACE_RE.search(spec)
    if not m:
        return [spec]
    lo, hi = m.group(1), m.group(2)
    out: list[str] = []
    for i in range(int(lo), int(hi) + 1):
        out += _expand_braces(spec[: m.start()] + str(i).zfill(len(lo)) + spec[m.end() :])
    return out


def _match(pattern: str) -> list[str]:
    return storage.match(pattern)


def _join(base: str, *parts: str) -> str:
    return storage.join(base.rstrip("/"), *parts)


def expand_shards(spec: str) -> list[str]:
    """All shard paths named by ``spec`` (see the module docstring), sorted and de-duplicated."""
    paths: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        for item in _expand_braces(part):
            if _GLOB_CHARS & set(item):
                paths += _match(item)
            elif item.endswith((".tar", ".tar.gz", ".tgz")):
                if not storage.exists(item):
                    raise FileNotFoundError(f"shard {item} does not exist")
                paths.append(item)
            else:
                # A directory: its own tars, else the job output layout <dir>/shards/*.tar.
                found = _match(_join(item, "*.tar")) or _match(_join(item, "shards", "*.tar"))
                paths += found
    if not paths:
        raise FileNotFoundError(f"no shards match {spec!r}")
    return sorted(set(paths))


def iter_shard_samples(paths: Iterable[str]) -> Iterator[ShardSample]:
    """Every sample of every shard, in shard order then tar order."""
    for path in paths:
        with storage.open_read(path, decompress_by_extension=True) as f:
            for key, members in iter_shard(f):
                yield ShardSample(path, key, members)


read_bytes = storage.read_bytes
exists = storage.exists
write_bytes = storage.write_bytes


def join(base: str, *parts: str) -> str:
    """Join path parts on any filesystem (``FileSystems.join`` keeps ``gs://`` intact)."""
    return _join(base, *parts)


def parent(path: str) -> str:
    """The folder holding ``path`` (``gs://b/x/shards/000000.tar`` -> ``gs://b/x/shards``)."""
    scheme, sep, rest = path.rpartition("://")
    head = posixpath.dirname(rest.rstrip("/"))
    return f"{scheme}{sep}{head}" if sep else head
