"""Speakers: one entry of a speaker library (SPEC section 11; issue 3)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .base import Record

SpeakerRole = Literal["assistant", "user"]


class Speaker(Record):
    """A voice. ``engine_params`` drives the embedded engine; reference clip + transcript drive cloning."""

    id: str
    role: SpeakerRole
    lang: tuple[str, ...] = ("zh", "en")
    gender: Literal["female", "male", "unknown"] = "unknown"
    display_name: str
    backend: str = "espeak"
    engine_params: dict[str, Any] = Field(default_factory=dict)
    reference_audio: str | None = None
    reference_text: str | None = None
