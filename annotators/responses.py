"""Response records: the only shapes LLM output is parsed through (one per prompt template).

They are built from the annotation records (``AnnotatedTurn``, ``AnnotatedAction``,
``CognitionEntry``, ``ThinkingNode``), so the marker guard of :mod:`duplexloom.schemas.annotation`
runs on every text the LLM writes; the JSON Schema sent as the structured-output format is
generated from them.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from duplexloom.schemas.annotation import AnnotatedAction, AnnotatedTurn, CognitionEntry, ThinkingNode
from duplexloom.schemas.base import Record
from duplexloom.schemas.tokens import find_markers


def _guard_texts(v: list[str]) -> list[str]:
    for s in v:
        if find_markers(s):
            raise ValueError(f"text contains reserved marker string(s) {sorted(set(find_markers(s)))}")
        if not s.strip():
            raise ValueError("empty phrase")
    return v


def _no_markers(v: str) -> str:
    if find_markers(v):
        raise ValueError(f"text contains reserved marker string(s) {sorted(set(find_markers(v)))}")
    return v


class DialogueOut(Record):
    """``dialogue`` template: a spoken-style dialogue, user first."""

    turns: list[AnnotatedTurn] = Field(min_length=2)


class TurnActions(Record):
    turn_index: int = Field(ge=0)  # index into the dialogue's turns (a user turn)
    actions: list[AnnotatedAction]


class ActionsOut(Record):
    """``actions`` template: tool calls per user turn, anchored to that turn's words."""

    requests: list[TurnActions]


class TurnActionsV2(TurnActions):
    """``actions.v2``: also the assistant's spoken reply right after the calls (fits the calls)."""

    reply: str

    _g = field_validator("reply")(lambda cls, v: _guard_texts([v])[0])


class ActionsOutV2(Record):
    """``actions.v2`` template: tool calls per user turn plus the reply that confirms or answers."""

    requests: list[TurnActionsV2]


class MaterialOut(Record):
    """``duplex_material`` template: interruptions, backchannels, hesitation fillers."""

    interruptions: list[str] = Field(min_length=1)
    backchannels: list[str] = Field(min_length=1)
    fillers: list[str] = Field(min_length=1)

    _g = field_validator("interruptions", "backchannels", "fillers")(lambda cls, v: _guard_texts(v))


class MaterialOutV2(MaterialOut):
    """``duplex_material.v2``: also the assistant's reply to each interruption (same order)."""

    interruption_replies: list[str] = Field(min_length=1)

    _r = field_validator("interruption_replies")(lambda cls, v: _guard_texts(v))


class TurnTranslation(Record):
    turn_index: int = Field(ge=0)
    translation: str

    _g = field_validator("translation")(lambda cls, v: _guard_texts([v])[0])


class TranslationOut(Record):
    """``translate`` template: one translation per user turn (interpret family)."""

    translations: list[TurnTranslation]


class CognitionOut(Record):
    """``cognition`` template: one entry per second heard, a speakable paraphrase, the full answer."""

    entries: list[CognitionEntry]
    voice_response: str
    reply_text: str

    # Empty texts are left to the cognition checks, which reject them with their own code.
    _g = field_validator("voice_response", "reply_text")(lambda cls, v: _no_markers(v))


class ChainOut(Record):
    """``chain`` template: a chronological thinking chain over the user's segments."""

    nodes: list[ThinkingNode] = Field(min_length=1)
