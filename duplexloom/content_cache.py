"""Content-addressed caches: one layout, one writer, one pair of counters.

The job's expensive results (LLM answers, TTS audio, alignments, FLAC encodings of the tracks)
are cached under a key that is the sha256 hex digest of their inputs (DESIGN.md rule 8), so a
rerun redoes only what changed. Every such cache is a :class:`ContentCache`:

- layout ``<dir>/<key[:2]>/<key><suffix>`` (256 sub-folders; an entry may have several files,
  one per suffix: the TTS cache's ``.wav`` and ``.json``);
- writes through the one local atomic writer, :func:`duplexloom.localfs.write_atomic`: a reader,
  or a second worker writing the same key, sees no file or a whole one;
- ``hits``/``misses`` counters; the subclass decides what a hit is (:meth:`ContentCache.counted`:
  an entry of an older form may count as a miss).

The users: ``annotators.cache.ResponseCache`` (``<llm cache>/<k[:2]>/<k>.json``),
``tts_adapters.cache.SynthesisCache`` (``<cache>/tts/``), ``pipelines.align.AlignmentCache``
(``<cache>/align/``) and ``pipelines.serialize.FlacCache`` (``<cache>/flac/``). The key functions
stay with their caches (what shapes an answer is each cache's business); this module only stores.
Local directories only, as before: a cache is a worker's scratch space, and a run whose output is
remote caches under the local temporary folder (``RunConfig.cache_dir``). No Beam here, so that
``tts_adapters/`` and ``annotators/`` may import it (tests/test_layering.py).
No reject codes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import BinaryIO, TypeVar

from duplexloom.localfs import write_atomic

T = TypeVar("T")


class ContentCache:
    """A directory of ``<key[:2]>/<key><suffix>`` entries; ``directory=None`` stores nothing
    (every read misses, writes are dropped)."""

    def __init__(self, directory: str | os.PathLike[str] | None, suffix: str) -> None:
        self.dir = None if directory is None else os.fspath(directory)
        self.suffix = suffix
        self.hits = 0
        self.misses = 0

    def path(self, key: str, suffix: str | None = None) -> str:
        """Where the entry (its ``suffix`` file; default the cache's own) of ``key`` lives."""
        if self.dir is None:
            raise ValueError("a cache without a directory has no entry paths")
        return os.path.join(self.dir, key[:2], key + (self.suffix if suffix is None else suffix))

    def read(self, key: str, suffix: str | None = None) -> bytes | None:
        """The stored bytes, or ``None`` when there is no entry (not counted: see :meth:`counted`)."""
        if self.dir is None:
            return None
        try:
            with open(self.path(key, suffix), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def write(
        self, key: str, data: bytes | Callable[[BinaryIO], object], suffix: str | None = None
    ) -> str | None:
        """Store ``data`` (bytes, or a function that writes to a binary file) atomically; returns
        the entry's path (``None`` without a directory)."""
        if self.dir is None:
            return None
        path = self.path(key, suffix)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_atomic(path, data)
        return path

    def counted(self, found: T | None) -> T | None:
        """``found`` unchanged, counted as a hit when it is not ``None``, else as a miss."""
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found
