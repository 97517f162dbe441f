"""Local files: atomic writes and directory digests.

Atomic writes to local disk: the one local writer of the project (the content-addressed caches
of ``duplexloom/content_cache.py``: LLM answers, TTS audio, alignments, encoded audio; the
trainer's checkpoints). Paths that may be remote (``gs://``, ``s3://``) go through
:func:`duplexloom.storage.write_atomic` instead; this module stays free of Beam so that
``tts_adapters/`` can use it (tests/test_layering.py).

A reader, or a second worker writing the same key, sees either no file or a whole one: the bytes
go to a unique temporary file in the target's folder (same filesystem, so the rename is atomic),
then ``os.replace`` puts it in place; on any error the temporary is removed.
No reject codes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomic(path: str | os.PathLike[str], data: bytes | Callable[[BinaryIO], object]) -> None:
    """Write ``data`` (bytes, or a function that writes to a binary file) to ``path`` atomically.
    The folder must exist."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.fspath(path)) or ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):  # the write or the rename failed: leave no temporary behind
            os.unlink(tmp)


def dir_sha256(d: Path) -> str:
    """sha256 over a directory's files (relative names and bytes, streamed): the fingerprint of a
    local model checkpoint, which has no version of its own."""
    h = hashlib.sha256()
    for p in sorted(x for x in d.rglob("*") if x.is_file()):
        h.update(str(p.relative_to(d)).encode("utf-8") + b"\0")
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()
