"""Reads and writes through Beam's FileSystems, so local paths, ``gs://`` and ``s3://`` work alike.

``write_atomic`` writes to a temporary name beside the target and renames it into place: a reader
(or a resumed run) sees either no file or the whole file, never half of one.
No reject codes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems


def join(base: str, *parts: str) -> str:
    return FileSystems.join(base, *parts)


def exists(path: str) -> bool:
    return FileSystems.exists(path)


def read_bytes(path: str) -> bytes:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read()


def open_read(path: str) -> BinaryIO:
    """A binary reader of ``path`` (for files read piece by piece, e.g. seed lines)."""
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8")


def match(pattern: str) -> list[str]:
    """Sorted paths matching a path or glob; empty when nothing matches."""
    res = FileSystems.match([pattern])[0]
    return sorted(m.path for m in res.metadata_list)


def mkdirs(path: str) -> None:
    # Object stores have no directories; on local disk FileSystems.create does not make parents.
    if not FileSystems.exists(path):
        try:
            FileSystems.mkdirs(path)
        except OSError:
            if not FileSystems.exists(path):
                raise


def delete(paths: list[str]) -> None:
    FileSystems.delete(paths)


@contextmanager
def open_atomic(path: str) -> Iterator[BinaryIO]:
    """A writer whose bytes appear at ``path`` only when the block ends without an exception
    (written to a unique temporary name, then renamed); on an exception the temporary is removed."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    f = FileSystems.create(
        tmp, mime_type="application/octet-stream", compression_type=CompressionTypes.UNCOMPRESSED
    )
    written = False
    try:
        with f:
            yield f
        written = True
    finally:
        if not written and FileSystems.exists(tmp):  # the block raised: leave nothing behind
            FileSystems.delete([tmp])
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([tmp], [path])


def write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` via a unique temporary name and a rename."""
    with open_atomic(path) as f:
        f.write(data)
