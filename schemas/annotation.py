"""Annotation records: what the annotators (LLM or offline) make of one seed (SPEC sections 4, 8-11).

LLM output is parsed only through these records, so every text field passes the marker guard.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .base import SCHEMA_VERSION, Record
from .family import Family
from .seed import Lang, Role
from .tokens import find_control, find_markers


def _guard(v: str | None) -> str | None:
    if v is not None and find_markers(v):
        raise ValueError(f"text contains reserved marker string(s) {sorted(set(find_markers(v)))}")
    bad = None if v is None else find_control(v)
    if bad is not None:
        raise ValueError(f"text contains control character U+{ord(bad):04X}")
    return v


class AnnotatedAction(Record):
    """A tool call requested in a user turn, anchored to the words that ask for it."""

    name: str
    planning: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    anchor: str  # words of the user turn at which the intent becomes clear (must occur in it)
    pattern: Literal["single", "multi", "backchannel_action"] = "single"

    _g = field_validator("planning", "anchor")(lambda cls, v: _guard(v))


class AnnotatedTurn(Record):
    role: Role
    text: str
    actions: tuple[AnnotatedAction, ...] = ()
    translation: str | None = None  # interpret family: the assistant's rendering of this user turn

    _g = field_validator("text", "translation")(lambda cls, v: _guard(v))


class CognitionEntry(Record):
    """What can be understood at the end of second ``second`` from what has been heard so far."""

    second: int = Field(ge=0)
    text: str

    _g = field_validator("text")(lambda cls, v: _guard(v))


class CognitionStream(Record):
    """Per-second causal cognition for one user turn (Listen-Write-Speak, SPEC section 10)."""

    turn_index: int
    entries: tuple[CognitionEntry, ...]
    voice_response: str  # what the assistant speaks (short, speakable)
    reply_text: str  # the full written answer (the LWS written channel)
    # Word units of the turn heard by the end of each entry's second (one per entry, same order):
    # what the entry may use, and where it goes on the session clock (timeline/cognition.py).
    heard_units: tuple[int, ...] = ()
    # Set when the stream was cut on the session clock (offline cognition re-cut after alignment):
    # entry t describes session second start_second + t exactly.
    start_second: int | None = None

    _g = field_validator("voice_response", "reply_text")(lambda cls, v: _guard(v))


class ThinkingNode(Record):
    """One node of a chronological thinking chain: ``{TYPE} attributes``; ``ctx_id`` binds entities."""

    type: Literal["ENTITY", "INTENT", "ACTION", "KNOWLEDGE", "LOGIC"]
    text: str
    turn_index: int
    segment_index: int = 0  # which user segment (clause) of the turn triggered it
    ctx_id: str | None = None  # rendered as @ctx:ID

    _g = field_validator("text")(lambda cls, v: _guard(v))


class Annotation(Record):
    schema_version: str = SCHEMA_VERSION
    seed_id: str
    lang: Lang
    # The family the annotate stage decided for the seed (or the one the annotator served instead,
    # recorded in ``provenance["family_substitution"]``); later stages read it, never re-decide.
    family: Family
    turns: tuple[AnnotatedTurn, ...]
    interruptions: tuple[str, ...] = ()  # user barge-in utterances (incl. "you are right, but ..." kind)
    # The assistant's reply to interruption i (same index): an interrupted assistant yields, then
    # answers the new thought (SPEC section 8). Empty, or exactly one reply per interruption.
    interruption_replies: tuple[str, ...] = ()
    backchannels: tuple[str, ...] = ()  # short user feedback phrases
    fillers: tuple[str, ...] = ()  # hesitation fillers for pauses
    cognition: tuple[CognitionStream, ...] = ()
    chains: tuple[ThinkingNode, ...] = ()
    provenance: dict[str, str] = Field(default_factory=dict)  # field -> annotator name
    prompt_hashes: dict[str, str] = Field(default_factory=dict)  # template name -> sha256

    @field_validator("interruptions", "interruption_replies", "backchannels", "fillers")
    @classmethod
    def _guard_all(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for s in v:
            _guard(s)
        return v

    @model_validator(mode="after")
    def _replies_match(self) -> Annotation:
        if self.interruption_replies and len(self.interruption_replies) != len(self.interruptions):
            raise ValueError(
                f"{len(self.interruption_replies)} interruption_replies for {len(self.interruptions)} interruptions"
            )
        return self
