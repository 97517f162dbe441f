"""A reject: a record that did not become a sample, with the stage and the reason."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from .base import Record


class Reject(Record):
    record_id: str
    stage: str
    code: str  # machine-readable reason, e.g. "invalid_json", "text_outruns_audio"
    detail: str = ""
    extra: dict[str, Any] = Field(default_factory=dict)


class RejectError(Exception):
    """Raised by pure code for a bad *record* (never for a bug): the routing point turns it into a
    :class:`Reject`. ``code`` is a stable snake_case reason code; ``detail`` is for humans."""

    def __init__(self, code: str, detail: str = "", **extra: Any) -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail
        self.extra = extra

    def to_reject(self, record_id: str, stage: str) -> Reject:
        return Reject(record_id=record_id, stage=stage, code=self.code, detail=self.detail, extra=self.extra)
