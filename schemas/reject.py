"""A reject: a record that did not become a sample, with the stage and the reason.

Reason codes are **final** (the record itself is bad: rerunning gives the same reject) or
**transient** (a service, an engine or the disk failed: a rerun may succeed). The set of codes is
open (every stage adds its own); a code is transient only when it is in :data:`TRANSIENT_CODES`,
every other code is final. Resume re-runs the seeds of transient rejects; a run whose transient
share is over ``max_transient_share`` exits non-zero (docs/DECISIONS.md, "Transient rejects").
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from .base import Record

# ``internal_error`` (an exception that is not a RejectError) is transient: it is a bug or a broken
# backend, and telling them apart is not possible here; a bug fails again on the rerun (costing one
# attempt), a full disk or a cache permission error does not.
TRANSIENT_CODES: frozenset[str] = frozenset(
    {
        "llm_unavailable",  # the LLM endpoint did not answer (5xx, 429, timeouts) within the retries
        "tts_failed",  # a TTS service call failed (HTTP error, undecodable reply)
        "tts_engine_crash",  # the TTS engine process died
        "io_error",  # a read or write of the run's files failed
        "internal_error",
    }
)


def is_transient(code: str) -> bool:
    """Whether a reject with ``code`` may go away on a rerun (see :data:`TRANSIENT_CODES`)."""
    return code in TRANSIENT_CODES


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
