"""The old name of :mod:`duplexloom.storage` (Beam FileSystems access), kept so that
``from duplexloom.pipelines import io`` and ``io.write_atomic(...)`` keep working."""

from duplexloom.storage import (  # noqa: F401  (re-exports)
    STORAGE_OPTIONS,
    delete,
    exists,
    join,
    match,
    mkdirs,
    open_atomic,
    open_read,
    read_bytes,
    read_text,
    set_storage_options,
    split_storage_args,
    write_atomic,
    write_bytes,
)
