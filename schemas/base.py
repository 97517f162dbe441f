"""Common base for every record: frozen, no unknown fields, a schema version."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

SCHEMA_VERSION = "1.0"


class Record(BaseModel):
    """Base of all duplexloom records: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")
