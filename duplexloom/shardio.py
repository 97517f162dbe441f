"""The one shard reader: which shards a spec names, and the samples inside them.

The QA tools (``validate``, ``trace``, ``report``), the exporters (``export moshi|nemo``) and the
trainer all read shards through here, so a spec means the same thing to every command.

Input: a shard spec — a ``.tar`` path, a glob (``out/shards/*.tar``), a WebDataset brace range
(``out/shards/{000000..000003}.tar``), a directory (``out/shards`` or the job's output dir, which
holds ``shards/``), or several of these joined by commas. Local paths, ``gs://`` and ``s3://`` are
read through :mod:`duplexloom.storage` (Beam's FileSystems). WebDataset's stream URLs
(``pipe:CMD``, ``http(s)://``) are taken as they are after brace expansion and opened with
WebDataset's ``gopen`` (no listing is possible for them).
Output: sorted, de-duplicated shard paths; ``(shard, key, members)`` samples, members raw
(undecoded: QA must see broken samples too; decoding is :mod:`duplexloom.timeline.sample_codec`).
No reject codes: an unmatched spec raises ``FileNotFoundError`` (a usage error, not a bad record).
"""

from __future__ import annotations

import gzip
import posixpath
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from duplexloom import storage
from duplexloom.timeline.sample_codec import iter_shard

_BRACE_RE = re.compile(r"\{(\d+)\.\.(\d+)\}")
_GLOB_CHARS = set("*?[")
_STREAM_PREFIXES = ("pipe:", "http://", "https://")


@dataclass(frozen=True)
class ShardSample:
    """One sample's raw members as read from a shard (not decoded)."""

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


def _join(base: str, *parts: str) -> str:
    return storage.join(base.rstrip("/"), *parts)


def is_stream_url(path: str) -> bool:
    """A WebDataset stream URL (``pipe:``, ``http(s)://``): opened, never listed."""
    return path.startswith(_STREAM_PREFIXES)


def expand_shards(spec: str) -> list[str]:
    """All shard paths named by ``spec`` (see the module docstring), sorted and de-duplicated."""
    paths: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        for item in _expand_braces(part):
            if is_stream_url(item):
                paths.append(item)
            elif _GLOB_CHARS & set(item):
                paths += storage.match(item)
            elif item.endswith((".tar", ".tar.gz", ".tgz")):
                if not storage.exists(item):
                    raise FileNotFoundError(f"shard {item} does not exist")
                paths.append(item)
            else:
                # A directory: its own tars, else the job output layout <dir>/shards/*.tar.
                paths += storage.match(_join(item, "*.tar")) or storage.match(_join(item, "shards", "*.tar"))
    if not paths:
        raise FileNotFoundError(f"no shards match {spec!r}")
    return sorted(set(paths))


@contextmanager
def open_shard(path: str) -> Iterator[BinaryIO]:
    """A shard's bytes as a stream (``.tar.gz``/``.tgz`` decompressed by extension)."""
    if is_stream_url(path):
        from webdataset.gopen import gopen  # lazy: only stream URLs need WebDataset's opener

        with gopen(path, "rb") as f:
            yield gzip.GzipFile(fileobj=f) if path.endswith((".tar.gz", ".tgz")) else f
        return
    with storage.open_read(path, decompress_by_extension=True) as f:
        yield f


def parent(path: str) -> str:
    """The folder holding ``path`` (``gs://b/x/shards/000000.tar`` -> ``gs://b/x/shards``)."""
    scheme, sep, rest = path.rpartition("://")
    head = posixpath.dirname(rest.rstrip("/"))
    return f"{scheme}{sep}{head}" if sep else head


def iter_shard_members(paths: Iterable[str]) -> Iterator[tuple[str, dict[str, bytes]]]:
    """``(key, members)`` of every sample of every shard, in shard order then tar order."""
    for path in paths:
        with open_shard(path) as f:
            yield from iter_shard(f)


def iter_shard_samples(paths: Iterable[str]) -> Iterator[ShardSample]:
    """Every sample of every shard as a :class:`ShardSample` (knows its shard)."""
    for path in paths:
        with open_shard(path) as f:
            for key, members in iter_shard(f):
                yield ShardSample(path, key, members)
