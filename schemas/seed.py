"""Text seeds: the pipeline's input records (one JSON object per line of a seeds file)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from .base import SCHEMA_VERSION, Record
from .tokens import find_markers

Lang = Literal["zh", "en"]
Role = Literal["user", "assistant"]
SeedKind = Literal["qa", "dialogue", "tool_request", "topic"]

MAX_SEED_TEXT_CHARS = 4000


def check_untrusted_text(text: str, what: str) -> str:
    """Reject empty text, oversize text and reserved marker strings (SPEC section 3)."""
    if not text.strip():
        raise ValueError(f"{what} is empty")
    if len(text) > MAX_SEED_TEXT_CHARS:
        raise ValueError(f"{what} has {len(text)} characters, over the limit of {MAX_SEED_TEXT_CHARS}")
    markers = find_markers(text)
    if markers:
        raise ValueError(f"{what} contains reserved marker string(s) {sorted(set(markers))}")
    return text


class SeedTurn(Record):
    role: Role
    text: str

    @field_validator("text")
    @classmethod
    def _clean(cls, v: str) -> str:
        return check_untrusted_text(v, "turn text")


class Seed(Record):
    """One text seed. ``turns`` holds a QA pair, a dialogue, or a single tool request."""

    schema_version: str = SCHEMA_VERSION
    id: str = Field(min_length=1, max_length=200)
    lang: Lang
    kind: SeedKind = "qa"
    turns: tuple[SeedTurn, ...] = ()
    topic: str | None = None
    family: str | None = None  # requested task family; None lets the family mix decide
    tools: tuple[str, ...] = ()  # hint: catalog functions a tool_request seed is about
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("topic")
    @classmethod
    def _clean_topic(cls, v: str | None) -> str | None:
        return None if v is None else check_untrusted_text(v, "topic")

    @field_validator("turns")
    @classmethod
    def _need_user(cls, v: tuple[SeedTurn, ...]) -> tuple[SeedTurn, ...]:
        if v and v[0].role != "user":
            raise ValueError("the first turn must be the user's")
        return v
