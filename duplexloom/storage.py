"""Reads and writes through Beam's FileSystems, so local paths, ``gs://`` and ``s3://`` work alike.

The one module outside ``pipelines/`` that imports Apache Beam (``tests/test_layering.py``): the
QA tools, the exporters and the job all reach storage through it (it was ``pipelines/io.py``).

``write_atomic`` writes to a temporary name beside the target and renames it into place: a reader
(or a resumed run) sees either no file or the whole file, never half of one.

Beam's filesystems take their settings (S3 endpoint, keys and region; Azure; HDFS) from the
pipeline options that ``FileSystems.set_options`` was given, and a Beam ``Pipeline`` sets them
only when it is constructed: every command calls :func:`set_storage_options` before its first
read or write (``s3://`` fails without options even when the environment holds the keys).
No reject codes.
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import BinaryIO

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import (
    AzureOptions,
    HadoopFileSystemOptions,
    PipelineOptions,
    S3Options,
)

STORAGE_OPTIONS = (S3Options, AzureOptions, HadoopFileSystemOptions)


def set_storage_options(options: PipelineOptions | Sequence[str] = ()) -> PipelineOptions:
    """Hand Beam options (an object or command-line flags) to ``FileSystems``; returns them."""
    if not isinstance(options, PipelineOptions):
        options = PipelineOptions(list(options))
    FileSystems.set_options(options)
    return options


def split_storage_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(storage flags, the rest)`` of a command line: Beam's S3, Azure and HDFS flags
    (``--s3_endpoint_url=URL``, ``--s3_region_name R``, ...) are taken out, everything else is
    left in order for the command's own parser."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for cls in STORAGE_OPTIONS:
        cls._add_argparse_args(parser)  # Beam's own definitions of the flags
    known, rest = parser.parse_known_args(list(argv))
    taken = []
    for action in parser._actions:
        value = getattr(known, action.dest, None)
        if value is None or value is False or value == action.default:
            continue
        taken.append(f"--{action.dest}" if value is True else f"--{action.dest}={value}")
    return taken, rest


def join(base: str, *parts: str) -> str:
    return FileSystems.join(base, *parts)


def exists(path: str) -> bool:
    return FileSystems.exists(path)


def read_bytes(path: str) -> bytes:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read()


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8")


def match(pattern: str) -> list[str]:
    """Sorted paths matching a path or glob; empty when nothing matches."""
    res = FileSystems.match([pattern])[0]
    return sorted(m.path for m in res.metadata_list)


def open_read(path: str, *, decompress_by_extension: bool = False) -> BinaryIO:
    """A binary reader of a stored file. With ``decompress_by_extension`` a ``.gz``/``.bz2``/...
    file is decompressed on the fly (Beam's AUTO: how shard readers take ``.tar.gz`` shards);
    without it the bytes are the stored bytes."""
    kind = CompressionTypes.AUTO if decompress_by_extension else CompressionTypes.UNCOMPRESSED
    return FileSystems.open(path, mime_type="application/octet-stream", compression_type=kind)


def write_bytes(path: str, data: bytes) -> None:
    """Write a whole file in place (no temporary name: for report files nobody resumes from)."""
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(data)


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
    if not data and path.startswith("s3://"):
        _put_empty_s3(path)
        return
    with open_atomic(path) as f:
        f.write(data)


def _put_empty_s3(path: str) -> None:
    """An empty S3 object in one PUT (atomic by itself). Beam's S3 writer always uploads in
    multipart parts and, for 0 bytes, completes an upload with no part, which S3 refuses
    (``MalformedXML``): an empty ``rejects.jsonl`` could not be written."""
    # lazy: apache-beam[aws] (boto3), an optional extra, only for s3:// paths
    from apache_beam.io.aws import s3io
    from apache_beam.io.aws.clients.s3 import boto3_client

    bucket, key = s3io.parse_s3_path(path)
    options = FileSystems._pipeline_options or PipelineOptions([])
    boto3_client.Client(options=options).client.put_object(Bucket=bucket, Key=key, Body=b"")
